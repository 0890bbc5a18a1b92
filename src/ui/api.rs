//! `/api/…`: the data behind the pages as JSON, in the CLI's
//! `--format json` shapes: `keys` as `keys list`, `history` as `history`,
//! `rules` as `rules list`, `forecasts` as `keywarden forecast` (and
//! `budgets` its rows with a known budget); `status` is the Overview's.

use super::error::UiError;
use super::filters::{HistoryQuery, KeyQuery};
use super::state::Dashboard;
use super::status::{Status, status as overview_status};
use crate::engine::outlook::{ForecastRow, Outlook};
use crate::listing::keys::{Holdings, ListedKey};
use crate::listing::rules::RuleListing;
use crate::store::ChangeRow;
use axum::Json;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

/// `GET /api/status`.
pub async fn status(State(d): State<Arc<Dashboard>>) -> Result<Json<Status>, UiError> {
    Ok(Json(overview_status(&d).await?))
}

/// `GET /api/keys?name=…&workspace=…&state=…&rule=…&page=N`: a page of
/// the Keys page's keys (500), each as `keys list --format json` prints it.
pub async fn keys(
    State(d): State<Arc<Dashboard>>,
    Query(query): Query<KeyQuery>,
) -> Result<Response, UiError> {
    let view = d.view();
    let forecasts = outlook(&d).forecasts;
    let holdings = Holdings::read(&d.shell.store, forecasts).await?;
    let selected = query.select(&view.listing, &holdings)?;
    let listed: Vec<ListedKey> = query
        .held_on_page(selected, &view.listing, &holdings)
        .into_iter()
        .map(ListedKey::from)
        .collect();
    Ok(Json(listed).into_response())
}

/// `GET /api/forecasts`.
pub async fn forecasts(State(d): State<Arc<Dashboard>>) -> Json<Outlook> {
    Json(outlook(&d))
}

/// `GET /api/budgets`: the forecast rows whose budget is known.
pub async fn budgets(State(d): State<Arc<Dashboard>>) -> Json<Vec<ForecastRow>> {
    Json(
        outlook(&d)
            .forecasts
            .into_iter()
            .filter(|r| r.budget_usd.is_some())
            .collect(),
    )
}

/// `GET /api/history?since=…&key=…&rule=…&kind=…&outcome=…&page=N`.
pub async fn history(
    State(d): State<Arc<Dashboard>>,
    Query(query): Query<HistoryQuery>,
) -> Result<Json<Vec<ChangeRow>>, UiError> {
    let filter = query.filter(&d.shell.store, d.shell.clock.now()).await?;
    Ok(Json(d.shell.store.changes(&filter).await?))
}

/// `GET /api/rules`.
pub async fn rules(State(d): State<Arc<Dashboard>>) -> Result<Json<Vec<RuleListing>>, UiError> {
    let rules = d.shell.store.rules().await?;
    Ok(Json(rules.iter().map(RuleListing::of).collect()))
}

/// The last observed outlook (none yet: no rows, at now).
pub fn outlook(d: &Dashboard) -> Outlook {
    d.view().outlook.clone().unwrap_or_else(|| Outlook {
        at: d.shell.clock.now(),
        forecasts: Vec::new(),
    })
}
