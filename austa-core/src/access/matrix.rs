//! The access matrix: one table, read by the library and printed in the manual (docs/access.md).

use crate::scope::{Actor, Role};

/// What is done to a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// get, list, lookups, reports.
    Read,
    /// create, append, record, start.
    Create,
    /// update, restore, state changes, attachments.
    Update,
    /// soft delete, crypto-shredding.
    Delete,
}

impl Action {
    /// Every action, in the matrix's column order.
    pub const ALL: [Action; 4] = [Action::Read, Action::Create, Action::Update, Action::Delete];

    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Read => "read",
            Action::Create => "create",
            Action::Update => "update",
            Action::Delete => "delete",
        }
    }

    fn index(self) -> usize {
        match self {
            Action::Read => 0,
            Action::Create => 1,
            Action::Update => 2,
            Action::Delete => 3,
        }
    }
}

/// What is accessed: one per model (join tables count as their parent), plus the key operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Resource {
    /// `organizations` (the scope's own).
    Organization,
    /// `patients`.
    Patient,
    /// `providers`.
    Provider,
    /// `conversations`.
    Conversation,
    /// `messages`.
    Message,
    /// `health_data`.
    HealthData,
    /// `missions`, `mission_prerequisites`.
    Mission,
    /// `onboarding_progress`.
    OnboardingProgress,
    /// `health_points`.
    HealthPoints,
    /// `point_transactions`.
    PointTransaction,
    /// `authorizations`, `authorization_attachments`.
    Authorization,
    /// `documents`.
    Document,
    /// `tasy_integrations`.
    TasyIntegration,
    /// `tasy_sync_logs`.
    TasySyncLog,
    /// `audit_logs`.
    AuditLog,
    /// Key rotation and crypto-shredding (`key_rotations`, the key store).
    Keys,
}

impl Resource {
    /// Every resource, in the matrix's row order.
    pub const ALL: [Resource; 16] = [
        Resource::Organization,
        Resource::Patient,
        Resource::Provider,
        Resource::Conversation,
        Resource::Message,
        Resource::HealthData,
        Resource::Mission,
        Resource::OnboardingProgress,
        Resource::HealthPoints,
        Resource::PointTransaction,
        Resource::Authorization,
        Resource::Document,
        Resource::TasyIntegration,
        Resource::TasySyncLog,
        Resource::AuditLog,
        Resource::Keys,
    ];

    /// Snake-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Resource::Organization => "organization",
            Resource::Patient => "patient",
            Resource::Provider => "provider",
            Resource::Conversation => "conversation",
            Resource::Message => "message",
            Resource::HealthData => "health_data",
            Resource::Mission => "mission",
            Resource::OnboardingProgress => "onboarding_progress",
            Resource::HealthPoints => "health_points",
            Resource::PointTransaction => "point_transaction",
            Resource::Authorization => "authorization",
            Resource::Document => "document",
            Resource::TasyIntegration => "tasy_integration",
            Resource::TasySyncLog => "tasy_sync_log",
            Resource::AuditLog => "audit_log",
            Resource::Keys => "keys",
        }
    }

    /// The resource a table belongs to.
    pub fn of_table(table: &str) -> Option<Resource> {
        Some(match table {
            "organizations" => Resource::Organization,
            "patients" => Resource::Patient,
            "providers" => Resource::Provider,
            "conversations" => Resource::Conversation,
            "messages" => Resource::Message,
            "health_data" => Resource::HealthData,
            "missions" | "mission_prerequisites" => Resource::Mission,
            "onboarding_progress" => Resource::OnboardingProgress,
            "health_points" => Resource::HealthPoints,
            "point_transactions" => Resource::PointTransaction,
            "authorizations" | "authorization_attachments" => Resource::Authorization,
            "documents" => Resource::Document,
            "tasy_integrations" => Resource::TasyIntegration,
            "tasy_sync_logs" | "tasy_outbox" => Resource::TasySyncLog,
            "audit_logs" => Resource::AuditLog,
            "key_rotations" => Resource::Keys,
            _ => return None,
        })
    }

    /// Whether rows carry an `access_level` (health data and documents).
    pub fn has_access_level(self) -> bool {
        matches!(self, Resource::HealthData | Resource::Document)
    }
}

/// What a cell of the matrix allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Refused with `permission_denied`.
    Deny,
    /// Every row of the organization.
    Allow,
    /// Only the actor's own records (a patient: their profile and rows with their `patient_id`; of
    /// health data and documents, those whose access level is not `SYSTEM_ADMIN`).
    OwnRecords,
    /// Rows whose access level admits providers (`PUBLIC`, `PROVIDER_PATIENT`, `ORGANIZATION`), plus
    /// the patient of an active emergency grant.
    ProviderVisible,
    /// Allowed only when the scope states a purpose (`RequestContext::purpose`).
    WithPurpose,
}

impl Rule {
    fn label(self) -> &'static str {
        match self {
            Rule::Deny => "-",
            Rule::Allow => "all",
            Rule::OwnRecords => "own",
            Rule::ProviderVisible => "by access level",
            Rule::WithPurpose => "with purpose",
        }
    }
}

/// The named integrations a SYSTEM actor can be (`Actor::system(name)`); any other name has no rights.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SystemIntegration {
    /// `platform`: operator tooling (migrations, seed, command line, tests): everything.
    Platform,
    /// `whatsapp-webhook`: patients, conversations and messages arriving from WhatsApp.
    WhatsappWebhook,
    /// `tasy-sync`: the ERP synchronization.
    TasySync,
    /// `ai-annotator`: AI results on messages and conversations.
    AiAnnotator,
}

impl SystemIntegration {
    /// The integration named `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "platform" => Self::Platform,
            "whatsapp-webhook" => Self::WhatsappWebhook,
            "tasy-sync" => Self::TasySync,
            "ai-annotator" => Self::AiAnnotator,
            _ => return None,
        })
    }

    /// Its name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Platform => "platform",
            Self::WhatsappWebhook => "whatsapp-webhook",
            Self::TasySync => "tasy-sync",
            Self::AiAnnotator => "ai-annotator",
        }
    }
}

/// A row of the matrix's subject column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Who {
    /// A patient.
    Patient,
    /// A provider.
    Provider,
    /// An organization administrator.
    Admin,
    /// A named integration.
    System(SystemIntegration),
}

impl Who {
    /// Every subject, in the order of docs/access.md.
    pub const ALL: [Who; 7] = [
        Who::Patient,
        Who::Provider,
        Who::Admin,
        Who::System(SystemIntegration::Platform),
        Who::System(SystemIntegration::WhatsappWebhook),
        Who::System(SystemIntegration::TasySync),
        Who::System(SystemIntegration::AiAnnotator),
    ];

    fn of(actor: &Actor) -> Option<Who> {
        Some(match actor.role() {
            Role::Patient => Who::Patient,
            Role::Provider => Who::Provider,
            Role::Admin => Who::Admin,
            Role::System => Who::System(SystemIntegration::from_name(actor.name()?)?),
        })
    }

    /// How docs/access.md names the subject.
    pub fn label(self) -> String {
        match self {
            Who::Patient => "PATIENT".into(),
            Who::Provider => "PROVIDER".into(),
            Who::Admin => "ADMIN".into(),
            Who::System(i) => format!("SYSTEM `{}`", i.name()),
        }
    }
}

use Resource as R;
use Rule::{Allow as A, Deny as D, OwnRecords as O, ProviderVisible as V, WithPurpose as P};

const PLATFORM: SystemIntegration = SystemIntegration::Platform;
const WEBHOOK: SystemIntegration = SystemIntegration::WhatsappWebhook;
const TASY: SystemIntegration = SystemIntegration::TasySync;
const AI: SystemIntegration = SystemIntegration::AiAnnotator;

/// The access matrix: (subject, resource, [read, create, update, delete]). A missing row denies
/// everything; SYSTEM `platform` is allowed everything (see `rule`).
pub const MATRIX: &[(Who, Resource, [Rule; 4])] = &[
    (Who::Patient, R::Organization, [A, D, D, D]),
    (Who::Patient, R::Patient, [O, D, O, D]),
    (Who::Patient, R::Conversation, [O, D, D, D]),
    (Who::Patient, R::Message, [O, D, D, D]),
    (Who::Patient, R::HealthData, [O, D, D, D]),
    (Who::Patient, R::Mission, [A, D, D, D]),
    (Who::Patient, R::OnboardingProgress, [O, D, D, D]),
    (Who::Patient, R::HealthPoints, [O, D, D, D]),
    (Who::Patient, R::PointTransaction, [O, D, D, D]),
    (Who::Patient, R::Authorization, [O, D, D, D]),
    (Who::Patient, R::Document, [O, D, D, D]),
    (Who::Patient, R::AuditLog, [O, A, D, D]),
    (Who::Provider, R::Organization, [A, D, D, D]),
    (Who::Provider, R::Patient, [A, A, A, D]),
    (Who::Provider, R::Provider, [A, D, D, D]),
    (Who::Provider, R::Conversation, [A, A, A, D]),
    (Who::Provider, R::Message, [A, A, A, D]),
    (Who::Provider, R::HealthData, [V, V, V, D]),
    (Who::Provider, R::Mission, [A, D, D, D]),
    (Who::Provider, R::OnboardingProgress, [A, D, D, D]),
    (Who::Provider, R::HealthPoints, [A, D, D, D]),
    (Who::Provider, R::PointTransaction, [A, D, D, D]),
    (Who::Provider, R::Authorization, [A, A, A, D]),
    (Who::Provider, R::Document, [V, V, V, D]),
    (Who::Provider, R::AuditLog, [P, A, D, D]),
    (Who::Admin, R::Organization, [A, D, A, D]),
    (Who::Admin, R::Patient, [A, A, A, A]),
    (Who::Admin, R::Provider, [A, A, A, A]),
    (Who::Admin, R::Conversation, [P, D, D, D]),
    (Who::Admin, R::Message, [P, D, D, D]),
    (Who::Admin, R::HealthData, [P, D, D, D]),
    (Who::Admin, R::Mission, [A, A, A, A]),
    (Who::Admin, R::OnboardingProgress, [A, A, A, D]),
    (Who::Admin, R::HealthPoints, [A, A, A, D]),
    (Who::Admin, R::PointTransaction, [A, A, D, D]),
    (Who::Admin, R::Authorization, [P, D, D, D]),
    (Who::Admin, R::Document, [P, D, D, D]),
    (Who::Admin, R::TasyIntegration, [A, A, A, A]),
    (Who::Admin, R::TasySyncLog, [A, A, A, D]),
    (Who::Admin, R::AuditLog, [A, A, D, D]),
    (Who::Admin, R::Keys, [A, A, A, A]),
    (Who::System(WEBHOOK), R::Organization, [A, D, D, D]),
    (Who::System(WEBHOOK), R::Patient, [A, A, A, D]),
    (Who::System(WEBHOOK), R::Conversation, [A, A, A, D]),
    (Who::System(WEBHOOK), R::Message, [A, A, A, D]),
    (Who::System(WEBHOOK), R::AuditLog, [D, A, D, D]),
    (Who::System(TASY), R::Organization, [A, D, D, D]),
    (Who::System(TASY), R::Patient, [A, D, D, D]),
    (Who::System(TASY), R::HealthData, [A, A, A, D]),
    (Who::System(TASY), R::Authorization, [A, A, A, D]),
    (Who::System(TASY), R::Document, [A, A, D, D]),
    (Who::System(TASY), R::TasyIntegration, [A, D, A, D]),
    (Who::System(TASY), R::TasySyncLog, [A, A, A, D]),
    (Who::System(TASY), R::AuditLog, [D, A, D, D]),
    (Who::System(AI), R::Organization, [A, D, D, D]),
    (Who::System(AI), R::Conversation, [A, D, A, D]),
    (Who::System(AI), R::Message, [A, D, A, D]),
    (Who::System(AI), R::HealthData, [D, A, D, D]),
    (Who::System(AI), R::AuditLog, [D, A, D, D]),
];

/// The rule for `actor` doing `action` on `resource`.
pub(crate) fn rule(actor: &Actor, resource: Resource, action: Action) -> Rule {
    match Who::of(actor) {
        None => Rule::Deny,
        Some(Who::System(PLATFORM)) => Rule::Allow,
        Some(who) => MATRIX
            .iter()
            .find(|(w, r, _)| *w == who && *r == resource)
            .map(|(_, _, rules)| rules[action.index()])
            .unwrap_or(Rule::Deny),
    }
}

/// The matrix as the Markdown table docs/access.md carries: one row per subject and resource with any right.
pub fn markdown_matrix() -> String {
    let mut out = String::from("| subject | resource | read | create | update | delete |\n|---|---|---|---|---|---|\n");
    out.push_str("| SYSTEM `platform` | everything | all | all | all | all |\n");
    for (who, resource, rules) in MATRIX {
        let cells: Vec<&str> = rules.iter().map(|r| r.label()).collect();
        out.push_str(&format!("| {} | {} | {} |\n", who.label(), resource.as_str(), cells.join(" | ")));
    }
    out
}
