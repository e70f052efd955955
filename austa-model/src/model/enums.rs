//! The reference's 32 enums, plus the few this project adds ([`SenderKind`], [`EntityType`]).
//!
//! Each is stored as TEXT holding the SCREAMING_SNAKE_CASE name, with a CHECK constraint listing the
//! allowed values on both backends, and serialized by serde under the same name.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The value was not one of the enum's names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownVariant {
    /// The enum's name.
    pub enum_name: &'static str,
}

impl fmt::Display for UnknownVariant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "not a {} value", self.enum_name)
    }
}

impl std::error::Error for UnknownVariant {}

macro_rules! db_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vmeta])* #[doc = concat!("`", $text, "`")] #[serde(rename = $text)] $variant),+
        }

        impl $name {
            /// Every value, in the reference's order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stored name.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl $crate::record::Column for $name {
            fn to_value(&self) -> austa_sql::Value {
                austa_sql::Value::Text(Some(self.as_str().to_string()))
            }
            fn null() -> austa_sql::Value {
                austa_sql::Value::Text(None)
            }
            fn read(row: &austa_sql::Row, column: &str) -> austa_error::Result<Option<Self>> {
                row.opt_text(column)?
                    .map(|s| {
                        s.parse()
                            .map_err(|_| austa_error::Error::CorruptData(format!("column {column}: unknown enum value")))
                    })
                    .transpose()
            }
        }

        impl FromStr for $name {
            type Err = UnknownVariant;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err(UnknownVariant { enum_name: stringify!($name) }),
                }
            }
        }
    };
}

db_enum!(
    /// Kind of healthcare organization.
    OrganizationType { Hospital = "HOSPITAL", Clinic = "CLINIC", HealthCenter = "HEALTH_CENTER", Laboratory = "LABORATORY", Pharmacy = "PHARMACY", Insurance = "INSURANCE", Government = "GOVERNMENT" }
);
db_enum!(
    /// A patient's gender (stored encrypted).
    Gender { Male = "MALE", Female = "FEMALE", Other = "OTHER", PreferNotToSay = "PREFER_NOT_TO_SAY" }
);
db_enum!(
    /// A provider's role in the organization.
    ProviderRole { Doctor = "DOCTOR", Nurse = "NURSE", Pharmacist = "PHARMACIST", Technician = "TECHNICIAN", Administrator = "ADMINISTRATOR", Coordinator = "COORDINATOR", Support = "SUPPORT" }
);
db_enum!(
    /// Lifecycle of a conversation.
    ConversationStatus { Active = "ACTIVE", Paused = "PAUSED", Completed = "COMPLETED", Escalated = "ESCALATED", Archived = "ARCHIVED" }
);
db_enum!(
    /// What a conversation is about.
    ConversationType { Support = "SUPPORT", Onboarding = "ONBOARDING", HealthCheck = "HEALTH_CHECK", MedicationReminder = "MEDICATION_REMINDER", Appointment = "APPOINTMENT", Emergency = "EMERGENCY", Survey = "SURVEY" }
);
db_enum!(
    /// Priority of a conversation or authorization.
    Priority { Low = "LOW", Normal = "NORMAL", High = "HIGH", Urgent = "URGENT", Critical = "CRITICAL" }
);
db_enum!(
    /// Inbound (from the patient) or outbound (to the patient).
    MessageDirection { Inbound = "INBOUND", Outbound = "OUTBOUND" }
);
db_enum!(
    /// WhatsApp message type.
    MessageType { Text = "TEXT", Audio = "AUDIO", Image = "IMAGE", Video = "VIDEO", Document = "DOCUMENT", Location = "LOCATION", Contact = "CONTACT", Sticker = "STICKER", Interactive = "INTERACTIVE", Template = "TEMPLATE" }
);
db_enum!(
    /// Clinical urgency of a message or authorization.
    UrgencyLevel { Low = "LOW", Medium = "MEDIUM", High = "HIGH", Emergency = "EMERGENCY" }
);
db_enum!(
    /// Delivery status of a message.
    MessageStatus { Sent = "SENT", Delivered = "DELIVERED", Read = "READ", Failed = "FAILED", Pending = "PENDING" }
);
db_enum!(
    /// Kind of health record.
    HealthDataType { Condition = "CONDITION", Medication = "MEDICATION", Allergy = "ALLERGY", Symptom = "SYMPTOM", VitalSign = "VITAL_SIGN", LabResult = "LAB_RESULT", Procedure = "PROCEDURE", Immunization = "IMMUNIZATION", FamilyHistory = "FAMILY_HISTORY" }
);
db_enum!(
    /// Clinical area of a health record.
    HealthCategory { General = "GENERAL", Cardiology = "CARDIOLOGY", Diabetes = "DIABETES", Hypertension = "HYPERTENSION", Respiratory = "RESPIRATORY", MentalHealth = "MENTAL_HEALTH", Oncology = "ONCOLOGY", Pediatrics = "PEDIATRICS", Geriatrics = "GERIATRICS", WomenHealth = "WOMEN_HEALTH", Orthopedics = "ORTHOPEDICS", Dermatology = "DERMATOLOGY", Ophthalmology = "OPHTHALMOLOGY", Neurology = "NEUROLOGY" }
);
db_enum!(
    /// Where a health record came from.
    DataSource { UserReported = "USER_REPORTED", ProviderEntered = "PROVIDER_ENTERED", DeviceMeasured = "DEVICE_MEASURED", LabResult = "LAB_RESULT", TasySync = "TASY_SYNC", DocumentOcr = "DOCUMENT_OCR", AiExtracted = "AI_EXTRACTED" }
);
db_enum!(
    /// How far a health record can be trusted.
    ReliabilityLevel { Low = "LOW", Medium = "MEDIUM", High = "HIGH", Verified = "VERIFIED" }
);
db_enum!(
    /// Data classification of a health record or document.
    SensitivityLevel { Public = "PUBLIC", Normal = "NORMAL", Sensitive = "SENSITIVE", HighlySensitive = "HIGHLY_SENSITIVE", Confidential = "CONFIDENTIAL" }
);
db_enum!(
    /// Who may see a health record or document.
    AccessLevel { Public = "PUBLIC", PatientOnly = "PATIENT_ONLY", ProviderPatient = "PROVIDER_PATIENT", Organization = "ORGANIZATION", SystemAdmin = "SYSTEM_ADMIN" }
);
db_enum!(
    /// Kind of gamification mission.
    MissionCategory { Onboarding = "ONBOARDING", HealthEducation = "HEALTH_EDUCATION", MedicationAdherence = "MEDICATION_ADHERENCE", Lifestyle = "LIFESTYLE", PreventiveCare = "PREVENTIVE_CARE", Engagement = "ENGAGEMENT", Survey = "SURVEY", Assessment = "ASSESSMENT" }
);
db_enum!(
    /// Difficulty of a mission.
    DifficultyLevel { Easy = "EASY", Medium = "MEDIUM", Hard = "HARD", Expert = "EXPERT" }
);
db_enum!(
    /// A patient's progress on a mission.
    ProgressStatus { NotStarted = "NOT_STARTED", InProgress = "IN_PROGRESS", Completed = "COMPLETED", Skipped = "SKIPPED", Failed = "FAILED" }
);
db_enum!(
    /// Kind of point movement.
    TransactionType { Earned = "EARNED", Spent = "SPENT", Bonus = "BONUS", Penalty = "PENALTY", Adjustment = "ADJUSTMENT", Expired = "EXPIRED" }
);
db_enum!(
    /// What a point movement came from.
    SourceType { Mission = "MISSION", Engagement = "ENGAGEMENT", Achievement = "ACHIEVEMENT", Purchase = "PURCHASE", Bonus = "BONUS", Referral = "REFERRAL", Survey = "SURVEY", AdminAdjustment = "ADMIN_ADJUSTMENT" }
);
db_enum!(
    /// What an authorization is for.
    AuthorizationType { Procedure = "PROCEDURE", Medication = "MEDICATION", Diagnostic = "DIAGNOSTIC", Referral = "REFERRAL", Hospitalization = "HOSPITALIZATION", Surgery = "SURGERY", Therapy = "THERAPY", Equipment = "EQUIPMENT" }
);
db_enum!(
    /// State of an authorization.
    AuthorizationStatus { Pending = "PENDING", UnderReview = "UNDER_REVIEW", Approved = "APPROVED", Denied = "DENIED", Expired = "EXPIRED", Cancelled = "CANCELLED" }
);
db_enum!(
    /// Kind of document.
    DocumentType { MedicalRecord = "MEDICAL_RECORD", LabResult = "LAB_RESULT", Prescription = "PRESCRIPTION", InsuranceCard = "INSURANCE_CARD", IdDocument = "ID_DOCUMENT", ConsentForm = "CONSENT_FORM", DischargeSummary = "DISCHARGE_SUMMARY", ImagingResult = "IMAGING_RESULT", VaccinationRecord = "VACCINATION_RECORD", Other = "OTHER" }
);
db_enum!(
    /// Area a document belongs to.
    DocumentCategory { Identification = "IDENTIFICATION", Medical = "MEDICAL", Insurance = "INSURANCE", Legal = "LEGAL", Administrative = "ADMINISTRATIVE", Clinical = "CLINICAL", Laboratory = "LABORATORY", Imaging = "IMAGING" }
);
db_enum!(
    /// Where a document's bytes are stored.
    StorageProvider { Local = "LOCAL", AwsS3 = "AWS_S3", GoogleCloud = "GOOGLE_CLOUD", AzureBlob = "AZURE_BLOB" }
);
db_enum!(
    /// State of a Tasy integration.
    IntegrationStatus { Active = "ACTIVE", Inactive = "INACTIVE", Error = "ERROR", Suspended = "SUSPENDED", Maintenance = "MAINTENANCE" }
);
db_enum!(
    /// Kind of Tasy sync run.
    SyncType { Full = "FULL", Incremental = "INCREMENTAL", Differential = "DIFFERENTIAL", RealTime = "REAL_TIME" }
);
db_enum!(
    /// Direction of a Tasy sync run.
    SyncDirection { Import = "IMPORT", Export = "EXPORT", Bidirectional = "BIDIRECTIONAL" }
);
db_enum!(
    /// State of a Tasy sync run.
    SyncStatus { Pending = "PENDING", Running = "RUNNING", Completed = "COMPLETED", Failed = "FAILED", Cancelled = "CANCELLED" }
);
db_enum!(
    /// What an audit event records.
    AuditAction { Create = "CREATE", Read = "READ", Update = "UPDATE", Delete = "DELETE", Login = "LOGIN", Logout = "LOGOUT", AccessDenied = "ACCESS_DENIED", Export = "EXPORT", Import = "IMPORT", Sync = "SYNC", Backup = "BACKUP", Restore = "RESTORE", PermissionChange = "PERMISSION_CHANGE", ConfigChange = "CONFIG_CHANGE", EmergencyAccess = "EMERGENCY_ACCESS" }
);
db_enum!(
    /// Risk of an audited operation.
    RiskLevel { Low = "LOW", Medium = "MEDIUM", High = "HIGH", Critical = "CRITICAL" }
);
db_enum!(
    /// How an audited operation ended: it did its work, it found nothing to work on (a probe for a
    /// row that is absent or out of the actor's reach), or the access matrix refused it.
    AuditOutcome { Success = "SUCCESS", NotFound = "NOT_FOUND", Denied = "DENIED" }
);
db_enum!(
    /// How sensitive the data an audit event is about is, derived from the data classification:
    /// operational (no personal data), personal (identifies people), health (sensitive personal data,
    /// LGPD Art. 5 II), secret (credentials).
    Sensitivity { Operational = "OPERATIONAL", Personal = "PERSONAL", Health = "HEALTH", Secret = "SECRET" }
);
db_enum!(
    /// Who wrote a message (the original had no sender column: bot messages carried the patient's id).
    SenderKind { Patient = "PATIENT", Bot = "BOT", Provider = "PROVIDER", System = "SYSTEM" }
);
db_enum!(
    /// The entity an audit event is about: the typed half of `(entity_type, entity_id)`.
    EntityType { Organization = "ORGANIZATION", Patient = "PATIENT", Provider = "PROVIDER", Conversation = "CONVERSATION", Message = "MESSAGE", HealthData = "HEALTH_DATA", Mission = "MISSION", OnboardingProgress = "ONBOARDING_PROGRESS", HealthPoints = "HEALTH_POINTS", PointTransaction = "POINT_TRANSACTION", Authorization = "AUTHORIZATION", Document = "DOCUMENT", TasyIntegration = "TASY_INTEGRATION", TasySyncLog = "TASY_SYNC_LOG", AuditLog = "AUDIT_LOG" }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_names() {
        for v in HealthCategory::ALL {
            assert_eq!(v.as_str().parse::<HealthCategory>().unwrap(), *v);
            assert_eq!(serde_json::to_value(v).unwrap(), serde_json::json!(v.as_str()));
        }
        assert_eq!(AuditAction::ALL.len(), 15);
        assert!("nope".parse::<Gender>().is_err());
    }
}
