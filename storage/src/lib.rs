//! Storage contracts and backends.
//!
//! # Layout
//! - [`api`]: the data contracts every backend implements, [`SpanWriter`] and
//!   [`SpanReader`]; [`lifecycle`] (retention), [`ownership`] (fencing) and [`check`]
//!   (the invariant checker) hold the others. Each is written down on its trait.
//! - [`schema`]: the logical schema both backends hold: which index postings and
//!   catalog entries a batch of spans produces, and how a span is encoded.
//! - `embedded` (feature, default): the fjall-backed store used by `tracekeeper all-in-one`.
//! - `cql` (feature, default): the ScyllaDB / Cassandra store used by the distributed shape.
//!
//! Each backend lives in its own module behind its own feature, so a reader (or a
//! build) sees one at a time: `--no-default-features --features embedded` builds the
//! contracts and the embedded store alone.
//! - [`ownership`]: the ledger that fences Kafka partition owners (CQL only).
//! - [`red`]: per-minute RED aggregates the Monitor tab reads ([`RedStore`]).
//! - `testing` (feature): the conformance suite every backend must pass.

pub mod api;
pub mod check;
#[cfg(feature = "cql")]
pub mod cql;
#[cfg(feature = "embedded")]
pub mod embedded;
pub mod lifecycle;
pub mod ownership;
pub mod red;
pub mod schema;

#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use api::{Operation, Posting, SpanReader, SpanWriter, StorageError, WriteBatch};
pub use check::{CheckReport, Checkable, Horizons};
pub use lifecycle::{Lifecycle, LifecycleError, PolicyVersion};
pub use ownership::{LedgerError, OwnershipLedger, PartitionId, PartitionOwner, Progress};
pub use red::{RedCell, RedStore};
pub use schema::{IndexTerm, IndexValue};
