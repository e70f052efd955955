//! The command line, declared with clap. Every option that has an environment variable reads it, and
//! the flag wins over the variable.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use uuid::Uuid;

/// Operate an Austa database: migrations, seed, reset, backup and restore, validation, audit and keys.
///
/// Exit codes: 0 success; 1 something was found (drift, a finding, a broken audit chain, a restore
/// that did not verify); 2 bad usage; 3 refused as unsafe (nothing changed); 4 configuration error;
/// 5 any other failure.
#[derive(Parser)]
#[command(name = "austa", version, about, long_about)]
pub struct Cli {
    /// The database (`sqlite://file.db`, `postgres://user@host/db`).
    #[arg(long, env = "DATABASE_URL", default_value = austa_core::db::DEFAULT_DATABASE_URL, global = true, hide_env_values = true)]
    pub database_url: String,

    /// A key store kept in a database of its own (default: the data database).
    #[arg(long, env = "AUSTA_KEYSTORE_URL", global = true, hide_env_values = true)]
    pub keystore_url: Option<String>,

    /// A file holding the base64 master key (mode 0600); overrides AUSTA_MASTER_KEY and
    /// AUSTA_MASTER_KEY_FILE.
    #[arg(long, global = true)]
    pub master_key_file: Option<PathBuf>,

    /// Print one machine-readable JSON document on stdout instead of text.
    #[arg(long, global = true)]
    pub json: bool,

    #[command(subcommand)]
    pub command: Command,
}

/// Debug output masks the passwords the URLs may carry (a `Cli` may end up in a log or a panic).
impl std::fmt::Debug for Cli {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use austa_core::db::redact_password;
        f.debug_struct("Cli")
            .field("database_url", &redact_password(&self.database_url))
            .field("keystore_url", &self.keystore_url.as_deref().map(redact_password))
            .field("master_key_file", &self.master_key_file)
            .field("json", &self.json)
            .field("command", &self.command)
            .finish()
    }
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Apply pending migrations (safe to run from several processes at once).
    Migrate,
    /// List applied, pending and changed migrations; exit 1 on drift.
    Status {
        /// Compare with the data migrations in this directory instead of the built-in ones.
        #[arg(long)]
        migrations: Option<PathBuf>,
    },
    /// Load the development seed (idempotent).
    Seed,
    /// Drop and recreate a development database, then seed it once.
    Reset {
        /// Allow a database that does not look like a development one; its name is asked for.
        #[arg(long)]
        allow_non_development: bool,
    },
    /// Write a compressed backup of every table (ciphertexts stay encrypted).
    Backup {
        /// The backup file to create.
        file: PathBuf,
        /// Also back up the key store (wrapped keys) into this separate file.
        #[arg(long)]
        keys: Option<PathBuf>,
    },
    /// Load a backup into an empty database of either backend, then verify it.
    Restore {
        /// The backup file.
        file: PathBuf,
        /// The key backup to load into the key store.
        #[arg(long)]
        keys: Option<PathBuf>,
    },
    /// Check schema, foreign keys, invariants, ciphertext keys and audit chains; exit 1 on findings.
    Validate,
    /// Audit trail operations.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Key operations.
    #[command(subcommand)]
    Keys(KeysCommand),
}

/// Which organizations an audit command covers.
#[derive(Debug, Args)]
pub struct Organization {
    /// One organization (default: every organization).
    #[arg(long)]
    pub organization: Option<Uuid>,
}

/// A time window; dates are RFC 3339 (`2026-11-01T00:00:00Z`) or plain days (`2026-11-01`, UTC).
#[derive(Debug, Args)]
pub struct Window {
    /// From this time (inclusive; default: the beginning).
    #[arg(long)]
    pub from: Option<String>,
    /// Until this time (exclusive; default: now).
    #[arg(long)]
    pub to: Option<String>,
}

/// `austa audit ...`
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Verify audit chains; exit 1 when one is broken.
    Verify {
        #[command(flatten)]
        organization: Organization,
        /// A signed checkpoint (needs --organization): the log must still extend it, else it was cut,
        /// rolled back to an older copy or rewritten. Verified with AUSTA_AUDIT_VERIFIER_KEY, or the
        /// signing key's public half.
        #[arg(long, requires = "organization")]
        against: Option<PathBuf>,
    },
    /// Who accessed a patient's data.
    Report {
        /// The patient.
        #[arg(long)]
        patient: Uuid,
        /// The patient's organization (found from the patient when omitted).
        #[arg(long)]
        organization: Option<Uuid>,
        #[command(flatten)]
        window: Window,
    },
    /// Export events as FHIR R4 AuditEvent resources, one JSON object per line.
    Export {
        #[command(flatten)]
        organization: Organization,
        #[command(flatten)]
        window: Window,
        /// Write to this file instead of stdout.
        #[arg(long)]
        output: Option<PathBuf>,
    },
    /// Verify an organization's chain and sign a checkpoint of it (size, Merkle root, time) with the
    /// key of AUSTA_AUDIT_SIGNING_KEY or AUSTA_AUDIT_SIGNING_KEY_FILE; exit 1 when the chain is broken.
    Checkpoint {
        /// The organization.
        #[arg(long)]
        organization: Uuid,
        /// Write the checkpoint to this file instead of stdout.
        #[arg(long)]
        output: Option<PathBuf>,
        /// An earlier checkpoint: the log must still extend it, and the consistency proof from it to
        /// the new checkpoint is written beside the new one (`--proof-output`, or the JSON report).
        #[arg(long)]
        since: Option<PathBuf>,
        /// Where to write the consistency proof (JSON) when `--since` is given.
        #[arg(long, requires = "since")]
        proof_output: Option<PathBuf>,
    },
    /// The proof (JSON) that one event is in the log's Merkle tree, for a checkpoint of that size.
    Prove {
        /// The organization.
        #[arg(long)]
        organization: Uuid,
        /// The event.
        #[arg(long)]
        event: Uuid,
        /// The tree size (a checkpoint's; default: the whole log).
        #[arg(long)]
        tree_size: Option<u64>,
    },
    /// Without the database: check that NEW extends OLD by PROOF, both signed by the verifier key
    /// (AUSTA_AUDIT_VERIFIER_KEY, or the signing key's public half); exit 1 when it does not.
    Witness {
        /// The checkpoint kept so far.
        #[arg(long)]
        old: PathBuf,
        /// The newer checkpoint.
        #[arg(long)]
        new: PathBuf,
        /// The consistency proof from OLD to NEW (what `checkpoint --since` wrote).
        #[arg(long)]
        proof: PathBuf,
    },
    /// Create a checkpoint signing key file (mode 0600) and print its verifier key.
    Keygen {
        /// The key file to create (refused if it exists).
        #[arg(long)]
        output: PathBuf,
        /// The key's name in signatures (default: AUSTA_AUDIT_SIGNER_NAME, else austa-audit).
        #[arg(long)]
        name: Option<String>,
    },
}

/// `austa keys ...`
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Key versions, patient keys, shredded patients and unfinished rotations per organization.
    Status,
    /// Re-wrap every organization key under a new master key.
    RotateMaster {
        /// A file holding the new base64 master key (mode 0600); or set AUSTA_NEW_MASTER_KEY.
        #[arg(long)]
        new_key_file: Option<PathBuf>,
    },
    /// Rotate an organization's data key and re-encrypt its rows; resumes an interrupted rotation.
    Rotate {
        /// The organization.
        #[arg(long)]
        organization: Uuid,
        /// Rows per transaction.
        #[arg(long, default_value_t = 500)]
        batch_size: u32,
        /// Stop after this many batches (run the command again to resume).
        #[arg(long)]
        max_batches: Option<u32>,
    },
    /// Crypto-shred a patient: destroy their keys (irreversible; asks for the patient id back).
    Shred {
        /// The patient.
        #[arg(long)]
        patient: Uuid,
        /// The patient's organization (found from the patient when omitted).
        #[arg(long)]
        organization: Option<Uuid>,
        /// Why (e.g. the LGPD erasure request's id); kept in the audit trail.
        #[arg(long)]
        reason: String,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::Cli;

    #[test]
    fn debug_output_masks_the_passwords_of_both_urls() {
        let cli = Cli::try_parse_from([
            "austa",
            "--database-url",
            "postgres://app:s3cr3t@db.hospital.example/austa",
            "--keystore-url",
            "postgres://db.hospital.example/keys?user=k&password=k3y",
            "migrate",
        ])
        .unwrap();
        let shown = format!("{cli:?}");
        assert!(!shown.contains("s3cr3t") && !shown.contains("k3y"), "{shown}");
        assert!(shown.contains("postgres://app:***@db.hospital.example/austa"), "{shown}");
    }
}
