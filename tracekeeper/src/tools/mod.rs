//! The commands that are not roles: they run once and exit.

pub mod check;
pub mod compact;
#[cfg(feature = "distributed")]
pub mod dlq;
