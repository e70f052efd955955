//! `point_transactions.*`: the points ledger, append-only.

use austa_core::model::{NewPointTransaction, PointTransaction};
use austa_core::repo::Page;
use austa_core::{Result, Scope};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{page, ScopeOperation};

table_ops!("point_transactions", PointTransaction, (), (): get, list);

/// Records an earning or an adjustment, updating the patient's totals in the same transaction.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    /// The transaction.
    pub data: NewPointTransaction,
}

impl ScopeOperation for Record {
    const NAME: &'static str = "point_transactions.record";
    type Output = PointTransaction;
    async fn run(self, scope: &Scope) -> Result<PointTransaction> {
        scope.point_transactions().record(self.data).await
    }
}

/// Spends points; more than the available points is a `validation` error on `amount`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spend {
    /// The patient.
    pub patient_id: Uuid,
    /// Points to spend.
    pub amount: i64,
    /// What for.
    pub reason: String,
}

impl ScopeOperation for Spend {
    const NAME: &'static str = "point_transactions.spend";
    type Output = PointTransaction;
    async fn run(self, scope: &Scope) -> Result<PointTransaction> {
        scope.point_transactions().spend(self.patient_id, self.amount, &self.reason).await
    }
}

/// The patient's ledger.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForPatient {
    /// The patient.
    pub patient_id: Uuid,
    /// Rows per page.
    pub limit: Option<u32>,
    /// The previous page's `next` cursor.
    pub after: Option<String>,
}

impl ScopeOperation for ForPatient {
    const NAME: &'static str = "point_transactions.for_patient";
    type Output = Page<PointTransaction>;
    async fn run(self, scope: &Scope) -> Result<Page<PointTransaction>> {
        scope.point_transactions().for_patient(self.patient_id, page(self.limit, self.after)?).await
    }
}

/// The sums of a patient's ledger; the available points are their difference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Balance {
    /// Points earned: every amount but the spent ones (earnings net of penalties, expirations and
    /// adjustments).
    pub total: i64,
    /// Points spent.
    pub spent: i64,
}

/// The sums of the patient's ledger, recomputed from the transactions.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LedgerBalance {
    /// The patient.
    pub patient_id: Uuid,
}

impl ScopeOperation for LedgerBalance {
    const NAME: &'static str = "point_transactions.ledger_balance";
    type Output = Balance;
    async fn run(self, scope: &Scope) -> Result<Balance> {
        let (total, spent) = scope.point_transactions().ledger_balance(self.patient_id).await?;
        Ok(Balance { total, spent })
    }
}
