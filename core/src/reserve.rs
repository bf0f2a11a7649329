//! Wait-target sizing: how many job slots a pool in wait-target mode keeps warm now, so
//! that its `target_percentile` of jobs waits at most `target_wait`, at the fewest VM-hours.
//!
//! A job that finds no warm slot waits for a new VM: the rest of the poll interval, a boot
//! and the runner's first job request. Whether that wait exceeds the target depends on the
//! boot time, learned from the pool's own VMs ([`BootSamples`]): the share of boots too
//! slow for the target is `late`. So at most `allowed = (1 - percentile) / late` of all jobs
//! may miss a warm slot (every job may when no boot is too slow).
//!
//! Which jobs miss a reserve of `r` slots: a slot taken by a job is replaced by a new VM
//! one `lead` (poll + boot) later, so a job is served warm when fewer than `r` jobs arrived
//! in the `lead` before it, itself included (its *rank*). From the pool's arrivals in the
//! last [`HISTORY_DAYS`] days, per hour of the day (weekdays and weekends apart, UTC), the
//! `k`-th reserve slot serves `c(k) / exposure` jobs per hour it is kept: the arrivals of
//! rank >= k over the hours observed. Keeping slot `k` in that hour costs one VM-hour per
//! hour. The cheapest reserve meeting the target keeps the slots that serve the most jobs
//! per VM-hour first, over the whole history, until the misses left are within `allowed`:
//! that gives one threshold (jobs per slot-hour), and the reserve now is the number of
//! slots of this hour (and of the hour one `lead` ahead, so VMs are warm when it starts)
//! worth at least the threshold. The last hour's arrivals are judged the same way, so an
//! unusual busy day is answered before it recurs.
//!
//! Pure: the caller passes arrivals, boot samples and the time.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use chrono::{Datelike, Timelike};
use serde::{Deserialize, Serialize};

use crate::model::Timestamp;

/// Days of arrivals the rate model uses.
pub const HISTORY_DAYS: i64 = 7;
/// Boot samples kept per pool.
const BOOT_SAMPLES: usize = 64;
/// Boot time assumed before a pool has booted a VM the controller watched.
pub const ASSUMED_BOOT: Duration = Duration::from_secs(120);
/// Time from a runner's boot to its first job request (gitlab-runner's `check_interval`).
const FIRST_REQUEST: Duration = Duration::from_secs(3);

/// A pool's wait target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitTarget {
    /// Longest acceptable wait.
    pub wait: Duration,
    /// Share of jobs (percent) that must wait at most `wait`.
    pub percentile: u32,
}

/// Learned boot durations (server create to the runner's first contact), whole seconds,
/// newest last, per pool.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BootSamples(pub BTreeMap<String, VecDeque<u32>>);

impl BootSamples {
    /// Records one boot of `pool`.
    pub fn record(&mut self, pool: &str, boot: Duration) {
        let q = self.0.entry(pool.to_string()).or_default();
        q.push_back(u32::try_from(boot.as_secs()).unwrap_or(u32::MAX));
        while q.len() > BOOT_SAMPLES {
            q.pop_front();
        }
    }

    /// The pool's samples, newest last.
    pub fn of(&self, pool: &str) -> Vec<u32> {
        self.0
            .get(pool)
            .map(|q| q.iter().copied().collect())
            .unwrap_or_default()
    }
}

/// What the reserve is and why: shown by `plan` and `/status`.
#[derive(Debug, Clone, PartialEq)]
pub struct Reserve {
    /// Warm job slots the forecast asks for now.
    pub slots: u32,
    /// Median learned boot (or [`ASSUMED_BOOT`]).
    pub boot: Duration,
    /// Boots the median is learned from (0 = assumed).
    pub boot_samples: u32,
    /// How long a new VM takes to take a job: poll interval + boot + first request.
    pub lead: Duration,
    /// Share of on-demand waits longer than the target.
    pub late: f64,
    /// Share of jobs that may find no warm slot.
    pub allowed_miss: f64,
    /// Jobs per hour expected now (this hour of the day in the history, or the last hour
    /// if busier).
    pub rate_per_hour: f64,
    /// Jobs per hour a warm slot must serve to be kept (`None`: no slot is needed); at
    /// least one per `idle_time` (a slot expected to idle longer is not kept).
    pub threshold: Option<f64>,
    /// Days of history behind the forecast.
    pub history_days: f64,
    /// How long a surplus idle VM is kept after its last job: the learned boot, the break
    /// even between keeping it and booting a new one when the next job comes.
    pub keep: Duration,
}

impl Reserve {
    /// One line for `plan`.
    pub fn explain(&self) -> String {
        let basis = match self.threshold {
            Some(t) => format!("slots serving >= {t:.2} jobs/h are kept"),
            None => "no warm slot needed".to_string(),
        };
        format!(
            "reserve {} ({:.1} jobs/h now, {:.1} days of history; boot {}s from {} VMs, lead {}s; {:.0}% of new-VM waits exceed the target, so up to {:.1}% of jobs may wait for one; {basis}); surplus kept {}s",
            self.slots,
            self.rate_per_hour,
            self.history_days,
            self.boot.as_secs(),
            self.boot_samples,
            self.lead.as_secs(),
            self.late * 100.0,
            (self.allowed_miss * 100.0).min(100.0),
            self.keep.as_secs(),
        )
    }
}

/// Slot of an instant: weekend flag and hour of the day (UTC).
fn slot(t: Timestamp) -> usize {
    let weekend = matches!(t.weekday(), chrono::Weekday::Sat | chrono::Weekday::Sun);
    usize::from(weekend) * 24 + t.hour() as usize
}

/// Counts per rank: `out[k-1]` = arrivals of rank >= k.
fn tail_counts(ranks: &[u32]) -> Vec<f64> {
    let max = ranks.iter().copied().max().unwrap_or(0) as usize;
    let mut exact = vec![0f64; max];
    for &r in ranks {
        if r > 0 {
            exact[r as usize - 1] += 1.0;
        }
    }
    let mut acc = 0.0;
    for v in exact.iter_mut().rev() {
        acc += *v;
        *v = acc;
    }
    exact
}

/// What the `k`-th warm slot saves: the jobs of rank exactly `k` (a reserve of `r` serves
/// ranks up to `r`), made non-increasing in `k` (a later slot is never worth more than an
/// earlier one; the excess of an irregular history is carried down) so slots are taken
/// in order.
fn unit_savings(tail: &[f64]) -> Vec<f64> {
    let exact: Vec<f64> = (0..tail.len())
        .map(|k| tail[k] - tail.get(k + 1).copied().unwrap_or(0.0))
        .collect();
    // Pool adjacent violators: average any run where a later slot saves more.
    let mut blocks: Vec<(f64, usize)> = Vec::new();
    for v in exact {
        blocks.push((v, 1));
        while blocks.len() > 1 {
            let (b, nb) = blocks[blocks.len() - 1];
            let (a, na) = blocks[blocks.len() - 2];
            if b <= a {
                break;
            }
            blocks.truncate(blocks.len() - 2);
            blocks.push(((a * na as f64 + b * nb as f64) / (na + nb) as f64, na + nb));
        }
    }
    blocks
        .into_iter()
        .flat_map(|(v, n)| std::iter::repeat_n(v, n))
        .collect()
}

/// Ranks of `hist` (sorted arrivals): arrivals in `(a - lead, a]`, itself included, less
/// the VMs that finished a job in `(a - keep, a]` and are still kept warm. `earlier`
/// holds the arrivals just before `hist` that still count for its first ranks.
fn ranks(
    earlier: &[Timestamp],
    hist: &[Timestamp],
    departures: &VecDeque<Timestamp>,
    lead: chrono::TimeDelta,
    keep: chrono::TimeDelta,
) -> Vec<u32> {
    let all: Vec<Timestamp> = earlier.iter().chain(hist).copied().collect();
    let Some(first) = hist.first() else {
        return Vec::new();
    };
    let dep_lo = departures.partition_point(|t| *t <= *first - keep);
    let deps: Vec<Timestamp> = departures.range(dep_lo..).copied().collect();
    let mut out = Vec::with_capacity(hist.len());
    let mut back = 0usize;
    let (mut d_back, mut d_front) = (0usize, 0usize);
    for (i, a) in all.iter().enumerate().skip(earlier.len()) {
        while all[back] <= *a - lead {
            back += 1;
        }
        while d_front < deps.len() && deps[d_front] <= *a {
            d_front += 1;
        }
        while d_back < d_front && deps[d_back] <= *a - keep {
            d_back += 1;
        }
        let freed = (d_front - d_back) as u32;
        out.push(((i + 1 - back) as u32).saturating_sub(freed));
    }
    out
}

/// The part of the sizing learned from whole hours of history: per slot, what each warm
/// slot saves per hour, and the threshold that meets the target. Built once per hour
/// (and when the boot estimate changes); [`Model::reserve_at`] adds the last hour.
#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    /// The hour (Unix hours) whose start the history ends at.
    hour: i64,
    /// What [`Model::head`] said when it was built.
    key: Reserve,
    /// Everything but `slots` and `rate_per_hour`.
    base: Reserve,
    /// Jobs each k-th warm slot saves per hour, per slot of the week.
    per_hour: Vec<Vec<f64>>,
}

impl Model {
    /// What the boots, the target and the settings alone decide (no history): the boot
    /// estimate, lead, late share, allowed misses and keep time.
    pub fn head(boots: &[u32], target: WaitTarget, poll: Duration, max_idle: Duration) -> Reserve {
        let mut sorted: Vec<u32> = boots.to_vec();
        sorted.sort_unstable();
        let boot = match sorted.len() {
            0 => ASSUMED_BOOT,
            n => Duration::from_secs(u64::from(sorted[n / 2])),
        };
        // A job that misses waits on average half a poll, a boot and the first request.
        let overhead = poll / 2 + FIRST_REQUEST;
        let late = if sorted.is_empty() {
            f64::from(u8::from(ASSUMED_BOOT + overhead > target.wait))
        } else {
            sorted
                .iter()
                .filter(|&&b| Duration::from_secs(u64::from(b)) + overhead > target.wait)
                .count() as f64
                / sorted.len() as f64
        };
        let may_late = f64::from(100u32.saturating_sub(target.percentile)) / 100.0;
        Reserve {
            slots: 0,
            boot,
            boot_samples: sorted.len() as u32,
            lead: poll + boot + FIRST_REQUEST,
            late,
            allowed_miss: if late > 0.0 {
                may_late / late
            } else {
                f64::INFINITY
            },
            rate_per_hour: 0.0,
            threshold: None,
            history_days: 0.0,
            keep: boot.min(max_idle),
        }
    }

    /// Learns from the arrivals before the start of `now`'s hour; `head` is
    /// [`Model::head`] of the same inputs, `max_idle` the pool's `idle_time`.
    pub fn build(
        head: Reserve,
        arrivals: &VecDeque<Timestamp>,
        departures: &VecDeque<Timestamp>,
        max_idle: Duration,
        now: Timestamp,
    ) -> Model {
        let (lead, late, allowed_miss) = (head.lead, head.late, head.allowed_miss);
        let hour = now.timestamp().div_euclid(3600);
        let hour_start = Timestamp::from_timestamp(hour * 3600, 0).unwrap_or(now);
        let mut model = Model {
            hour,
            key: head.clone(),
            base: head,
            per_hour: vec![Vec::new(); 48],
        };

        let from = hour_start - chrono::TimeDelta::days(HISTORY_DAYS);
        let lo = arrivals.partition_point(|t| *t < from);
        let hi = arrivals.partition_point(|t| *t < hour_start);
        let hist: Vec<Timestamp> = arrivals.range(lo..hi).copied().collect();
        // A warm slot expected to wait longer than `max_idle` for its next job is not
        // kept, whatever the target asks: it would idle more than the operator allows.
        let floor = 3600.0 / max_idle.as_secs_f64().max(1.0);
        let first = arrivals.front().copied().filter(|f| *f < now);
        model.base.history_days = first.map_or(0.0, |f| (now - f).num_seconds() as f64 / 86_400.0);
        // Less than a day of history says little about the hours to come: until then, the
        // last hour's slots are kept when they are worth the floor (if a wait can be late).
        if model.base.history_days < 1.0 {
            model.base.threshold = (late > 0.0).then_some(floor);
            return model;
        }
        let Some(first) = hist.first().copied() else {
            return model;
        };
        let lead_c = chrono::TimeDelta::from_std(lead).unwrap_or(chrono::TimeDelta::MAX);
        let keep_c = chrono::TimeDelta::from_std(model.base.keep).unwrap_or(chrono::TimeDelta::MAX);
        let ranks = ranks(&[], &hist, departures, lead_c, keep_c);

        // Exposure: hours observed per slot, from the first arrival's hour to this hour.
        let mut exposure = [0f64; 48];
        let mut h = Timestamp::from_timestamp(first.timestamp().div_euclid(3600) * 3600, 0)
            .unwrap_or(first);
        while h < hour_start {
            exposure[slot(h)] += 1.0;
            h += chrono::TimeDelta::hours(1);
        }
        let mut by_slot: Vec<Vec<u32>> = vec![Vec::new(); 48];
        for (a, r) in hist.iter().zip(&ranks) {
            by_slot[slot(*a)].push(*r);
        }
        let tails: Vec<Vec<f64>> = by_slot.iter().map(|r| tail_counts(r)).collect();

        // Greedy over all (slot, k) units, most jobs served per slot-hour first.
        let allowed = allowed_miss * hist.len() as f64;
        let mut units: Vec<(f64, f64)> = Vec::new(); // (jobs per slot-hour, jobs saved)
        for (s, tail) in tails.iter().enumerate() {
            if exposure[s] <= 0.0 {
                continue;
            }
            let saved = unit_savings(tail);
            units.extend(saved.iter().map(|v| (v / exposure[s], *v)));
            model.per_hour[s] = saved.iter().map(|v| v / exposure[s]).collect();
        }
        units.sort_by(|a, b| b.0.total_cmp(&a.0));
        // With no reserve, the jobs a freed VM does not serve (rank >= 1) wait.
        let mut missed: f64 = tails
            .iter()
            .map(|t| t.first().copied().unwrap_or(0.0))
            .sum();
        let mut threshold = None;
        for (value, saved) in units {
            if missed <= allowed {
                break;
            }
            missed -= saved;
            threshold = Some(value);
        }
        model.base.threshold = threshold.map(|t: f64| t.max(floor));
        model
    }

    /// Whether this model still answers for `now` with these inputs.
    fn fits(&self, now: Timestamp, head: &Reserve) -> bool {
        self.hour == now.timestamp().div_euclid(3600) && self.key == *head
    }

    /// The reserve at `now`: the slots this hour and the hour one lead ahead are worth,
    /// or what the last hour's arrivals are worth if more.
    pub fn reserve_at(
        &self,
        arrivals: &VecDeque<Timestamp>,
        departures: &VecDeque<Timestamp>,
        now: Timestamp,
    ) -> Reserve {
        let mut out = self.base.clone();
        let lead_c = chrono::TimeDelta::from_std(out.lead).unwrap_or(chrono::TimeDelta::MAX);
        let keep_c = chrono::TimeDelta::from_std(out.keep).unwrap_or(chrono::TimeDelta::MAX);
        let worth = |per_hour: &[f64]| -> u32 {
            out.threshold
                .map_or(0, |t| per_hour.iter().filter(|&&c| c >= t).count() as u32)
        };
        let s_now = slot(now);
        let hist_slots =
            worth(&self.per_hour[s_now]).max(worth(&self.per_hour[slot(now + lead_c)]));
        // The last hour, judged alike (its exposure is one hour).
        let hour_ago = now - chrono::TimeDelta::hours(1);
        let a = arrivals.partition_point(|t| *t < hour_ago - lead_c);
        let b = arrivals.partition_point(|t| *t < hour_ago);
        let c = arrivals.partition_point(|t| *t < now);
        let earlier: Vec<Timestamp> = arrivals.range(a..b).copied().collect();
        let recent: Vec<Timestamp> = arrivals.range(b..c).copied().collect();
        let recent_ranks = ranks(&earlier, &recent, departures, lead_c, keep_c);
        let recent_slots = worth(&unit_savings(&tail_counts(&recent_ranks)));
        out.slots = hist_slots.max(recent_slots);
        out.rate_per_hour = self.per_hour[s_now]
            .iter()
            .sum::<f64>()
            .max(recent.len() as f64);
        out
    }
}

/// Sizes the reserve of one pool at `now` from its arrivals and departures (sorted, any
/// age) and boots. [`ReserveCache`] keeps the hourly part between calls.
pub fn size(
    arrivals: &VecDeque<Timestamp>,
    departures: &VecDeque<Timestamp>,
    boots: &[u32],
    target: WaitTarget,
    poll: Duration,
    max_idle: Duration,
    now: Timestamp,
) -> Reserve {
    Model::build(
        Model::head(boots, target, poll, max_idle),
        arrivals,
        departures,
        max_idle,
        now,
    )
    .reserve_at(arrivals, departures, now)
}

/// Each pool's hourly [`Model`], rebuilt when the hour or an input changes. Not part of
/// the memory's value: equal to any other cache, empty when cloned or read back.
#[derive(Debug, Default)]
pub struct ReserveCache(std::sync::Mutex<BTreeMap<String, Model>>);

impl Clone for ReserveCache {
    fn clone(&self) -> Self {
        ReserveCache::default()
    }
}

impl PartialEq for ReserveCache {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for ReserveCache {}

impl ReserveCache {
    /// [`size`], with the hourly part reused while it fits.
    #[allow(clippy::too_many_arguments)]
    pub fn size(
        &self,
        pool: &str,
        arrivals: &VecDeque<Timestamp>,
        departures: &VecDeque<Timestamp>,
        boots: &[u32],
        target: WaitTarget,
        poll: Duration,
        max_idle: Duration,
        now: Timestamp,
    ) -> Reserve {
        let mut models = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let head = Model::head(boots, target, poll, max_idle);
        let model = match models.get(pool) {
            Some(m) if m.fits(now, &head) => m,
            _ => {
                let fresh = Model::build(head, arrivals, departures, max_idle, now);
                models.insert(pool.to_string(), fresh);
                &models[pool]
            }
        };
        model.reserve_at(arrivals, departures, now)
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

    const TARGET: WaitTarget = WaitTarget {
        wait: Duration::from_secs(60),
        percentile: 95,
    };

    const HOUR: Duration = Duration::from_secs(3600);

    fn boots() -> Vec<u32> {
        vec![90; 10]
    }

    /// Sizes with no departures, 90 s boots, a 15 s poll and a 1 h `idle_time`.
    fn sized(q: &VecDeque<Timestamp>, target: WaitTarget, now: Timestamp) -> Reserve {
        size(
            q,
            &VecDeque::new(),
            &boots(),
            target,
            Duration::from_secs(15),
            HOUR,
            now,
        )
    }

    /// Four-job pipelines every 20 minutes from 08:00 to 17:00 on the given November days
    /// (the 2nd is a Monday).
    fn busy_days(days: &[u32]) -> VecDeque<Timestamp> {
        let mut q = VecDeque::new();
        for &d in days {
            for h in 8..17 {
                for m in [0, 20, 40] {
                    for i in 0..4 {
                        q.push_back(at(d, h, m, i));
                    }
                }
            }
        }
        q
    }

    #[test]
    fn busy_hours_keep_a_pipeline_warm_and_quiet_hours_keep_nothing() {
        let q = busy_days(&[2, 3, 4]);
        let busy = sized(&q, TARGET, at(5, 10, 5, 0));
        assert_eq!(busy.slots, 4, "{}", busy.explain());
        let night = sized(&q, TARGET, at(5, 2, 0, 0));
        assert_eq!(night.slots, 0, "{}", night.explain());
        // Saturday: weekdays' history says nothing about weekends.
        let saturday = sized(&q, TARGET, at(7, 10, 5, 0));
        assert_eq!(saturday.slots, 0, "{}", saturday.explain());
    }

    #[test]
    fn the_reserve_is_warm_before_the_busy_hour_starts() {
        let q = busy_days(&[2, 3, 4]);
        let r = sized(&q, TARGET, at(5, 7, 58, 30));
        assert_eq!(r.slots, 4, "{}", r.explain());
    }

    #[test]
    fn a_target_longer_than_any_boot_needs_no_reserve() {
        let q = busy_days(&[2, 3, 4]);
        let loose = WaitTarget {
            wait: Duration::from_secs(300),
            percentile: 95,
        };
        let r = sized(&q, loose, at(5, 10, 5, 0));
        assert_eq!(r.slots, 0, "{}", r.explain());
        assert_eq!(r.late, 0.0);
        assert_eq!(r.threshold, None);
    }

    #[test]
    fn a_busy_last_hour_is_answered_before_it_recurs() {
        let mut q = VecDeque::new();
        // Monday to Wednesday: nothing at 20:00; Thursday 19:00-20:00 a pipeline every 10 min.
        for d in 2..5 {
            q.push_back(at(d, 9, 0, 0));
        }
        for m in (0..60).step_by(10) {
            for i in 0..4 {
                q.push_back(at(5, 19, m, i));
            }
        }
        let r = sized(&q, TARGET, at(5, 20, 0, 30));
        assert!(r.slots >= 3, "{}", r.explain());
    }

    #[test]
    fn no_history_no_reserve_and_the_boot_is_assumed_until_learned() {
        let r = size(
            &VecDeque::new(),
            &VecDeque::new(),
            &[],
            TARGET,
            Duration::from_secs(15),
            HOUR,
            at(5, 10, 0, 0),
        );
        assert_eq!(r.slots, 0);
        assert_eq!(r.boot, ASSUMED_BOOT);
        assert_eq!(r.boot_samples, 0);
        assert_eq!(r.keep, ASSUMED_BOOT);
    }

    #[test]
    fn boot_samples_keep_the_newest() {
        let mut b = BootSamples::default();
        for i in 0..100 {
            b.record("p", Duration::from_secs(i));
        }
        let s = b.of("p");
        assert_eq!(s.len(), BOOT_SAMPLES);
        assert_eq!(s.last(), Some(&99));
    }
}
