//! The `/_sandbox` control API: no auth, loopback peers only.
//!
//! | route | body | answer |
//! | --- | --- | --- |
//! | `POST /spend` | `{"hash", "usd", "byok": false, "model": null}` | `{"data": key}`; 403 disabled or a model its guardrail refuses, 402 over limit, 404 |
//! | `GET`/`POST /clock` | `{"now": RFC 3339}` or `{"advance": "36h"}` | `{"now"}` |
//! | `GET`/`POST /faults` | see [`Faults`]; `{}` clears | the faults in force |
//! | `GET`/`DELETE /requests` | | the journal / `{"cleared": n}` |
//! | `GET`/`POST /traffic` | see [`TrafficSpec`]: adds a stream; `{}` stops every stream | `{"streams": [..]}` with what each spent |
//! | `POST /credits` | `{"total_credits"}` | `{"data": credits}` |
//! | `POST /reset` | | `{"reset": true}` |

use super::account::{Account, AccountError, Spend};
use super::faults::Faults;
use super::journal::JournalEntry;
use super::server::{error_response, parse_json};
use super::traffic::{Stream, TrafficSpec};
use crate::domain::Credits;
use crate::domain::Key;
use crate::openrouter::model::Data;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::net::{IpAddr, SocketAddr};

/// The `/_sandbox` router.
pub(crate) fn router(account: Account) -> Router {
    Router::new()
        .route("/spend", post(spend))
        .route("/clock", get(clock).post(set_clock))
        .route("/faults", get(faults).post(set_faults))
        .route("/requests", get(requests).delete(clear_requests))
        .route("/traffic", get(traffic).post(set_traffic))
        .route("/credits", post(set_credits))
        .route("/reset", post(reset))
        .fallback(super::server::not_found)
        .layer(middleware::from_fn(loopback_only))
        .with_state(account)
}

/// Refuses (403) peers that are not on this host.
async fn loopback_only(
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
    next: Next,
) -> Response {
    if is_loopback(peer.ip()) {
        next.run(req).await
    } else {
        error_response(403, "The sandbox control API answers loopback peers only")
    }
}

/// Whether a peer is on this host (IPv4-mapped IPv6 included).
fn is_loopback(ip: IpAddr) -> bool {
    ip.to_canonical().is_loopback()
}

/// `POST /spend` body: the key and the fields of a [`Spend`].
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SpendOn {
    hash: String,
    usd: f64,
    #[serde(default)]
    byok: bool,
    #[serde(default)]
    model: Option<String>,
}

async fn spend(
    State(account): State<Account>,
    body: Bytes,
) -> Result<Json<Data<Key>>, AccountError> {
    let SpendOn {
        hash,
        usd,
        byok,
        model,
    } = parse_json(&body)?;
    Ok(Json(Data {
        data: account.spend_on(&hash, &Spend { usd, byok, model })?,
    }))
}

/// `POST /clock` body: exactly one of the two.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SetClock {
    #[serde(default)]
    now: Option<DateTime<Utc>>,
    #[serde(default)]
    advance: Option<String>,
}

/// `/clock` answer.
#[derive(Debug, Serialize)]
struct Now {
    now: String,
}

fn now_of(t: DateTime<Utc>) -> Json<Now> {
    Json(Now {
        now: t.to_rfc3339_opts(SecondsFormat::Secs, true),
    })
}

async fn clock(State(account): State<Account>) -> Json<Now> {
    now_of(account.now())
}

async fn set_clock(State(account): State<Account>, body: Bytes) -> Result<Json<Now>, AccountError> {
    match parse_json(&body)? {
        SetClock {
            now: Some(t),
            advance: None,
        } => Ok(now_of(account.set_now(t))),
        SetClock {
            now: None,
            advance: Some(text),
        } => {
            let d = humantime::parse_duration(&text)
                .ok()
                .and_then(|d| chrono::Duration::from_std(d).ok())
                .ok_or_else(|| {
                    AccountError::Invalid(format!(
                        "`advance`: {text:?} is not a duration like \"36h\""
                    ))
                })?;
            Ok(now_of(account.try_advance(d)?))
        }
        _ => Err(AccountError::Invalid(
            "give exactly one of `now` (RFC 3339) and `advance` (e.g. \"36h\")".into(),
        )),
    }
}

async fn faults(State(account): State<Account>) -> Json<Faults> {
    Json(account.faults().faults().clone())
}

async fn set_faults(
    State(account): State<Account>,
    body: Bytes,
) -> Result<Json<Faults>, AccountError> {
    let faults: Faults = parse_json(&body)?;
    account.set_faults(faults.clone())?;
    Ok(Json(faults))
}

async fn requests(State(account): State<Account>) -> Json<Vec<JournalEntry>> {
    Json(account.requests())
}

async fn clear_requests(State(account): State<Account>) -> Json<Value> {
    Json(json!({ "cleared": account.clear_requests() }))
}

/// `/traffic` answer.
#[derive(Debug, Serialize)]
struct Streams {
    streams: Vec<Stream>,
}

async fn traffic(State(account): State<Account>) -> Json<Streams> {
    Json(Streams {
        streams: account.traffic(),
    })
}

/// `POST /traffic`: `{}` stops every stream, a [`TrafficSpec`] adds one.
async fn set_traffic(
    State(account): State<Account>,
    body: Bytes,
) -> Result<Json<Streams>, AccountError> {
    let value: Value = parse_json(&body)?;
    let streams = if value.as_object().is_some_and(|o| o.is_empty()) {
        account.stop_traffic();
        Vec::new()
    } else {
        let spec: TrafficSpec = serde_json::from_value(value)
            .map_err(|e| AccountError::Invalid(format!("traffic: {e}")))?;
        account.add_traffic(spec)?
    };
    Ok(Json(Streams { streams }))
}

/// `POST /credits` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SetCredits {
    total_credits: f64,
}

async fn set_credits(
    State(account): State<Account>,
    body: Bytes,
) -> Result<Json<Data<Credits>>, AccountError> {
    let SetCredits { total_credits } = parse_json(&body)?;
    Ok(Json(Data {
        data: account.set_credits(total_credits)?,
    }))
}

async fn reset(State(account): State<Account>) -> Json<Value> {
    account.reset();
    Json(json!({ "reset": true }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_peers_are_local() {
        for local in ["127.0.0.1", "127.8.9.1", "::1", "::ffff:127.0.0.1"] {
            assert!(is_loopback(local.parse().unwrap()), "{local}");
        }
        for remote in [
            "10.0.0.5",
            "192.168.1.2",
            "::ffff:10.0.0.5",
            "fe80::1",
            "0.0.0.0",
        ] {
            assert!(!is_loopback(remote.parse().unwrap()), "{remote}");
        }
    }
}
