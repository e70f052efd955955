//! The data classification: which columns are encrypted, and which of those have a blind index.
//!
//! Every column of the schema is one of three classes:
//! * **identifier**: encrypted, plus a `<column>_bidx` blind index used for equality lookups and
//!   per-organization uniqueness;
//! * **sensitive**: encrypted, never searchable;
//! * **operational**: plain (ids, enums, timestamps, counters, flags, organization-level content),
//!   because the platform must filter, sort or aggregate on it and it identifies nobody by itself.
//!
//! The classification is not written here: it is read from each model's declaration
//! (`#[derive(Record)]`, see [`record`](crate::record)), whose field types and attributes say how each
//! column is stored, plus the one table that is no model ([`EXTRA_COLUMNS`]). [`ENCRYPTED_COLUMNS`]
//! lists the first two classes; every other column is operational. The classification table of
//! docs/schema.md is generated from it ([`markdown_table`]), and a test checks both that page and the
//! live schema of both backends against it, so they cannot drift apart. Key rotation and crypto-shredding are driven
//! by it too: [`table_owner`] says whose key encrypts a table's columns.

use std::sync::LazyLock;

use crate::model::{
    AuditLog, Authorization, Conversation, Document, HealthData, HealthPoints, Message, Mission, OnboardingProgress,
    Organization, Patient, PointTransaction, Provider, TasyIntegration, TasySyncLog,
};
use crate::record::{ColumnClass, ColumnDef, Record};
use austa_crypto::BlindIndexKind;

/// Class of an encrypted column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Encrypted and blind-indexed (lookups and uniqueness by organization) under this kind's
    /// normalization.
    Identifier(BlindIndexKind),
    /// Encrypted only.
    Sensitive,
}

/// Whose key encrypts a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyOwner {
    /// The organization's key: organization-level secrets and staff data.
    Organization,
    /// The key of the patient the row belongs to (found in the named column), so that destroying that
    /// one key erases the patient everywhere.
    Patient {
        /// The column holding the patient's id (`id` on `patients`, `patient_id` elsewhere).
        column: &'static str,
    },
}

/// One encrypted column: table, column, class, and what it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncryptedColumn {
    /// Table name.
    pub table: &'static str,
    /// Column name.
    pub column: &'static str,
    /// Identifier or sensitive.
    pub class: Class,
    /// What the column holds, for the classification table of docs/schema.md.
    pub holds: &'static str,
}

impl EncryptedColumn {
    /// Whose key encrypts this column.
    pub fn owner(&self) -> KeyOwner {
        table_owner(self.table)
    }

    /// The blind index kind of an identifier column.
    pub fn blind_index(&self) -> Option<BlindIndexKind> {
        match self.class {
            Class::Sensitive => None,
            Class::Identifier(kind) => Some(kind),
        }
    }
}

/// One stored table: its name, its columns and whose key encrypts them.
#[derive(Debug, Clone, Copy)]
pub struct TableDef {
    /// The table.
    pub table: &'static str,
    /// Its columns (of a model: from its declaration).
    pub columns: &'static [ColumnDef],
    /// Whose key encrypts its sensitive columns.
    pub owner: KeyOwner,
}

const fn model<M: Record>() -> TableDef {
    TableDef { table: M::TABLE, columns: M::COLUMNS, owner: M::KEY_OWNER }
}

/// The stored tables with encrypted columns, in schema order: every model's, from its declaration,
/// and the table that is no model.
pub const TABLES: &[TableDef] = &[
    model::<Organization>(),
    model::<Patient>(),
    model::<Provider>(),
    model::<Conversation>(),
    model::<Message>(),
    model::<HealthData>(),
    model::<Document>(),
    model::<Authorization>(),
    TableDef {
        table: "authorization_transitions",
        columns: EXTRA_COLUMNS,
        owner: KeyOwner::Patient { column: "patient_id" },
    },
    model::<Mission>(),
    model::<OnboardingProgress>(),
    model::<HealthPoints>(),
    model::<PointTransaction>(),
    model::<TasyIntegration>(),
    model::<TasySyncLog>(),
    model::<AuditLog>(),
];

/// The encrypted columns of `authorization_transitions`, a history table without a model of its own.
pub const EXTRA_COLUMNS: &[ColumnDef] = &[ColumnDef {
    name: "reason",
    field: "reason",
    class: ColumnClass::Sensitive,
    nullable: true,
    holds: "Denial or cancellation reason",
}];

/// Whose key encrypts the sensitive columns of `table`.
pub fn table_owner(table: &str) -> KeyOwner {
    TABLES.iter().find(|t| t.table == table).map_or(KeyOwner::Organization, |t| t.owner)
}

/// The encrypted columns of one table.
pub fn columns_of(table: &str) -> impl Iterator<Item = &'static EncryptedColumn> + '_ {
    ENCRYPTED_COLUMNS.iter().filter(move |c| c.table == table)
}

/// The tables that have encrypted columns, in schema order.
pub fn encrypted_tables() -> Vec<&'static str> {
    let mut tables: Vec<&'static str> = Vec::new();
    for c in ENCRYPTED_COLUMNS.iter() {
        if !tables.contains(&c.table) {
            tables.push(c.table);
        }
    }
    tables
}

/// Every encrypted column of the schema, read from [`TABLES`].
pub static ENCRYPTED_COLUMNS: LazyLock<Vec<EncryptedColumn>> = LazyLock::new(|| {
    TABLES
        .iter()
        .flat_map(|t| {
            t.columns.iter().filter_map(move |c| {
                let class = match c.class {
                    ColumnClass::Operational => return None,
                    ColumnClass::Sensitive => Class::Sensitive,
                    ColumnClass::Identifier(kind) => Class::Identifier(kind),
                };
                Some(EncryptedColumn { table: t.table, column: c.name, class, holds: c.holds })
            })
        })
        .collect()
});

/// The classification as the Markdown table docs/schema.md carries.
pub fn markdown_table() -> String {
    let mut out = String::from("| table | column | class | key | holds |\n|---|---|---|---|---|\n");
    for c in ENCRYPTED_COLUMNS.iter() {
        let class = match c.class {
            Class::Identifier(_) => format!("identifier (blind index `{}_bidx`)", c.column),
            Class::Sensitive => "sensitive".to_string(),
        };
        let key = match c.owner() {
            KeyOwner::Organization => "organization",
            KeyOwner::Patient { .. } => "patient",
        };
        out.push_str(&format!("| {} | {} | {} | {} | {} |\n", c.table, c.column, class, key, c.holds));
    }
    out
}
