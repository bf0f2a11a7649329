//! The simulated world shared by every simulated policy: the job queue as GitLab holds it,
//! the VMs with their billing, and runners that pick up jobs.
//!
//! Time is whole seconds since the Unix epoch (`i64`) inside the simulator.

use std::collections::BTreeSet;

use super::trace::TraceJob;

/// Seconds since the Unix epoch.
pub type Secs = i64;

/// Seconds between two job requests of one gitlab-runner (`check_interval`, default 3 s).
pub const CHECK_INTERVAL: Secs = 3;

/// A job's fate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobRecord {
    /// When it started, if it did.
    pub started: Option<Secs>,
    /// Pool whose VM ran it (or, if it never ran, the first pool that could).
    pub pool: Option<usize>,
}

/// Cloud phase of a simulated VM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Booting until `ready_at`.
    Creating,
    /// Booted; its runner takes jobs when unpaused.
    Ready,
    /// Failed to boot.
    Error,
    /// Being deleted until the given second.
    Deleting(Secs),
    /// Gone.
    Deleted,
}

/// One simulated VM.
#[derive(Debug, Clone)]
pub struct SimVm {
    /// Sequence number (also its runner id).
    pub id: u64,
    /// Pool index.
    pub pool: usize,
    /// When the create was requested: billing starts here.
    pub created: Secs,
    /// When its runner first contacts GitLab (boot done).
    pub ready_at: Secs,
    /// Whether this VM goes to ERROR instead of booting.
    pub fails: bool,
    /// Cloud phase.
    pub phase: Phase,
    /// Runner paused.
    pub paused: bool,
    /// Jobs running: (job index, end second).
    pub running: Vec<(usize, Secs)>,
    /// Jobs started on it.
    pub jobs_run: u32,
    /// Last job start or finish.
    pub last_job_at: Option<Secs>,
    /// Offset of this runner's job polling within `CHECK_INTERVAL`.
    pub poll_phase: Secs,
    /// When it became busy (for busy-time accounting).
    busy_since: Option<Secs>,
    /// Accumulated seconds with at least one job.
    pub busy_secs: Secs,
    /// When deletion finished.
    pub deleted_at: Option<Secs>,
}

impl SimVm {
    /// Whether the VM still exists (billed).
    pub fn alive(&self) -> bool {
        self.phase != Phase::Deleted
    }
}

/// Deterministic pseudo-random numbers (SplitMix64): the simulator must give the same
/// figures for the same seed on every machine.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// Seeds the generator.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }
    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Standard normal (Box-Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = self.unit().max(f64::MIN_POSITIVE);
        let u2 = self.unit();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
}

/// Boot time, create failures and delete time of the simulated cloud.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CloudModel {
    /// Median seconds from create request to the runner's first contact.
    pub boot_median_s: f64,
    /// Log-normal spread (sigma of the log): 0.3 puts p95 near 1.6 x the median.
    pub boot_sigma: f64,
    /// Shortest possible boot.
    pub boot_min_s: f64,
    /// Share of creates that end in ERROR.
    pub create_failure_rate: f64,
    /// Seconds a delete takes (billed until done).
    pub delete_s: Secs,
}

impl Default for CloudModel {
    fn default() -> Self {
        CloudModel {
            boot_median_s: 90.0,
            boot_sigma: 0.3,
            boot_min_s: 30.0,
            create_failure_rate: 0.0,
            delete_s: 10,
        }
    }
}

impl CloudModel {
    /// Samples one boot time in whole seconds.
    pub fn boot(&self, rng: &mut Rng) -> Secs {
        let b = self.boot_median_s * (self.boot_sigma * rng.normal()).exp();
        b.max(self.boot_min_s).round() as Secs
    }
}

/// Pool attributes the world needs for job matching.
#[derive(Debug, Clone)]
pub struct PoolMatch {
    /// Runner tags.
    pub tags: BTreeSet<String>,
    /// Takes untagged jobs.
    pub run_untagged: bool,
    /// Jobs per VM.
    pub capacity: u32,
}

impl PoolMatch {
    /// GitLab's matching rule.
    pub fn can_run(&self, job: &TraceJob) -> bool {
        if job.tags.is_empty() {
            self.run_untagged
        } else {
            job.tags.is_subset(&self.tags)
        }
    }
}

/// One sample of the fleet, for plots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Sample {
    /// Seconds.
    pub t: Secs,
    /// VMs creating.
    pub creating: u32,
    /// VMs ready and idle (unpaused).
    pub idle: u32,
    /// VMs with a job.
    pub busy: u32,
    /// VMs paused without a job.
    pub parked: u32,
    /// VMs failed or deleting.
    pub other: u32,
    /// Pending jobs.
    pub queue: u32,
}

/// Jobs, VMs and their accounting.
#[derive(Debug)]
pub struct World<'a> {
    /// The trace.
    pub jobs: &'a [TraceJob],
    /// Index of the next job to arrive.
    next_arrival: usize,
    /// Pending job indexes in queue order.
    pub pending: Vec<usize>,
    /// Per-job record.
    pub records: Vec<JobRecord>,
    /// Every VM ever created.
    pub vms: Vec<SimVm>,
    /// Pools.
    pub pools: Vec<PoolMatch>,
    /// Creates per pool.
    pub creates: Vec<u32>,
    /// Deletes per pool.
    pub deletes: Vec<u32>,
    /// Live VMs now and the peak, per pool.
    live: Vec<u32>,
    /// Peak live VMs per pool.
    pub peak: Vec<u32>,
    /// Peak live VMs over all pools at once.
    pub peak_total: u32,
    /// Samples for plots.
    pub samples: Vec<Sample>,
    /// Randomness.
    pub rng: Rng,
}

impl<'a> World<'a> {
    /// A world with no VM and no job arrived yet.
    pub fn new(jobs: &'a [TraceJob], pools: Vec<PoolMatch>, seed: u64) -> Self {
        let n = pools.len();
        let records = jobs
            .iter()
            .map(|j| JobRecord {
                started: None,
                pool: pools.iter().position(|p| p.can_run(j)),
            })
            .collect();
        World {
            jobs,
            next_arrival: 0,
            pending: Vec::new(),
            records,
            vms: Vec::new(),
            pools,
            creates: vec![0; n],
            deletes: vec![0; n],
            live: vec![0; n],
            peak: vec![0; n],
            peak_total: 0,
            samples: Vec::new(),
            rng: Rng::new(seed),
        }
    }

    /// Moves jobs submitted at or before `t` into the queue; returns their indexes.
    pub fn arrivals(&mut self, t: Secs) -> std::ops::Range<usize> {
        let first = self.next_arrival;
        while self.next_arrival < self.jobs.len()
            && self.jobs[self.next_arrival].submitted.timestamp() <= t
        {
            self.pending.push(self.next_arrival);
            self.next_arrival += 1;
        }
        first..self.next_arrival
    }

    /// Whether every job has arrived.
    pub fn all_arrived(&self) -> bool {
        self.next_arrival >= self.jobs.len()
    }

    /// Adds a VM; returns its index.
    pub fn create_vm(&mut self, pool: usize, t: Secs, boot: Secs, fails: bool) -> usize {
        let id = self.vms.len() as u64 + 1;
        let poll_phase = (self.rng.next_u64() % CHECK_INTERVAL as u64) as Secs;
        self.vms.push(SimVm {
            id,
            pool,
            created: t,
            ready_at: t + boot,
            fails,
            phase: Phase::Creating,
            paused: false,
            running: Vec::new(),
            jobs_run: 0,
            last_job_at: None,
            poll_phase,
            busy_since: None,
            busy_secs: 0,
            deleted_at: None,
        });
        self.creates[pool] += 1;
        self.live[pool] += 1;
        self.peak[pool] = self.peak[pool].max(self.live[pool]);
        let total: u32 = self.live.iter().sum();
        self.peak_total = self.peak_total.max(total);
        self.vms.len() - 1
    }

    /// Starts deleting a VM. Never called on a VM with running jobs.
    pub fn delete_vm(&mut self, vm: usize, t: Secs, delete_s: Secs) {
        debug_assert!(self.vms[vm].running.is_empty(), "deleting a busy VM");
        if matches!(self.vms[vm].phase, Phase::Deleting(_) | Phase::Deleted) {
            return;
        }
        self.vms[vm].phase = Phase::Deleting(t + delete_s);
        self.deletes[self.vms[vm].pool] += 1;
    }

    /// Boots, fails and finishes deleting VMs whose time has come.
    /// Returns the pools of VMs that became ready and of VMs that failed this second.
    pub fn lifecycle(&mut self, t: Secs, error_after: Secs) -> (Vec<usize>, Vec<usize>) {
        let mut ready = Vec::new();
        let mut failed = Vec::new();
        for vm in self.vms.iter_mut() {
            match vm.phase {
                Phase::Creating if vm.fails && t >= vm.created + error_after => {
                    vm.phase = Phase::Error;
                    failed.push(vm.pool);
                }
                Phase::Creating if !vm.fails && t >= vm.ready_at => {
                    vm.phase = Phase::Ready;
                    ready.push(vm.pool);
                }
                Phase::Deleting(until) if t >= until => {
                    vm.phase = Phase::Deleted;
                    vm.deleted_at = Some(t);
                    self.live[vm.pool] -= 1;
                }
                _ => {}
            }
        }
        (ready, failed)
    }

    /// Ends jobs whose time is up; returns the VMs that released a job.
    pub fn finish_jobs(&mut self, t: Secs) -> Vec<usize> {
        let mut released = Vec::new();
        for (i, vm) in self.vms.iter_mut().enumerate() {
            if vm.running.is_empty() {
                continue;
            }
            let before = vm.running.len();
            vm.running.retain(|&(_, end)| end > t);
            if vm.running.len() < before {
                vm.last_job_at = Some(t);
                released.push(i);
                if vm.running.is_empty() {
                    if let Some(s) = vm.busy_since.take() {
                        vm.busy_secs += t - s;
                    }
                }
            }
        }
        released
    }

    /// Index in `pending` of the oldest job the VM's pool can run.
    pub fn oldest_runnable(&self, pool: usize) -> Option<usize> {
        let p = &self.pools[pool];
        self.pending.iter().position(|&j| p.can_run(&self.jobs[j]))
    }

    /// Starts the pending job at `pos` on `vm` at second `start` (>= now when the VM is
    /// still booting, as with docker+machine's on-demand machines).
    pub fn start_job(&mut self, pos: usize, vm: usize, start: Secs) {
        let job = self.pending.remove(pos);
        let end = start + Secs::from(self.jobs[job].duration_s).max(1);
        self.records[job].started = Some(start);
        self.records[job].pool = Some(self.vms[vm].pool);
        let v = &mut self.vms[vm];
        if v.running.is_empty() {
            v.busy_since = Some(start);
        }
        v.running.push((job, end));
        v.jobs_run += 1;
        v.last_job_at = Some(start);
    }

    /// Runners of ready, unpaused VMs with a free slot ask for a job on their polling beat.
    pub fn runner_polls(&mut self, t: Secs) {
        if self.pending.is_empty() {
            return;
        }
        for i in 0..self.vms.len() {
            let vm = &self.vms[i];
            if vm.phase != Phase::Ready
                || vm.paused
                || (t + vm.poll_phase) % CHECK_INTERVAL != 0
                || vm.running.len() as u32 >= self.pools[vm.pool].capacity
            {
                continue;
            }
            if let Some(pos) = self.oldest_runnable(vm.pool) {
                self.start_job(pos, i, t);
                if self.pending.is_empty() {
                    return;
                }
            }
        }
    }

    /// Records a plot sample.
    pub fn sample(&mut self, t: Secs) {
        let mut s = Sample {
            t,
            queue: self.pending.len() as u32,
            ..Sample::default()
        };
        for vm in self.vms.iter().filter(|v| v.alive()) {
            match vm.phase {
                Phase::Creating => s.creating += 1,
                Phase::Ready if !vm.running.is_empty() => s.busy += 1,
                Phase::Ready if vm.paused => s.parked += 1,
                Phase::Ready => s.idle += 1,
                _ => s.other += 1,
            }
        }
        self.samples.push(s);
    }

    /// Closes the books at `end`: busy time of VMs still busy, lifetimes of VMs still alive.
    pub fn close(&mut self, end: Secs) {
        for vm in self.vms.iter_mut() {
            if let Some(s) = vm.busy_since.take() {
                vm.busy_secs += (end - s).max(0);
            }
        }
    }

    /// Seconds a VM was billed within the window ending at `end`.
    pub fn billed_secs(vm: &SimVm, end: Secs) -> Secs {
        vm.deleted_at.unwrap_or(end).min(end) - vm.created
    }
}
