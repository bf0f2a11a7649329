//! The pure core: [`evaluate`] turns a [`Snapshot`] into a [`CheckResult`].
//!
//! No I/O and no clock: `now` is a parameter, iteration order is the config's pool order
//! and sorted ids, so the same input always gives the same output.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::model::{
    ControllerStatus, Fetched, PendingJob, PoolInfo, Quota, Runner, RunnerStatus, Server,
    ServerStatus, Snapshot,
};
use crate::range::Range;
use crate::thresholds::{Levels, Metric, Subcheck, Thresholds};

/// A Monitoring Plugins state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// 0.
    Ok,
    /// 1.
    Warning,
    /// 2.
    Critical,
    /// 3: the check could not decide.
    Unknown,
}

impl State {
    /// The exit code.
    pub fn code(self) -> i32 {
        match self {
            State::Ok => 0,
            State::Warning => 1,
            State::Critical => 2,
            State::Unknown => 3,
        }
    }

    /// `OK`, `WARNING`, `CRITICAL`, `UNKNOWN`.
    pub fn label(self) -> &'static str {
        match self {
            State::Ok => "OK",
            State::Warning => "WARNING",
            State::Critical => "CRITICAL",
            State::Unknown => "UNKNOWN",
        }
    }

    /// Severity for "worst of": OK < WARNING < UNKNOWN < CRITICAL.
    fn rank(self) -> u8 {
        match self {
            State::Ok => 0,
            State::Warning => 1,
            State::Unknown => 2,
            State::Critical => 3,
        }
    }

    /// The worse of two states.
    pub fn worst(self, other: State) -> State {
        if other.rank() > self.rank() {
            other
        } else {
            self
        }
    }
}

/// One perfdata item.
#[derive(Debug, Clone, PartialEq)]
pub struct Perf {
    /// Label (no spaces, `=` or `'`).
    pub label: String,
    /// Value.
    pub value: f64,
    /// Unit: `""` or `"s"`.
    pub uom: &'static str,
    /// Warning threshold.
    pub warning: Option<Range>,
    /// Critical threshold.
    pub critical: Option<Range>,
    /// Minimum possible value.
    pub min: Option<f64>,
    /// Maximum possible value.
    pub max: Option<f64>,
}

/// One offender or fact under a subcheck.
#[derive(Debug, Clone, PartialEq)]
pub struct Detail {
    /// How bad this one is (the state of the metric it counts toward).
    pub state: State,
    /// What it is: names, states, ages.
    pub text: String,
}

/// The verdict of one subcheck.
#[derive(Debug, Clone, PartialEq)]
pub struct SubcheckResult {
    /// Which.
    pub subcheck: Subcheck,
    /// Its state.
    pub state: State,
    /// One line.
    pub summary: String,
    /// Offenders and facts, one line each.
    pub details: Vec<Detail>,
}

/// The verdict of the whole run.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckResult {
    /// Worst of the subchecks.
    pub state: State,
    /// Subchecks in output order.
    pub subchecks: Vec<SubcheckResult>,
    /// Every count and age.
    pub perfdata: Vec<Perf>,
}

/// Judges `snap` against `thresholds` as of `now`, for the `selected` subchecks.
pub fn evaluate(
    snap: &Snapshot,
    selected: &BTreeSet<Subcheck>,
    thresholds: &Thresholds,
    now: DateTime<Utc>,
) -> CheckResult {
    let mut ev = Evaluator {
        snap,
        thresholds,
        now,
        perfdata: Vec::new(),
    };
    let mut subchecks = Vec::new();
    for sc in Subcheck::ALL {
        if !selected.contains(&sc) {
            continue;
        }
        subchecks.push(match sc {
            Subcheck::Runners => ev.runners(),
            Subcheck::Vms => ev.vms(),
            Subcheck::Queue => ev.queue(),
            Subcheck::Controller => ev.controller(),
        });
    }
    let state = subchecks.iter().fold(State::Ok, |s, r| s.worst(r.state));
    CheckResult {
        state,
        subchecks,
        perfdata: ev.perfdata,
    }
}

struct Evaluator<'a> {
    snap: &'a Snapshot,
    thresholds: &'a Thresholds,
    now: DateTime<Utc>,
    perfdata: Vec<Perf>,
}

/// Seconds from `t` to `now`, never negative (clock skew).
fn age(now: DateTime<Utc>, t: DateTime<Utc>) -> i64 {
    (now - t).num_seconds().max(0)
}

/// `45s`, `12m 3s`, `3h 2m`, `2d 4h`.
pub fn human(secs: i64) -> String {
    let s = secs.max(0);
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m {}s", s / 60, s % 60),
        3600..86400 => format!("{}h {}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d {}h", s / 86400, (s % 86400) / 3600),
    }
}

/// Removes what would break Icinga's parsing of a line: `|` and line breaks.
pub fn clean(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '|' => '/',
            '\n' | '\r' | '\t' => ' ',
            c => c,
        })
        .collect()
}

impl Evaluator<'_> {
    fn levels(&self, m: Metric) -> Levels {
        self.thresholds.get(m)
    }

    /// State of `m` at `value`: critical first, then warning.
    fn judge(&self, m: Metric, value: f64) -> State {
        let l = self.levels(m);
        if l.critical.is_some_and(|r| r.alerts(value)) {
            State::Critical
        } else if l.warning.is_some_and(|r| r.alerts(value)) {
            State::Warning
        } else {
            State::Ok
        }
    }

    /// Records perfdata of a judged metric and returns its state.
    fn metric(&mut self, m: Metric, value: f64, uom: &'static str, max: Option<f64>) -> State {
        let l = self.levels(m);
        let min = if m == Metric::VmsLimitHeadroom {
            None
        } else {
            Some(0.0)
        };
        self.perfdata.push(Perf {
            label: m.name().to_string(),
            value,
            uom,
            warning: l.warning,
            critical: l.critical,
            min,
            max,
        });
        self.judge(m, value)
    }

    /// Records perfdata without thresholds.
    fn info(&mut self, label: String, value: f64, uom: &'static str, max: Option<f64>) {
        self.perfdata.push(Perf {
            label,
            value,
            uom,
            warning: None,
            critical: None,
            min: Some(0.0),
            max,
        });
    }

    fn pool(&self, name: Option<&str>) -> Option<&PoolInfo> {
        name.and_then(|n| self.snap.pools.iter().find(|p| p.name == n))
    }

    /// Boot grace of a pool; the longest of all pools when the pool is unknown.
    fn grace(&self, pool: Option<&str>) -> Duration {
        self.pool(pool).map(|p| p.boot_timeout).unwrap_or_else(|| {
            self.snap
                .pools
                .iter()
                .map(|p| p.boot_timeout)
                .max()
                .unwrap_or(Duration::from_secs(900))
        })
    }

    fn past_grace(&self, pool: Option<&str>, since: Option<DateTime<Utc>>) -> bool {
        match since {
            None => true,
            Some(t) => {
                let g = self.grace(pool).as_secs();
                age(self.now, t) > i64::try_from(g).unwrap_or(i64::MAX)
            }
        }
    }

    fn unknown(sc: Subcheck, what: &str, message: &str) -> SubcheckResult {
        SubcheckResult {
            subcheck: sc,
            state: State::Unknown,
            summary: format!("cannot read {what}: {}", clean(message)),
            details: Vec::new(),
        }
    }

    // --- runners ------------------------------------------------------------------------

    fn runners(&mut self) -> SubcheckResult {
        let runners = match self.snap.runners.as_result() {
            Ok(r) => r,
            Err(m) => return Self::unknown(Subcheck::Runners, "gitlab runners", m),
        };
        let mut sorted: Vec<&Runner> = runners.iter().collect();
        sorted.sort_by_key(|r| r.id);

        let mut offline = Vec::new();
        let mut stale = Vec::new();
        let mut never = Vec::new();
        let mut online = 0usize;
        let mut paused = 0usize;
        let mut booting = 0usize;
        let mut oldest_contact: Option<(i64, &Runner)> = None;
        for r in &sorted {
            if r.paused {
                paused += 1;
            }
            match r.status {
                RunnerStatus::Online => online += 1,
                RunnerStatus::Offline => offline.push(*r),
                RunnerStatus::Stale => stale.push(*r),
                RunnerStatus::NeverContacted => {
                    if self.past_grace(r.pool.as_deref(), r.created_at) {
                        never.push(*r);
                    } else {
                        booting += 1;
                    }
                }
                RunnerStatus::Paused => {}
            }
            // Only runners GitLab still calls online: an offline one is counted as such, and
            // a VM that vanished stays "online" for two hours while its contact ages.
            if let (RunnerStatus::Online, Some(c)) = (r.status, r.contacted_at) {
                let a = age(self.now, c);
                if oldest_contact.is_none_or(|(o, _)| a > o) {
                    oldest_contact = Some((a, r));
                }
            }
        }

        // Per pool counts (config order), then runners whose description names no pool.
        let mut names: Vec<Option<&str>> = self
            .snap
            .pools
            .iter()
            .map(|p| Some(p.name.as_str()))
            .collect();
        if sorted
            .iter()
            .any(|r| self.pool(r.pool.as_deref()).is_none())
        {
            names.push(None);
        }
        let statuses = [
            RunnerStatus::Online,
            RunnerStatus::Offline,
            RunnerStatus::Stale,
            RunnerStatus::NeverContacted,
        ];
        let mut counts = Vec::new();
        for name in names {
            let in_pool = |r: &Runner| match name {
                Some(n) => r.pool.as_deref() == Some(n),
                None => self.pool(r.pool.as_deref()).is_none(),
            };
            for st in statuses {
                let n = sorted
                    .iter()
                    .filter(|r| r.status == st && in_pool(r))
                    .count();
                let label = name.unwrap_or("unknown_pool");
                counts.push((format!("{label}_runners_{}", st.as_str()), n as f64));
            }
        }
        for (label, n) in counts {
            self.info(label, n, "", None);
        }

        let mut state = State::Ok;
        let s_off = self.metric(Metric::RunnersOffline, offline.len() as f64, "", None);
        let s_stale = self.metric(Metric::RunnersStale, stale.len() as f64, "", None);
        let s_never = self.metric(Metric::RunnersNeverContacted, never.len() as f64, "", None);
        let contact_age = oldest_contact.map_or(0, |(a, _)| a);
        let s_age = self.metric(Metric::RunnerContactAge, contact_age as f64, "s", None);
        for s in [s_off, s_stale, s_never, s_age] {
            state = state.worst(s);
        }

        let mut details = Vec::new();
        let contact = |r: &Runner| match r.contacted_at {
            Some(c) => format!("last contact {} ago", human(age(self.now, c))),
            None => "never contacted".to_string(),
        };
        for r in &offline {
            details.push(Detail {
                state: s_off,
                text: format!(
                    "runner {} {}: offline, {}",
                    r.id,
                    clean(&r.description),
                    contact(r)
                ),
            });
        }
        for r in &stale {
            details.push(Detail {
                state: s_stale,
                text: format!(
                    "runner {} {}: stale, {}",
                    r.id,
                    clean(&r.description),
                    contact(r)
                ),
            });
        }
        for r in &never {
            let created = r
                .created_at
                .map(|c| format!("created {} ago", human(age(self.now, c))))
                .unwrap_or_else(|| "creation time unknown".into());
            details.push(Detail {
                state: s_never,
                text: format!(
                    "runner {} {}: never contacted, {created}",
                    r.id,
                    clean(&r.description)
                ),
            });
        }
        if let Some((a, r)) = oldest_contact.filter(|_| s_age != State::Ok) {
            details.push(Detail {
                state: s_age,
                text: format!(
                    "runner {} {}: {}, last contact {} ago",
                    r.id,
                    clean(&r.description),
                    r.status.as_str(),
                    human(a)
                ),
            });
        }

        let mut summary = format!(
            "{} runners: {online} online, {} offline, {} stale, {} never contacted",
            sorted.len(),
            offline.len(),
            stale.len(),
            never.len()
        );
        if booting > 0 {
            summary.push_str(&format!(", {booting} registering"));
        }
        if paused > 0 {
            summary.push_str(&format!(", {paused} paused"));
        }
        if s_age != State::Ok {
            summary.push_str(&format!(", oldest contact {} ago", human(contact_age)));
        }
        SubcheckResult {
            subcheck: Subcheck::Runners,
            state,
            summary,
            details,
        }
    }

    // --- vms ----------------------------------------------------------------------------

    fn vms(&mut self) -> SubcheckResult {
        let servers = match self.snap.servers.as_result() {
            Ok(s) => s,
            Err(m) => return Self::unknown(Subcheck::Vms, "openstack servers", m),
        };
        // Without GitLab, ERROR, BUILD, limit and quota are still judged; pairing is not.
        let empty: &[Runner] = &[];
        let (runners, runners_err): (&[Runner], Option<&str>) = match self.snap.runners.as_result()
        {
            Ok(r) => (r.as_slice(), None),
            Err(m) => (empty, Some(m)),
        };
        let paired = runners_err.is_none();
        let mut servers: Vec<&Server> = servers.iter().collect();
        servers.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
        let by_id: BTreeMap<u64, &Runner> = runners.iter().map(|r| (r.id, r)).collect();
        let by_desc: BTreeMap<&str, &Runner> = runners
            .iter()
            .map(|r| (r.description.as_str(), r))
            .collect();
        let runner_of = |s: &Server| -> Option<&Runner> {
            s.runner_id
                .and_then(|id| by_id.get(&id).copied())
                .or_else(|| by_desc.get(s.name.as_str()).copied())
        };

        let mut errors = Vec::new();
        let mut stuck = Vec::new();
        let mut orphan_servers = Vec::new();
        let mut claimed: BTreeSet<u64> = BTreeSet::new();
        for s in &servers {
            let runner = runner_of(s);
            if let Some(r) = runner {
                claimed.insert(r.id);
            }
            let pool = s.pool.as_deref();
            let past = self.past_grace(pool, Some(s.created));
            match &s.status {
                ServerStatus::Error(_) => errors.push(*s),
                ServerStatus::Deleting => {}
                ServerStatus::Building if past => stuck.push((*s, "still BUILD")),
                ServerStatus::Active
                    if past && runner.is_some_and(|r| r.status == RunnerStatus::NeverContacted) =>
                {
                    stuck.push((*s, "ACTIVE but its runner never contacted GitLab"))
                }
                _ if paired && past && runner.is_none() => orphan_servers.push(*s),
                _ => {}
            }
        }
        let mut orphan_runners: Vec<&Runner> = runners
            .iter()
            .filter(|r| {
                !claimed.contains(&r.id) && self.past_grace(r.pool.as_deref(), r.created_at)
            })
            .collect();
        orphan_runners.sort_by_key(|r| r.id);

        // Limit and quota per pool.
        let mut details = Vec::new();
        let mut min_headroom: Option<i64> = None;
        let mut growth_room: u64 = 0;
        let mut pool_lines = Vec::new();
        for p in &self.snap.pools {
            let count = servers
                .iter()
                .filter(|s| s.pool.as_deref() == Some(p.name.as_str()))
                .filter(|s| s.status != ServerStatus::Deleting)
                .count();
            let headroom = i64::from(p.limit) - count as i64;
            min_headroom = Some(min_headroom.map_or(headroom, |m| m.min(headroom)));
            growth_room += u64::try_from(headroom.max(0)).unwrap_or(0);
            self.info(
                format!("{}_vms", p.name),
                count as f64,
                "",
                Some(f64::from(p.limit)),
            );
            pool_lines.push((p.name.clone(), count, p.limit, headroom));
        }
        let unpooled = servers
            .iter()
            .filter(|s| self.pool(s.pool.as_deref()).is_none())
            .count();

        let mut state = State::Ok;
        let s_err = self.metric(Metric::VmsError, errors.len() as f64, "", None);
        let s_stuck = self.metric(Metric::VmsStuckBooting, stuck.len() as f64, "", None);
        let (s_orph, s_orph_r) = if paired {
            (
                self.metric(Metric::VmsOrphaned, orphan_servers.len() as f64, "", None),
                self.metric(
                    Metric::RunnersOrphaned,
                    orphan_runners.len() as f64,
                    "",
                    None,
                ),
            )
        } else {
            (State::Unknown, State::Unknown)
        };
        for s in [s_err, s_stuck, s_orph, s_orph_r] {
            state = state.worst(s);
        }
        let mut s_limit = State::Ok;
        if let Some(h) = min_headroom {
            s_limit = self.metric(Metric::VmsLimitHeadroom, h as f64, "", None);
            state = state.worst(s_limit);
        }
        let quota: Result<&Quota, &str> = self.snap.quota.as_result();
        let mut quota_text;
        match quota {
            Ok(q) => {
                let left = q.servers_left();
                let shortfall = left.map_or(0, |l| growth_room.saturating_sub(l));
                if let Some(l) = left {
                    self.info(
                        "quota_instances_left".into(),
                        l as f64,
                        "",
                        q.max_instances.map(|m| m as f64),
                    );
                }
                let s_q = self.metric(Metric::QuotaShortfall, shortfall as f64, "", None);
                state = state.worst(s_q);
                quota_text = match left {
                    Some(l) => format!(", quota room {l} instances"),
                    None => ", quota unlimited".into(),
                };
                if s_q != State::Ok {
                    quota_text.push_str(&format!(" ({shortfall} short of the pools' limits)"));
                    details.push(Detail {
                        state: s_q,
                        text: format!(
                            "quota: {} of {} instances used; pools may still grow by {growth_room}, {shortfall} more than fit",
                            q.used_instances,
                            q.max_instances.map_or("unlimited".into(), |m| m.to_string())
                        ),
                    });
                }
            }
            Err(m) => {
                state = state.worst(State::Unknown);
                quota_text = ", quota unknown".into();
                details.push(Detail {
                    state: State::Unknown,
                    text: format!("cannot read quota: {}", clean(m)),
                });
            }
        }

        if let Some(m) = runners_err {
            details.push(Detail {
                state: State::Unknown,
                text: format!(
                    "cannot read gitlab runners, orphans and silent runners not checked: {}",
                    clean(m)
                ),
            });
        }
        for s in &errors {
            let fault = match &s.status {
                ServerStatus::Error(Some(f)) => format!(" ({})", clean(f)),
                _ => String::new(),
            };
            details.push(Detail {
                state: s_err,
                text: format!(
                    "server {} ({}): ERROR, age {}{fault}",
                    clean(&s.name),
                    s.id,
                    human(age(self.now, s.created))
                ),
            });
        }
        for (s, why) in &stuck {
            details.push(Detail {
                state: s_stuck,
                text: format!(
                    "server {} ({}): {why} after {} (boot_timeout {})",
                    clean(&s.name),
                    s.id,
                    human(age(self.now, s.created)),
                    human(i64::try_from(self.grace(s.pool.as_deref()).as_secs()).unwrap_or(0))
                ),
            });
        }
        for s in &orphan_servers {
            details.push(Detail {
                state: s_orph,
                text: format!(
                    "server {} ({}): {} without a runner, age {}",
                    clean(&s.name),
                    s.id,
                    s.status.label(),
                    human(age(self.now, s.created))
                ),
            });
        }
        for r in &orphan_runners {
            details.push(Detail {
                state: s_orph_r,
                text: format!(
                    "runner {} {}: {} without a server",
                    r.id,
                    clean(&r.description),
                    r.status.as_str()
                ),
            });
        }
        for (name, count, limit, headroom) in &pool_lines {
            if *headroom < 0 {
                details.push(Detail {
                    state: s_limit,
                    text: format!("pool {name}: {count} VMs, over its limit of {limit}"),
                });
            }
        }

        let pools = pool_lines
            .iter()
            .map(|(n, c, l, _)| format!("{n} {c}/{l}"))
            .collect::<Vec<_>>()
            .join(", ");
        let mut summary = format!(
            "{} VMs ({pools}{}): {} ERROR, {} stuck booting, {}{quota_text}",
            servers.len(),
            if unpooled > 0 {
                format!(", {unpooled} in no configured pool")
            } else {
                String::new()
            },
            errors.len(),
            stuck.len(),
            if paired {
                format!(
                    "{} servers without runner, {} runners without server",
                    orphan_servers.len(),
                    orphan_runners.len()
                )
            } else {
                "orphans not checked (no gitlab runners)".to_string()
            }
        );
        if s_limit != State::Ok {
            summary.push_str(", over limit");
        }
        SubcheckResult {
            subcheck: Subcheck::Vms,
            state,
            summary,
            details,
        }
    }

    // --- queue --------------------------------------------------------------------------

    fn queue(&mut self) -> SubcheckResult {
        let jobs = match self.snap.pending.as_result() {
            Ok(j) => j,
            Err(m) => return Self::unknown(Subcheck::Queue, "pending jobs", m),
        };
        let per_pool = attribute_jobs(&self.snap.pools, jobs);
        let mut total = 0usize;
        let mut oldest: Option<(i64, &PendingJob, &str)> = None;
        let mut parts = Vec::new();
        for p in &self.snap.pools {
            let list = per_pool
                .get(p.name.as_str())
                .map(Vec::as_slice)
                .unwrap_or(&[]);
            total += list.len();
            let pool_oldest = list.iter().map(|j| age(self.now, j.queued_at)).max();
            self.info(
                format!("{}_jobs_pending", p.name),
                list.len() as f64,
                "",
                None,
            );
            self.info(
                format!("{}_pending_age", p.name),
                pool_oldest.unwrap_or(0) as f64,
                "s",
                None,
            );
            for j in list {
                let a = age(self.now, j.queued_at);
                if oldest.is_none_or(|(o, oj, _)| a > o || (a == o && j.id < oj.id)) {
                    oldest = Some((a, j, p.name.as_str()));
                }
            }
            parts.push(match pool_oldest {
                Some(a) => format!("{} {} (oldest {})", p.name, list.len(), human(a)),
                None => format!("{} 0", p.name),
            });
        }
        let unmatched = per_pool.get("").map_or(0, Vec::len);
        self.info("jobs_pending_unmatched".into(), unmatched as f64, "", None);
        let s_count = self.metric(Metric::JobsPending, total as f64, "", None);
        let oldest_age = oldest.map_or(0, |(a, _, _)| a);
        let s_age = self.metric(Metric::PendingAge, oldest_age as f64, "s", None);
        let state = s_count.worst(s_age);

        let mut details = Vec::new();
        if s_age != State::Ok {
            // Every job past the warning (or critical) age is an offender.
            let levels = self.levels(Metric::PendingAge);
            for p in &self.snap.pools {
                let list = per_pool
                    .get(p.name.as_str())
                    .map(Vec::as_slice)
                    .unwrap_or(&[]);
                let mut list: Vec<&PendingJob> = list.iter().collect();
                list.sort_by_key(|j| (j.queued_at, j.id));
                for j in list {
                    let a = age(self.now, j.queued_at);
                    let st = if levels.critical.is_some_and(|r| r.alerts(a as f64)) {
                        State::Critical
                    } else if levels.warning.is_some_and(|r| r.alerts(a as f64)) {
                        State::Warning
                    } else {
                        continue;
                    };
                    details.push(Detail {
                        state: st,
                        text: format!(
                            "job {} (project {}, pool {}): pending for {}",
                            j.id,
                            j.project_id,
                            p.name,
                            human(a)
                        ),
                    });
                }
            }
        }
        if s_count != State::Ok {
            details.push(Detail {
                state: s_count,
                text: format!("{total} jobs pending for the pools"),
            });
        }
        let mut summary = format!("pending jobs: {total} ({})", parts.join(", "));
        if unmatched > 0 {
            summary.push_str(&format!(", {unmatched} for no pool"));
        }
        SubcheckResult {
            subcheck: Subcheck::Queue,
            state,
            summary,
            details,
        }
    }

    // --- controller ---------------------------------------------------------------------

    fn controller(&mut self) -> SubcheckResult {
        let status: &ControllerStatus = match &self.snap.controller {
            Fetched::Ok(s) => s,
            Fetched::Failed(m) => {
                return SubcheckResult {
                    subcheck: Subcheck::Controller,
                    state: State::Critical,
                    summary: format!("no heartbeat: {}", clean(m)),
                    details: Vec::new(),
                };
            }
            Fetched::Skipped => {
                return Self::unknown(Subcheck::Controller, "controller status", "not fetched");
            }
        };
        if status.controller_id != self.snap.controller_id {
            return SubcheckResult {
                subcheck: Subcheck::Controller,
                state: State::Critical,
                summary: format!(
                    "status answered by controller {:?}, expected {:?}",
                    clean(&status.controller_id),
                    self.snap.controller_id
                ),
                details: Vec::new(),
            };
        }
        let mut details = Vec::new();
        if let Some(e) = &status.last_error {
            details.push(Detail {
                state: State::Warning,
                text: format!("last tick failed: {}", clean(e)),
            });
        }
        // The controller acts on nothing while it cannot read GitLab, and does nothing at all
        // while it cannot list the cloud: warn at once, critical after ten minutes; critical
        // at once when the controller says only the operator can fix it (credentials refused,
        // settings wrong): waiting does not help.
        let outage = |service: &str,
                      since: Option<chrono::DateTime<chrono::Utc>>,
                      error: Option<&str>,
                      kind: Option<&str>| {
            since.map(|since| {
                let a = age(self.now, since);
                let operator = matches!(kind, Some("auth" | "misconfigured"));
                let st = if a > 600 || operator {
                    State::Critical
                } else {
                    State::Warning
                };
                let why = match kind {
                    Some("auth") => format!(" ({service} refused the credentials)"),
                    Some("misconfigured") => format!(" ({service} refused the settings)"),
                    _ => String::new(),
                };
                let text = format!(
                    "controller cannot read {service} since {} ago{why}: {}",
                    human(a),
                    clean(error.unwrap_or("unknown error"))
                );
                (st, text)
            })
        };
        let outages: Vec<(State, String)> = [
            outage(
                "GitLab",
                status.gitlab_unavailable_since,
                status.gitlab_error.as_deref(),
                status.gitlab_error_kind.as_deref(),
            ),
            outage(
                "OpenStack",
                status.openstack_unavailable_since,
                status.openstack_error.as_deref(),
                status.openstack_error_kind.as_deref(),
            ),
        ]
        .into_iter()
        .flatten()
        .collect();
        for (st, text) in &outages {
            details.push(Detail {
                state: *st,
                text: text.clone(),
            });
        }
        for p in &status.pools {
            if p.circuit_open {
                details.push(Detail {
                    state: State::Warning,
                    text: format!(
                        "pool {}: circuit breaker open (VMs keep failing to boot)",
                        clean(&p.name)
                    ),
                });
            }
        }
        let Some(success) = status.last_success_at else {
            let mut summary = format!(
                "controller {} {} has not completed a tick yet",
                status.controller_id,
                clean(&status.version)
            );
            if let Some(e) = &status.last_error {
                summary.push_str(&format!(": {}", clean(e)));
            }
            return SubcheckResult {
                subcheck: Subcheck::Controller,
                state: State::Critical,
                summary,
                details,
            };
        };
        let a = age(self.now, success);
        let mut state = self.metric(Metric::ControllerSuccessAge, a as f64, "s", None);
        if status.pools.iter().any(|p| p.circuit_open) {
            state = state.worst(State::Warning);
        }
        for (st, _) in &outages {
            state = state.worst(*st);
        }
        let mut summary = format!(
            "controller {} {}: last successful tick {} ago",
            clean(&status.controller_id),
            clean(&status.version),
            human(a)
        );
        if let Some(e) = status.last_error.as_ref().filter(|_| state != State::Ok) {
            summary.push_str(&format!(", last error: {}", clean(e)));
        }
        SubcheckResult {
            subcheck: Subcheck::Controller,
            state,
            summary,
            details,
        }
    }
}

/// Attributes pending jobs to pools as the planner does: a job goes to the first pool (in
/// config order) whose tags include all of the job's tags; untagged jobs only to pools that
/// run untagged jobs. Jobs no pool can run are listed under `""`.
pub fn attribute_jobs<'a>(
    pools: &'a [PoolInfo],
    jobs: &'a [PendingJob],
) -> BTreeMap<&'a str, Vec<PendingJob>> {
    let mut out: BTreeMap<&str, Vec<PendingJob>> = BTreeMap::new();
    for j in jobs {
        let pool = pools.iter().find(|p| {
            if j.tags.is_empty() {
                p.run_untagged
            } else {
                j.tags.iter().all(|t| p.tags.contains(t))
            }
        });
        out.entry(pool.map_or("", |p| p.name.as_str()))
            .or_default()
            .push(j.clone());
    }
    out
}

#[cfg(test)]
#[path = "evaluate_tests.rs"]
mod tests;
