//! The transaction kernel: what one operation needs, whatever the aggregate.
//!
//! An operation of a repository checks the actor's right (`check`, recording a refusal), gathers
//! its keys before it opens a transaction, runs its statements and records its audit event in one
//! `AuditTx`, queues its change for the Tasy ERP in the same transaction (`enqueue_in`), and
//! commits; the audit event is then linked into its organization's chain (inside the transaction on
//! SQLite, by the background `sequencer` after the commit on PostgreSQL). The generic operations of
//! every model (insert, get, update, soft delete, listings, lookups through blind indexes, bulk
//! inserts) are in `rows`; a model describes itself through [`Model`].
//!
//! * `model`: the traits a model implements.
//! * `rows`: the generic row operations.
//! * `record`: the audited transaction and refusals.
//! * `event`: what an audit event holds and how it is sealed.
//! * `chain` and `sequencer`: linking events into the tamper-evident chain.
//! * `tree`: the Merkle tree over the chain, stored beside it, that checkpoints and proofs read.
//! * `outbox`: the enqueue side of the Tasy outbox.
//! * `actor`: opening a scope, with its actor checked against the organization.
//! * `emergency`: break-glass access.

pub(crate) mod actor;
pub(crate) mod chain;
pub(crate) mod emergency;
pub(crate) mod event;
pub(crate) mod model;
pub(crate) mod outbox;
pub(crate) mod record;
pub(crate) mod rows;
pub(crate) mod sequencer;
pub(crate) mod tree;

pub use model::{Model, Record, SoftDeletable, Updatable};
pub use outbox::OutboxOperation;

pub(crate) use event::Event;
pub(crate) use model::Sealed;
pub(crate) use outbox::enqueue_in;
pub(crate) use record::{check, denied, record_alone, record_read_alone, AuditTx};
