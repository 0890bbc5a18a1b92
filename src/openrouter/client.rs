//! The HTTP client: pagination, bounded concurrency, rate limit, retries.
//!
//! Every request attempt (retries included) waits for a place under
//! `max_concurrency` and a permit of the shared `requests_per_second`
//! ceiling. 429, 5xx and transport failures are retried with exponential
//! backoff and jitter (or the server's `Retry-After`), up to `max_retries`
//! and within [`RETRY_BUDGET`]; other 4xx are not, nor is a PATCH whose
//! answer never came (it may have been applied).

use super::error::ApiError;
use super::model::{CurrentKey, Data, ErrorBody, KeyPatch};
use super::pacer::Pacer;
use crate::config::{Config, ManagementKey, Workspaces};
use crate::domain::{Credits, Key};
use backon::BackoffBuilder;
use futures::StreamExt;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue, RETRY_AFTER};
use reqwest::{Method, StatusCode};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::Semaphore;

/// `GET /keys` returns at most this many keys a page.
pub const PAGE_SIZE: usize = 100;

/// The largest response body read; a larger one is an `InvalidResponse`.
pub const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// The longest one call may spend retrying (waits included).
pub const RETRY_BUDGET: Duration = Duration::from_secs(120);

/// The first backoff delay by default (it doubles on each retry, with jitter).
pub const DEFAULT_MIN_BACKOFF: Duration = Duration::from_millis(250);

/// The longest single backoff delay.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// How the client reaches the API (from `[openrouter]` and the key lookup).
#[derive(Debug, Clone)]
pub struct ClientSettings {
    /// API base, e.g. `https://openrouter.ai/api/v1`.
    pub base_url: String,
    /// The management key.
    pub management_key: ManagementKey,
    /// The workspaces whose keys are listed.
    pub workspaces: Workspaces,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Requests in flight at once.
    pub max_concurrency: usize,
    /// Shared ceiling of request attempts per second.
    pub requests_per_second: u32,
    /// Retries of 429/5xx/transport failures.
    pub max_retries: u32,
}

impl ClientSettings {
    /// The settings of `[openrouter]`, with the management key looked up
    /// (a [`UsageError`](crate::exit::UsageError) when none is found).
    pub fn from_config(c: &Config) -> anyhow::Result<Self> {
        Ok(ClientSettings::with_key(c, c.management_key()?))
    }

    /// The settings of `[openrouter]` with a key already in hand (the
    /// sandbox's, for the demo and the tests).
    pub fn with_key(c: &Config, management_key: ManagementKey) -> Self {
        let or = &c.openrouter;
        ClientSettings {
            base_url: or.base_url.clone(),
            management_key,
            workspaces: or.workspaces.clone(),
            timeout: or.timeout,
            max_concurrency: or.max_concurrency,
            requests_per_second: or.requests_per_second,
            max_retries: or.max_retries,
        }
    }
}

/// The result of a call that may change something, with what it took:
/// `attempts` = requests sent, `http_status` = the last status seen.
#[derive(Debug, Clone)]
pub struct Attempted<T> {
    /// What came of it.
    pub result: Result<T, ApiError>,
    /// Requests sent (0 when the call was refused before sending).
    pub attempts: u32,
    /// The status of the last response, if any came.
    pub http_status: Option<u16>,
}

/// Told of every request sent (retries included): its method, the HTTP
/// status of the response (`None` when none came) and how long it took.
pub type Observer = Arc<dyn Fn(&str, Option<u16>, Duration) + Send + Sync>;

/// The OpenRouter management API client. Cheap to clone: all clones share
/// the concurrency limit and the rate ceiling.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
    min_backoff: Duration,
    observer: Option<Observer>,
}

struct Inner {
    http: reqwest::Client,
    base: url::Url,
    key: ManagementKey,
    workspaces: Workspaces,
    max_concurrency: usize,
    in_flight: Semaphore,
    pacer: Pacer,
    max_retries: u32,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base_url", &self.inner.base.as_str())
            .field("workspaces", &self.inner.workspaces)
            .finish_non_exhaustive()
    }
}

/// One attempt's outcome, before the retry decision.
struct AttemptOutcome<T> {
    result: Result<T, ApiError>,
    status: Option<u16>,
    retry_after: Option<Duration>,
}

impl Client {
    /// Builds a client. Fails on a bad base URL, a key that cannot be an
    /// HTTP header, or zero concurrency or rate.
    pub fn new(s: ClientSettings) -> anyhow::Result<Client> {
        let base = crate::url_policy::check_url("[openrouter].base_url", &s.base_url)
            .map_err(anyhow::Error::msg)?;
        if base.cannot_be_a_base() {
            anyhow::bail!("[openrouter].base_url cannot be used as a base URL");
        }
        let rate = NonZeroU32::new(s.requests_per_second).ok_or_else(|| {
            anyhow::anyhow!("[openrouter].requests_per_second must be at least 1")
        })?;
        anyhow::ensure!(
            s.max_concurrency > 0,
            "[openrouter].max_concurrency must be at least 1"
        );
        let mut auth = HeaderValue::from_str(&format!("Bearer {}", s.management_key.expose()))
            .map_err(|_| {
                anyhow::anyhow!(
                    "the management key holds characters that cannot be sent in an HTTP header"
                )
            })?;
        auth.set_sensitive(true);
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, auth);
        let http = reqwest::Client::builder()
            .user_agent(concat!("keywarden/", env!("CARGO_PKG_VERSION")))
            .default_headers(headers)
            .timeout(s.timeout)
            .connect_timeout(s.timeout.min(Duration::from_secs(10)))
            .build()?;
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                base,
                key: s.management_key,
                workspaces: s.workspaces,
                max_concurrency: s.max_concurrency,
                in_flight: Semaphore::new(s.max_concurrency),
                pacer: Pacer::per_second(rate),
                max_retries: s.max_retries,
            }),
            min_backoff: DEFAULT_MIN_BACKOFF,
            observer: None,
        })
    }

    /// The same client (sharing its limits) telling `observer` of every
    /// request it sends (the service's `/metrics`).
    pub fn with_observer(mut self, observer: Observer) -> Client {
        self.observer = Some(observer);
        self
    }

    fn observe(&self, method: &Method, status: Option<u16>, took: Duration) {
        if let Some(observer) = &self.observer {
            observer(method.as_str(), status, took);
        }
    }

    /// The same client (sharing its limits) with another first backoff delay;
    /// tests use a short one.
    pub fn with_min_backoff(mut self, min_backoff: Duration) -> Client {
        self.min_backoff = min_backoff;
        self
    }

    /// The API base URL.
    pub fn base_url(&self) -> &str {
        self.inner.base.as_str()
    }

    /// The workspaces `[openrouter]` watches.
    pub(super) fn workspaces(&self) -> &Workspaces {
        &self.inner.workspaces
    }

    /// Requests in flight at once.
    pub(super) fn max_concurrency(&self) -> usize {
        self.inner.max_concurrency
    }

    /// Every key of one workspace (`None` = the default one), disabled ones
    /// included, in the API's order. Pages of 100 are fetched until one
    /// comes back empty (beginning with `first`, the first page, when it
    /// was already fetched); after a full first page, up to
    /// `max_concurrency` pages are requested ahead.
    pub(super) async fn list_workspace(
        &self,
        workspace: Option<&str>,
        first: Option<Vec<Key>>,
    ) -> Result<Vec<Key>, ApiError> {
        let mut keys = match first {
            Some(page) => page,
            None => self.page(workspace, 0).await?,
        };
        if keys.is_empty() {
            return Ok(keys);
        }
        // A short first page means the next is almost surely empty: ask for
        // it alone rather than speculating.
        let ahead = if keys.len() < PAGE_SIZE {
            1
        } else {
            self.inner.max_concurrency
        };
        let mut pages = futures::stream::iter(1..)
            .map(|n| self.page(workspace, n * PAGE_SIZE))
            .buffered(ahead);
        while let Some(page) = pages.next().await {
            let page = page?;
            if page.is_empty() {
                break;
            }
            keys.extend(page);
        }
        Ok(keys)
    }

    /// One page of `GET /keys` from `offset` (`workspace` `None`: the
    /// default workspace's, without `workspace_id`).
    pub(super) async fn page(
        &self,
        workspace: Option<&str>,
        offset: usize,
    ) -> Result<Vec<Key>, ApiError> {
        let mut url = self.endpoint(&["keys"]);
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("include_disabled", "true");
            query.append_pair("offset", &offset.to_string());
            if let Some(w) = workspace {
                query.append_pair("workspace_id", w);
            }
        }
        self.call(Method::GET, url, None, None).await.result
    }

    /// One key by hash.
    pub async fn get_key(&self, hash: &str) -> Result<Key, ApiError> {
        match self.key_url(hash) {
            Ok(url) => self.call(Method::GET, url, None, Some(hash)).await.result,
            Err(e) => Err(e),
        }
    }

    /// `PATCH /keys/{hash}` with `patch`; the key as the API returned it.
    pub async fn update_key(&self, hash: &str, patch: &KeyPatch) -> Attempted<Key> {
        let url = match self.key_url(hash) {
            Ok(url) => url,
            Err(e) => {
                return Attempted {
                    result: Err(e),
                    attempts: 0,
                    http_status: None,
                };
            }
        };
        let body = match serde_json::to_vec(patch) {
            Ok(b) => b,
            Err(e) => {
                let e = ApiError::NotSent {
                    message: format!("cannot encode the patch: {e}"),
                };
                return Attempted {
                    result: Err(e),
                    attempts: 0,
                    http_status: None,
                };
            }
        };
        self.call(Method::PATCH, url, Some(body), Some(hash)).await
    }

    /// The account's credits (`GET /credits`).
    pub async fn credits(&self) -> Result<Credits, ApiError> {
        self.call(Method::GET, self.endpoint(&["credits"]), None, None)
            .await
            .result
    }

    /// The key the client authenticates with (`GET /key`).
    pub async fn current_key(&self) -> Result<CurrentKey, ApiError> {
        self.call(Method::GET, self.endpoint(&["key"]), None, None)
            .await
            .result
    }

    /// The base URL with `segments` appended, each percent-encoded as one
    /// path segment.
    pub(super) fn endpoint(&self, segments: &[&str]) -> url::Url {
        let mut url = self.inner.base.clone();
        url.path_segments_mut()
            .expect("checked in Client::new: the base URL can be a base")
            .pop_if_empty()
            .extend(segments);
        url
    }

    /// `/keys/{hash}`, the hash as one segment. `.` and `..` (which URL
    /// normalisation would resolve to another path) and the empty hash are
    /// refused without sending anything.
    fn key_url(&self, hash: &str) -> Result<url::Url, ApiError> {
        if matches!(hash, "" | "." | "..") {
            return Err(ApiError::NotSent {
                message: format!("{hash:?} is not a key hash"),
            });
        }
        Ok(self.endpoint(&["keys", hash]))
    }

    /// Sends a request, retrying as the module documentation says; the
    /// answer's `data`.
    pub(super) async fn call<T: serde::de::DeserializeOwned>(
        &self,
        method: Method,
        url: url::Url,
        body: Option<Vec<u8>>,
        hash: Option<&str>,
    ) -> Attempted<T> {
        let data = |bytes: &[u8]| serde_json::from_slice::<Data<T>>(bytes).map(|d| d.data);
        self.exchange(method, url, body, hash, data).await
    }

    /// [`Client::call`] for an answer read whole (a listing with its
    /// `total_count`, a bulk call's count).
    pub(super) async fn call_whole<T: serde::de::DeserializeOwned>(
        &self,
        method: Method,
        url: url::Url,
        body: Option<Vec<u8>>,
    ) -> Attempted<T> {
        self.exchange(method, url, body, None, |bytes: &[u8]| {
            serde_json::from_slice::<T>(bytes)
        })
        .await
    }

    /// Sends a request, retrying as the module documentation says; the
    /// answer read by `decode`.
    async fn exchange<T>(
        &self,
        method: Method,
        url: url::Url,
        body: Option<Vec<u8>>,
        hash: Option<&str>,
        decode: impl Fn(&[u8]) -> serde_json::Result<T>,
    ) -> Attempted<T> {
        let started = Instant::now();
        let mut backoff = backon::ExponentialBuilder::default()
            .with_min_delay(self.min_backoff)
            .with_max_delay(MAX_BACKOFF)
            .with_max_times(self.inner.max_retries as usize)
            .with_jitter()
            .build();
        let mut attempts = 0;
        loop {
            attempts += 1;
            let outcome = self
                .attempt(&method, &url, body.as_deref(), hash, &decode)
                .await;
            let err = match outcome.result {
                Ok(value) => {
                    return Attempted {
                        result: Ok(value),
                        attempts,
                        http_status: outcome.status,
                    };
                }
                Err(err) => err,
            };
            let give_up = |err| Attempted {
                result: Err(err),
                attempts,
                http_status: outcome.status,
            };
            // A change whose answer never came may have been applied: sending
            // it again could apply it twice, so it ends here (`unknown`) and
            // the next run resolves it by reading the key (SPEC §4.5).
            if !err.is_retryable() || (err.is_ambiguous() && !method.is_safe()) {
                return give_up(err);
            }
            let Some(delay) = backoff.next() else {
                return give_up(err);
            };
            let wait = outcome.retry_after.unwrap_or(delay);
            if started.elapsed() + wait > RETRY_BUDGET {
                return give_up(err);
            }
            tracing::debug!(%method, path = url.path(), attempt = attempts, wait_ms = wait.as_millis() as u64, error = %err, "retrying");
            tokio::time::sleep(wait).await;
        }
    }

    /// One request: a place under the concurrency limit, a rate permit, the
    /// exchange, the body (capped), the decoding.
    async fn attempt<T>(
        &self,
        method: &Method,
        url: &url::Url,
        body: Option<&[u8]>,
        hash: Option<&str>,
        decode: &impl Fn(&[u8]) -> serde_json::Result<T>,
    ) -> AttemptOutcome<T> {
        let _place = self
            .inner
            .in_flight
            .acquire()
            .await
            .expect("the semaphore is never closed");
        self.inner.pacer.until_ready().await;
        let sent = Instant::now();
        let mut request = self.inner.http.request(method.clone(), url.clone());
        if let Some(body) = body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.to_vec());
        }
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => {
                let err = self.transport_error(&e);
                self.observe(method, None, sent.elapsed());
                tracing::debug!(%method, path = url.path(), elapsed_ms = sent.elapsed().as_millis() as u64, error = %err, "openrouter request failed");
                return AttemptOutcome {
                    result: Err(err),
                    status: None,
                    retry_after: None,
                };
            }
        };
        let status = response.status();
        let retry_after = retry_after(response.headers());
        let bytes = read_capped(response).await;
        self.observe(method, Some(status.as_u16()), sent.elapsed());
        tracing::debug!(%method, path = url.path(), status = status.as_u16(), elapsed_ms = sent.elapsed().as_millis() as u64, "openrouter request");
        let result = match bytes {
            Err(BodyError::TooLarge) => Err(ApiError::InvalidResponse {
                message: format!("the response is larger than {} MiB", MAX_BODY_BYTES >> 20),
            }),
            Err(BodyError::Transport(e)) => Err(ApiError::Ambiguous {
                message: format!(
                    "the response to {method} {} broke off: {}",
                    url.path(),
                    error_chain(&e)
                ),
            }),
            Ok(bytes) if status.is_success() => {
                decode(&bytes).map_err(|e| ApiError::InvalidResponse {
                    message: format!("{method} {} (HTTP {}): {e}", url.path(), status.as_u16()),
                })
            }
            Ok(bytes) => Err(self.status_error(status, &bytes, retry_after, hash)),
        };
        AttemptOutcome {
            result,
            status: Some(status.as_u16()),
            retry_after,
        }
    }

    /// The typed error of a non-2xx answer.
    fn status_error(
        &self,
        status: StatusCode,
        body: &[u8],
        retry_after: Option<Duration>,
        hash: Option<&str>,
    ) -> ApiError {
        let message = self.scrub(&server_message(status, body));
        match status.as_u16() {
            401 | 403 => ApiError::AuthFailed {
                status: status.as_u16(),
                message,
            },
            404 => match hash {
                Some(h) => ApiError::KeyNotFound {
                    hash: h.to_string(),
                },
                None => ApiError::Refused {
                    status: 404,
                    message,
                },
            },
            400 => ApiError::BadRequest { message },
            429 => ApiError::RateLimited { retry_after },
            s if status.is_server_error() => ApiError::Server { status: s, message },
            s => ApiError::Refused { status: s, message },
        }
    }

    /// A failure below HTTP: before anything was sent (`Network`), or after
    /// (`Ambiguous`).
    fn transport_error(&self, e: &reqwest::Error) -> ApiError {
        let detail = self.scrub(&error_chain(e));
        if e.is_connect() || e.is_builder() {
            let base = self.inner.base.as_str().trim_end_matches('/');
            ApiError::Network {
                message: format!("cannot reach {base}: {detail}"),
            }
        } else {
            ApiError::Ambiguous { message: detail }
        }
    }

    /// Removes the management key from text that came from elsewhere.
    fn scrub(&self, text: &str) -> String {
        text.replace(self.inner.key.expose(), "[redacted]")
    }
}

/// What went wrong reading a body.
enum BodyError {
    TooLarge,
    Transport(reqwest::Error),
}

/// Reads the body in chunks, stopping past [`MAX_BODY_BYTES`].
async fn read_capped(mut response: reqwest::Response) -> Result<Vec<u8>, BodyError> {
    if response
        .content_length()
        .is_some_and(|n| n > MAX_BODY_BYTES as u64)
    {
        return Err(BodyError::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(BodyError::Transport)? {
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(BodyError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// `Retry-After` as seconds or an HTTP date (a date in the past is zero).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(
        at.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// The `error.message` of an error body, else the start of the body as
/// text, else the status's reason.
fn server_message(status: StatusCode, body: &[u8]) -> String {
    if let Ok(e) = serde_json::from_slice::<ErrorBody>(body) {
        return e.error.message;
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return status
            .canonical_reason()
            .unwrap_or("no message")
            .to_string();
    }
    let mut short: String = text.chars().take(200).collect();
    if short.len() < text.len() {
        short.push('…');
    }
    short
}

/// An error and its sources, joined with `: `.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let part = s.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = s.source();
    }
    text
}
