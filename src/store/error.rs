//! The store's errors as clients see them: etcd's exact error strings (clients match on
//! them) and the gRPC status codes etcd pairs them with.

use super::mvcc::MvccError;

/// An error a store request can end in.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("{0}")]
    Mvcc(#[from] MvccError),
    #[error("etcdserver: no leader")]
    NoLeader,
    #[error("etcdserver: request timed out")]
    Timeout,
    #[error("etcdserver: leader changed")]
    LeaderChanged,
    #[error("etcdserver: server stopped")]
    Stopped,
    #[error("etcdserver: request is too large")]
    RequestTooLarge,
    #[error("etcdserver: too many operations in txn request")]
    TooManyOps,
    #[error("etcdserver: too large lease TTL")]
    LeaseTtlTooLarge,
    #[error("etcdserver: key is not provided")]
    EmptyKey,
    #[error("etcdserver: mvcc: database space exceeded")]
    NoSpace,
    #[error("etcdserver: {0}")]
    Internal(String),
}

impl StoreError {
    /// The gRPC status etcd answers this error with.
    pub fn to_status(&self) -> tonic::Status {
        use tonic::Code;
        let code = match self {
            StoreError::Mvcc(e) => mvcc_code(e),
            StoreError::NoLeader
            | StoreError::Timeout
            | StoreError::LeaderChanged
            | StoreError::Stopped => Code::Unavailable,
            StoreError::RequestTooLarge | StoreError::TooManyOps | StoreError::EmptyKey => {
                Code::InvalidArgument
            }
            StoreError::LeaseTtlTooLarge => Code::OutOfRange,
            StoreError::NoSpace => Code::ResourceExhausted,
            StoreError::Internal(_) => Code::Internal,
        };
        tonic::Status::new(code, self.to_string())
    }
}

fn mvcc_code(e: &MvccError) -> tonic::Code {
    use tonic::Code;
    match e {
        MvccError::Compacted | MvccError::FutureRevision => Code::OutOfRange,
        MvccError::LeaseNotFound => Code::NotFound,
        MvccError::LeaseExists => Code::FailedPrecondition,
        MvccError::DuplicateKey
        | MvccError::KeyNotFound
        | MvccError::EmptyKey
        | MvccError::ValueProvided
        | MvccError::LeaseProvided => Code::InvalidArgument,
        MvccError::LeaseTtlTooLarge => Code::OutOfRange,
        MvccError::BadSnapshot(_) => Code::Internal,
    }
}
