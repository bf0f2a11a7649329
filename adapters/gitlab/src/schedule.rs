//! Which projects to poll now, and the per-user jobs-list budget.
//!
//! GitLab limits `GET /projects/:id/jobs` per user and minute (`project_jobs_api_rate_limit`,
//! 600 by default). [`Budget`] is a sliding one-minute window that never lets the adapter
//! send more than its limit; [`Cadence`] polls busy projects (pending jobs seen last time)
//! every call and backs dormant ones off exponentially up to a ceiling. Pure: the caller
//! passes `now` (a `tokio::time::Instant`, so paused-time tests are deterministic).

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

/// Sliding-window request budget.
#[derive(Debug)]
pub(crate) struct Budget {
    limit: u32,
    window: Duration,
    sent: VecDeque<Instant>,
}

impl Budget {
    /// At most `limit` requests in any `window`.
    pub fn new(limit: u32, window: Duration) -> Self {
        Budget {
            limit,
            window,
            sent: VecDeque::new(),
        }
    }

    /// Takes one request from the budget if one is left at `now`.
    pub fn try_take(&mut self, now: Instant) -> bool {
        while let Some(&first) = self.sent.front() {
            if now.saturating_duration_since(first) >= self.window {
                self.sent.pop_front();
            } else {
                break;
            }
        }
        if self.sent.len() >= self.limit as usize {
            return false;
        }
        self.sent.push_back(now);
        true
    }

    /// Requests left at `now` (without taking one).
    #[cfg(test)]
    pub fn left(&self, now: Instant) -> u32 {
        let used = self
            .sent
            .iter()
            .filter(|t| now.saturating_duration_since(**t) < self.window)
            .count();
        self.limit
            .saturating_sub(u32::try_from(used).unwrap_or(u32::MAX))
    }
}

/// Poll cadence of one project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Cadence {
    /// Not polled before this instant (`None` = due now).
    pub next_due: Option<Instant>,
    /// Polls in a row that found no pending job.
    pub quiet_polls: u32,
}

impl Cadence {
    /// A project never polled: due now.
    pub fn new() -> Self {
        Cadence {
            next_due: None,
            quiet_polls: 0,
        }
    }

    /// Whether the project is due at `now`.
    pub fn is_due(&self, now: Instant) -> bool {
        self.next_due.is_none_or(|t| now >= t)
    }

    /// Records a poll at `now` that found `pending` jobs. Busy projects are due again at
    /// once; quiet ones after `base * 2^(quiet-1)`, at most `ceiling`.
    pub fn polled(&mut self, now: Instant, pending: usize, base: Duration, ceiling: Duration) {
        if pending > 0 {
            self.quiet_polls = 0;
            self.next_due = None;
            return;
        }
        self.quiet_polls = self.quiet_polls.saturating_add(1);
        let factor = 1u32 << self.quiet_polls.saturating_sub(1).min(16);
        let wait = base.saturating_mul(factor).min(ceiling);
        self.next_due = Some(now + wait);
    }

    /// Makes the project due now (a webhook said something changed).
    pub fn nudge(&mut self) {
        self.next_due = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_never_allows_more_than_the_limit_in_any_window() {
        let t0 = Instant::now();
        let mut b = Budget::new(3, Duration::from_secs(60));
        assert!(b.try_take(t0));
        assert!(b.try_take(t0 + Duration::from_secs(10)));
        assert!(b.try_take(t0 + Duration::from_secs(20)));
        assert!(!b.try_take(t0 + Duration::from_secs(59)));
        assert_eq!(b.left(t0 + Duration::from_secs(59)), 0);
        // The first request leaves the window at t0+60.
        assert!(b.try_take(t0 + Duration::from_secs(60)));
        assert!(!b.try_take(t0 + Duration::from_secs(61)));
        assert!(b.try_take(t0 + Duration::from_secs(70)));
    }

    #[test]
    fn dormant_projects_back_off_and_busy_ones_stay_due() {
        let t0 = Instant::now();
        let base = Duration::from_secs(5);
        let ceiling = Duration::from_secs(60);
        let mut c = Cadence::new();
        assert!(c.is_due(t0));
        c.polled(t0, 0, base, ceiling);
        assert!(!c.is_due(t0 + Duration::from_secs(4)));
        assert!(c.is_due(t0 + Duration::from_secs(5)));
        for _ in 0..10 {
            c.polled(t0, 0, base, ceiling);
        }
        assert_eq!(c.next_due, Some(t0 + ceiling));
        c.polled(t0, 2, base, ceiling);
        assert!(c.is_due(t0));
    }

    #[test]
    fn a_nudge_makes_a_dormant_project_due() {
        let t0 = Instant::now();
        let mut c = Cadence::new();
        c.polled(t0, 0, Duration::from_secs(60), Duration::from_secs(60));
        assert!(!c.is_due(t0));
        c.nudge();
        assert!(c.is_due(t0));
    }
}
