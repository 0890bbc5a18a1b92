//! `/api/…`: the data behind the pages as JSON, in the CLI's
//! `--format json` shapes: `keys` as `keys list`, `history` as `history`,
//! `rules` as `rules list`, `forecasts` as `keywarden forecast` (and
//! `budgets` its rows with a known budget); `status` is the Overview's.

use super::error::UiError;
use super::filters::{HistoryQuery, KeyQuery};
use super::paging::{Page, PageQuery};
use super::state::{Dashboard, View};
use super::status::{Status, status as overview_status};
use crate::domain::timestamp;
use crate::engine::outlook::ForecastRow;
use crate::listing::keys::{Holdings, ListedKey};
use crate::listing::rules::{RuleListing, stored_rules};
use crate::store::ChangeRow;
use axum::Json;
use axum::extract::{Query, State};
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde::Serialize;
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
    let store = &d.shell.store;
    let rules = stored_rules(store).await?;
    let holdings = Holdings::read(store, &rules)
        .await?
        .with_forecasts(view.forecasts());
    let selected = query.select(&view.listing, &holdings)?;
    let listed: Vec<ListedKey> = query
        .held_on_page(&selected, &view.listing, &holdings)
        .into_iter()
        .map(ListedKey::from)
        .collect();
    Ok(query
        .page(selected.len())
        .json(listed, "/api/keys", &query.params()))
}

/// `GET /api/forecasts?page=N`: `keywarden forecast --format json`, its
/// rows a page at a time (500 rows a page), written from the last
/// observation as they stand (nothing copied).
pub async fn forecasts(
    State(d): State<Arc<Dashboard>>,
    Query(query): Query<PageQuery>,
) -> Response {
    let view = d.view();
    let rows = view.forecast_rows();
    let page = Page::new(query.page, rows.len());
    let body = OutlookPage {
        at: observed_at(&d, &view),
        forecasts: page.of(rows),
    };
    page.json(body, "/api/forecasts", &[])
}

/// `GET /api/budgets?page=N`: the forecast rows whose budget is known, a
/// page at a time (500 rows a page).
pub async fn budgets(State(d): State<Arc<Dashboard>>, Query(query): Query<PageQuery>) -> Response {
    let view = d.view();
    let known: Vec<&ForecastRow> = view
        .forecast_rows()
        .iter()
        .filter(|r| r.budget_usd.is_some())
        .collect();
    let page = Page::new(query.page, known.len());
    page.json(page.of(&known), "/api/budgets", &[])
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

/// A page of an [`Outlook`]: its instant and some of its rows, borrowed.
#[derive(Serialize)]
struct OutlookPage<'a> {
    #[serde(serialize_with = "timestamp::serialize")]
    at: DateTime<Utc>,
    forecasts: &'a [ForecastRow],
}

/// The instant of the last observed outlook (now before the first).
pub fn observed_at(d: &Dashboard, view: &View) -> DateTime<Utc> {
    view.outlook
        .as_ref()
        .map_or_else(|| d.shell.clock.now(), |o| o.at)
}
