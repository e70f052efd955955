//! Input validation and normalization. Every function returns the normalized value or a
//! [`Error::Validation`] naming the field and the rule, never echoing the rejected value.
//!
//! Standard formats are checked by well-kept crates: phone numbers by `phonenumber` (libphonenumber's
//! metadata), e-mail addresses by `email_address` (RFC 5322), CPF and CNPJ check digits by `cpf` and
//! `cnpj`.

use std::str::FromStr;

use austa_error::{Error, Result};

/// Normalizes a phone number to E.164. Numbers without a country code are read as Brazilian
/// (`11 98765-4321` becomes `+5511987654321`).
///
/// ```
/// use austa_model::validate::phone;
/// assert_eq!(phone("phone", "(11) 98765-4321").unwrap(), "+5511987654321");
/// assert!(phone("phone", "12").is_err());
/// ```
pub fn phone(field: &str, input: &str) -> Result<String> {
    let trimmed = input.trim();
    if trimmed.is_empty() || trimmed.len() > 32 {
        return Err(Error::validation(field, "must be a phone number"));
    }
    let parsed = phonenumber::parse(Some(phonenumber::country::Id::BR), trimmed)
        .map_err(|_| Error::validation(field, "is not a phone number"))?;
    if !phone_is_possible(&parsed) {
        return Err(Error::validation(field, "has the wrong length for its country"));
    }
    Ok(parsed.format().mode(phonenumber::Mode::E164).to_string())
}

/// libphonenumber's "possible number" rule: the national number's length is one its country uses.
/// Stricter "valid number" rules (prefix ranges) reject real numbers whenever carriers open new ranges
/// before the metadata catches up, which would lock patients out of WhatsApp ingest.
fn phone_is_possible(number: &phonenumber::PhoneNumber) -> bool {
    if number.is_valid() {
        return true;
    }
    let national = number.national();
    let len = national.value().to_string().len() + usize::from(national.zeros());
    let Ok(len) = u16::try_from(len) else {
        return false;
    };
    phonenumber::metadata::DATABASE.by_code(&number.code().value()).is_some_and(|regions| {
        regions.iter().any(|m| {
            let d = m.descriptors();
            // Compact metadata leaves the general lengths empty; they are the union of the types'.
            [Some(d.general()), d.fixed_line(), d.mobile()]
                .into_iter()
                .flatten()
                .any(|desc| desc.possible_length().contains(&len))
        })
    })
}

/// Normalizes a CPF to its 11 digits after checking the check digits. Accepts `123.456.789-09` and
/// `12345678909`.
///
/// ```
/// use austa_model::validate::cpf;
/// assert_eq!(cpf("cpf", "123.456.789-09").unwrap(), "12345678909");
/// assert!(cpf("cpf", "123.456.789-01").is_err());
/// ```
pub fn cpf(field: &str, input: &str) -> Result<String> {
    let parsed = ::cpf::Cpf::from_str(input.trim())
        .map_err(|_| Error::validation(field, "is not a CPF with valid check digits"))?;
    Ok(parsed.digits().iter().map(|d| char::from(b'0' + d)).collect())
}

/// Normalizes a CNPJ to its 14 digits after checking the check digits.
///
/// ```
/// use austa_model::validate::cnpj;
/// assert_eq!(cnpj("tax_id", "12.345.678/0001-95").unwrap(), "12345678000195");
/// assert!(cnpj("tax_id", "12.345.678/0001-90").is_err());
/// ```
pub fn cnpj(field: &str, input: &str) -> Result<String> {
    let parsed = ::cnpj::Cnpj::from_str(input.trim())
        .map_err(|_| Error::validation(field, "is not a CNPJ with valid check digits"))?;
    Ok(parsed.digits().iter().map(|d| char::from(b'0' + d)).collect())
}

/// Normalizes an e-mail address (trimmed, lower case) after checking its shape.
pub fn email(field: &str, input: &str) -> Result<String> {
    let normalized = input.trim().to_lowercase();
    if normalized.len() > 254 || !email_address::EmailAddress::is_valid(&normalized) {
        return Err(Error::validation(field, "is not a valid e-mail address"));
    }
    Ok(normalized)
}

/// Normalizes a WhatsApp user or chat id: trimmed, 1 to 128 visible characters, no whitespace.
pub fn whatsapp_id(field: &str, input: &str) -> Result<String> {
    let trimmed = input.trim();
    if trimmed.is_empty() || trimmed.len() > 128 || trimmed.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Error::validation(field, "must be 1 to 128 characters without spaces"));
    }
    Ok(trimmed.to_string())
}

/// Checks an IANA time zone name (`America/Sao_Paulo`).
pub fn timezone(field: &str, input: &str) -> Result<String> {
    let trimmed = input.trim();
    trimmed
        .parse::<chrono_tz::Tz>()
        .map(|tz| tz.name().to_string())
        .map_err(|_| Error::validation(field, "is not an IANA time zone name"))
}

/// Checks a BCP 47 language tag's shape (`pt-BR`): 2 to 35 letters, digits and hyphens.
pub fn language_tag(field: &str, input: &str) -> Result<String> {
    let trimmed = input.trim();
    let ok = (2..=35).contains(&trimmed.len())
        && trimmed.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && trimmed.chars().next().is_some_and(|c| c.is_ascii_alphabetic());
    if !ok {
        return Err(Error::validation(field, "is not a language tag like pt-BR"));
    }
    Ok(trimmed.to_string())
}

/// Trims `input` and checks that its length in characters is within `min..=max`.
pub fn text(field: &str, input: &str, min: usize, max: usize) -> Result<String> {
    let trimmed = input.trim();
    let n = trimmed.chars().count();
    if n < min || n > max {
        return Err(Error::validation(field, format!("must be {min} to {max} characters")));
    }
    if trimmed.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Err(Error::validation(field, "must not contain control characters"));
    }
    Ok(trimmed.to_string())
}

/// [`text`] for an optional value.
pub fn opt_text(field: &str, input: Option<&str>, min: usize, max: usize) -> Result<Option<String>> {
    input.map(|s| text(field, s, min, max)).transpose()
}

/// Checks `lo <= value <= hi` (and that the value is a number).
pub fn range(field: &str, value: f64, lo: f64, hi: f64) -> Result<f64> {
    if value.is_nan() || value < lo || value > hi {
        return Err(Error::validation(field, format!("must be between {lo} and {hi}")));
    }
    Ok(value)
}

/// [`range`] for an optional value.
pub fn opt_range(field: &str, value: Option<f64>, lo: f64, hi: f64) -> Result<Option<f64>> {
    value.map(|v| range(field, v, lo, hi)).transpose()
}

/// Checks that an integer is not negative.
pub fn non_negative(field: &str, value: i64) -> Result<i64> {
    if value < 0 {
        return Err(Error::validation(field, "must not be negative"));
    }
    Ok(value)
}

/// Checks `start <= end` when both are present.
pub fn ordered<T: PartialOrd>(field: &str, start: Option<&T>, end: Option<&T>) -> Result<()> {
    match (start, end) {
        (Some(s), Some(e)) if s > e => Err(Error::validation(field, "must not be before the start")),
        _ => Ok(()),
    }
}

/// Checks a list of short labels (tags, specialties, badges): each 1 to 100 characters, at most 100.
pub fn labels(field: &str, input: &[String]) -> Result<Vec<String>> {
    if input.len() > 100 {
        return Err(Error::validation(field, "must have at most 100 entries"));
    }
    input.iter().map(|s| text(field, s, 1, 100)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_phones_normalize() {
        for (input, e164) in [
            ("+5511987654321", "+5511987654321"),
            ("+5511876543210", "+5511876543210"),
            ("+5511765432109", "+5511765432109"),
            ("+55 11 3456-7890", "+551134567890"),
            ("+55 11 99999-1111", "+5511999991111"),
            ("11 98765-4321", "+5511987654321"),
        ] {
            assert_eq!(phone("phone", input).map_err(|e| format!("{input}: {e}")).unwrap(), e164, "{input}");
        }
        assert_eq!(phone("phone", "abc").unwrap_err().field(), Some("phone"));
    }

    #[test]
    fn cpf_and_cnpj_check_digits() {
        for good in ["123.456.789-09", "987.654.321-00", "456.789.123-64"] {
            cpf("cpf", good).unwrap();
        }
        for bad in ["123.456.789-01", "987.654.321-09", "456.789.123-45", "111.111.111-11", "123"] {
            let e = cpf("cpf", bad).unwrap_err();
            assert!(!e.to_string().contains(bad));
        }
        cnpj("tax_id", "98.765.432/0001-98").unwrap();
        assert!(cnpj("tax_id", "98.765.432/0001-10").is_err());
    }

    #[test]
    fn email_and_text_rules() {
        assert_eq!(email("email", " Carlos.Mendes@Email.com ").unwrap(), "carlos.mendes@email.com");
        assert!(email("email", "not-an-email").is_err());
        assert!(text("name", "  ", 1, 10).is_err());
        assert!(range("progress", 150.0, 0.0, 100.0).is_err());
        assert!(range("progress", f64::NAN, 0.0, 100.0).is_err());
    }
}
