//! Patients: the generic operations plus lookups by phone, CPF, e-mail and WhatsApp id, each through
//! its blind index (the ciphertext itself is never searched).

use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

use super::{patch, rows, Model, Repo, SoftDeletable, Updatable};
use crate::access::Action;
use crate::error::{Error, Result};
use crate::kernel::Sealed;
use crate::model::{EmergencyContact, NewPatient, Patient, PatientPatch};
use crate::scope::{Role, Scope};
use crate::validate;
use austa_crypto::{BlindIndexKind, Sensitive};

/// Repository of patients.
pub type Patients<'s> = Repo<'s, Patient>;

impl Scope {
    /// Patients of this scope's organization.
    pub fn patients(&self) -> Patients<'_> {
        Repo::new(self)
    }
}

fn name(field: &str, v: &Sensitive<String>) -> Result<Sensitive<String>> {
    validate::text(field, v.expose()?, 1, 100).map(Sensitive::new)
}

fn phone(v: &Sensitive<String>) -> Result<Sensitive<String>> {
    validate::phone("phone", v.expose()?).map(Sensitive::new)
}

fn email(v: Option<&Sensitive<String>>) -> Result<Option<Sensitive<String>>> {
    v.map(|e| validate::email("email", e.expose()?).map(Sensitive::new)).transpose()
}

fn cpf(v: Option<&Sensitive<String>>) -> Result<Option<Sensitive<String>>> {
    v.map(|c| validate::cpf("cpf", c.expose()?).map(Sensitive::new)).transpose()
}

fn whatsapp_id(v: Option<&Sensitive<String>>) -> Result<Option<Sensitive<String>>> {
    v.map(|w| validate::whatsapp_id("whatsapp_id", w.expose()?).map(Sensitive::new)).transpose()
}

fn date_of_birth(v: Option<&Sensitive<NaiveDate>>, today: NaiveDate) -> Result<()> {
    if let Some(d) = v {
        let earliest = NaiveDate::from_ymd_opt(1900, 1, 1).unwrap_or(NaiveDate::MIN);
        if *d.expose()? > today || *d.expose()? < earliest {
            return Err(Error::validation("date_of_birth", "must be between 1900-01-01 and today"));
        }
    }
    Ok(())
}

fn emergency_contact(v: Option<Sensitive<EmergencyContact>>) -> Result<Option<Sensitive<EmergencyContact>>> {
    v.map(|c| {
        let c = c.expose()?;
        Ok(Sensitive::new(EmergencyContact {
            name: validate::text("emergency_contact.name", &c.name, 1, 200)?,
            phone: validate::phone("emergency_contact.phone", &c.phone)?,
            relationship: validate::text("emergency_contact.relationship", &c.relationship, 1, 50)?,
        }))
    })
    .transpose()
}

impl Sealed for Patient {}

impl Model for Patient {
    type New = NewPatient;

    const CREATES_PATIENT_KEY: bool = true;

    fn build(organization: Uuid, id: Uuid, now: DateTime<Utc>, new: NewPatient) -> Result<Self> {
        date_of_birth(new.date_of_birth.as_ref(), now.date_naive())?;
        Ok(Patient {
            id,
            organization_id: organization,
            first_name: name("first_name", &new.first_name)?,
            last_name: name("last_name", &new.last_name)?,
            email: email(new.email.as_ref())?,
            phone: phone(&new.phone)?,
            cpf: cpf(new.cpf.as_ref())?,
            date_of_birth: new.date_of_birth,
            gender: new.gender,
            whatsapp_id: whatsapp_id(new.whatsapp_id.as_ref())?,
            preferred_language: validate::language_tag(
                "preferred_language",
                new.preferred_language.as_deref().unwrap_or("pt-BR"),
            )?,
            timezone: validate::timezone("timezone", new.timezone.as_deref().unwrap_or("America/Sao_Paulo"))?,
            is_active: true,
            is_verified: new.is_verified,
            last_active_at: now,
            emergency_contact: emergency_contact(new.emergency_contact)?,
            created_at: now,
            updated_at: now,
            deleted_at: None,
            erased_at: None,
        })
    }

    /// `is_verified` records that the organization checked the patient's identity: a patient acting on
    /// their own record may not set or clear it.
    fn authorize_fields(&self, scope: &Scope, _action: Action, before: Option<&Self>) -> Result<()> {
        if scope.actor().role() == Role::Patient && self.is_verified != before.is_some_and(|b| b.is_verified) {
            return Err(Error::PermissionDenied(
                "a patient may not change is_verified: it records a verification by the organization".into(),
            ));
        }
        Ok(())
    }
}

impl Updatable for Patient {
    type Patch = PatientPatch;

    fn apply(&mut self, p: PatientPatch, now: DateTime<Utc>) -> Result<()> {
        patch!(self.first_name, p.first_name, |v| name("first_name", &v)?);
        patch!(self.last_name, p.last_name, |v| name("last_name", &v)?);
        patch!(self.phone, p.phone, |v| phone(&v)?);
        patch!(self.email, p.email, |v| email(v.as_ref())?);
        patch!(self.cpf, p.cpf, |v| cpf(v.as_ref())?);
        if let Some(v) = p.date_of_birth {
            date_of_birth(v.as_ref(), now.date_naive())?;
            self.date_of_birth = v;
        }
        patch!(self.gender, p.gender);
        patch!(self.whatsapp_id, p.whatsapp_id, |v| whatsapp_id(v.as_ref())?);
        patch!(self.preferred_language, p.preferred_language, |v| validate::language_tag("preferred_language", &v)?);
        patch!(self.timezone, p.timezone, |v| validate::timezone("timezone", &v)?);
        patch!(self.is_active, p.is_active);
        patch!(self.is_verified, p.is_verified);
        patch!(self.last_active_at, p.last_active_at, |v| crate::time::truncate(v));
        patch!(self.emergency_contact, p.emergency_contact, |v| emergency_contact(v)?);
        self.updated_at = now;
        Ok(())
    }
}

impl SoftDeletable for Patient {}

impl Patients<'_> {
    async fn find_by(&self, column: &'static str, kind: BlindIndexKind, normalized: &str) -> Result<Option<Patient>> {
        rows::find_by_blind(self.scope(), column, kind, normalized, "").await
    }

    /// The patient with this phone (any format [`validate::phone`] accepts), if any.
    pub async fn find_by_phone(&self, phone: &str) -> Result<Option<Patient>> {
        let normalized = validate::phone("phone", phone)?;
        self.find_by("phone_bidx", BlindIndexKind::Phone, &normalized).await
    }

    /// The patient with this CPF (formatted or digits), if any.
    pub async fn find_by_cpf(&self, cpf: &str) -> Result<Option<Patient>> {
        let normalized = validate::cpf("cpf", cpf)?;
        self.find_by("cpf_bidx", BlindIndexKind::Cpf, &normalized).await
    }

    /// The patient with this e-mail (case-insensitive), if any.
    pub async fn find_by_email(&self, email: &str) -> Result<Option<Patient>> {
        let normalized = validate::email("email", email)?;
        self.find_by("email_bidx", BlindIndexKind::Email, &normalized).await
    }

    /// The patient with this WhatsApp user id, if any.
    pub async fn find_by_whatsapp_id(&self, whatsapp_id: &str) -> Result<Option<Patient>> {
        let normalized = validate::whatsapp_id("whatsapp_id", whatsapp_id)?;
        self.find_by("whatsapp_id_bidx", BlindIndexKind::WhatsappId, &normalized).await
    }
}
