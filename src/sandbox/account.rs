//! The simulated account: its keys and their usage, workspaces, guardrails
//! and which key holds which, credits, the sandbox clock, the faults in
//! force and the journal. Cheap to clone; every clone is the same account.

mod catalog;

use super::current_key::CurrentKeyView;
pub use super::error::AccountError;
use super::faults::{ActiveFaults, Faults};
use super::guardrail::{Assignment, Guardrail, start_guardrails};
pub use super::ids::DEFAULT_WORKSPACE;
use super::ids::{CREATOR, sha256_hex, uuid_of};
use super::journal::{Journal, JournalEntry};
use super::seed::SeedKey;
use super::traffic::{self, Stream, TrafficSpec};
use super::window::{Periods, UsageCounter};
use super::workspace::{Workspace, start_workspaces};
use crate::clock::Clock;
use crate::domain::Credits;
use crate::domain::{Key, LimitReset};
use crate::openrouter::model::KeyPatch;
use chrono::{DateTime, SecondsFormat, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

/// The account's credits at start (USD).
pub const START_CREDITS: f64 = 1000.0;
/// Keys per `GET /keys` page.
pub const PAGE_SIZE: usize = 100;

/// Who a request is authenticated as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// The management key the sandbox was started with.
    Management,
    /// An ordinary key (one created by `POST /keys` or seeded), by hash.
    Key(String),
}

/// The body of `POST /keys`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewKey {
    /// Name (non-empty).
    pub name: String,
    /// Spending limit in USD, `null` = none.
    #[serde(default)]
    pub limit: Option<f64>,
    /// How the limit resets, `null` = never.
    #[serde(default)]
    pub limit_reset: Option<LimitReset>,
    /// Count BYOK spend in the limit.
    #[serde(default)]
    pub include_byok_in_limit: bool,
    /// Expiry (UTC).
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
    /// Creating member.
    #[serde(default)]
    pub creator_user_id: Option<String>,
    /// Workspace (default: the default workspace).
    #[serde(default)]
    pub workspace_id: Option<String>,
}

/// One spend on a key (`POST /_sandbox/spend`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Spend {
    /// How much, in USD (≥ 0).
    pub usd: f64,
    /// BYOK spend rather than credit spend.
    pub byok: bool,
    /// The model spent on (`provider/name`); checked against the key's
    /// guardrail. `None`: no model, no check.
    pub model: Option<String>,
}

/// The sandbox clock: stands still (moved only when told) or follows real
/// time from a base instant.
#[derive(Debug, Clone, Copy)]
struct SandboxClock {
    base: DateTime<Utc>,
    /// `Some`: real time elapsed since this instant is added to `base`.
    ticking_since: Option<Instant>,
}

impl SandboxClock {
    fn now(&self) -> DateTime<Utc> {
        let elapsed = self.ticking_since.map(|i| i.elapsed()).unwrap_or_default();
        chrono::Duration::from_std(elapsed)
            .ok()
            .and_then(|d| self.base.checked_add_signed(d))
            .unwrap_or(self.base)
    }

    fn set(&mut self, t: DateTime<Utc>) {
        self.base = t;
        if self.ticking_since.is_some() {
            self.ticking_since = Some(Instant::now());
        }
    }
}

/// One key as the account holds it.
#[derive(Debug, Clone)]
struct KeyRecord {
    hash: String,
    secret: String,
    name: String,
    label: String,
    disabled: bool,
    limit: Option<f64>,
    limit_reset: Option<LimitReset>,
    include_byok_in_limit: bool,
    workspace_id: String,
    external_user: Option<String>,
    expires_at: Option<DateTime<Utc>>,
    creator_user_id: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: Option<DateTime<Utc>>,
    last_used_at: Option<DateTime<Utc>>,
    usage: UsageCounter,
    byok: UsageCounter,
    /// The guardrail it holds, if any.
    assignment: Option<Assignment>,
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The visible form of a secret: `sk-or-v1-0e6...1c96`.
fn label_of(secret: &str) -> String {
    let hex = secret.trim_start_matches("sk-or-v1-");
    let (head, tail) = (
        hex.get(..3).unwrap_or(""),
        hex.get(hex.len().saturating_sub(4)..).unwrap_or(""),
    );
    format!("sk-or-v1-{head}...{tail}")
}

/// Checks a limit: a finite number ≥ 0, or `None`.
fn valid_limit(limit: Option<f64>) -> Result<(), AccountError> {
    match limit {
        Some(l) if !l.is_finite() || l < 0.0 => Err(AccountError::Invalid(
            "`limit` must be a number >= 0 or null".into(),
        )),
        _ => Ok(()),
    }
}

fn valid_name(name: &str) -> Result<(), AccountError> {
    if name.trim().is_empty() {
        return Err(AccountError::Invalid("`name` must not be empty".into()));
    }
    Ok(())
}

impl KeyRecord {
    fn from_seed(seed: &SeedKey, now: DateTime<Utc>) -> KeyRecord {
        let hash = seed.hash();
        let secret = format!("sk-or-v1-{}", sha256_hex(&format!("secret\n{hash}")));
        let max = |a: f64, b: f64, c: f64| a.max(b).max(c);
        let usage = UsageCounter::new(
            seed.usage
                .unwrap_or_else(|| max(seed.usage_daily, seed.usage_weekly, seed.usage_monthly)),
            seed.usage_daily,
            seed.usage_weekly,
            seed.usage_monthly,
            now,
        );
        let byok = UsageCounter::new(
            seed.byok_usage.unwrap_or_else(|| {
                max(
                    seed.byok_usage_daily,
                    seed.byok_usage_weekly,
                    seed.byok_usage_monthly,
                )
            }),
            seed.byok_usage_daily,
            seed.byok_usage_weekly,
            seed.byok_usage_monthly,
            now,
        );
        KeyRecord {
            label: seed.label.clone().unwrap_or_else(|| label_of(&secret)),
            hash,
            secret,
            name: seed.name.clone(),
            disabled: seed.disabled,
            limit: seed.limit,
            limit_reset: seed.limit_reset,
            include_byok_in_limit: seed.include_byok_in_limit,
            workspace_id: seed
                .workspace_id
                .clone()
                .unwrap_or_else(|| DEFAULT_WORKSPACE.into()),
            external_user: seed.external_user.clone(),
            expires_at: seed.expires_at,
            creator_user_id: Some(CREATOR.into()),
            created_at: now,
            updated_at: None,
            last_used_at: None,
            usage,
            byok,
            assignment: seed.guardrail_id.as_ref().map(|guardrail_id| Assignment {
                id: uuid_of(&format!("seeded assignment\n{}", seed.hash())),
                guardrail_id: guardrail_id.clone(),
                created_at: now,
            }),
        }
    }

    /// `limit - spend in the limit_reset window` (plus BYOK spend when it
    /// counts), never below 0; `None` without a limit.
    fn limit_remaining(&self, now: Periods) -> Option<f64> {
        self.limit.map(|limit| {
            let byok = if self.include_byok_in_limit {
                self.byok.in_window(self.limit_reset, now)
            } else {
                0.0
            };
            (limit - self.usage.in_window(self.limit_reset, now) - byok).max(0.0)
        })
    }

    /// The wire form at `now`.
    fn wire(&self, now: Periods) -> Key {
        Key {
            hash: self.hash.clone(),
            name: self.name.clone(),
            label: self.label.clone(),
            disabled: self.disabled,
            limit: self.limit,
            limit_remaining: self.limit_remaining(now),
            limit_reset: self.limit_reset.map(|r| r.as_str().to_owned()),
            include_byok_in_limit: self.include_byok_in_limit,
            usage: Some(self.usage.total()),
            usage_daily: Some(self.usage.daily(now)),
            usage_weekly: Some(self.usage.weekly(now)),
            usage_monthly: Some(self.usage.monthly(now)),
            byok_usage: Some(self.byok.total()),
            byok_usage_daily: Some(self.byok.daily(now)),
            byok_usage_weekly: Some(self.byok.weekly(now)),
            byok_usage_monthly: Some(self.byok.monthly(now)),
            created_at: Some(rfc3339(self.created_at)),
            updated_at: self.updated_at.map(rfc3339),
            creator_user_id: self.creator_user_id.clone(),
            workspace_id: Some(self.workspace_id.clone()),
            external_user: self.external_user.clone(),
            last_used_at: self.last_used_at.map(rfc3339),
            expires_at: self.expires_at.map(rfc3339),
            guardrail: None,
        }
    }
}

/// Everything behind the account's lock.
#[derive(Debug)]
struct State {
    clock: SandboxClock,
    /// Keys by creation sequence: iteration is creation order.
    keys: BTreeMap<u64, KeyRecord>,
    by_hash: HashMap<String, u64>,
    by_secret: HashMap<String, u64>,
    next_seq: u64,
    credits: Credits,
    faults: ActiveFaults,
    journal: Journal,
    /// Simulated traffic in force, spent as the clock moves.
    traffic: Vec<Stream>,
    /// Workspaces in creation order.
    workspaces: Vec<Workspace>,
    /// Guardrails in creation order.
    guardrails: Vec<Guardrail>,
    /// Numbers the workspaces, guardrails and assignments created, for their ids.
    next_id: u64,
}

impl State {
    fn new(clock: SandboxClock) -> State {
        State {
            clock,
            keys: BTreeMap::new(),
            by_hash: HashMap::new(),
            by_secret: HashMap::new(),
            next_seq: 0,
            credits: Credits {
                total_credits: START_CREDITS,
                total_usage: 0.0,
            },
            faults: ActiveFaults::default(),
            journal: Journal::default(),
            traffic: Vec::new(),
            workspaces: start_workspaces(clock.now()),
            guardrails: start_guardrails(clock.now()),
            next_id: 0,
        }
    }

    /// Spends `usd` on the key `hash` at `at` (see [`Account::spend`]).
    fn spend_at(
        &mut self,
        hash: &str,
        spend: &Spend,
        at: DateTime<Utc>,
    ) -> Result<&KeyRecord, AccountError> {
        let Spend { usd, byok, .. } = *spend;
        let periods = Periods::at(at);
        if let Some(model) = &spend.model {
            self.admit(hash, model)?;
        }
        let key = self.key_mut(hash)?;
        if key.disabled {
            return Err(AccountError::Disabled);
        }
        if key.expires_at.is_some_and(|t| t <= at) {
            return Err(AccountError::Expired);
        }
        if let (Some(limit), Some(remaining)) = (key.limit, key.limit_remaining(periods)) {
            if (!byok || key.include_byok_in_limit) && remaining <= 0.0 {
                return Err(AccountError::OverLimit { limit });
            }
        }
        if byok {
            key.byok.add(usd, periods);
        } else {
            key.usage.add(usd, periods);
        }
        key.last_used_at = Some(at);
        if !byok {
            self.credits.total_usage += usd;
        }
        self.key_mut(hash).map(|k| &*k)
    }

    /// Spends what the traffic streams owe for the whole minutes up to the
    /// clock's now, minute by minute in time order, each at its own minute.
    fn accrue_traffic(&mut self) {
        if self.traffic.is_empty() {
            return;
        }
        let now = self.clock.now();
        let mut streams = std::mem::take(&mut self.traffic);
        for stream in &mut streams {
            let minutes = stream.minutes_due(now);
            if minutes.is_empty() {
                continue;
            }
            let selected: Vec<(String, u64)> = self
                .keys
                .values()
                .filter(|k| stream.selects(&k.name, &k.hash))
                .map(|k| (k.hash.clone(), traffic::key_salt(&k.hash)))
                .collect();
            for minute in minutes {
                let at = DateTime::from_timestamp(minute * 60, 0).unwrap_or(now);
                for (hash, salt) in &selected {
                    let usd = stream.spec.spend_in(minute, *salt);
                    let spend = Spend {
                        usd,
                        byok: stream.spec.byok,
                        model: None,
                    };
                    let spent = self.spend_at(hash, &spend, at).is_ok();
                    stream.count(spent.then_some(usd));
                }
            }
        }
        self.traffic = streams;
    }

    fn periods(&self) -> Periods {
        Periods::at(self.clock.now())
    }

    fn insert(&mut self, record: KeyRecord) -> Result<&KeyRecord, AccountError> {
        if self.by_hash.contains_key(&record.hash) {
            return Err(AccountError::DuplicateHash(record.hash));
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.credits.total_usage += record.usage.total();
        self.by_hash.insert(record.hash.clone(), seq);
        self.by_secret.insert(record.secret.clone(), seq);
        Ok(self.keys.entry(seq).or_insert(record))
    }

    fn seed(&mut self, seeds: &[SeedKey]) -> Result<(), AccountError> {
        let now = self.clock.now();
        for seed in seeds {
            seed.validate().map_err(AccountError::Invalid)?;
            if let Some(id) = &seed.guardrail_id {
                if !self.guardrails.iter().any(|g| &g.id == id) {
                    return Err(AccountError::Invalid(format!(
                        "key {:?}: no guardrail has id {id}",
                        seed.name
                    )));
                }
            }
            self.insert(KeyRecord::from_seed(seed, now))?;
        }
        Ok(())
    }

    fn key_mut(&mut self, hash: &str) -> Result<&mut KeyRecord, AccountError> {
        let seq = self.by_hash.get(hash).ok_or(AccountError::NotFound)?;
        self.keys.get_mut(seq).ok_or(AccountError::NotFound)
    }
}

/// What the account was started with, for [`Account::reset`].
#[derive(Debug)]
struct Start {
    seeds: Vec<SeedKey>,
}

/// The simulated account (see the module doc).
#[derive(Debug, Clone)]
pub struct Account {
    state: Arc<Mutex<State>>,
    start: Arc<Start>,
    management_key: Arc<SecretString>,
}

impl Account {
    /// An account holding `seeds` (in that order), authenticated by
    /// `management_key`. With `start` the clock stands at that instant and
    /// moves only when told; without, it follows real time from now.
    pub fn new(
        seeds: Vec<SeedKey>,
        management_key: SecretString,
        start: Option<DateTime<Utc>>,
    ) -> Result<Account, AccountError> {
        use crate::clock::{Clock, SystemClock};
        let clock = match start {
            Some(t) => SandboxClock {
                base: t,
                ticking_since: None,
            },
            None => SandboxClock {
                base: SystemClock.now(),
                ticking_since: Some(Instant::now()),
            },
        };
        let mut state = State::new(clock);
        state.seed(&seeds)?;
        Ok(Account {
            state: Arc::new(Mutex::new(state)),
            start: Arc::new(Start { seeds }),
            management_key: Arc::new(management_key),
        })
    }

    /// The lock, with the traffic spent up to now; a panic elsewhere while
    /// holding it does not poison the account.
    fn state(&self) -> MutexGuard<'_, State> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.accrue_traffic();
        state
    }

    /// The management key the account accepts.
    pub fn management_key(&self) -> &SecretString {
        &self.management_key
    }

    /// Who the `Authorization` header value (`Bearer …`) authenticates.
    pub fn authenticate(&self, authorization: Option<&str>) -> Result<Caller, AccountError> {
        let token = authorization
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(AccountError::MissingAuth)?;
        if token == self.management_key.expose_secret() {
            return Ok(Caller::Management);
        }
        let state = self.state();
        let seq = state.by_secret.get(token).ok_or(AccountError::BadAuth)?;
        let key = state.keys.get(seq).ok_or(AccountError::BadAuth)?;
        Ok(Caller::Key(key.hash.clone()))
    }

    /// The sandbox clock's now.
    pub fn now(&self) -> DateTime<Utc> {
        self.state().clock.now()
    }

    /// Sets the sandbox clock; usage windows roll over as it crosses boundaries.
    pub fn set_now(&self, t: DateTime<Utc>) -> DateTime<Utc> {
        let mut state = self.state();
        state.clock.set(t);
        state.clock.now()
    }

    /// Moves the sandbox clock by `d` (may be negative); returns the new now.
    /// A move past the end of time leaves the clock where it is.
    pub fn advance(&self, d: chrono::Duration) -> DateTime<Utc> {
        self.try_advance(d).unwrap_or_else(|_| self.now())
    }

    /// Like [`Account::advance`], but refuses a move past the end of time.
    pub fn try_advance(&self, d: chrono::Duration) -> Result<DateTime<Utc>, AccountError> {
        let mut state = self.state();
        state.clock.base = state
            .clock
            .base
            .checked_add_signed(d)
            .ok_or_else(|| AccountError::Invalid("the clock cannot move that far".into()))?;
        Ok(state.clock.now())
    }

    /// Every key, disabled and all workspaces included, in creation order.
    pub fn keys(&self) -> Vec<Key> {
        let state = self.state();
        let now = state.periods();
        state.keys.values().map(|k| k.wire(now)).collect()
    }

    /// One page of `GET /keys`: at most [`PAGE_SIZE`] keys of `workspace_id`
    /// (default: the default workspace) after skipping `offset`, disabled
    /// ones only with `include_disabled`.
    pub fn list(
        &self,
        offset: usize,
        include_disabled: bool,
        workspace_id: Option<&str>,
    ) -> Vec<Key> {
        let state = self.state();
        let now = state.periods();
        let workspace = workspace_id.unwrap_or(DEFAULT_WORKSPACE);
        state
            .keys
            .values()
            .filter(|k| k.workspace_id == workspace && (include_disabled || !k.disabled))
            .skip(offset)
            .take(PAGE_SIZE)
            .map(|k| k.wire(now))
            .collect()
    }

    /// One key by hash.
    pub fn key(&self, hash: &str) -> Result<Key, AccountError> {
        let mut state = self.state();
        let now = state.periods();
        Ok(state.key_mut(hash)?.wire(now))
    }

    /// Creates a key (`POST /keys`); returns it and its secret. Its hash is
    /// the SHA-256 of its name and creation number, so runs repeat.
    pub fn create_key(&self, new: NewKey) -> Result<(Key, String), AccountError> {
        valid_name(&new.name)?;
        valid_limit(new.limit)?;
        let mut state = self.state();
        let now = state.clock.now();
        let seed = SeedKey {
            hash: Some(sha256_hex(&format!("{}\n{}", new.name, state.next_seq))),
            name: new.name,
            limit: new.limit,
            limit_reset: new.limit_reset,
            include_byok_in_limit: new.include_byok_in_limit,
            workspace_id: new.workspace_id,
            expires_at: new.expires_at,
            ..SeedKey::default()
        };
        let mut record = KeyRecord::from_seed(&seed, now);
        if new.creator_user_id.is_some() {
            record.creator_user_id = new.creator_user_id;
        }
        let periods = Periods::at(now);
        let record = state.insert(record)?;
        Ok((record.wire(periods), record.secret.clone()))
    }

    /// Applies a `PATCH /keys/{hash}` body; returns the key after it.
    pub fn patch_key(&self, hash: &str, patch: &KeyPatch) -> Result<Key, AccountError> {
        if let Some(name) = &patch.name {
            valid_name(name)?;
        }
        if let Some(limit) = patch.limit {
            valid_limit(limit)?;
        }
        if patch.workspace_id.as_deref().is_some_and(str::is_empty) {
            return Err(AccountError::Invalid(
                "`workspace_id` must not be empty".into(),
            ));
        }
        let mut state = self.state();
        let now = state.clock.now();
        let key = state.key_mut(hash)?;
        if let Some(name) = &patch.name {
            key.name.clone_from(name);
        }
        if let Some(disabled) = patch.disabled {
            key.disabled = disabled;
        }
        if let Some(limit) = patch.limit {
            key.limit = limit;
        }
        if let Some(reset) = patch.limit_reset {
            key.limit_reset = reset;
        }
        if let Some(byok) = patch.include_byok_in_limit {
            key.include_byok_in_limit = byok;
        }
        if let Some(ws) = &patch.workspace_id {
            key.workspace_id.clone_from(ws);
        }
        key.updated_at = Some(now);
        Ok(key.wire(Periods::at(now)))
    }

    /// Deletes a key.
    pub fn delete_key(&self, hash: &str) -> Result<(), AccountError> {
        let mut state = self.state();
        let seq = state.by_hash.remove(hash).ok_or(AccountError::NotFound)?;
        if let Some(record) = state.keys.remove(&seq) {
            state.by_secret.remove(&record.secret);
        }
        Ok(())
    }

    /// Records spend on a key, like a request made with it. Refused when the
    /// key is disabled or expired (403), or when its limit is used up (402).
    ///
    /// A spend is accepted exactly when `limit_remaining` is above 0 before
    /// it (or the key has no limit), and is then counted in full even when
    /// it takes the key past its limit — like OpenRouter, which lets the
    /// last request overrun. A BYOK spend is held to the limit only when the
    /// key counts BYOK in it. Credit (non-BYOK) spend also adds to the
    /// account's `total_usage`.
    pub fn spend(&self, hash: &str, usd: f64, byok: bool) -> Result<Key, AccountError> {
        self.spend_on(
            hash,
            &Spend {
                usd,
                byok,
                model: None,
            },
        )
    }

    /// Like [`Account::spend`], on the model `spend` names if any: refused
    /// (403) when the key's guardrail does not allow that model.
    pub fn spend_on(&self, hash: &str, spend: &Spend) -> Result<Key, AccountError> {
        if !spend.usd.is_finite() || spend.usd < 0.0 {
            return Err(AccountError::Invalid("`usd` must be a number >= 0".into()));
        }
        let mut state = self.state();
        let now = state.clock.now();
        let key = state.spend_at(hash, spend, now)?;
        Ok(key.wire(Periods::at(now)))
    }

    /// Starts a traffic stream (SPEC §11); returns every stream in force.
    pub fn add_traffic(&self, spec: TrafficSpec) -> Result<Vec<Stream>, AccountError> {
        let mut state = self.state();
        let stream = Stream::start(spec, state.clock.now()).map_err(AccountError::Invalid)?;
        state.traffic.push(stream);
        Ok(state.traffic.clone())
    }

    /// Stops every traffic stream.
    pub fn stop_traffic(&self) {
        self.state().traffic.clear();
    }

    /// The traffic streams in force, with what each has spent.
    pub fn traffic(&self) -> Vec<Stream> {
        self.state().traffic.clone()
    }

    /// `GET /credits` data.
    pub fn credits(&self) -> Credits {
        self.state().credits
    }

    /// Sets the credits purchased.
    pub fn set_credits(&self, total_credits: f64) -> Result<Credits, AccountError> {
        if !total_credits.is_finite() || total_credits < 0.0 {
            return Err(AccountError::Invalid(
                "`total_credits` must be a number >= 0".into(),
            ));
        }
        let mut state = self.state();
        state.credits.total_credits = total_credits;
        Ok(state.credits)
    }

    /// `GET /key` data for `caller`.
    pub fn current_key(&self, caller: &Caller) -> Result<CurrentKeyView, AccountError> {
        let now = self.now();
        match caller {
            Caller::Key(hash) => Ok(CurrentKeyView::new(&self.key(hash)?, false, now)),
            Caller::Management => {
                let label = label_of(self.management_key.expose_secret());
                let management = KeyRecord::from_seed(
                    &SeedKey {
                        name: "management".into(),
                        label: Some(label),
                        ..SeedKey::default()
                    },
                    now,
                );
                Ok(CurrentKeyView::new(
                    &management.wire(Periods::at(now)),
                    true,
                    now,
                ))
            }
        }
    }

    /// Puts `faults` in force on `/api/v1` (`Faults::default()` clears them).
    pub fn set_faults(&self, faults: Faults) -> Result<(), AccountError> {
        faults.validate().map_err(AccountError::Invalid)?;
        self.state().faults = ActiveFaults::new(faults);
        Ok(())
    }

    /// The faults in force.
    pub fn faults(&self) -> ActiveFaults {
        self.state().faults.clone()
    }

    /// Adds an entry to the journal.
    pub fn record(&self, entry: JournalEntry) {
        self.state().journal.push(entry);
    }

    /// The journal, oldest first.
    pub fn requests(&self) -> Vec<JournalEntry> {
        self.state().journal.entries()
    }

    /// Empties the journal; returns how many entries it held.
    pub fn clear_requests(&self) -> usize {
        self.state().journal.clear()
    }

    /// Back to the start: the keys it was started with (usage counted in the
    /// windows of the clock's now), start credits, no faults, an empty
    /// journal. The clock stays where it is.
    pub fn reset(&self) {
        let mut state = self.state();
        let mut fresh = State::new(state.clock);
        // The seeds were accepted at start, so they are accepted again.
        if let Err(e) = fresh.seed(&self.start.seeds) {
            tracing::error!("sandbox reset could not re-create its keys: {e}");
        }
        *state = fresh;
    }
}

/// The sandbox's clock: tests and the demo run keywarden on simulated time.
impl Clock for Account {
    fn now(&self) -> DateTime<Utc> {
        Account::now(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::guardrail::{CHEAP_MODELS_ONLY, GuardrailFields, KeyHashes, NO_TRAINING};
    use crate::sandbox::paging::PageRequest;
    use crate::sandbox::seed::{generated, spread_over_workspaces};
    use crate::sandbox::workspace::{RESEARCH_WORKSPACE, SUPPORT_WORKSPACE};

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn account(seeds: Vec<SeedKey>) -> Account {
        Account::new(
            seeds,
            SecretString::from("sk-or-v1-test"),
            Some(t("2026-11-27T10:00:00Z")),
        )
        .unwrap()
    }

    #[test]
    fn last_spend_may_overrun_then_the_key_is_refused() {
        let seed = SeedKey {
            name: "a".into(),
            limit: Some(10.0),
            limit_reset: Some(LimitReset::Daily),
            ..SeedKey::default()
        };
        let acc = account(vec![seed.clone()]);
        let hash = seed.hash();
        assert_eq!(
            acc.spend(&hash, 9.0, false).unwrap().limit_remaining,
            Some(1.0)
        );
        let over = acc.spend(&hash, 4.0, false).unwrap();
        assert_eq!(
            (over.limit_remaining, over.usage_daily),
            (Some(0.0), Some(13.0))
        );
        assert_eq!(
            acc.spend(&hash, 0.5, false),
            Err(AccountError::OverLimit { limit: 10.0 })
        );
        assert_eq!(acc.credits().total_usage, 13.0);
    }

    #[test]
    fn spread_keys_sit_in_three_workspaces_and_some_hold_a_guardrail() {
        let mut seeds = generated(8);
        spread_over_workspaces(&mut seeds);
        let acc = account(seeds);
        let page = PageRequest::default();
        let workspaces: Vec<String> = acc
            .keys()
            .into_iter()
            .filter_map(|k| k.workspace_id)
            .collect();
        assert_eq!(
            workspaces[..3],
            [DEFAULT_WORKSPACE, RESEARCH_WORKSPACE, SUPPORT_WORKSPACE]
        );
        assert_eq!(acc.list(0, true, None).len(), 3);
        let held: Vec<String> = acc
            .assignments(None, page)
            .unwrap()
            .data
            .into_iter()
            .map(|a| a.guardrail_id)
            .collect();
        assert_eq!(
            held,
            [
                CHEAP_MODELS_ONLY,
                NO_TRAINING,
                CHEAP_MODELS_ONLY,
                NO_TRAINING
            ]
        );
    }

    #[test]
    fn a_seed_key_on_an_unknown_guardrail_is_refused() {
        let seed = SeedKey {
            name: "a".into(),
            guardrail_id: Some("nope".into()),
            ..SeedKey::default()
        };
        let err = Account::new(vec![seed], SecretString::from("k"), None).unwrap_err();
        assert_eq!(err.status(), 400);
    }

    #[test]
    fn reset_forgets_created_guardrails_and_assignments() {
        let acc = account(generated(2));
        let page = PageRequest::default();
        let hashes = KeyHashes {
            key_hashes: acc.keys().into_iter().map(|k| k.hash).collect(),
        };
        acc.assign_keys(NO_TRAINING, &hashes).unwrap();
        let new: GuardrailFields = serde_json::from_str(r#"{"name": "extra"}"#).unwrap();
        acc.create_guardrail(new).unwrap();
        acc.reset();
        assert_eq!(acc.guardrails(page, None).total_count, 2);
        assert_eq!(acc.assignments(None, page).unwrap().total_count, 0);
    }

    #[test]
    fn duplicate_hashes_are_refused() {
        let seed = SeedKey {
            name: "a".into(),
            ..SeedKey::default()
        };
        let err =
            Account::new(vec![seed.clone(), seed], SecretString::from("k"), None).unwrap_err();
        assert_eq!(err.status(), 409);
    }

    #[test]
    fn reset_restores_the_seeded_keys_and_credits() {
        let acc = account(generated(3));
        let (created, _) = acc
            .create_key(NewKey {
                name: "new".into(),
                ..NewKey::default()
            })
            .unwrap();
        acc.spend(&created.hash, 2.0, false).unwrap();
        acc.set_credits(5.0).unwrap();
        acc.reset();
        assert_eq!(acc.keys().len(), 3);
        assert_eq!(
            acc.credits(),
            Credits {
                total_credits: START_CREDITS,
                total_usage: 0.0
            }
        );
    }
}
