//! The clairvoyant bound: the fewest VM-hours that give every job zero wait.
//!
//! Every job starts the second it is submitted. Per pool, the running jobs in VM units
//! (`ceil(jobs / capacity)`) form levels 1, 2, ...; each level costs the time it is in use
//! plus, each time it restarts, `min(idle gap since it last ended, median boot time)`: a
//! clairvoyant controller either keeps the VM through the gap or boots a fresh one just in
//! time, whichever is cheaper. The first use of a level costs one boot. Jobs no pool can run
//! are left out.

use super::report::{Figures, PolicyReport};
use super::world::Secs;
use super::{SimSpec, Trace};

/// Computes the bound for every pool and in total.
pub fn clairvoyant(trace: &Trace, spec: &SimSpec) -> PolicyReport {
    let boot = spec.cloud.boot_median_s.round() as Secs;
    let mut pools = Vec::new();
    let mut total = Figures::default();
    for (p, pool) in spec.pools.iter().enumerate() {
        let capacity = i64::from(pool.policy.capacity.max(1));
        // Events: +1 at submit, -1 at end, for jobs whose first matching pool is this one.
        let mut events: Vec<(Secs, i64)> = Vec::new();
        let mut jobs = 0u32;
        for j in &trace.jobs {
            let first = spec.pools.iter().position(|sp| sp.policy.can_run(&j.tags));
            if first == Some(p) {
                let s = j.submitted.timestamp();
                events.push((s, 1));
                events.push((s + Secs::from(j.duration_s).max(1), -1));
                jobs += 1;
            }
        }
        // Ends before starts at the same second: a VM freed at t serves a job at t.
        events.sort_by_key(|&(t, d)| (t, d));
        let mut running = 0i64;
        let mut level_start: Vec<Secs> = Vec::new();
        let mut level_end: Vec<Option<Secs>> = Vec::new();
        let mut secs = 0i64;
        let mut busy_job_secs = 0i64;
        let mut peak = 0u32;
        let mut last_t = events.first().map_or(0, |e| e.0);
        for (t, d) in events {
            busy_job_secs += running * (t - last_t);
            last_t = t;
            let before = (running + capacity - 1) / capacity;
            running += d;
            let after = (running + capacity - 1) / capacity;
            for k in before..after {
                let k = k as usize;
                if level_start.len() <= k {
                    level_start.push(t);
                    level_end.push(None);
                }
                level_start[k] = t;
                secs += match level_end[k] {
                    None => boot,
                    Some(e) => (t - e).min(boot),
                };
            }
            for k in after..before {
                let k = k as usize;
                secs += t - level_start[k];
                level_end[k] = Some(t);
            }
            peak = peak.max(after as u32);
        }
        let busy = busy_job_secs as f64 / capacity as f64 / 3600.0;
        let f = Figures {
            jobs,
            vm_hours: secs as f64 / 3600.0,
            busy_vm_hours: busy,
            peak_vms: peak,
            ..Figures::default()
        }
        .finish();
        total.jobs += f.jobs;
        total.vm_hours += f.vm_hours;
        total.busy_vm_hours += f.busy_vm_hours;
        total.peak_vms += f.peak_vms;
        pools.push((pool.policy.name.clone(), f));
    }
    PolicyReport {
        name: "clairvoyant".into(),
        total: total.finish(),
        pools,
        killed_jobs: 0,
        unrunnable: trace
            .jobs
            .iter()
            .filter(|j| !spec.pools.iter().any(|p| p.policy.can_run(&j.tags)))
            .count() as u32,
        samples: Vec::new(),
    }
}
