//! Figures of one simulated policy: waits, VM-hours, utilisation, peaks, churn.

use serde::Serialize;

use super::SimPool;
use super::world::{Sample, Secs, World};

/// Figures for one pool or for all pools together.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct Figures {
    /// Jobs counted (started, or pending when the window closed).
    pub jobs: u32,
    /// Jobs that never started within the window (their wait runs to its end).
    pub unstarted: u32,
    /// Median queue wait in seconds.
    pub wait_p50_s: f64,
    /// 95th percentile wait.
    pub wait_p95_s: f64,
    /// 99th percentile wait.
    pub wait_p99_s: f64,
    /// Longest wait.
    pub wait_max_s: f64,
    /// VM-hours billed (create request to delete done).
    pub vm_hours: f64,
    /// VM-hours paid for where each started billing period is paid in full: the pool's
    /// `billing_period`, or [`REPORT_BILLING_PERIOD`] where it sets none (`None` for the
    /// clairvoyant bound, which has no VM lifetimes).
    pub paid_vm_hours: Option<f64>,
    /// VM-hours with at least one job running.
    pub busy_vm_hours: f64,
    /// busy / total.
    pub utilisation: f64,
    /// Share of VM-hours without a job.
    pub idle_share: f64,
    /// Most VMs alive at once.
    pub peak_vms: u32,
    /// VMs created.
    pub creates: u32,
    /// VMs deleted.
    pub deletes: u32,
}

impl Figures {
    /// Fills the derived ratios.
    pub fn finish(mut self) -> Self {
        if self.vm_hours > 0.0 {
            self.utilisation = self.busy_vm_hours / self.vm_hours;
            self.idle_share = 1.0 - self.utilisation;
        }
        self
    }

    fn with_waits(mut self, mut waits: Vec<Secs>) -> Self {
        waits.sort_unstable();
        self.wait_p50_s = percentile(&waits, 0.50);
        self.wait_p95_s = percentile(&waits, 0.95);
        self.wait_p99_s = percentile(&waits, 0.99);
        self.wait_max_s = waits.last().copied().unwrap_or(0) as f64;
        self
    }
}

/// Billing period the paid figure uses for a pool that sets none: per started hour.
pub const REPORT_BILLING_PERIOD: Secs = 3600;

/// Nearest-rank percentile of sorted values.
pub fn percentile(sorted: &[Secs], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1] as f64
}

/// One policy's result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PolicyReport {
    /// Policy name.
    pub name: String,
    /// All pools together.
    pub total: Figures,
    /// Per pool, in config order.
    pub pools: Vec<(String, Figures)>,
    /// Deletes the simulator refused because the VM was running a job (must stay 0).
    pub killed_jobs: u32,
    /// Jobs no pool can run (tags not matched): left out of every figure.
    pub unrunnable: u32,
    /// Samples for plots.
    #[serde(skip)]
    pub samples: Vec<Sample>,
}

impl PolicyReport {
    /// Computes the figures from a finished world.
    pub fn from_world(name: &str, world: &World<'_>, pools: &[SimPool], end: Secs) -> Self {
        let n = pools.len();
        let mut per: Vec<Figures> = vec![Figures::default(); n];
        let mut waits: Vec<Vec<Secs>> = vec![Vec::new(); n];
        let mut all_waits = Vec::new();
        let mut unrunnable = 0u32;
        for (j, rec) in world.records.iter().enumerate() {
            let Some(p) = rec.pool else {
                unrunnable += 1;
                continue;
            };
            let submitted = world.jobs[j].submitted.timestamp();
            let wait = match rec.started {
                Some(s) => s - submitted,
                None => {
                    per[p].unstarted += 1;
                    end - submitted
                }
            };
            per[p].jobs += 1;
            waits[p].push(wait);
            all_waits.push(wait);
        }
        for vm in &world.vms {
            let f = &mut per[vm.pool];
            let secs = World::billed_secs(vm, end).max(0);
            let period = pools[vm.pool]
                .policy
                .billing_period
                .map_or(REPORT_BILLING_PERIOD, |d| (d.as_secs() as Secs).max(1));
            let paid = (secs + period - 1) / period * period;
            *f.paid_vm_hours.get_or_insert(0.0) += paid as f64 / 3600.0;
            f.vm_hours += secs as f64 / 3600.0;
            f.busy_vm_hours += vm.busy_secs.max(0) as f64 / 3600.0;
        }
        let mut total = Figures::default();
        let mut out = Vec::with_capacity(n);
        for (p, mut f) in per.into_iter().enumerate() {
            f.creates = world.creates[p];
            f.deletes = world.deletes[p];
            f.peak_vms = world.peak[p];
            total.jobs += f.jobs;
            total.unstarted += f.unstarted;
            total.vm_hours += f.vm_hours;
            total.paid_vm_hours =
                Some(total.paid_vm_hours.unwrap_or(0.0) + f.paid_vm_hours.unwrap_or(0.0));
            total.busy_vm_hours += f.busy_vm_hours;
            total.creates += f.creates;
            total.deletes += f.deletes;
            let f = f.with_waits(std::mem::take(&mut waits[p])).finish();
            out.push((pools[p].policy.name.clone(), f));
        }
        total.peak_vms = world.peak_total;
        PolicyReport {
            name: name.to_string(),
            total: total.with_waits(all_waits).finish(),
            pools: out,
            killed_jobs: 0,
            unrunnable,
            samples: world.samples.clone(),
        }
    }
}
