//! The shared `requests_per_second` ceiling, spread evenly: each request
//! attempt takes the next free instant, `1 / requests_per_second` after the
//! one taken before it, and waits for it. Never more than the ceiling in
//! any one-second window, never a burst; attempts that arrive together each
//! take their turn once, in order, instead of retrying a permit against
//! each other (what a burst-of-one rate limiter makes them do, every retry
//! a timer's round trip: at a high ceiling, most of a request's cost).

use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A wait shorter than this is not given to a timer (whose resolution is a
/// millisecond, and which would wait the whole of it): the attempt yields
/// until its instant instead.
const TIMER_RESOLUTION: Duration = Duration::from_millis(1);

/// Hands out request instants `1 / rate` apart.
#[derive(Debug)]
pub(super) struct Pacer {
    /// Between two turns.
    interval: Duration,
    /// The next free turn (`None` before the first).
    next: Mutex<Option<Instant>>,
}

impl Pacer {
    /// A pacer of `rate` turns a second.
    pub(super) fn per_second(rate: NonZeroU32) -> Pacer {
        Pacer {
            interval: Duration::from_secs(1) / rate.get(),
            next: Mutex::new(None),
        }
    }

    /// Waits for this attempt's turn.
    pub(super) async fn until_ready(&self) {
        let turn = self.take_turn(Instant::now());
        let wait = turn.saturating_duration_since(Instant::now());
        if wait >= TIMER_RESOLUTION {
            tokio::time::sleep(wait).await;
        }
        while Instant::now() < turn {
            tokio::task::yield_now().await;
        }
    }

    /// The turn of an attempt arriving at `now`: the next free one, or `now`
    /// when that has passed.
    fn take_turn(&self, now: Instant) -> Instant {
        let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
        let turn = next.map_or(now, |free| free.max(now));
        *next = Some(turn + self.interval);
        turn
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turns_are_one_interval_apart_and_a_late_attempt_goes_at_once() {
        let pacer = Pacer::per_second(NonZeroU32::new(10).unwrap());
        let t0 = Instant::now();
        let tenth = Duration::from_millis(100);
        assert_eq!(pacer.take_turn(t0), t0);
        assert_eq!(pacer.take_turn(t0), t0 + tenth);
        assert_eq!(pacer.take_turn(t0 + tenth), t0 + 2 * tenth);
        let later = t0 + Duration::from_secs(5);
        assert_eq!(pacer.take_turn(later), later);
        assert_eq!(pacer.take_turn(later), later + tenth);
    }
}
