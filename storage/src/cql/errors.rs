//! CQL failures as [`StorageError`]s: which are worth retrying and which never will be.

use scylla::errors::ExecutionError;

use crate::api::StorageError;

pub(crate) fn unavailable(e: impl std::fmt::Display) -> StorageError {
    StorageError::Unavailable(e.to_string())
}

/// A failed write, classified: what the server (or the driver, before sending) refuses
/// as invalid is permanent; timeouts, overload and lost connections are transient.
pub(crate) fn write_error(e: ExecutionError) -> StorageError {
    use scylla::errors::{DbError, RequestAttemptError};
    let permanent = match &e {
        ExecutionError::BadQuery(_) => true,
        ExecutionError::LastAttemptError(attempt) => matches!(
            attempt,
            RequestAttemptError::DbError(
                DbError::Invalid
                    | DbError::SyntaxError
                    | DbError::FunctionFailure { .. }
                    | DbError::AlreadyExists { .. },
                _
            ) | RequestAttemptError::SerializationError(_)
                | RequestAttemptError::CqlRequestSerialization(_)
        ),
        _ => false,
    };
    if permanent {
        StorageError::Refused(e.to_string())
    } else {
        unavailable(e)
    }
}

pub(crate) fn corrupt(e: impl std::fmt::Display) -> StorageError {
    StorageError::Corrupt(e.to_string())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use scylla::errors::{BadQuery, DbError, RequestAttemptError};

    use super::*;

    fn server_said(error: DbError) -> ExecutionError {
        ExecutionError::LastAttemptError(RequestAttemptError::DbError(error, "the server's words".into()))
    }

    #[test]
    fn invalid_requests_are_permanent() {
        for refused in [
            server_said(DbError::Invalid),
            server_said(DbError::SyntaxError),
            ExecutionError::BadQuery(BadQuery::TooManyQueriesInBatchStatement(70_000)),
        ] {
            let classified = write_error(refused);
            assert!(classified.is_permanent(), "{classified}");
            assert!(!classified.is_retryable(), "{classified}");
        }
    }

    #[test]
    fn timeouts_overload_and_outages_are_transient() {
        for transient in [
            server_said(DbError::Overloaded),
            server_said(DbError::IsBootstrapping),
            server_said(DbError::Unavailable {
                consistency: scylla::statement::Consistency::Quorum,
                required: 2,
                alive: 1,
            }),
            ExecutionError::RequestTimeout(Duration::from_secs(5)),
            ExecutionError::EmptyPlan,
        ] {
            let classified = write_error(transient);
            assert!(!classified.is_permanent(), "{classified}");
            assert!(classified.is_retryable(), "{classified}");
        }
    }
}
