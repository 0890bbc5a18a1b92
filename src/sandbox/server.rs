//! The `/api/v1` routes: OpenRouter's management API behind bearer auth,
//! with injected faults and the journal around every request.

use super::account::{Account, AccountError, Caller, NewKey};
use super::journal::JournalEntry;
use super::paging::PageRequest;
use crate::clock::{Clock, SystemClock};
use crate::domain::Credits;
use crate::domain::Key;
use crate::openrouter::model::{Data, ErrorBody, ErrorData, KeyPatch};
use axum::body::{Body, Bytes, to_bytes};
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{FromRequestParts, Path, Query, Request, State};
use axum::http::header::{AUTHORIZATION, CONTENT_LENGTH, RETRY_AFTER};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::SecondsFormat;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Where these routes are mounted.
pub(crate) const API_PREFIX: &str = "/api/v1";

/// Request bodies larger than this are refused (413).
const MAX_BODY: usize = 1 << 20;

/// The `/api/v1` router: keys and credits, and the routes of `more`
/// (workspaces, guardrails), with the journal and the faults around every
/// route.
pub(crate) fn router(account: Account, more: Router<Account>) -> Router {
    Router::new()
        .route("/keys", get(list_keys).post(create_key))
        .route(
            "/keys/{hash}",
            get(get_key).patch(patch_key).delete(delete_key),
        )
        .route("/key", get(current_key))
        .route("/credits", get(credits))
        .merge(more)
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(
            account.clone(),
            journal_and_faults,
        ))
        .with_state(account)
}

/// The error body of the API: `{"error": {"code", "message"}}` with that status.
pub(crate) fn error_response(status: u16, message: impl Into<String>) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = ErrorBody {
        error: ErrorData {
            code: status,
            message: message.into(),
            metadata: None,
        },
    };
    (code, Json(body)).into_response()
}

impl IntoResponse for AccountError {
    fn into_response(self) -> Response {
        error_response(self.status(), self.to_string())
    }
}

/// Parses a JSON request body; a 400 that says what is wrong otherwise.
pub(crate) fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, AccountError> {
    serde_json::from_slice(bytes)
        .map_err(|e| AccountError::Invalid(format!("Invalid request body: {e}")))
}

/// The paging of a listing's query; a 400 saying what is wrong otherwise.
pub(super) fn page_of(
    query: Result<Query<PageRequest>, QueryRejection>,
) -> Result<PageRequest, AccountError> {
    let Query(page) = query.map_err(|e| AccountError::Invalid(e.body_text()))?;
    page.validate()
}

/// Marks a response whose request changed the account (for the journal).
#[derive(Debug, Clone, Copy)]
struct Applied;

pub(super) fn applied(response: impl IntoResponse) -> Response {
    let mut response = response.into_response();
    response.extensions_mut().insert(Applied);
    response
}

/// The account, for a request authenticated with the management key: only
/// it may call the management endpoints (401 without a known key, 403 for
/// another key).
pub(super) struct Managed(pub(super) Account);

impl FromRequestParts<Account> for Managed {
    type Rejection = AccountError;

    async fn from_request_parts(
        parts: &mut Parts,
        account: &Account,
    ) -> Result<Managed, AccountError> {
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        match account.authenticate(header)? {
            Caller::Management => Ok(Managed(account.clone())),
            Caller::Key(_) => Err(AccountError::NotManagement),
        }
    }
}

/// A `{hash}` path segment; one that cannot be decoded names no key.
fn hash_of(path: Result<Path<String>, PathRejection>) -> Result<String, AccountError> {
    path.map(|Path(h)| h).map_err(|_| AccountError::NotFound)
}

/// The query of `GET /keys`.
#[derive(Debug, Deserialize)]
struct ListParams {
    #[serde(default)]
    offset: Option<usize>,
    #[serde(default)]
    include_disabled: Option<bool>,
    #[serde(default)]
    workspace_id: Option<String>,
}

async fn list_keys(
    Managed(account): Managed,
    query: Result<Query<ListParams>, QueryRejection>,
) -> Result<Json<Data<Vec<Key>>>, AccountError> {
    let Query(params) = query.map_err(|e| AccountError::Invalid(e.body_text()))?;
    let data = account.list(
        params.offset.unwrap_or(0),
        params.include_disabled.unwrap_or(false),
        params.workspace_id.as_deref(),
    );
    Ok(Json(Data { data }))
}

/// The body of `POST /keys`' answer: the key and, once only, its secret.
#[derive(Debug, Serialize)]
struct Created {
    data: Key,
    key: String,
}

async fn create_key(Managed(account): Managed, body: Bytes) -> Result<Response, AccountError> {
    let (data, key) = account.create_key(parse_json::<NewKey>(&body)?)?;
    Ok(applied((StatusCode::CREATED, Json(Created { data, key }))))
}

async fn get_key(
    Managed(account): Managed,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Data<Key>>, AccountError> {
    Ok(Json(Data {
        data: account.key(&hash_of(path)?)?,
    }))
}

async fn patch_key(
    Managed(account): Managed,
    path: Result<Path<String>, PathRejection>,
    body: Bytes,
) -> Result<Response, AccountError> {
    let hash = hash_of(path)?;
    let patch: KeyPatch = parse_json(&body)?;
    let data = account.patch_key(&hash, &patch)?;
    Ok(applied(Json(Data { data })))
}

/// The answer of a `DELETE`: `{"deleted": true}`.
#[derive(Debug, Serialize)]
pub(super) struct Deleted {
    /// Always `true`.
    pub(super) deleted: bool,
}

async fn delete_key(
    Managed(account): Managed,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, AccountError> {
    account.delete_key(&hash_of(path)?)?;
    Ok(applied(Json(Deleted { deleted: true })))
}

async fn current_key(
    State(account): State<Account>,
    headers: HeaderMap,
) -> Result<Response, AccountError> {
    let caller = account.authenticate(headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()))?;
    Ok(Json(Data {
        data: account.current_key(&caller)?,
    })
    .into_response())
}

async fn credits(Managed(account): Managed) -> Result<Json<Data<Credits>>, AccountError> {
    Ok(Json(Data {
        data: account.credits(),
    }))
}

/// 404 with the API's error body, for any path no route serves.
pub(crate) async fn not_found() -> Response {
    error_response(404, "Not Found")
}

/// Waits out an injected latency, to within the operating system's timer
/// slack (tens of microseconds): on a thread of the blocking pool, since
/// tokio's timer ends a sleep on its next 1 ms tick and overshoots by up to
/// a millisecond and more, which the run benchmark counted against the
/// client (a 20 ms latency served in 20.5–22 ms).
async fn added_latency(latency: std::time::Duration) {
    // A join error can only be a panic of `sleep`, which does not panic.
    let _ = tokio::task::spawn_blocking(move || std::thread::sleep(latency)).await;
}

/// Around every `/api/v1` request: injects the faults in force, then writes
/// the journal entry, then (for a dropped request) closes the connection
/// instead of answering.
async fn journal_and_faults(State(account): State<Account>, req: Request, next: Next) -> Response {
    let received_at = SystemClock
        .now()
        .to_rfc3339_opts(SecondsFormat::Millis, true);
    let at = account.now().to_rfc3339_opts(SecondsFormat::Secs, true);
    let method = req.method().clone();
    // Inside the nested router the URI has lost its prefix.
    let verdict_path = req.uri().path().to_owned();
    let path = format!("{API_PREFIX}{verdict_path}");
    let query = req.uri().query().map(str::to_owned);
    let (parts, body) = req.into_parts();
    let bytes = to_bytes(body, MAX_BODY).await;
    let body_json = bytes
        .as_ref()
        .ok()
        .and_then(|b| serde_json::from_slice(b).ok())
        .unwrap_or(serde_json::Value::Null);
    let mutating = matches!(method, Method::POST | Method::PATCH | Method::DELETE);
    let verdict = account.faults().decide(&verdict_path, mutating);
    if !verdict.latency.is_zero() {
        added_latency(verdict.latency).await;
    }
    let retry_after = account.faults().faults().retry_after.unwrap_or(1);
    let (response, handled) = match (bytes, verdict.rate_limited, verdict.error) {
        (Err(_), _, _) => (error_response(413, "Request body too large"), false),
        (_, Some(secs), _) => (
            with_retry_after(error_response(429, "Rate limit exceeded"), secs),
            false,
        ),
        (_, None, Some(status)) => {
            let response = error_response(status, "Injected fault");
            let response = if status == 429 || status == 503 {
                with_retry_after(response, retry_after)
            } else {
                response
            };
            (response, false)
        }
        (Ok(bytes), None, None) => (
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await,
            true,
        ),
    };
    account.record(JournalEntry {
        at,
        received_at,
        method: method.to_string(),
        path,
        query,
        body: body_json,
        status: response.status().as_u16(),
        applied: response.extensions().get::<Applied>().is_some(),
    });
    if handled && verdict.drop {
        dropped(response)
    } else {
        response
    }
}

fn with_retry_after(mut response: Response, secs: u64) -> Response {
    response
        .headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from(secs));
    response
}

/// The response with a body that fails at once: hyper then closes the
/// connection without completing the answer.
fn dropped(response: Response) -> Response {
    let (mut parts, _) = response.into_parts();
    parts.headers.remove(CONTENT_LENGTH);
    let failing = futures::stream::once(async {
        Err::<Bytes, _>(std::io::Error::new(
            std::io::ErrorKind::ConnectionAborted,
            "sandbox fault: connection dropped",
        ))
    });
    Response::from_parts(parts, Body::from_stream(failing))
}
