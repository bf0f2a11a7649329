//! Learned pre-warming: bursts that recur at the same time of day are expected again.
//!
//! Scheduled pipelines (nightly builds, a daily release train) arrive as bursts at the same
//! wall-clock time every day. A burst larger than the idle reserve waits a whole boot. This
//! module remembers when jobs became pending, per pool, and answers "how many jobs arrived
//! in the next `lookahead` at this time of day on *each* of the last `days` days" — per
//! minute of the day, the minimum over those days, so a one-off burst (a release) or busy
//! unscheduled traffic is not pre-warmed for, but a burst seen in the same minute every
//! day is. Only past arrivals are used.
//!
//! Pure data structure: the caller records arrivals with their timestamps and asks with
//! `now`; no clock is read here.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use chrono::Timelike;

use crate::model::Timestamp;

/// Forecast settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ForecastSettings {
    /// How far ahead bursts are pre-warmed for; should exceed a boot plus a poll interval.
    pub lookahead: Duration,
    /// On how many consecutive past days a burst must have occurred; 0 turns forecasting off.
    pub days: u32,
}

impl Default for ForecastSettings {
    fn default() -> Self {
        ForecastSettings {
            lookahead: Duration::from_secs(300),
            days: 2,
        }
    }
}

/// Arrival times per pool, kept for `days` days plus the look-ahead. Stored as whole Unix
/// seconds per pool (the forecast counts per minute).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(
    from = "BTreeMap<String, Vec<i64>>",
    into = "BTreeMap<String, Vec<i64>>"
)]
pub struct ArrivalHistory {
    arrivals: BTreeMap<String, VecDeque<Timestamp>>,
}

impl From<ArrivalHistory> for BTreeMap<String, Vec<i64>> {
    fn from(h: ArrivalHistory) -> Self {
        h.arrivals
            .into_iter()
            .map(|(pool, q)| (pool, q.iter().map(Timestamp::timestamp).collect()))
            .collect()
    }
}

impl From<BTreeMap<String, Vec<i64>>> for ArrivalHistory {
    fn from(stored: BTreeMap<String, Vec<i64>>) -> Self {
        let mut h = ArrivalHistory::default();
        for (pool, times) in stored {
            for t in times {
                if let Some(t) = Timestamp::from_timestamp(t, 0) {
                    h.record(&pool, t);
                }
            }
        }
        h
    }
}

const DAY: chrono::TimeDelta = chrono::TimeDelta::days(1);

impl ArrivalHistory {
    /// Records that a job for `pool` became pending at `t` (times must not go backwards
    /// per pool; out-of-order records are inserted in place).
    pub fn record(&mut self, pool: &str, t: Timestamp) {
        let q = self.arrivals.entry(pool.to_string()).or_default();
        match q.back() {
            Some(last) if *last > t => {
                let pos = q.partition_point(|x| *x <= t);
                q.insert(pos, t);
            }
            _ => q.push_back(t),
        }
    }

    /// Drops arrivals too old to matter for any forecast at or after `now` (at least
    /// `min_days` days are kept: the wait-target rate model's history).
    pub fn prune(&mut self, now: Timestamp, settings: ForecastSettings, min_days: u32) {
        let keep_from = now - DAY * settings.days.max(min_days).max(1) as i32;
        for q in self.arrivals.values_mut() {
            while q.front().is_some_and(|t| *t < keep_from) {
                q.pop_front();
            }
        }
    }

    /// The largest burst expected for `pool` within `lookahead` after `now`. The look-ahead
    /// is cut into one-minute slices; each slice expects the minimum, over each of the last
    /// `days` days, of the arrivals in that same minute of the day; the answer is the
    /// largest slice. Scheduled pipelines recur in the same minute every day; busy but
    /// unscheduled traffic rarely does, and when it does its bursts are small (one
    /// pipeline stage), which the idle reserve already covers.
    pub fn expected(&self, pool: &str, now: Timestamp, settings: ForecastSettings) -> u32 {
        if settings.days == 0 {
            return 0;
        }
        let Some(q) = self.arrivals.get(pool) else {
            return 0;
        };
        let minute = chrono::TimeDelta::minutes(1);
        // Clock-aligned minutes: scheduled pipelines start on the minute, so a burst falls
        // in one slice instead of being split between two sliding windows.
        let base = now
            - chrono::TimeDelta::seconds(i64::from(now.second()))
            - chrono::TimeDelta::nanoseconds(i64::from(now.nanosecond()));
        let slices = settings.lookahead.as_secs().div_ceil(60).max(1) as i32;
        let count = |from: Timestamp| {
            let a = q.partition_point(|t| *t < from);
            let b = q.partition_point(|t| *t < from + minute);
            (b - a) as u32
        };
        (0..=slices)
            .map(|k| {
                (1..=settings.days)
                    .map(|d| count(base - DAY * d as i32 + minute * k))
                    .min()
                    .unwrap_or(0)
            })
            .max()
            .unwrap_or(0)
    }

    /// The most arrivals of `pool` within any `window` in the `span` before `now`: how many
    /// jobs may come before the next poll can react (the planner keeps that many surplus
    /// VMs unparked).
    pub fn peak_within(&self, pool: &str, now: Timestamp, window: Duration, span: Duration) -> u32 {
        let Some(q) = self.arrivals.get(pool) else {
            return 0;
        };
        let (Ok(window), Ok(span)) = (
            chrono::TimeDelta::from_std(window),
            chrono::TimeDelta::from_std(span),
        ) else {
            return 0;
        };
        let lo = q.partition_point(|t| *t < now - span);
        let hi = q.partition_point(|t| *t <= now);
        let mut best = 0usize;
        let mut back = lo;
        for i in lo..hi {
            while q[back] <= q[i] - window {
                back += 1;
            }
            best = best.max(i + 1 - back);
        }
        best as u32
    }

    /// The arrivals of one pool, oldest first.
    pub fn of(&self, pool: &str) -> Option<&VecDeque<Timestamp>> {
        self.arrivals.get(pool)
    }

    /// Number of arrivals held (for memory accounting).
    pub fn len(&self) -> usize {
        self.arrivals.values().map(VecDeque::len).sum()
    }

    /// Whether no arrival is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    fn at(day: u32, h: u32, m: u32, s: u32) -> Timestamp {
        Utc.with_ymd_and_hms(2026, 11, day, h, m, s).unwrap()
    }

    fn history(days: &[u32], h: u32, m: u32, n: usize) -> ArrivalHistory {
        let mut hist = ArrivalHistory::default();
        for &d in days {
            for i in 0..n {
                hist.record("p", at(d, h, m, i as u32 % 3));
            }
        }
        hist
    }

    #[test]
    fn a_burst_seen_on_each_of_the_last_two_days_is_expected_before_it_comes() {
        let h = history(&[2, 3], 1, 0, 18);
        let s = ForecastSettings::default();
        assert_eq!(h.expected("p", at(4, 0, 57, 0), s), 18);
        assert_eq!(
            h.expected("p", at(4, 0, 54, 0), s),
            0,
            "outside the look-ahead"
        );
        assert_eq!(
            h.expected("p", at(4, 1, 1, 0), s),
            0,
            "after the burst minute"
        );
        assert_eq!(
            h.expected("p", at(4, 1, 0, 30), s),
            18,
            "during the burst minute"
        );
    }

    #[test]
    fn a_burst_seen_on_one_day_only_is_not_expected() {
        let h = history(&[3], 12, 13, 24);
        assert_eq!(
            h.expected("p", at(4, 12, 10, 0), ForecastSettings::default()),
            0
        );
    }

    #[test]
    fn the_smaller_of_the_recurring_bursts_is_expected() {
        let mut h = history(&[2], 1, 0, 10);
        for i in 0..18 {
            h.record("p", at(3, 1, 0, i % 3));
        }
        assert_eq!(
            h.expected("p", at(4, 0, 58, 0), ForecastSettings::default()),
            10
        );
    }

    #[test]
    fn bursts_in_different_minutes_on_the_two_days_are_not_expected() {
        let mut h = history(&[2], 1, 0, 6);
        for i in 0..6 {
            h.record("p", at(3, 1, 3, i % 3));
        }
        assert_eq!(
            h.expected("p", at(4, 0, 58, 0), ForecastSettings::default()),
            0
        );
    }

    #[test]
    fn days_zero_turns_forecasting_off() {
        let h = history(&[2, 3], 1, 0, 18);
        let off = ForecastSettings {
            days: 0,
            ..ForecastSettings::default()
        };
        assert_eq!(h.expected("p", at(4, 0, 58, 0), off), 0);
    }

    #[test]
    fn prune_keeps_only_what_a_forecast_can_use() {
        let mut h = history(&[1, 2, 3], 1, 0, 5);
        h.prune(at(4, 0, 58, 0), ForecastSettings::default(), 0);
        assert_eq!(h.len(), 10);
        assert_eq!(
            h.expected("p", at(4, 0, 58, 0), ForecastSettings::default()),
            5
        );
    }

    #[test]
    fn the_peak_counts_the_busiest_window_of_the_span() {
        let mut h = ArrivalHistory::default();
        for s in [0, 2, 4, 30, 31, 32, 33] {
            h.record("p", at(4, 10, 0, s));
        }
        h.record("p", at(4, 8, 0, 0));
        let w = Duration::from_secs(15);
        let hour = Duration::from_secs(3600);
        assert_eq!(h.peak_within("p", at(4, 10, 1, 0), w, hour), 4);
        assert_eq!(
            h.peak_within("p", at(4, 10, 0, 10), w, hour),
            3,
            "only the past counts"
        );
        assert_eq!(
            h.peak_within("p", at(4, 12, 0, 0), w, hour),
            0,
            "older than the span"
        );
        assert_eq!(h.peak_within("q", at(4, 10, 1, 0), w, hour), 0);
    }

    #[test]
    fn out_of_order_records_are_kept_sorted() {
        let mut h = ArrivalHistory::default();
        h.record("p", at(3, 1, 0, 5));
        h.record("p", at(3, 1, 0, 1));
        h.record("p", at(2, 1, 0, 1));
        assert_eq!(
            h.expected("p", at(4, 0, 58, 0), ForecastSettings::default()),
            1
        );
    }
}
