//! The `/api/v1/guardrails` routes (management key only):
//!
//! | route | body | answer |
//! | --- | --- | --- |
//! | `GET /guardrails?offset=&limit=&workspace_id=` | | `{"data": [Guardrail], "total_count"}`; default: the default workspace's |
//! | `POST /guardrails` | `{"name", "allowed_models", …}` | 201 `{"data": Guardrail}`; 400 |
//! | `GET`/`PATCH`/`DELETE /guardrails/{id}` | the fields to set | `{"data": Guardrail}` / `{"deleted": true}`; 404 |
//! | `POST /guardrails/{id}/assignments/keys` | `{"key_hashes": [..]}` | `{"assigned_count"}`: replaces each key's guardrail; unknown hashes skipped |
//! | `POST /guardrails/{id}/assignments/keys/remove` | `{"key_hashes": [..]}` | `{"unassigned_count"}` |
//! | `GET /guardrails/{id}/assignments/keys?offset=&limit=` | | `{"data": [KeyAssignment], "total_count"}`; 404 |
//! | `GET /guardrails/assignments/keys?offset=&limit=` | | every assignment, paged the same way |

use super::account::{Account, AccountError};
use super::guardrail::{Assigned, Guardrail, KeyAssignment, KeyHashes, Unassigned};
use super::paging::{Page, PageRequest};
use super::server::{Deleted, applied, page_of, parse_json, require_management};
use crate::openrouter::model::Data;
use axum::body::Bytes;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;

/// The guardrail routes, to merge into the `/api/v1` router.
pub(super) fn router() -> Router<Account> {
    Router::new()
        .route("/guardrails", get(list).post(create))
        .route("/guardrails/assignments/keys", get(all_assignments))
        .route("/guardrails/{id}", get(one).patch(update).delete(delete))
        .route(
            "/guardrails/{id}/assignments/keys",
            get(assignments).post(assign),
        )
        .route("/guardrails/{id}/assignments/keys/remove", post(unassign))
}

/// A `{id}` path segment; one that cannot be decoded names no guardrail.
fn id_of(path: Result<Path<String>, PathRejection>) -> Result<String, AccountError> {
    path.map(|Path(id)| id)
        .map_err(|_| AccountError::GuardrailNotFound)
}

/// The query of `GET /guardrails` (flattening [`PageRequest`] in would
/// lose the numbers' types in a query string).
#[derive(Debug, Deserialize)]
struct ListQuery {
    #[serde(default)]
    offset: Option<usize>,
    #[serde(default)]
    limit: Option<usize>,
    #[serde(default)]
    workspace_id: Option<String>,
}

async fn list(
    State(account): State<Account>,
    headers: HeaderMap,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<Page<Guardrail>>, AccountError> {
    require_management(&account, &headers)?;
    let Query(ListQuery {
        offset,
        limit,
        workspace_id,
    }) = query.map_err(|e| AccountError::Invalid(e.body_text()))?;
    let page = PageRequest { offset, limit }.validate()?;
    Ok(Json(account.guardrails(page, workspace_id.as_deref())))
}

async fn create(
    State(account): State<Account>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AccountError> {
    require_management(&account, &headers)?;
    let data = account.create_guardrail(parse_json(&body)?)?;
    Ok(applied((StatusCode::CREATED, Json(Data { data }))))
}

async fn one(
    State(account): State<Account>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Data<Guardrail>>, AccountError> {
    require_management(&account, &headers)?;
    Ok(Json(Data {
        data: account.guardrail(&id_of(path)?)?,
    }))
}

async fn update(
    State(account): State<Account>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    body: Bytes,
) -> Result<Response, AccountError> {
    require_management(&account, &headers)?;
    let id = id_of(path)?;
    account.guardrail(&id)?;
    let data = account.update_guardrail(&id, parse_json(&body)?)?;
    Ok(applied(Json(Data { data })))
}

async fn delete(
    State(account): State<Account>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, AccountError> {
    require_management(&account, &headers)?;
    account.delete_guardrail(&id_of(path)?)?;
    Ok(applied(Json(Deleted { deleted: true })))
}

async fn assign(
    State(account): State<Account>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    body: Bytes,
) -> Result<Response, AccountError> {
    require_management(&account, &headers)?;
    let id = id_of(path)?;
    account.guardrail(&id)?;
    let hashes: KeyHashes = parse_json(&body)?;
    let answer: Assigned = account.assign_keys(&id, &hashes)?;
    Ok(applied(Json(answer)))
}

async fn unassign(
    State(account): State<Account>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    body: Bytes,
) -> Result<Response, AccountError> {
    require_management(&account, &headers)?;
    let id = id_of(path)?;
    account.guardrail(&id)?;
    let hashes: KeyHashes = parse_json(&body)?;
    let answer: Unassigned = account.unassign_keys(&id, &hashes)?;
    Ok(applied(Json(answer)))
}

async fn assignments(
    State(account): State<Account>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<PageRequest>, QueryRejection>,
) -> Result<Json<Page<KeyAssignment>>, AccountError> {
    require_management(&account, &headers)?;
    let id = id_of(path)?;
    Ok(Json(account.assignments(Some(&id), page_of(query)?)?))
}

async fn all_assignments(
    State(account): State<Account>,
    headers: HeaderMap,
    query: Result<Query<PageRequest>, QueryRejection>,
) -> Result<Json<Page<KeyAssignment>>, AccountError> {
    require_management(&account, &headers)?;
    Ok(Json(account.assignments(None, page_of(query)?)?))
}
