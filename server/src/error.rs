//! Errors as HTTP responses: a status chosen by who is at fault, and a JSON body that names
//! what was wrong.
//!
//! ```json
//! {"error": {"kind": "invalid_input",
//!            "message": "`entities.amount[0]` is a string (\"12\"), expected a number ...",
//!            "context": {"field": "entities.amount[0]"}},
//!  "detail": "`entities.amount[0]` is a string (\"12\"), expected a number ..."}
//! ```
//!
//! `detail` repeats the message in the shape of the errors of Feast's feature server (FastAPI's
//! `{"detail": ...}`), so a client written for that server shows the message too.
//!
//! | kind | status |
//! |---|---|
//! | `invalid_input`, `schema_mismatch` | 400 (413 for a body over the limit) |
//! | `not_found` (unknown feature, view, service) | 404 |
//! | `unsupported` (refused by design: a write of precomputed feature values) | 403 |
//! | `transform_failed` (the component rejected the rows) | 422 |
//! | `deadline_exceeded` | 504 |
//! | `unavailable` (the online store) | 503 |
//! | `trapped`, `memory_limit_exceeded`, `invalid_component`, `io`, `internal` | 500 |

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use skewless_runtime::error::{Error, ErrorKind};

/// An [`Error`] on its way to becoming a response, with the status it maps to.
#[derive(Debug)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The error.
    pub error: Error,
}

impl ApiError {
    /// A body over the size limit.
    pub(crate) fn too_large(limit: usize) -> Self {
        ApiError {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            error: Error::new(
                ErrorKind::InvalidInput,
                format!("the request body is larger than the limit of {limit} bytes"),
            )
            .with_context("field", "body"),
        }
    }

    /// A feature request over the limit of requests answered at once.
    pub(crate) fn overloaded(limit: usize) -> Self {
        ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            error: Error::new(
                ErrorKind::Unavailable,
                format!(
                    "the server is answering its limit of {limit} feature requests at once; \
                     retry shortly, or raise the server's --max-in-flight"
                ),
            ),
        }
    }

    /// A route that does not exist, or a method a route does not take.
    pub(crate) fn no_route(status: StatusCode, method: &str, path: &str) -> Self {
        let message = match status {
            StatusCode::METHOD_NOT_ALLOWED => {
                format!("{path} does not accept {method}; see GET /openapi.json")
            }
            _ => format!("there is no endpoint {method} {path}; see GET /openapi.json"),
        };
        ApiError {
            status,
            error: Error::new(ErrorKind::NotFound, message),
        }
    }

    /// The response body.
    pub fn body(&self) -> Value {
        let context: Map<String, Value> = self
            .error
            .context()
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Value::from(v.as_str())))
            .collect();
        json!({
            "error": {
                "kind": self.error.kind().as_str(),
                "message": self.error.message(),
                "context": context,
            },
            "detail": self.error.message(),
        })
    }
}

impl From<Error> for ApiError {
    fn from(error: Error) -> Self {
        let status = match error.kind() {
            ErrorKind::InvalidInput | ErrorKind::SchemaMismatch => StatusCode::BAD_REQUEST,
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::Unsupported => StatusCode::FORBIDDEN,
            ErrorKind::TransformFailed => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorKind::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
            ErrorKind::Unavailable | ErrorKind::Interrupted => StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::Trapped
            | ErrorKind::MemoryLimitExceeded
            | ErrorKind::InvalidComponent
            | ErrorKind::Io
            | ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError { status, error }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::warn!(status = %self.status, error = %self.error, "request failed");
        }
        (self.status, Json(self.body())).into_response()
    }
}
