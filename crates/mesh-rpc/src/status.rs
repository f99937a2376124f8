//! Status codes: how a handler says why it failed, and how the wire carries it.

use std::fmt;

/// Why a call failed on the serving side.
///
/// The set and the wire numbers follow gRPC's canonical codes, so operators read
/// them without a glossary. A number this version does not know decodes as
/// [`StatusCode::Unknown`], so newer peers never break older ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum StatusCode {
    /// The operation was cancelled, typically by the caller.
    Cancelled,
    /// An error that fits no other code (also: a code this version does not know).
    Unknown,
    /// The request was malformed or did not decode.
    InvalidArgument,
    /// The deadline passed before the operation finished.
    DeadlineExceeded,
    /// A requested entity does not exist.
    NotFound,
    /// The entity the request tried to create already exists.
    AlreadyExists,
    /// The caller may not do this.
    PermissionDenied,
    /// A quota, a limit or memory ran out.
    ResourceExhausted,
    /// The system is not in the state the operation requires.
    FailedPrecondition,
    /// The operation was aborted (a conflict, a lost race).
    Aborted,
    /// A value was outside its valid range.
    OutOfRange,
    /// The operation is not implemented by this server.
    Unimplemented,
    /// An invariant broke on the server, or its handler panicked.
    Internal,
    /// The service is temporarily unable to serve; retrying may help.
    Unavailable,
    /// Unrecoverable data loss or corruption.
    DataLoss,
    /// The caller is not authenticated for this operation.
    Unauthenticated,
}

impl StatusCode {
    /// The stable snake_case name (`invalid_argument`, `internal`, ...), for logs
    /// and tables.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cancelled => "cancelled",
            Self::Unknown => "unknown",
            Self::InvalidArgument => "invalid_argument",
            Self::DeadlineExceeded => "deadline_exceeded",
            Self::NotFound => "not_found",
            Self::AlreadyExists => "already_exists",
            Self::PermissionDenied => "permission_denied",
            Self::ResourceExhausted => "resource_exhausted",
            Self::FailedPrecondition => "failed_precondition",
            Self::Aborted => "aborted",
            Self::OutOfRange => "out_of_range",
            Self::Unimplemented => "unimplemented",
            Self::Internal => "internal",
            Self::Unavailable => "unavailable",
            Self::DataLoss => "data_loss",
            Self::Unauthenticated => "unauthenticated",
        }
    }

    /// The number on the wire (gRPC's numbering).
    pub fn to_wire(self) -> u16 {
        match self {
            Self::Cancelled => 1,
            Self::Unknown => 2,
            Self::InvalidArgument => 3,
            Self::DeadlineExceeded => 4,
            Self::NotFound => 5,
            Self::AlreadyExists => 6,
            Self::PermissionDenied => 7,
            Self::ResourceExhausted => 8,
            Self::FailedPrecondition => 9,
            Self::Aborted => 10,
            Self::OutOfRange => 11,
            Self::Unimplemented => 12,
            Self::Internal => 13,
            Self::Unavailable => 14,
            Self::DataLoss => 15,
            Self::Unauthenticated => 16,
        }
    }

    /// The code for a wire number; unknown numbers (including 0, which is "ok"
    /// in gRPC and never a failure here) map to [`StatusCode::Unknown`].
    pub fn from_wire(n: u16) -> Self {
        match n {
            1 => Self::Cancelled,
            3 => Self::InvalidArgument,
            4 => Self::DeadlineExceeded,
            5 => Self::NotFound,
            6 => Self::AlreadyExists,
            7 => Self::PermissionDenied,
            8 => Self::ResourceExhausted,
            9 => Self::FailedPrecondition,
            10 => Self::Aborted,
            11 => Self::OutOfRange,
            12 => Self::Unimplemented,
            13 => Self::Internal,
            14 => Self::Unavailable,
            15 => Self::DataLoss,
            16 => Self::Unauthenticated,
            _ => Self::Unknown,
        }
    }
}

impl fmt::Display for StatusCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A handler's failure: a code for programs and a message for people.
///
/// The caller receives it as [`crate::RpcError::Remote`]. Messages longer than
/// [`crate::wire::MAX_STATUS_MESSAGE`] bytes are cut (on a character boundary)
/// when sent: they are diagnostics, not payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RpcStatus {
    /// What kind of failure.
    pub code: StatusCode,
    /// Human-readable detail.
    pub message: String,
}

impl RpcStatus {
    /// A status with any code.
    pub fn new(code: StatusCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }

    /// The request is malformed.
    pub fn invalid_argument(message: impl Into<String>) -> Self {
        Self::new(StatusCode::InvalidArgument, message)
    }

    /// Something the caller asked for does not exist.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NotFound, message)
    }

    /// The service cannot serve right now; the caller may retry.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::Unavailable, message)
    }

    /// A bug or broken invariant on the serving side.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::Internal, message)
    }
}

impl fmt::Display for RpcStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for RpcStatus {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_numbers_round_trip_and_unknown_numbers_are_unknown() {
        for n in 0..=20u16 {
            let code = StatusCode::from_wire(n);
            if (1..=16).contains(&n) {
                assert_eq!(code.to_wire(), n);
            } else {
                assert_eq!(code, StatusCode::Unknown);
            }
        }
        assert_eq!(StatusCode::Internal.to_string(), "internal");
    }
}
