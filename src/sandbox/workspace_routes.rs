//! The `/api/v1/workspaces` routes (management key only):
//!
//! | route | body | answer |
//! | --- | --- | --- |
//! | `GET /workspaces?offset=&limit=` | | `{"data": [Workspace], "total_count"}`; `limit` 1–100, default 50 |
//! | `POST /workspaces` | `{"name", "slug", …}` | 201 `{"data": Workspace}`; 400 for a bad or taken slug |
//! | `GET /workspaces/{id}` | | `{"data": Workspace}` by id or slug; 404 |
//! | `DELETE /workspaces/{id}` | | `{"deleted": true}` by id or slug; 400 while it holds keys, 403 for the default workspace, 404 |

use super::account::{Account, AccountError};
use super::paging::{Page, PageRequest};
use super::server::{Deleted, Managed, applied, page_of, parse_json};
use super::workspace::Workspace;
use crate::openrouter::model::Data;
use axum::body::Bytes;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};

/// The workspace routes, to merge into the `/api/v1` router.
pub(super) fn router() -> Router<Account> {
    Router::new()
        .route("/workspaces", get(list).post(create))
        .route("/workspaces/{id}", get(one).delete(delete))
}

async fn list(
    Managed(account): Managed,
    query: Result<Query<PageRequest>, QueryRejection>,
) -> Result<Json<Page<Workspace>>, AccountError> {
    Ok(Json(account.workspaces(page_of(query)?)))
}

async fn create(Managed(account): Managed, body: Bytes) -> Result<Response, AccountError> {
    let data = account.create_workspace(parse_json(&body)?)?;
    Ok(applied((StatusCode::CREATED, Json(Data { data }))))
}

async fn one(
    Managed(account): Managed,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Data<Workspace>>, AccountError> {
    let Path(id) = path.map_err(|_| AccountError::WorkspaceNotFound)?;
    Ok(Json(Data {
        data: account.workspace(&id)?,
    }))
}

async fn delete(
    Managed(account): Managed,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, AccountError> {
    let Path(id) = path.map_err(|_| AccountError::WorkspaceNotFound)?;
    account.delete_workspace(&id)?;
    Ok(applied(Json(Deleted { deleted: true })))
}
