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
use super::server::{Deleted, Managed, applied, page_of, parse_json};
use crate::openrouter::model::Data;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRequestParts, Path, Query};
use axum::http::StatusCode;
use axum::http::request::Parts;
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

/// The `{id}` of a guardrail the account holds (404 otherwise, before the
/// body is read).
struct KnownGuardrail(String);

impl FromRequestParts<Account> for KnownGuardrail {
    type Rejection = AccountError;

    async fn from_request_parts(
        parts: &mut Parts,
        account: &Account,
    ) -> Result<KnownGuardrail, AccountError> {
        let Path(id) = Path::<String>::from_request_parts(parts, account)
            .await
            .map_err(|_| AccountError::GuardrailNotFound)?;
        account.guardrail(&id)?;
        Ok(KnownGuardrail(id))
    }
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
    Managed(account): Managed,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<Page<Guardrail>>, AccountError> {
    let Query(ListQuery {
        offset,
        limit,
        workspace_id,
    }) = query.map_err(|e| AccountError::Invalid(e.body_text()))?;
    let page = PageRequest { offset, limit }.validate()?;
    Ok(Json(account.guardrails(page, workspace_id.as_deref())))
}

async fn create(Managed(account): Managed, body: Bytes) -> Result<Response, AccountError> {
    let data = account.create_guardrail(parse_json(&body)?)?;
    Ok(applied((StatusCode::CREATED, Json(Data { data }))))
}

async fn one(
    Managed(account): Managed,
    KnownGuardrail(id): KnownGuardrail,
) -> Result<Json<Data<Guardrail>>, AccountError> {
    Ok(Json(Data {
        data: account.guardrail(&id)?,
    }))
}

async fn update(
    Managed(account): Managed,
    KnownGuardrail(id): KnownGuardrail,
    body: Bytes,
) -> Result<Response, AccountError> {
    let data = account.update_guardrail(&id, parse_json(&body)?)?;
    Ok(applied(Json(Data { data })))
}

async fn delete(
    Managed(account): Managed,
    KnownGuardrail(id): KnownGuardrail,
) -> Result<Response, AccountError> {
    account.delete_guardrail(&id)?;
    Ok(applied(Json(Deleted { deleted: true })))
}

async fn assign(
    Managed(account): Managed,
    KnownGuardrail(id): KnownGuardrail,
    body: Bytes,
) -> Result<Response, AccountError> {
    let hashes: KeyHashes = parse_json(&body)?;
    let answer: Assigned = account.assign_keys(&id, &hashes)?;
    Ok(applied(Json(answer)))
}

async fn unassign(
    Managed(account): Managed,
    KnownGuardrail(id): KnownGuardrail,
    body: Bytes,
) -> Result<Response, AccountError> {
    let hashes: KeyHashes = parse_json(&body)?;
    let answer: Unassigned = account.unassign_keys(&id, &hashes)?;
    Ok(applied(Json(answer)))
}

async fn assignments(
    Managed(account): Managed,
    KnownGuardrail(id): KnownGuardrail,
    query: Result<Query<PageRequest>, QueryRejection>,
) -> Result<Json<Page<KeyAssignment>>, AccountError> {
    Ok(Json(account.assignments(Some(&id), page_of(query)?)?))
}

async fn all_assignments(
    Managed(account): Managed,
    query: Result<Query<PageRequest>, QueryRejection>,
) -> Result<Json<Page<KeyAssignment>>, AccountError> {
    Ok(Json(account.assignments(None, page_of(query)?)?))
}
