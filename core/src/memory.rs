//! The controller's memory: what it knows that one observation does not show, in one type
//! ([`Memory`]) shared by `run`, `plan` and the simulator.
//!
//! * Safety: a create is recorded **before** it starts (write-ahead) and forgotten once its
//!   outcome is known; a create whose outcome stays unknown (a timeout, a 5xx, a kill
//!   mid-way) keeps counting against `limit`, across a restart too, until its server is
//!   listed or the pool's `boot_timeout` has passed. Runners of ours seen without a server
//!   are remembered, so that a listing that lacks one (a shifted page, an admin's edit)
//!   does not let the pool grow past `limit`; first 404s of runner probes and deletes in
//!   progress are remembered so that "gone" and "delete stuck" need two looks.
//! * Policy: failures per pool (backoff, circuit breaker) and job arrivals (the forecast),
//!   learned by [`Memory::learn`] from each observation.
//!
//! The memory is a versioned JSON document. [`FileStore`] keeps it in
//! `[controller] state_dir` (written to a temporary file, synced, then renamed over the
//! old one); a missing file is an empty memory, a corrupt or newer one is reported and
//! ignored (the controller then knows only what it observes, as without a `state_dir`).
//! `autoscaler plan` reads the same file, so it shows the backoff, breaker and forecast
//! that the running controller acts on.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

use crate::forecast::ArrivalHistory;
use crate::model::{
    CloudStatus, FailureHistory, Observed, Policy, RunnerId, Timestamp, chrono_duration,
};
use crate::reserve::{BootSamples, Reserve, ReserveCache, WaitTarget};

/// Version of the memory document this build writes and reads.
pub const MEMORY_VERSION: u32 = 2;

/// File name of the memory document inside `state_dir`.
pub const MEMORY_FILE: &str = "memory.json";

/// Where the durable memory lives.
pub trait StateStore: Send + Sync + std::fmt::Debug {
    /// The stored document, `None` when there is none yet.
    ///
    /// # Errors
    ///
    /// The store cannot be read.
    fn load(&self) -> anyhow::Result<Option<String>>;

    /// Replaces the stored document.
    ///
    /// # Errors
    ///
    /// The store cannot be written.
    fn save(&self, text: &str) -> anyhow::Result<()>;
}

/// The memory in a file, replaced atomically.
#[derive(Debug, Clone)]
pub struct FileStore {
    path: PathBuf,
}

impl FileStore {
    /// The memory file inside `state_dir`.
    pub fn in_dir(state_dir: &std::path::Path) -> Self {
        FileStore {
            path: state_dir.join(MEMORY_FILE),
        }
    }

    /// The file's path.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }
}

impl StateStore for FileStore {
    fn load(&self) -> anyhow::Result<Option<String>> {
        match std::fs::read_to_string(&self.path) {
            Ok(t) => Ok(Some(t)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading {}", self.path.display())),
        }
    }

    fn save(&self, text: &str) -> anyhow::Result<()> {
        use std::io::Write as _;
        let tmp = self.path.with_extension("json.tmp");
        let mut f =
            std::fs::File::create(&tmp).with_context(|| format!("writing {}", tmp.display()))?;
        f.write_all(text.as_bytes())
            .and_then(|()| f.sync_all())
            .with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, &self.path)
            .with_context(|| format!("replacing {}", self.path.display()))?;
        Ok(())
    }
}

/// The memory in memory (tests and the fault simulation: clones share it, so a "restarted"
/// controller given a clone finds what the killed one wrote).
#[derive(Debug, Clone, Default)]
pub struct MemoryStore(Arc<Mutex<Option<String>>>);

impl StateStore for MemoryStore {
    fn load(&self) -> anyhow::Result<Option<String>> {
        Ok(self
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone())
    }

    fn save(&self, text: &str) -> anyhow::Result<()> {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(text.to_string());
        Ok(())
    }
}

/// A create not known to have finished: started (write-ahead) or failed with an unknown
/// outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingCreate {
    /// The pool.
    pub pool: String,
    /// Its runner, once created.
    pub runner: Option<RunnerId>,
    /// When the create started or failed.
    pub since: Timestamp,
}

/// A runner of ours seen without a server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrphanMemo {
    /// When it was first seen without a server.
    pub since: Timestamp,
    /// Its pool, as known then.
    pub pool: Option<String>,
}

/// The controller's memory between ticks: everything it knows that one observation does
/// not show. One type, updated by the pure functions below from each tick's observation and
/// outcome, used alike by `run` (which persists it), `plan` (which reads what `run` wrote)
/// and the simulator.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Memory {
    /// Creates not known to have finished, by server name.
    #[serde(default)]
    pub creates: BTreeMap<String, PendingCreate>,
    /// Runners of ours seen without a server.
    #[serde(default)]
    pub orphans: BTreeMap<RunnerId, OrphanMemo>,
    /// Recent create and boot failures per pool: the backoff and the circuit breaker.
    #[serde(default)]
    pub failures: BTreeMap<String, FailureHistory>,
    /// Servers whose failure (ERROR, boot timeout) was counted, so each counts once.
    #[serde(default)]
    pub counted_failures: BTreeSet<String>,
    /// First `GET /runners/:id` 404 per runner id that a server carries: the runner counts
    /// as gone only when a later probe, at least one poll interval on, says 404 again.
    #[serde(default)]
    pub runner_404: BTreeMap<RunnerId, Timestamp>,
    /// When each server was first seen deleting (a delete that does not finish is re-issued).
    #[serde(default)]
    pub deleting_since: BTreeMap<String, Timestamp>,
    /// When jobs became pending, per pool: the forecast's input.
    #[serde(default)]
    pub arrivals: ArrivalHistory,
    /// Pending jobs already recorded in `arrivals`.
    #[serde(default)]
    pub seen_jobs: BTreeSet<u64>,
    /// When jobs finished on a VM that stays, per pool: each leaves a warm slot (the
    /// wait-target reserve counts them).
    #[serde(default)]
    pub departures: ArrivalHistory,
    /// Jobs running per VM at the last observation (departures are decreases).
    #[serde(default)]
    pub running_per_vm: BTreeMap<String, u32>,
    /// Learned boot durations per pool (the wait-target reserve's lead time).
    #[serde(default)]
    pub boots: BootSamples,
    /// Servers seen before their runner's first contact: their boot is measured when it
    /// comes.
    #[serde(default)]
    pub booting: BTreeSet<String>,
    /// The wait-target reserve's hourly part, reused within the hour (not stored).
    #[serde(skip)]
    pub reserve_cache: ReserveCache,
}

/// The stored form (no `flatten`: it would lose the runner ids' integer keys).
#[derive(Serialize, Deserialize)]
struct Document {
    version: u32,
    memory: Memory,
}

impl Memory {
    /// The document text.
    pub fn to_text(&self) -> String {
        serde_json::to_string_pretty(&Document {
            version: MEMORY_VERSION,
            memory: self.clone(),
        })
        .unwrap_or_default()
    }

    /// The part written as soon as it changes, as text: what a safety rule needs (creates
    /// in flight, orphans, 404s, deletes in progress) and the failures (backoff, breaker),
    /// which `plan` must show as `run` acts on them. Job arrivals change with every new job
    /// and may wait for the next write.
    pub fn urgent_text(&self) -> String {
        serde_json::to_string(&(
            &self.creates,
            &self.orphans,
            &self.runner_404,
            &self.deleting_since,
            &self.failures,
            &self.counted_failures,
        ))
        .unwrap_or_default()
    }

    /// Parses a document (version 1 documents, which held only creates and orphans, read
    /// as a memory with no failure or arrival history).
    ///
    /// # Errors
    ///
    /// Not JSON of this shape, or written by a newer version.
    pub fn from_text(text: &str) -> anyhow::Result<Memory> {
        let doc: Document = serde_json::from_str(text).context("not a memory document")?;
        if doc.version > MEMORY_VERSION {
            anyhow::bail!(
                "written by a newer version (memory version {}, this build reads {MEMORY_VERSION})",
                doc.version
            );
        }
        Ok(doc.memory)
    }

    /// Learns from one tick's observation (GitLab read): records the arrival of every
    /// pending job not seen before under the first pool that can run it, and of every
    /// running job not seen before under its VM's pool (taken before a poll saw it
    /// pending), counts each
    /// failed VM once (ERROR, or a runner that never contacted GitLab within the pool's
    /// `boot_timeout`), and clears a pool's failures once one of its runners has contacted
    /// GitLab after the last failure. Drops arrivals too old for any pool's forecast.
    pub fn learn(&mut self, obs: &Observed, policy: &Policy, now: Timestamp) {
        if let Some(jobs) = &obs.pending {
            for job in jobs {
                if self.seen_jobs.insert(job.id) {
                    if let Some(p) = policy.pools.iter().find(|p| p.can_run(&job.tags)) {
                        self.arrivals.record(&p.name, job.queued_since.min(now));
                    }
                }
            }
            // A job a warm VM took between two polls was never seen pending: its arrival
            // is learned from the runner that runs it, for that runner's pool.
            for vm in &obs.vms {
                for job in vm.runner.iter().flat_map(|r| &r.running) {
                    if self.seen_jobs.insert(job.id) {
                        self.arrivals.record(&vm.pool, job.queued_since.min(now));
                    }
                }
            }
            let live: BTreeSet<u64> = jobs
                .iter()
                .map(|j| j.id)
                .chain(
                    obs.vms
                        .iter()
                        .flat_map(|v| v.runner.iter().flat_map(|r| &r.running))
                        .map(|j| j.id),
                )
                .collect();
            self.seen_jobs.retain(|id| live.contains(id));
        }
        let keep = policy
            .pools
            .iter()
            .map(|p| p.forecast)
            .max_by_key(|f| (f.days, f.lookahead))
            .unwrap_or_default();
        let min_days = if policy.pools.iter().any(|p| p.limits.target_wait.is_some()) {
            crate::reserve::HISTORY_DAYS as u32
        } else {
            0
        };
        self.arrivals.prune(now, keep, min_days);
        self.departures.prune(now, keep, min_days);
        if obs.pending.is_some() {
            let mut running = BTreeMap::new();
            for vm in &obs.vms {
                let Some(r) = vm.runner.as_ref() else {
                    continue;
                };
                if let Some(&before) = self.running_per_vm.get(&vm.id.0) {
                    for _ in r.running_jobs..before {
                        self.departures.record(&vm.pool, now);
                    }
                }
                running.insert(vm.id.0.clone(), r.running_jobs);
            }
            self.running_per_vm = running;
        }

        if obs.pending.is_none() {
            return; // runners unknown: neither a failure nor a contact can be judged
        }
        for vm in &obs.vms {
            let boot_timeout = policy
                .pools
                .iter()
                .find(|p| p.name == vm.pool)
                .map_or(Duration::from_secs(600), |p| p.limits.boot_timeout);
            let failed = matches!(vm.phase, CloudStatus::Error { .. })
                || (vm.runner.as_ref().is_some_and(|r| r.contacted_at.is_none())
                    && now - vm.created_at > chrono_duration(boot_timeout));
            if failed && self.counted_failures.insert(vm.id.0.clone()) {
                self.count_failure(&vm.pool, now);
            }
        }
        for vm in &obs.vms {
            if let Some(contacted) = vm.runner.as_ref().and_then(|r| r.contacted_at) {
                self.count_contact(&vm.pool, contacted);
                // Booted since a poll saw it without contact: one boot measured.
                if self.booting.remove(&vm.id.0) {
                    let boot = (contacted.min(now) - vm.created_at)
                        .to_std()
                        .unwrap_or_default();
                    self.boots.record(&vm.pool, boot);
                }
            } else if vm.runner.is_some()
                && !matches!(vm.phase, CloudStatus::Deleting | CloudStatus::Error { .. })
            {
                self.booting.insert(vm.id.0.clone());
            }
        }
        let ids: BTreeSet<&str> = obs.vms.iter().map(|v| v.id.0.as_str()).collect();
        self.counted_failures.retain(|id| ids.contains(id.as_str()));
        self.booting.retain(|id| ids.contains(id.as_str()));
    }

    /// A create or boot of `pool` failed at `at`.
    pub fn count_failure(&mut self, pool: &str, at: Timestamp) {
        let f = self.failures.entry(pool.to_string()).or_default();
        f.consecutive += 1;
        f.last_failure_at = Some(at);
    }

    /// A create of `pool` was refused at `at` because the settings are wrong (a flavor,
    /// image or network that does not exist, a request the cloud or GitLab refuses as
    /// configured), not because its VMs fail: creates wait one base backoff and are then
    /// tried again, at that steady pace, without the wait growing or the circuit breaker
    /// opening, so a fix is picked up within one base backoff. Boot failures counted before
    /// are kept.
    pub fn hold_creates(&mut self, pool: &str, at: Timestamp) {
        let f = self.failures.entry(pool.to_string()).or_default();
        f.consecutive = f.consecutive.max(1);
        f.last_failure_at = Some(at);
    }

    /// A runner of `pool` contacted GitLab at `contacted`: if that is after the last
    /// failure, the pool's failures are over.
    pub fn count_contact(&mut self, pool: &str, contacted: Timestamp) {
        if let Some(f) = self.failures.get_mut(pool) {
            if f.last_failure_at.is_none_or(|t| contacted > t) {
                *f = FailureHistory::default();
            }
        }
    }

    /// The reserve of each wait-target pool at `now` (see [`crate::reserve`]), for
    /// [`Observed::reserve`].
    pub fn reserve(&self, policy: &Policy, now: Timestamp) -> BTreeMap<String, Reserve> {
        let empty = std::collections::VecDeque::new();
        policy
            .pools
            .iter()
            .filter_map(|p| {
                let wait = p.limits.target_wait?;
                let target = WaitTarget {
                    wait,
                    percentile: p.target_percentile,
                };
                let arrivals = self.arrivals.of(&p.name).unwrap_or(&empty);
                let departures = self.departures.of(&p.name).unwrap_or(&empty);
                let r = self.reserve_cache.size(
                    &p.name,
                    arrivals,
                    departures,
                    &self.boots.of(&p.name),
                    target,
                    policy.poll_interval,
                    p.limits.idle_time,
                    now,
                );
                Some((p.name.clone(), r))
            })
            .collect()
    }

    /// The most arrivals per pool within one poll interval during the last hour, for
    /// [`Observed::arrivals_per_poll`].
    pub fn arrivals_per_poll(&self, policy: &Policy, now: Timestamp) -> BTreeMap<String, u32> {
        policy
            .pools
            .iter()
            .filter_map(|p| {
                let n = self.arrivals.peak_within(
                    &p.name,
                    now,
                    policy.poll_interval,
                    Duration::from_secs(3600),
                );
                (n > 0).then(|| (p.name.clone(), n))
            })
            .collect()
    }

    /// The learned burst expected for each pool soon after `now` (pools expecting none are
    /// left out), for [`Observed::expected`].
    pub fn expected(&self, policy: &Policy, now: Timestamp) -> BTreeMap<String, u32> {
        policy
            .pools
            .iter()
            .filter_map(|p| {
                let e = self.arrivals.expected(&p.name, now, p.forecast);
                (e > 0).then(|| (p.name.clone(), e))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn sample() -> Memory {
        let at = chrono::DateTime::parse_from_rfc3339("2026-12-06T10:00:00Z")
            .unwrap()
            .to_utc();
        let mut d = Memory::default();
        d.creates.insert(
            "ci-docker-1-1".into(),
            PendingCreate {
                pool: "docker".into(),
                runner: Some(7),
                since: at,
            },
        );
        d.orphans.insert(
            9,
            OrphanMemo {
                since: at,
                pool: Some("docker".into()),
            },
        );
        d
    }

    #[test]
    fn a_file_store_round_trips_and_replaces_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::in_dir(dir.path());
        assert_eq!(store.load().unwrap(), None, "no file: empty memory");
        store.save(&sample().to_text()).unwrap();
        store.save(&sample().to_text()).unwrap();
        let back = Memory::from_text(&store.load().unwrap().unwrap()).unwrap();
        assert_eq!(back, sample());
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(
            names,
            vec![MEMORY_FILE.to_string()],
            "no temporary file left"
        );
    }

    #[test]
    fn corrupt_and_newer_documents_are_refused_with_a_reason() {
        let e = Memory::from_text("{not json").unwrap_err();
        assert!(format!("{e:#}").contains("not a memory document"), "{e:#}");
        let newer = sample()
            .to_text()
            .replace(&format!("\"version\": {MEMORY_VERSION}"), "\"version\": 99");
        let e = Memory::from_text(&newer).unwrap_err();
        assert!(format!("{e:#}").contains("newer version"), "{e:#}");
    }

    #[test]
    fn a_version_1_document_reads_with_no_failure_or_arrival_history() {
        let v1 = r#"{"version": 1, "memory": {"creates": {}, "orphans": {"9": {"since": "2026-12-06T10:00:00Z", "pool": "docker"}}}}"#;
        let m = Memory::from_text(v1).unwrap();
        assert_eq!(m.orphans.len(), 1);
        assert!(m.failures.is_empty() && m.arrivals.is_empty());
    }

    #[test]
    fn failures_and_arrivals_survive_the_round_trip() {
        let mut m = sample();
        let at = chrono::DateTime::parse_from_rfc3339("2026-12-06T10:00:07Z")
            .unwrap()
            .to_utc();
        m.count_failure("docker", at);
        m.arrivals.record("docker", at);
        m.seen_jobs.insert(42);
        let back = Memory::from_text(&m.to_text()).unwrap();
        assert_eq!(back, m);
        assert_ne!(
            m.urgent_text(),
            sample().urgent_text(),
            "a failure is written at once"
        );
    }

    fn policy() -> Policy {
        Policy {
            pools: vec![crate::model::PoolPolicy {
                name: "docker".into(),
                tags: ["docker".to_string()].into_iter().collect(),
                run_untagged: false,
                capacity: 1,
                park_surplus: true,
                limits: crate::model::Limits {
                    idle_count: 0,
                    idle_time: Duration::from_secs(600),
                    max_builds: 0,
                    limit: 4,
                    max_growth: 0,
                    boot_timeout: Duration::from_secs(300),
                    target_wait: None,
                },
                forecast: crate::forecast::ForecastSettings::default(),
                target_percentile: 95,
                billing_period: None,
            }],
            backoff: crate::model::Backoff::default(),
            offline_after: Policy::DEFAULT_OFFLINE_AFTER,
            delete_retry: Policy::DEFAULT_DELETE_RETRY,
            poll_interval: Policy::DEFAULT_POLL_INTERVAL,
        }
    }

    fn vm(
        id: &str,
        phase: CloudStatus,
        runner: Option<crate::model::RunnerView>,
    ) -> crate::model::Vm {
        let t0 = chrono::DateTime::parse_from_rfc3339("2026-12-06T10:00:00Z")
            .unwrap()
            .to_utc();
        crate::model::Vm {
            id: crate::model::VmId(id.into()),
            name: id.into(),
            pool: "docker".into(),
            created_at: t0,
            phase,
            runner,
            runner_link: crate::model::RunnerLink::Seen,
            deleting_since: None,
            address: None,
        }
    }

    /// The one learning rule: each failed VM counts once however many ticks see it; a
    /// runner's contact after the last failure clears the pool's failures; a running job
    /// never seen pending is learned as an arrival once.
    #[test]
    fn learn_counts_each_failure_once_and_learns_jobs_taken_between_polls() {
        let policy = policy();
        let t = |s: i64| {
            chrono::DateTime::parse_from_rfc3339("2026-12-06T10:00:00Z")
                .unwrap()
                .to_utc()
                + chrono::Duration::seconds(s)
        };
        let mut m = Memory::default();
        let broken = Observed {
            pending: Some(Vec::new()),
            vms: vec![vm("a", CloudStatus::Error { fault: None }, None)],
            ..Observed::default()
        };
        m.learn(&broken, &policy, t(10));
        m.learn(&broken, &policy, t(20));
        assert_eq!(
            m.failures["docker"].consecutive, 1,
            "one ERROR VM, one failure"
        );
        assert_eq!(m.failures["docker"].last_failure_at, Some(t(10)));
        // GitLab unreadable: nothing is judged.
        let blind = Observed {
            pending: None,
            ..broken.clone()
        };
        m.learn(&blind, &policy, t(30));
        assert_eq!(m.failures["docker"].consecutive, 1);
        let runner = crate::model::RunnerView {
            id: 7,
            paused: false,
            contacted_at: Some(t(35)),
            running_jobs: 1,
            jobs_run: 1,
            last_job_at: Some(t(34)),
            running: vec![crate::model::JobArrival {
                id: 99,
                queued_since: t(33),
            }],
        };
        let healthy = Observed {
            pending: Some(Vec::new()),
            vms: vec![vm("b", CloudStatus::Active, Some(runner))],
            ..Observed::default()
        };
        m.learn(&healthy, &policy, t(40));
        m.learn(&healthy, &policy, t(50));
        assert_eq!(
            m.failures["docker"].consecutive, 0,
            "a contact after the failure"
        );
        assert_eq!(m.arrivals.len(), 1, "job 99 learned once: {m:?}");
        assert!(m.counted_failures.is_empty(), "the ERROR VM is gone");
    }

    /// What the wait-target forecast learned (arrivals, jobs finishing, boot times) is
    /// written with the memory and read back by a restarted controller, which then sizes
    /// the same reserve.
    #[test]
    fn a_restart_keeps_the_wait_target_forecast() {
        let mut policy = policy();
        policy.pools[0].limits.target_wait = Some(Duration::from_secs(60));
        policy.pools[0].limits.idle_time = Duration::from_secs(3600);
        let t0 = chrono::DateTime::parse_from_rfc3339("2026-11-30T08:00:00Z")
            .unwrap()
            .to_utc();
        let at = |s: i64| t0 + chrono::Duration::seconds(s);
        let runner = |contacted: Option<Timestamp>| crate::model::RunnerView {
            id: 1,
            paused: false,
            contacted_at: contacted,
            running_jobs: 0,
            jobs_run: 0,
            last_job_at: None,
            running: Vec::new(),
        };
        let mut m = Memory::default();
        let mut id = 0u64;
        // Three weekdays, four-job pipelines every 20 minutes from 08:00 to 12:00.
        for day in 0..3i64 {
            for slot in 0..12i64 {
                let t = day * 86_400 + slot * 1200;
                let jobs = (0..4)
                    .map(|_| {
                        id += 1;
                        crate::model::PendingJob {
                            id,
                            tags: ["docker".to_string()].into_iter().collect(),
                            queued_since: at(t),
                        }
                    })
                    .collect();
                let mut booting = vm("v", CloudStatus::Active, Some(runner(None)));
                booting.created_at = at(t - 95);
                m.learn(
                    &Observed {
                        pending: Some(jobs),
                        vms: vec![booting.clone()],
                        ..Observed::default()
                    },
                    &policy,
                    at(t),
                );
                booting.runner = Some(runner(Some(at(t))));
                m.learn(
                    &Observed {
                        pending: Some(Vec::new()),
                        vms: vec![booting],
                        ..Observed::default()
                    },
                    &policy,
                    at(t + 1),
                );
            }
        }
        let now = at(3 * 86_400 + 600);
        let before = m.reserve(&policy, now);
        assert!(before["docker"].slots > 0, "{}", before["docker"].explain());
        assert!(before["docker"].boot_samples > 0);

        let restarted = Memory::from_text(&m.to_text()).unwrap();
        assert_eq!(restarted.arrivals, m.arrivals);
        assert_eq!(restarted.boots, m.boots);
        assert_eq!(restarted.reserve(&policy, now), before);
        // A controller that forgot would keep nothing warm.
        assert_eq!(Memory::default().reserve(&policy, now)["docker"].slots, 0);
    }
}
