//! Who is asking: the [`Role`] of an actor in the access matrix and the [`Actor`] itself.
//!
//! An actor is what a request claims to be; the domain's scope checks a provider or patient actor
//! against its organization before it gets any rights.

use uuid::Uuid;

/// The kind of actor behind a request; also its role in the access matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Role {
    /// A patient acting on their own record.
    Patient,
    /// A healthcare provider of the organization.
    Provider,
    /// An organization administrator.
    Admin,
    /// A named integration (WhatsApp webhook, Tasy sync, AI annotator).
    System,
}

impl Role {
    /// The stored name (`PATIENT`, `PROVIDER`, `ADMIN`, `SYSTEM`).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Patient => "PATIENT",
            Role::Provider => "PROVIDER",
            Role::Admin => "ADMIN",
            Role::System => "SYSTEM",
        }
    }
}

/// The actor behind a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    role: Role,
    id: Option<Uuid>,
    name: Option<String>,
}

impl Actor {
    /// A patient (their patient id).
    pub fn patient(id: Uuid) -> Self {
        Self { role: Role::Patient, id: Some(id), name: None }
    }

    /// A provider (their provider id).
    pub fn provider(id: Uuid) -> Self {
        Self { role: Role::Provider, id: Some(id), name: None }
    }

    /// An administrator (an id from the caller's identity system, if any).
    pub fn admin(id: Option<Uuid>) -> Self {
        Self { role: Role::Admin, id, name: None }
    }

    /// A named integration: `whatsapp-webhook`, `tasy-sync`, `ai-annotator` or `platform` (see
    /// `SystemIntegration` in the access matrix); any other name has no rights.
    pub fn system(name: impl Into<String>) -> Self {
        Self { role: Role::System, id: None, name: Some(name.into()) }
    }

    /// Operator tooling (migrations, seed, the command line): the `platform` integration, allowed
    /// everything.
    pub fn platform() -> Self {
        Self::system("platform")
    }

    /// The actor's role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The actor's id, if it has one.
    pub fn id(&self) -> Option<Uuid> {
        self.id
    }

    /// The integration name of a system actor.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
}

impl crate::record::Column for Role {
    fn to_value(&self) -> austa_sql::Value {
        austa_sql::Value::Text(Some(self.as_str().to_string()))
    }

    fn null() -> austa_sql::Value {
        austa_sql::Value::Text(None)
    }

    fn read(row: &austa_sql::Row, column: &str) -> austa_error::Result<Option<Self>> {
        row.opt_text(column)?
            .map(|s| match s.as_str() {
                "PATIENT" => Ok(Role::Patient),
                "PROVIDER" => Ok(Role::Provider),
                "ADMIN" => Ok(Role::Admin),
                "SYSTEM" => Ok(Role::System),
                _ => Err(austa_error::Error::CorruptData(format!("column {column}: unknown role"))),
            })
            .transpose()
    }
}
