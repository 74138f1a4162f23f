//! Storage contracts and backends.
//!
//! # Layout
//! - [`api`]: the two small traits every backend implements, [`SpanWriter`] and
//!   [`SpanReader`], with their written contracts.
//! - [`schema`]: the logical schema both backends hold: which index postings and
//!   catalog entries a batch of spans produces, and how a span is encoded.
//! - [`embedded`]: the fjall-backed store used by `tracekeeper all-in-one`.
//! - [`cql`]: the ScyllaDB / Cassandra store used by the distributed shape.
//! - [`ownership`]: the ledger that fences Kafka partition owners (CQL only).
//! - `testing` (feature): the conformance suite every backend must pass.

pub mod api;
pub mod check;
pub mod cql;
pub mod embedded;
pub mod lifecycle;
pub mod ownership;
pub mod schema;

#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use api::{Operation, Posting, SpanReader, SpanWriter, StorageError, WriteBatch};
pub use check::{CheckReport, Checkable, Horizons};
pub use lifecycle::{Lifecycle, LifecycleError, PolicyVersion};
pub use ownership::{LedgerError, OwnershipLedger, PartitionId, PartitionOwner, Progress};
pub use schema::{IndexTerm, IndexValue};
