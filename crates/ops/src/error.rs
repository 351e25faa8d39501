//! What an operation can fail with, typed so each adapter answers in its own way: the API with
//! a status and `{"error": {code, message}}`, the web UI with a message on the page, the CLI
//! with a line on stderr and an exit code. `code()` is the one set of error codes all three
//! share.

use langguard_policy::PolicyError;
use langguard_store::StoreError;
use langguard_sync::SyncError;

#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    /// Input that breaks a rule; `message` says which and what is allowed.
    #[error("{message}")]
    Invalid { code: &'static str, message: String },
    /// Well-formed input that can't be accepted, e.g. Rego that doesn't compile; `line` and
    /// `column` point into the submitted text when known.
    #[error("{message}")]
    Unprocessable {
        code: &'static str,
        message: String,
        line: Option<u32>,
        column: Option<u32>,
    },
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// The caller's role allows the route but not this item (someone else's shared view).
    #[error("{0}")]
    Forbidden(String),
    /// Too much at once (a backtest already running); try again after `retry_after_secs`.
    #[error("{message}")]
    Busy {
        message: String,
        retry_after_secs: u64,
    },
    /// A body larger than is taken (once decompressed).
    #[error("{0}")]
    TooLarge(String),
    /// Something this depends on can't serve now (the policy sandbox); safe to retry.
    #[error("not available right now: {0}")]
    Unavailable(String),
    /// A fault of the server's, not of the caller's input; logged with its cause where it is
    /// turned into a generic message.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

pub type OpsResult<T> = Result<T, OpsError>;

impl OpsError {
    pub fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        OpsError::Invalid {
            code,
            message: message.into(),
        }
    }

    pub fn unprocessable(code: &'static str, message: impl Into<String>) -> Self {
        OpsError::Unprocessable {
            code,
            message: message.into(),
            line: None,
            column: None,
        }
    }

    /// The stable snake_case code the API, the UI and the CLI report.
    pub fn code(&self) -> &'static str {
        match self {
            OpsError::Invalid { code, .. } | OpsError::Unprocessable { code, .. } => code,
            OpsError::NotFound(_) => "not_found",
            OpsError::Conflict(_) => "conflict",
            OpsError::Forbidden(_) => "forbidden",
            OpsError::Busy { .. } => "too_many_requests",
            OpsError::TooLarge(_) => "payload_too_large",
            OpsError::Unavailable(_) => "unavailable",
            OpsError::Internal(_) => "internal",
        }
    }
}

impl From<StoreError> for OpsError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound { what } => OpsError::NotFound(format!("{what} does not exist")),
            StoreError::Conflict { what } => OpsError::Conflict(format!("{what} already exists")),
            StoreError::Invalid(message) => OpsError::invalid("invalid", message),
            other => OpsError::Internal(other.into()),
        }
    }
}

impl From<SyncError> for OpsError {
    fn from(e: SyncError) -> Self {
        match e {
            SyncError::Store(e) => e.into(),
            other => OpsError::Internal(other.into()),
        }
    }
}

impl From<PolicyError> for OpsError {
    fn from(e: PolicyError) -> Self {
        match e {
            PolicyError::Compile {
                message,
                line,
                column,
            } => OpsError::Unprocessable {
                code: "invalid_rego",
                message: format!("the Rego does not compile: {message}"),
                line,
                column,
            },
            PolicyError::InvalidName => OpsError::invalid("invalid_name", e.to_string()),
            PolicyError::InvalidConfig => OpsError::invalid("invalid_config", e.to_string()),
            PolicyError::PackageMismatch { .. } | PolicyError::NoViolationRule => {
                OpsError::unprocessable("invalid_rego", e.to_string())
            }
            PolicyError::Evaluation(message) => OpsError::unprocessable(
                "evaluation_error",
                format!("the policy could not be evaluated: {message}"),
            ),
            PolicyError::Limit { message, .. } => OpsError::unprocessable(
                "policy_limit_exceeded",
                format!("the policy could not be evaluated: {message}"),
            ),
        }
    }
}
