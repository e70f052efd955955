//! Key operations of the domain: master key rotation, data key rotation, crypto-shredding.
//!
//! * **Master key rotation** ([`Database::rotate_master_key`](crate::Database::rotate_master_key)) re-wraps every organization key under a
//!   new master key in one key-store transaction, together with the key check value: it touches no
//!   data, takes time proportional to the number of organization keys, and afterwards the old master key
//!   opens nothing (the key check refuses it at open time).
//! * **Data key rotation** ([`KeyAdmin::start_rotation`], [`KeyAdmin::run_rotation`]) creates a new
//!   version of an organization's or a patient's key and re-encrypts the rows it covers in batches. The
//!   position (step and last row id) is stored in `key_rotations` in the same transaction as each
//!   batch, so an interrupted run continues where it stopped; reads and writes keep working throughout,
//!   because every version decrypts and new writes use the new one. An organization rotation also
//!   re-wraps its patients' keys and recomputes every blind index; lookups match the indexes of every
//!   live version meanwhile, so they keep finding every row.
//! * **Crypto-shredding** ([`KeyAdmin::shred_patient`]) destroys a patient's keys: every ciphertext of
//!   that patient, in every table and in every backup opened with the current key store, becomes
//!   unreadable, and reads return erased values instead of failing.
//!
//! One module per operation: `master` (the master key), `rotation` (data keys), `shred`
//! (crypto-shredding). The key hierarchy itself and the key store are `austa-crypto`'s.

mod master;
mod rotation;
mod shred;

use uuid::Uuid;

pub use master::MasterKeyRotation;
pub use rotation::{RotationStatus, RotationTarget, RunOptions};
pub use shred::{DocumentToDelete, ShredReceipt};

use crate::kernel::Event;
use crate::model::{AuditAction, RiskLevel};
use crate::scope::Scope;

/// Key operations of one organization, reached through [`Scope::keys`].
pub struct KeyAdmin<'s> {
    scope: &'s Scope,
}

impl Scope {
    /// Key rotation and crypto-shredding for this scope's organization (administrators and the
    /// platform; rotations may also be read by providers with a purpose, see the access matrix).
    pub fn keys(&self) -> KeyAdmin<'_> {
        KeyAdmin { scope: self }
    }
}

impl KeyAdmin<'_> {
    fn db(&self) -> &crate::db::Database {
        self.scope.db()
    }

    fn org(&self) -> Uuid {
        self.scope.organization_id()
    }
}

/// The `CONFIG_CHANGE` event of a key operation on an organization's or a patient's key.
pub(crate) fn key_event(target: rotation::RotationTarget, org: Uuid, what: &str) -> Event {
    let event = match target {
        rotation::RotationTarget::Organization => Event::on(AuditAction::ConfigChange, "organizations").entity(org),
        rotation::RotationTarget::Patient(p) => {
            Event::on(AuditAction::ConfigChange, "patients").entity(p).patient(Some(p))
        }
    };
    event.changed(["key"]).reason(what).risk_at_least(RiskLevel::High)
}

/// The actor as a label for the key store's records (who started a rotation, who shredded).
pub(crate) fn actor_label(scope: &Scope) -> String {
    let a = scope.actor();
    match (a.id(), a.name()) {
        (Some(id), _) => format!("{}:{id}", a.role().as_str()),
        (None, Some(name)) => format!("{}:{name}", a.role().as_str()),
        (None, None) => a.role().as_str().to_string(),
    }
}
