//! Per-runner job counting without re-paging a runner's whole history every tick.
//!
//! GitLab has no "jobs run" counter on a runner, so the adapter lists the runner's jobs
//! newest first and remembers a *high-water mark*: every job with an id at or below it is
//! finished and already counted. Each tick only the jobs above the mark are read (usually
//! one page); the mark advances over the jobs that have finished since. Pure: no I/O.

use chrono::{DateTime, Utc};

/// Job statuses after which a job never changes again.
const TERMINAL: [&str; 4] = ["success", "failed", "canceled", "skipped"];

/// What the adapter remembers about one runner's jobs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct JobCounter {
    /// Every job with `id <= high_water` is terminal and counted in `counted`.
    pub high_water: u64,
    /// Jobs at or below the high-water mark.
    pub counted: u32,
    /// Latest start/finish among the counted jobs.
    pub last_at: Option<DateTime<Utc>>,
}

/// One job of a runner, reduced to what counting needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SeenJob {
    /// Job id.
    pub id: u64,
    /// GitLab status.
    pub status: String,
    /// Start time, if started.
    pub started_at: Option<DateTime<Utc>>,
    /// Finish time, if finished.
    pub finished_at: Option<DateTime<Utc>>,
}

impl SeenJob {
    fn is_terminal(&self) -> bool {
        TERMINAL.contains(&self.status.as_str())
    }

    fn last_at(&self) -> Option<DateTime<Utc>> {
        self.finished_at.max(self.started_at)
    }
}

/// Result of one update: the runner's totals now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Totals {
    /// Jobs started so far.
    pub jobs_run: u32,
    /// Latest job start or finish.
    pub last_job_at: Option<DateTime<Utc>>,
}

impl JobCounter {
    /// Folds in the jobs listed above the high-water mark (any order, duplicates allowed)
    /// and returns the totals. Jobs at or below the mark are ignored.
    pub fn update(&mut self, jobs: &[SeenJob]) -> Totals {
        let mut above: Vec<&SeenJob> = jobs.iter().filter(|j| j.id > self.high_water).collect();
        above.sort_by_key(|j| j.id);
        above.dedup_by_key(|j| j.id);
        let mut last = self.last_at;
        for j in &above {
            last = last.max(j.last_at());
        }
        let jobs_run = self
            .counted
            .saturating_add(u32::try_from(above.len()).unwrap_or(u32::MAX));
        // Advance the mark over the oldest jobs that are finished.
        for j in above.iter().take_while(|j| j.is_terminal()) {
            self.high_water = j.id;
            self.counted = self.counted.saturating_add(1);
            self.last_at = self.last_at.max(j.last_at());
        }
        Totals {
            jobs_run,
            last_job_at: last,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn job(id: u64, status: &str, minute: u32) -> SeenJob {
        let at = Utc.with_ymd_and_hms(2026, 1, 1, 10, minute, 0).single();
        SeenJob {
            id,
            status: status.into(),
            started_at: at,
            finished_at: if TERMINAL.contains(&status) { at } else { None },
        }
    }

    #[test]
    fn finished_jobs_are_counted_once_across_updates() {
        let mut c = JobCounter::default();
        let t = c.update(&[job(3, "success", 3), job(1, "failed", 1)]);
        assert_eq!(t.jobs_run, 2);
        assert_eq!(c.high_water, 3);
        // The next listing repeats old jobs: they are ignored.
        let t = c.update(&[
            job(5, "running", 5),
            job(3, "success", 3),
            job(1, "failed", 1),
        ]);
        assert_eq!(t.jobs_run, 3);
        assert_eq!(c.high_water, 3, "a running job holds the mark");
        let t = c.update(&[job(5, "success", 6)]);
        assert_eq!(t.jobs_run, 3);
        assert_eq!(c.high_water, 5);
    }

    #[test]
    fn a_running_job_below_a_finished_one_keeps_both_above_the_mark() {
        let mut c = JobCounter::default();
        let t = c.update(&[job(7, "success", 8), job(6, "running", 2)]);
        assert_eq!(t.jobs_run, 2);
        assert_eq!(c.high_water, 0);
        assert_eq!(t.last_job_at, job(7, "success", 8).finished_at);
        let t = c.update(&[job(7, "success", 8), job(6, "success", 9)]);
        assert_eq!(t.jobs_run, 2);
        assert_eq!(c.high_water, 7);
        assert_eq!(t.last_job_at, job(6, "success", 9).finished_at);
    }

    #[test]
    fn duplicates_from_shifting_pages_are_counted_once() {
        let mut c = JobCounter::default();
        let t = c.update(&[job(2, "success", 2), job(2, "success", 2)]);
        assert_eq!(t.jobs_run, 1);
    }
}
