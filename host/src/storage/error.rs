//! What storage reports when it fails: `StorageError`, sorted by what the failure means
//! for the caller, with the backend's own error kept as its source.

/// What went wrong in storage, by what it means for the caller. The backend's own
/// error is kept as the `source`; the message names the backend and repeats the cause,
/// since most callers log only the top-level message.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// Another writer got there first (a serialisation failure, a deadlock, a database
    /// busy past its timeout): nothing was written, and trying again may succeed.
    #[error("storage conflict ({what}): {source}")]
    Conflict { what: String, #[source] source: Cause },
    /// The caller handed storage something it cannot store; trying again cannot help.
    #[error("invalid input to storage ({what}): {source}")]
    InvalidInput { what: String, #[source] source: Cause },
    /// The database could not be reached or stopped answering (connection, pool, I/O).
    #[error("storage unavailable ({what}): {source}")]
    Unavailable { what: String, #[source] source: Cause },
    /// The database refused a write that breaks one of its rules (unique, foreign key,
    /// check): nothing was written.
    #[error("storage constraint violated ({what}): {source}")]
    Constraint { what: String, #[source] source: Cause },
    /// The write would take an instance's store over its quota (`limits.store_mb`):
    /// nothing was written. Deleting keys, or a larger quota, makes room.
    #[error("store quota used up ({what}): {source}")]
    QuotaExceeded { what: String, #[source] source: Cause },
    /// A stored row holds something this host cannot read.
    #[error("stored data unreadable ({what}): {detail}")]
    Corrupt { what: String, detail: String },
    /// The backend failed in a way none of the above describes (a bug, a worker that
    /// died); the source says how.
    #[error("storage failed ({what}): {source}")]
    Failed { what: String, #[source] source: Cause },
}

/// The backend error behind a `StorageError`.
pub type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

impl StorageError {
    /// Whether the same call may succeed if made again (a conflict or an outage).
    pub fn is_transient(&self) -> bool {
        matches!(self, StorageError::Conflict { .. } | StorageError::Unavailable { .. })
    }
}

pub type StorageResult<T> = Result<T, StorageError>;
