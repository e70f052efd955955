//! Synthetic data: patients' phone numbers and WhatsApp ids, webhook bodies, vital signs.

use serde_json::json;

/// The business number the benchmark organization registers.
pub const BUSINESS_NUMBER: &str = "104857600009999";

/// Patient `i`'s phone in E.164: a São Paulo mobile number.
pub fn phone(i: usize) -> String {
    format!("+55119{:08}", i)
}

/// Patient `i`'s WhatsApp id (the phone's digits).
pub fn wa_id(i: usize) -> String {
    format!("55119{:08}", i)
}

/// A WhatsApp Cloud API webhook body with one text message from patient `patient`.
pub fn webhook_body(patient: usize, message_id: &str, timestamp: i64) -> String {
    json!({
        "object": "whatsapp_business_account",
        "entry": [{
            "id": "WABA-BENCH",
            "changes": [{
                "field": "messages",
                "value": {
                    "messaging_product": "whatsapp",
                    "metadata": { "display_phone_number": "551130009999", "phone_number_id": BUSINESS_NUMBER },
                    "contacts": [{ "profile": { "name": format!("Paciente {patient}") }, "wa_id": wa_id(patient) }],
                    "messages": [{
                        "from": wa_id(patient),
                        "id": message_id,
                        "timestamp": timestamp.to_string(),
                        "type": "text",
                        "text": { "body": format!("Bom dia! Tomei a Losartana 50mg às 8h e a pressão deu 13 por 8 ({message_id}).") }
                    }]
                }
            }]
        }]
    })
    .to_string()
}

/// A vital signs reading, the bulk import's payload.
pub fn vital_signs(i: usize) -> serde_json::Value {
    json!({
        "systolic": 110 + (i % 40),
        "diastolic": 70 + (i % 20),
        "heart_rate": 60 + (i % 35),
        "measured_at": "2026-11-20T08:00:00Z",
        "device": "omron-hem-7122"
    })
}

/// What the baselines read out of a webhook body (the library parses the whole body itself).
#[derive(Debug, Clone)]
pub struct InboundText {
    /// The business number the body names.
    pub phone_number_id: String,
    /// The sender.
    pub wa_id: String,
    /// The wamid.
    pub message_id: String,
    /// Unix seconds.
    pub timestamp: i64,
    /// The text.
    pub body: String,
}

/// Parses a one-message body (the baselines' version of the ingest's parsing).
pub fn parse_body(body: &str) -> Option<InboundText> {
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    let value = &v["entry"][0]["changes"][0]["value"];
    let m = &value["messages"][0];
    Some(InboundText {
        phone_number_id: value["metadata"]["phone_number_id"].as_str()?.to_string(),
        wa_id: m["from"].as_str()?.to_string(),
        message_id: m["id"].as_str()?.to_string(),
        timestamp: m["timestamp"].as_str()?.parse().ok()?,
        body: m["text"]["body"].as_str()?.to_string(),
    })
}
