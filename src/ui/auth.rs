//! The token check (SPEC §13): on a non-loopback address every page and
//! answer needs the token, as `Authorization: Bearer TOKEN` or as the
//! session cookie the login form sets (`HttpOnly`, `SameSite=Strict`).
//! Both are compared in constant time: the SHA-256 digests of the given
//! and the configured value are compared with [`subtle::ConstantTimeEq`],
//! so neither the position of the first differing byte nor the length
//! changes how long a wrong token takes.

use super::pages::layout;
use super::state::Dashboard;
use crate::config::UiToken;
use axum::Form;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// The session cookie's name.
pub const COOKIE: &str = "keywarden_ui";

/// Whether `given` is the token: SHA-256 of both, compared in constant time.
pub fn token_matches(given: &str, token: &UiToken) -> bool {
    let given = Sha256::digest(given.as_bytes());
    let wanted = Sha256::digest(token.expose().as_bytes());
    given.ct_eq(&wanted).into()
}

/// The session cookie's value for `token`: a digest of it, so the cookie
/// is not the token itself.
fn session(token: &UiToken) -> String {
    let digest = Sha256::digest(format!("keywarden-ui-session\n{}", token.expose()));
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether the request carries the token (Bearer) or the session cookie.
fn authorized(headers: &HeaderMap, token: &UiToken) -> bool {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if let Some(given) = bearer {
        return token_matches(given.trim(), token);
    }
    let session = session(token);
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().strip_prefix(COOKIE)?.strip_prefix('='))
        .any(|given| {
            Sha256::digest(given.as_bytes())
                .ct_eq(&Sha256::digest(session.as_bytes()))
                .into()
        })
}

/// Lets a request through when no token is configured or it carries it;
/// otherwise 401 with no data: the login form for a page, a line of text
/// for `/api/…`.
pub async fn require_token(
    State(dashboard): State<Arc<Dashboard>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(token) = &dashboard.token else {
        return next.run(request).await;
    };
    if authorized(request.headers(), token) {
        return next.run(request).await;
    }
    let challenge = [(header::WWW_AUTHENTICATE, "Bearer realm=\"keywarden\"")];
    if request.uri().path().starts_with("/api/") {
        return (
            StatusCode::UNAUTHORIZED,
            challenge,
            "a token is required: Authorization: Bearer TOKEN\n",
        )
            .into_response();
    }
    (StatusCode::UNAUTHORIZED, challenge, form(None)).into_response()
}

/// The login form's field.
#[derive(Deserialize)]
pub struct Login {
    token: String,
}

/// `GET /login`.
pub async fn login_form() -> Markup {
    form(None)
}

/// `POST /login`: the right token sets the session cookie and goes to the
/// Overview; a wrong one is 401 and the form again.
pub async fn login(State(dashboard): State<Arc<Dashboard>>, Form(login): Form<Login>) -> Response {
    let Some(token) = &dashboard.token else {
        return Redirect::to("/").into_response();
    };
    if !token_matches(login.token.trim(), token) {
        return (StatusCode::UNAUTHORIZED, form(Some("wrong token"))).into_response();
    }
    let cookie = format!(
        "{COOKIE}={}; HttpOnly; SameSite=Strict; Path=/",
        session(token)
    );
    ([(header::SET_COOKIE, cookie)], Redirect::to("/")).into_response()
}

/// The login page.
fn form(problem: Option<&str>) -> Markup {
    layout::bare(
        "Sign in",
        html! {
            form.login method="post" action="/login" {
                h1 { "keywarden dashboard" }
                p { "This dashboard needs its token (" code { "KEYWARDEN_UI_TOKEN" } ")." }
                @if let Some(problem) = problem { p.bad { (problem) } }
                label for="token" { "Token" }
                input #token type="password" name="token" autocomplete="current-password" required;
                button type="submit" { "Sign in" }
            }
        },
    )
}
