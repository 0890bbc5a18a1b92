//! Injected faults of `/api/v1` (`POST /_sandbox/faults`): errors, latency,
//! a rate limit and dropped connections, on every path or on one.

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use rand::Rng;
use serde::{Deserialize, Serialize};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

/// One value, or a list to pick from at random.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany<T> {
    /// Always this value.
    One(T),
    /// One of these, picked at random each time.
    Many(Vec<T>),
}

/// A latency: a fixed number of milliseconds, or `[min, max]` picked uniformly.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Latency {
    /// Always this many milliseconds.
    Fixed(u64),
    /// Between `min` and `max` milliseconds.
    Range([u64; 2]),
}

/// The faults in force; every field is optional and `{}` means none.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Faults {
    /// The share (0..1) of requests answered with `status` and not applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_rate: Option<f64>,
    /// The status of an injected error (default 500).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<OneOrMany<u16>>,
    /// Added to every request before it is handled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<Latency>,
    /// Requests per second beyond which the answer is 429 with `Retry-After`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit_per_second: Option<u32>,
    /// The `Retry-After` of a 429, in seconds (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
    /// The share (0..1) of PATCH/POST/DELETE requests that are applied and
    /// whose connection is then closed before the response is sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drop_rate: Option<f64>,
    /// Only requests to this path under `/api/v1` (or below it) get the
    /// faults, e.g. `"/workspaces"`; default every path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// `GET /guardrails/assignments/keys` lists no assignment past this
    /// many, its `total_count` unchanged: a truncated listing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignments_cut_at: Option<usize>,
}

impl Faults {
    /// Checks ranges that JSON types cannot express.
    pub fn validate(&self) -> Result<(), String> {
        for (name, rate) in [
            ("error_rate", self.error_rate),
            ("drop_rate", self.drop_rate),
        ] {
            if rate.is_some_and(|r| !(0.0..=1.0).contains(&r)) {
                return Err(format!("`{name}` must be between 0 and 1"));
            }
        }
        let statuses = match &self.status {
            None => vec![],
            Some(OneOrMany::One(s)) => vec![*s],
            Some(OneOrMany::Many(list)) if list.is_empty() => {
                return Err("`status` must not be an empty list".into());
            }
            Some(OneOrMany::Many(list)) => list.clone(),
        };
        if let Some(s) = statuses.iter().find(|s| !(400..=599).contains(*s)) {
            return Err(format!("`status` {s} is not an error status (400..599)"));
        }
        if let Some(Latency::Range([min, max])) = self.latency_ms {
            if min > max {
                return Err("`latency_ms` range must be [min, max] with min <= max".into());
            }
        }
        if self.rate_limit_per_second == Some(0) {
            return Err("`rate_limit_per_second` must be at least 1".into());
        }
        if self.path.as_ref().is_some_and(|p| !p.starts_with('/')) {
            return Err(
                "`path` must start with '/' (a path under /api/v1, e.g. \"/workspaces\")".into(),
            );
        }
        Ok(())
    }

    /// Whether a request to `path` (under `/api/v1`) gets these faults.
    fn applies_to(&self, path: &str) -> bool {
        match &self.path {
            None => true,
            Some(scope) => {
                let scope = scope.trim_end_matches('/');
                path == scope
                    || path
                        .strip_prefix(scope)
                        .is_some_and(|rest| rest.starts_with('/'))
            }
        }
    }
}

/// What the faults decided for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Verdict {
    /// Wait this long first.
    pub latency: Duration,
    /// Answer 429 with this `Retry-After` (seconds).
    pub rate_limited: Option<u64>,
    /// Answer with this error status, unapplied.
    pub error: Option<u16>,
    /// Apply, then close the connection without an answer.
    pub drop: bool,
}

/// Faults in force with their rate limiter (shared by every request).
#[derive(Debug, Clone, Default)]
pub struct ActiveFaults {
    faults: Faults,
    limiter: Option<Arc<DefaultDirectRateLimiter>>,
}

impl ActiveFaults {
    /// Puts `faults` in force, with a fresh rate limiter.
    pub fn new(faults: Faults) -> Self {
        let limiter = faults
            .rate_limit_per_second
            .and_then(NonZeroU32::new)
            .map(|n| Arc::new(RateLimiter::direct(Quota::per_second(n))));
        ActiveFaults { faults, limiter }
    }

    /// The faults in force.
    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// Rolls the dice for one request to `path` (under `/api/v1`);
    /// `mutating` for PATCH/POST/DELETE. No fault for a path outside the
    /// faults' `path`.
    pub fn decide(&self, path: &str, mutating: bool) -> Verdict {
        let f = &self.faults;
        if !f.applies_to(path) {
            return Verdict::default();
        }
        let mut rng = rand::thread_rng();
        let latency = match f.latency_ms {
            None => 0,
            Some(Latency::Fixed(ms)) => ms,
            Some(Latency::Range([min, max])) => rng.gen_range(min..=max),
        };
        let mut hit = |rate: Option<f64>| rate.is_some_and(|r| rng.gen_bool(r.clamp(0.0, 1.0)));
        let rate_limited = match &self.limiter {
            Some(limiter) if limiter.check().is_err() => Some(f.retry_after.unwrap_or(1)),
            _ => None,
        };
        let error = hit(f.error_rate).then(|| match &f.status {
            None => 500,
            Some(OneOrMany::One(s)) => *s,
            Some(OneOrMany::Many(list)) => list[rand::thread_rng().gen_range(0..list.len())],
        });
        let drop = mutating && hit(f.drop_rate);
        Verdict {
            latency: Duration::from_millis(latency),
            rate_limited,
            error,
            drop,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certain_faults_always_happen() {
        let active = ActiveFaults::new(Faults {
            error_rate: Some(1.0),
            status: Some(OneOrMany::Many(vec![502, 503])),
            drop_rate: Some(1.0),
            ..Faults::default()
        });
        for _ in 0..20 {
            let v = active.decide("/keys", false);
            assert!(matches!(v.error, Some(502 | 503)));
            assert!(!v.drop, "only mutating requests are dropped");
        }
        assert!(active.decide("/keys", true).drop);
        assert_eq!(
            ActiveFaults::default().decide("/keys", true),
            Verdict::default()
        );
    }

    #[test]
    fn a_path_scoped_fault_hits_that_path_and_below_only() {
        let active = ActiveFaults::new(Faults {
            error_rate: Some(1.0),
            status: Some(OneOrMany::One(403)),
            path: Some("/workspaces".into()),
            ..Faults::default()
        });
        assert_eq!(active.decide("/workspaces", false).error, Some(403));
        assert_eq!(
            active.decide("/workspaces/research", false).error,
            Some(403)
        );
        assert_eq!(active.decide("/keys", false), Verdict::default());
        assert_eq!(active.decide("/workspaces-old", false), Verdict::default());
        let bad: Faults = serde_json::from_str(r#"{"path": "workspaces"}"#).unwrap();
        assert!(bad.validate().is_err());
    }

    #[test]
    fn rate_limit_answers_beyond_the_quota() {
        let active = ActiveFaults::new(Faults {
            rate_limit_per_second: Some(2),
            retry_after: Some(7),
            ..Faults::default()
        });
        let limited: Vec<_> = (0..4)
            .map(|_| active.decide("/keys", false).rate_limited)
            .collect();
        assert_eq!(&limited[..2], [None, None]);
        assert_eq!(limited[3], Some(7));
    }

    #[test]
    fn validation_refuses_out_of_range_values() {
        let bad: Faults = serde_json::from_str(r#"{"error_rate": 1.5}"#).unwrap();
        assert!(bad.validate().is_err());
        let bad: Faults = serde_json::from_str(r#"{"status": 200}"#).unwrap();
        assert!(bad.validate().is_err());
        let good: Faults =
            serde_json::from_str(r#"{"latency_ms": [5, 10], "status": [500, 429]}"#).unwrap();
        assert!(good.validate().is_ok());
        assert!(serde_json::from_str::<Faults>(r#"{"errr_rate": 1}"#).is_err());
    }
}
