//! `patients.*`: patients, and lookups by the blind indexes of their identifiers.

use austa_core::model::{NewPatient, Patient, PatientPatch};
use austa_core::{Result, Scope};
use serde::Deserialize;

use super::ScopeOperation;

table_ops!("patients", Patient, NewPatient, PatientPatch: get, list, create, create_many, update, delete, restore);

/// The live patient with this phone (E.164 or a Brazilian number), if any.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FindByPhone {
    /// The phone number.
    pub phone: String,
}

impl ScopeOperation for FindByPhone {
    const NAME: &'static str = "patients.find_by_phone";
    type Output = Option<Patient>;
    async fn run(self, scope: &Scope) -> Result<Option<Patient>> {
        scope.patients().find_by_phone(&self.phone).await
    }
}

/// The live patient with this CPF (with or without punctuation), if any.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FindByCpf {
    /// The CPF.
    pub cpf: String,
}

impl ScopeOperation for FindByCpf {
    const NAME: &'static str = "patients.find_by_cpf";
    type Output = Option<Patient>;
    async fn run(self, scope: &Scope) -> Result<Option<Patient>> {
        scope.patients().find_by_cpf(&self.cpf).await
    }
}

/// The live patient with this e-mail address, if any.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FindByEmail {
    /// The e-mail address (compared case-insensitively).
    pub email: String,
}

impl ScopeOperation for FindByEmail {
    const NAME: &'static str = "patients.find_by_email";
    type Output = Option<Patient>;
    async fn run(self, scope: &Scope) -> Result<Option<Patient>> {
        scope.patients().find_by_email(&self.email).await
    }
}

/// The live patient with this WhatsApp user id, if any.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FindByWhatsappId {
    /// The WhatsApp user id.
    pub whatsapp_id: String,
}

impl ScopeOperation for FindByWhatsappId {
    const NAME: &'static str = "patients.find_by_whatsapp_id";
    type Output = Option<Patient>;
    async fn run(self, scope: &Scope) -> Result<Option<Patient>> {
        scope.patients().find_by_whatsapp_id(&self.whatsapp_id).await
    }
}
