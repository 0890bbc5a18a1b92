//! How a request that cannot be answered is answered.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// A bad query parameter (400, saying which and why) or a failure of
/// keywarden itself (500; the details go to the log, not to the browser).
#[derive(Debug)]
pub enum UiError {
    /// A query parameter that cannot be read.
    BadRequest(String),
    /// The database or another part of keywarden failed.
    Internal(anyhow::Error),
}

impl From<anyhow::Error> for UiError {
    fn from(e: anyhow::Error) -> UiError {
        UiError::Internal(e)
    }
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        match self {
            UiError::BadRequest(message) => {
                (StatusCode::BAD_REQUEST, format!("{message}\n")).into_response()
            }
            UiError::Internal(e) => {
                tracing::error!("the dashboard cannot answer: {e:#}");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "keywarden could not answer; see its log\n",
                )
                    .into_response()
            }
        }
    }
}
