//! The two baselines, written with sqlx in this crate, that the library is measured against:
//!
//! * **plaintext**: the same rows and transaction boundaries, values in the clear, ordinary indexes,
//!   no audit: the floor that security costs against;
//! * **hand-secured**: the same rows with the same protections written by hand: AES-256-GCM fields
//!   with associated data, HMAC blind indexes for the phone, the WhatsApp id, the chat and the message
//!   id, and one chained audit event per operation in the operation's transaction (PostgreSQL: the
//!   head row locked and the event and head written by one statement).
//!
//! Both share every statement (see [`schema`]); [`Mode`] decides only how a field and a lookup key are
//! encoded and whether the audit event is written. SQL is written once and run on either pool through
//! the `with_pool!` macro, which expands the same code for each concrete backend.

pub mod crypto;
mod schema;

use std::time::{SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Utc};
use futures_util::TryStreamExt;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, Row as _, SqlitePool};
use uuid::Uuid;

use crate::synthetic::{self, BUSINESS_NUMBER};
use crate::target::{Backend, Target};
use crypto::{aad, Keys};

/// Errors of the baselines (the hand-written code has no typed error of its own).
pub type Error = Box<dyn std::error::Error + Send + Sync>;
/// Results of the baselines.
pub type Result<T> = std::result::Result<T, Error>;

/// Which baseline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// No protection at all: the floor.
    Plaintext,
    /// The library's protections written by hand.
    HandSecured,
}

enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// One baseline on one backend, with its own database and one organization.
pub struct Baseline {
    mode: Mode,
    pool: Pool,
    org: Uuid,
    keys: Keys,
    backend: Backend,
}

macro_rules! with_pool {
    ($self:expr, $p:ident => $body:expr) => {
        match &$self.pool {
            Pool::Sqlite($p) => $body,
            Pool::Postgres($p) => $body,
        }
    };
}

/// Appends one chained audit event inside `$tx` (hand-secured only).
macro_rules! audit {
    ($self:expr, $tx:expr, $action:expr, $entity:expr, $ids:expr) => {
        if $self.mode == Mode::HandSecured {
            let (seq, prev): (i64, Vec<u8>) =
                sqlx::query_as($self.head_sql()).bind($self.org).fetch_one(&mut *$tx).await?;
            let e = Event::new(seq + 1, $action, $entity, $ids);
            let mac = $self.keys.chain(&prev, &e.bytes());
            match $self.backend {
                // One round trip: the event and the new head in one statement.
                Backend::Postgres => {
                    e.bind(sqlx::query(INSERT_EVENT_AND_HEAD), $self.org, prev, mac).execute(&mut *$tx).await?;
                }
                Backend::Sqlite => {
                    e.bind(sqlx::query(INSERT_EVENT), $self.org, prev, mac.clone()).execute(&mut *$tx).await?;
                    sqlx::query("UPDATE audit_heads SET seq = $2, mac = $3 WHERE organization_id = $1")
                        .bind($self.org)
                        .bind(e.seq)
                        .bind(mac)
                        .execute(&mut *$tx)
                        .await?;
                }
            }
        }
    };
}

const INSERT_EVENT: &str = "INSERT INTO audit_events (organization_id, seq, id, action, entity, record_ids, \
                            occurred_at, prev_mac, mac) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";
const INSERT_EVENT_AND_HEAD: &str = "WITH e AS (INSERT INTO audit_events (organization_id, seq, id, action, entity, \
                                     record_ids, occurred_at, prev_mac, mac) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                                     RETURNING 1) UPDATE audit_heads SET seq = $2, mac = $9 WHERE organization_id = $1";

/// An audit event of the hand-secured baseline.
struct Event {
    seq: i64,
    id: Uuid,
    action: &'static str,
    entity: &'static str,
    record_ids: String,
    occurred_at: i64,
}

fn micros_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_micros() as i64).unwrap_or(0)
}

impl Event {
    fn new(seq: i64, action: &'static str, entity: &'static str, ids: &[Uuid]) -> Self {
        let record_ids = ids.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(",");
        Self { seq, id: Uuid::now_v7(), action, entity, record_ids, occurred_at: micros_now() }
    }

    fn bytes(&self) -> Vec<u8> {
        format!("{}|{}|{}|{}|{}|{}", self.seq, self.id, self.action, self.entity, self.record_ids, self.occurred_at)
            .into_bytes()
    }

    fn bind<'q, DB: sqlx::Database>(
        &self,
        q: sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments<'q>>,
        org: Uuid,
        prev: Vec<u8>,
        mac: Vec<u8>,
    ) -> sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments<'q>>
    where
        Uuid: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
        i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
        String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
        &'static str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
        Vec<u8>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    {
        q.bind(org)
            .bind(self.seq)
            .bind(self.id)
            .bind(self.action)
            .bind(self.entity)
            .bind(self.record_ids.clone())
            .bind(self.occurred_at)
            .bind(prev)
            .bind(mac)
    }
}

/// Rows per multi-row INSERT: SQLite statements stay under 2,000 parameters (as the library's do).
fn rows_per_statement(backend: Backend, columns: usize) -> usize {
    match backend {
        Backend::Sqlite => 2_000 / columns,
        Backend::Postgres => 30_000 / columns,
    }
}

impl Baseline {
    /// A new database on `target` with the schema, one organization and its business number.
    pub async fn open(target: &Target, mode: Mode) -> Result<Self> {
        let subject = match mode {
            Mode::Plaintext => "plaintext",
            Mode::HandSecured => "secured",
        };
        let url = target.database(subject).await?;
        // Like the library's pools: no ping before each acquire.
        let pool = match target.backend {
            Backend::Sqlite => {
                let opts: SqliteConnectOptions = url.parse()?;
                let opts = opts
                    .create_if_missing(true)
                    .foreign_keys(true)
                    .busy_timeout(std::time::Duration::from_secs(30))
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Full);
                Pool::Sqlite(
                    SqlitePoolOptions::new().max_connections(8).test_before_acquire(false).connect_with(opts).await?,
                )
            }
            Backend::Postgres => Pool::Postgres(
                sqlx::postgres::PgPoolOptions::new()
                    .max_connections(16)
                    .test_before_acquire(false)
                    .connect(&url)
                    .await?,
            ),
        };
        let b = Self { mode, pool, org: Uuid::now_v7(), keys: Keys::generate(), backend: target.backend };
        let ddl = schema::ddl(target.backend);
        with_pool!(b, p => {
            sqlx::raw_sql(&ddl).execute(p).await?;
            sqlx::query("INSERT INTO numbers (phone_number_id, organization_id) VALUES ($1, $2)")
                .bind(BUSINESS_NUMBER).bind(b.org).execute(p).await?;
            sqlx::query("INSERT INTO audit_heads (organization_id, seq, mac) VALUES ($1, 0, $2)")
                .bind(b.org).bind(vec![0u8; 32]).execute(p).await?;
        });
        Ok(b)
    }

    fn begin(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite => "BEGIN IMMEDIATE",
            Backend::Postgres => "BEGIN",
        }
    }

    /// `rows` tuples of `width` placeholders for a multi-row INSERT: `$N` on PostgreSQL, anonymous `?`
    /// on SQLite, where sqlx-sqlite's lookup of named parameters is quadratic in their number (the
    /// library binds `?` there too).
    fn values(&self, rows: usize, width: usize) -> String {
        let tuple = |r: usize| -> String {
            let params: Vec<String> = (1..=width)
                .map(|c| match self.backend {
                    Backend::Sqlite => "?".to_string(),
                    Backend::Postgres => format!("${}", r * width + c),
                })
                .collect();
            format!("({})", params.join(", "))
        };
        (0..rows).map(tuple).collect::<Vec<_>>().join(", ")
    }

    fn head_sql(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite => "SELECT seq, mac FROM audit_heads WHERE organization_id = $1",
            Backend::Postgres => "SELECT seq, mac FROM audit_heads WHERE organization_id = $1 FOR UPDATE",
        }
    }

    fn lock(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite => "",
            Backend::Postgres => " FOR UPDATE",
        }
    }

    fn field(&self, table: &str, column: &str, row: Uuid, value: &str) -> Vec<u8> {
        match self.mode {
            Mode::Plaintext => value.as_bytes().to_vec(),
            Mode::HandSecured => self.keys.seal(&aad(self.org, table, column, row), value.as_bytes()),
        }
    }

    fn read(&self, table: &str, column: &str, row: Uuid, stored: &[u8]) -> Result<String> {
        let plain = match self.mode {
            Mode::Plaintext => stored.to_vec(),
            Mode::HandSecured => {
                self.keys.open(&aad(self.org, table, column, row), stored).ok_or("field failed authentication")?
            }
        };
        Ok(String::from_utf8(plain)?)
    }

    fn key(&self, kind: &str, value: &str) -> Vec<u8> {
        match self.mode {
            Mode::Plaintext => value.as_bytes().to_vec(),
            Mode::HandSecured => self.keys.blind(kind, value),
        }
    }

    /// Patients `range` (phone and WhatsApp id from [`synthetic`]), in batches of `batch`.
    pub async fn add_patients(&self, range: std::ops::Range<usize>, batch: usize) -> Result<()> {
        let now: DateTime<Utc> = Utc::now();
        let per = rows_per_statement(self.backend, 9).min(batch);
        let all: Vec<usize> = range.collect();
        for chunk in all.chunks(batch) {
            with_pool!(self, p => {
                let mut tx = p.begin_with(self.begin()).await?;
                let mut ids = Vec::with_capacity(chunk.len());
                for part in chunk.chunks(per) {
                    let mut sql = String::from(
                        "INSERT INTO patients (organization_id, id, first_name, last_name, phone, phone_key, \
                         whatsapp_id, whatsapp_key, created_at) VALUES ",
                    );
                    sql.push_str(&self.values(part.len(), 9));
                    let mut q = sqlx::query(&sql);
                    for &i in part {
                        let id = Uuid::now_v7();
                        ids.push(id);
                        let (phone, wa) = (synthetic::phone(i), synthetic::wa_id(i));
                        q = q
                            .bind(self.org)
                            .bind(id)
                            .bind(self.field("patients", "first_name", id, "Paciente"))
                            .bind(self.field("patients", "last_name", id, &format!("Número {i}")))
                            .bind(self.field("patients", "phone", id, &phone))
                            .bind(self.key("phone", &phone))
                            .bind(self.field("patients", "whatsapp_id", id, &wa))
                            .bind(self.key("whatsapp_id", &wa))
                            .bind(now);
                    }
                    q.execute(&mut *tx).await?;
                }
                audit!(self, tx, "CREATE", "patients", &ids);
                tx.commit().await?;
            });
        }
        Ok(())
    }

    /// Stores one webhook body: patient by WhatsApp id, the open conversation (created when none), the
    /// message (once per message id), the conversation's counter; one transaction, retried when a
    /// concurrent writer took the conversation's slot first.
    pub async fn ingest(&self, body: &str) -> Result<()> {
        let m = synthetic::parse_body(body).ok_or("malformed webhook body")?;
        let org: Uuid = with_pool!(self, p => {
            sqlx::query_scalar("SELECT organization_id FROM numbers WHERE phone_number_id = $1")
                .bind(&m.phone_number_id)
                .fetch_one(p)
                .await?
        });
        let sent_at = DateTime::<Utc>::from_timestamp(m.timestamp, 0).unwrap_or_else(Utc::now);
        let mut last = None;
        for _ in 0..3 {
            let attempt: std::result::Result<(), sqlx::Error> = with_pool!(self, p => async {
                let mut tx = p.begin_with(self.begin()).await?;
                let patient: Uuid = sqlx::query_scalar("SELECT id FROM patients WHERE organization_id = $1 AND whatsapp_key = $2")
                    .bind(org)
                    .bind(self.key("whatsapp_id", &m.wa_id))
                    .fetch_one(&mut *tx)
                    .await?;
                let chat_key = self.key("chat", &m.wa_id);
                let open = format!(
                    "SELECT id FROM conversations WHERE organization_id = $1 AND chat_key = $2 AND status = 'ACTIVE'{}",
                    self.lock()
                );
                let found: Option<Uuid> = sqlx::query_scalar(&open).bind(org).bind(&chat_key).fetch_optional(&mut *tx).await?;
                let conversation = match found {
                    Some(c) => c,
                    None => {
                        let c = Uuid::now_v7();
                        sqlx::query(
                            "INSERT INTO conversations (organization_id, id, patient_id, chat_id, chat_key, status, \
                             message_count, started_at, last_message_at) VALUES ($1, $2, $3, $4, $5, 'ACTIVE', 0, $6, $6)",
                        )
                        .bind(org)
                        .bind(c)
                        .bind(patient)
                        .bind(self.field("conversations", "chat_id", c, &m.wa_id))
                        .bind(&chat_key)
                        .bind(sent_at)
                        .execute(&mut *tx)
                        .await?;
                        c
                    }
                };
                let id = Uuid::now_v7();
                let inserted = sqlx::query(
                    "INSERT INTO messages (organization_id, id, conversation_id, patient_id, message_key, direction, \
                     content, sent_at) VALUES ($1, $2, $3, $4, $5, 'INBOUND', $6, $7) \
                     ON CONFLICT (organization_id, message_key) DO NOTHING",
                )
                .bind(org)
                .bind(id)
                .bind(conversation)
                .bind(patient)
                .bind(self.key("message", &m.message_id))
                .bind(self.field("messages", "content", id, &m.body))
                .bind(sent_at)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if inserted == 1 {
                    sqlx::query(
                        "UPDATE conversations SET message_count = message_count + 1, last_message_at = $3 \
                         WHERE organization_id = $1 AND id = $2",
                    )
                    .bind(org)
                    .bind(conversation)
                    .bind(sent_at)
                    .execute(&mut *tx)
                    .await?;
                }
                let audited: std::result::Result<(), Error> = async {
                    audit!(self, tx, "IMPORT", "messages", &[id]);
                    Ok(())
                }
                .await;
                audited.map_err(|e| sqlx::Error::Protocol(e.to_string()))?;
                tx.commit().await
            }
            .await);
            match attempt {
                Ok(()) => return Ok(()),
                Err(sqlx::Error::Database(e)) if e.is_unique_violation() => last = Some(e.to_string()),
                Err(e) => return Err(e.into()),
            }
        }
        Err(last.unwrap_or_default().into())
    }

    /// The id of patient `i`'s open conversation.
    pub async fn conversation_of(&self, i: usize) -> Result<Uuid> {
        let key = self.key("chat", &synthetic::wa_id(i));
        self.id_by_key(
            "SELECT id FROM conversations WHERE organization_id = $1 AND chat_key = $2 AND status = 'ACTIVE'",
            key,
        )
        .await
    }

    /// The one id that `sql` selects for this organization (`$1`) and a lookup key (`$2`).
    async fn id_by_key(&self, sql: &str, key: Vec<u8>) -> Result<Uuid> {
        Ok(with_pool!(self, p => sqlx::query_scalar(sql).bind(self.org).bind(key).fetch_one(p).await?))
    }

    /// Finds a patient by phone and reads their name and phone (decrypted when hand-secured); the
    /// hand-secured read is audited.
    pub async fn lookup(&self, phone: &str) -> Result<bool> {
        let key = self.key("phone", phone);
        with_pool!(self, p => {
            let mut tx = p.begin_with(if self.mode == Mode::HandSecured { self.begin() } else { "BEGIN" }).await?;
            let row = sqlx::query("SELECT id, first_name, last_name, phone FROM patients WHERE organization_id = $1 AND phone_key = $2")
                .bind(self.org)
                .bind(key)
                .fetch_optional(&mut *tx)
                .await?;
            let found = match row {
                Some(r) => {
                    let id: Uuid = r.try_get("id")?;
                    for c in ["first_name", "last_name", "phone"] {
                        self.read("patients", c, id, &r.try_get::<Vec<u8>, _>(c)?)?;
                    }
                    audit!(self, tx, "READ", "patients", &[id]);
                    true
                }
                None => false,
            };
            tx.commit().await?;
            Ok(found)
        })
    }

    /// The conversation's latest 50 messages, decrypted when hand-secured; the read is audited.
    pub async fn history(&self, conversation: Uuid) -> Result<usize> {
        with_pool!(self, p => {
            let mut tx = p.begin_with(if self.mode == Mode::HandSecured { self.begin() } else { "BEGIN" }).await?;
            let rows = sqlx::query(
                "SELECT id, content FROM messages WHERE organization_id = $1 AND conversation_id = $2 \
                 ORDER BY sent_at DESC, id DESC LIMIT 50",
            )
            .bind(self.org)
            .bind(conversation)
            .fetch_all(&mut *tx)
            .await?;
            let mut ids = Vec::with_capacity(rows.len());
            for r in &rows {
                let id: Uuid = r.try_get("id")?;
                if let Some(c) = r.try_get::<Option<Vec<u8>>, _>("content")? {
                    self.read("messages", "content", id, &c)?;
                }
                ids.push(id);
            }
            audit!(self, tx, "READ", "messages", &ids);
            tx.commit().await?;
            Ok(rows.len())
        })
    }

    /// The id of patient `i`.
    pub async fn patient_id(&self, i: usize) -> Result<Uuid> {
        let key = self.key("phone", &synthetic::phone(i));
        self.id_by_key("SELECT id FROM patients WHERE organization_id = $1 AND phone_key = $2", key).await
    }

    /// Inserts `rows` vital signs readings of `patient` in transactions of `batch` rows.
    pub async fn bulk(&self, patient: Uuid, rows: usize, batch: usize) -> Result<()> {
        let per = rows_per_statement(self.backend, 7).min(batch);
        let now = Utc::now();
        let all: Vec<usize> = (0..rows).collect();
        for chunk in all.chunks(batch) {
            with_pool!(self, p => {
                let mut tx = p.begin_with(self.begin()).await?;
                let mut ids = Vec::with_capacity(chunk.len());
                for part in chunk.chunks(per) {
                    let mut sql = String::from(
                        "INSERT INTO health_data (organization_id, id, patient_id, data_type, category, vital_signs, created_at) VALUES ",
                    );
                    sql.push_str(&self.values(part.len(), 7));
                    let mut q = sqlx::query(&sql);
                    for &i in part {
                        let id = Uuid::now_v7();
                        ids.push(id);
                        q = q
                            .bind(self.org)
                            .bind(id)
                            .bind(patient)
                            .bind("VITAL_SIGN")
                            .bind("CARDIOLOGY")
                            .bind(self.field("health_data", "vital_signs", id, &synthetic::vital_signs(i).to_string()))
                            .bind(now);
                    }
                    q.execute(&mut *tx).await?;
                }
                audit!(self, tx, "CREATE", "health_data", &ids);
                tx.commit().await?;
            });
        }
        Ok(())
    }

    /// Appends `n` audit events (hand-secured), `batch` per transaction, each chained to the last.
    pub async fn fill_audit(&self, n: usize, batch: usize) -> Result<()> {
        if self.mode != Mode::HandSecured {
            return Ok(());
        }
        let mut left = n;
        while left > 0 {
            let take = left.min(batch);
            with_pool!(self, p => {
                let mut tx = p.begin_with(self.begin()).await?;
                for _ in 0..take {
                    audit!(self, tx, "LOGIN", "organizations", &[self.org]);
                }
                tx.commit().await?;
            });
            left -= take;
        }
        Ok(())
    }

    /// Verifies the whole chain (streamed in sequence order); returns the events verified.
    pub async fn verify(&self) -> Result<u64> {
        with_pool!(self, p => {
            let mut rows = sqlx::query(
                "SELECT seq, id, action, entity, record_ids, occurred_at, prev_mac, mac FROM audit_events \
                 WHERE organization_id = $1 ORDER BY seq",
            )
            .bind(self.org)
            .fetch(p);
            let mut prev = vec![0u8; 32];
            let mut n = 0u64;
            while let Some(r) = rows.try_next().await? {
                let e = Event {
                    seq: r.try_get("seq")?,
                    id: r.try_get("id")?,
                    action: "",
                    entity: "",
                    record_ids: r.try_get("record_ids")?,
                    occurred_at: r.try_get("occurred_at")?,
                };
                let (action, entity): (String, String) = (r.try_get("action")?, r.try_get("entity")?);
                let bytes = format!("{}|{}|{}|{}|{}|{}", e.seq, e.id, action, entity, e.record_ids, e.occurred_at);
                let stored_prev: Vec<u8> = r.try_get("prev_mac")?;
                let mac: Vec<u8> = r.try_get("mac")?;
                if stored_prev != prev || self.keys.chain(&prev, bytes.as_bytes()) != mac {
                    return Err(format!("audit chain broken at {}", e.seq).into());
                }
                prev = mac;
                n += 1;
            }
            Ok(n)
        })
    }

    /// Refreshes the planner's statistics of every table.
    pub async fn analyze(&self) -> Result<()> {
        with_pool!(self, p => { sqlx::query("ANALYZE").execute(p).await?; });
        Ok(())
    }

    /// Closes the pool.
    pub async fn close(&self) {
        with_pool!(self, p => p.close().await)
    }
}
