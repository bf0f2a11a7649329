//! Which values are judged, their default thresholds, and `-w`/`-c` overrides.
//!
//! Every threshold is keyed by a [`Metric`] name (`-w runners_offline=2`). Defaults follow
//! what an operator of the reference setup would want paged for; see `docs/icinga.md`.
//! Pure; no I/O.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::error::ArgError;
use crate::range::Range;

/// The four subchecks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Subcheck {
    /// This controller's GitLab runners.
    Runners,
    /// This controller's servers, orphans, limit and quota.
    Vms,
    /// Pending jobs per pool.
    Queue,
    /// The controller's heartbeat.
    Controller,
}

impl Subcheck {
    /// Every subcheck, in output order.
    pub const ALL: [Subcheck; 4] = [
        Subcheck::Controller,
        Subcheck::Runners,
        Subcheck::Vms,
        Subcheck::Queue,
    ];

    /// The name used on the command line and in output.
    pub fn name(self) -> &'static str {
        match self {
            Subcheck::Runners => "runners",
            Subcheck::Vms => "vms",
            Subcheck::Queue => "queue",
            Subcheck::Controller => "controller",
        }
    }
}

impl fmt::Display for Subcheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Subcheck {
    type Err = ArgError;

    fn from_str(s: &str) -> Result<Self, ArgError> {
        Subcheck::ALL
            .into_iter()
            .find(|c| c.name() == s)
            .ok_or_else(|| ArgError::UnknownSubcheck(s.to_string()))
    }
}

/// A judged value: the key of `-w`/`-c` and its perfdata label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Metric {
    /// Runners GitLab reports offline (not contacted for 2 h).
    RunnersOffline,
    /// Runners GitLab reports stale (7 days).
    RunnersStale,
    /// Runners never contacted although older than their pool's `boot_timeout`.
    RunnersNeverContacted,
    /// Seconds since the least recent contact of any contacted runner.
    RunnerContactAge,
    /// Servers in ERROR.
    VmsError,
    /// Servers booting (BUILD, or ACTIVE with a silent runner) past `boot_timeout`.
    VmsStuckBooting,
    /// Servers without a runner, past `boot_timeout`.
    VmsOrphaned,
    /// Runners of this controller without a server, past `boot_timeout`.
    RunnersOrphaned,
    /// The smallest `limit - VMs` over the pools (negative: over the limit).
    VmsLimitHeadroom,
    /// VMs the pools may still grow by that the instance quota cannot hold.
    QuotaShortfall,
    /// Pending jobs the pools can run.
    JobsPending,
    /// Seconds the oldest of those jobs has been waiting.
    PendingAge,
    /// Seconds since the controller's last successful tick.
    ControllerSuccessAge,
}

impl Metric {
    /// Every metric.
    pub const ALL: [Metric; 13] = [
        Metric::RunnersOffline,
        Metric::RunnersStale,
        Metric::RunnersNeverContacted,
        Metric::RunnerContactAge,
        Metric::VmsError,
        Metric::VmsStuckBooting,
        Metric::VmsOrphaned,
        Metric::RunnersOrphaned,
        Metric::VmsLimitHeadroom,
        Metric::QuotaShortfall,
        Metric::JobsPending,
        Metric::PendingAge,
        Metric::ControllerSuccessAge,
    ];

    /// Key on the command line and perfdata label.
    pub fn name(self) -> &'static str {
        match self {
            Metric::RunnersOffline => "runners_offline",
            Metric::RunnersStale => "runners_stale",
            Metric::RunnersNeverContacted => "runners_never_contacted",
            Metric::RunnerContactAge => "runner_contact_age",
            Metric::VmsError => "vms_error",
            Metric::VmsStuckBooting => "vms_stuck_booting",
            Metric::VmsOrphaned => "vms_orphaned",
            Metric::RunnersOrphaned => "runners_orphaned",
            Metric::VmsLimitHeadroom => "vms_limit_headroom",
            Metric::QuotaShortfall => "quota_shortfall",
            Metric::JobsPending => "jobs_pending",
            Metric::PendingAge => "pending_age",
            Metric::ControllerSuccessAge => "controller_success_age",
        }
    }

    /// The subcheck that judges it.
    pub fn subcheck(self) -> Subcheck {
        match self {
            Metric::RunnersOffline
            | Metric::RunnersStale
            | Metric::RunnersNeverContacted
            | Metric::RunnerContactAge => Subcheck::Runners,
            Metric::VmsError
            | Metric::VmsStuckBooting
            | Metric::VmsOrphaned
            | Metric::RunnersOrphaned
            | Metric::VmsLimitHeadroom
            | Metric::QuotaShortfall => Subcheck::Vms,
            Metric::JobsPending | Metric::PendingAge => Subcheck::Queue,
            Metric::ControllerSuccessAge => Subcheck::Controller,
        }
    }
}

impl FromStr for Metric {
    type Err = ArgError;

    fn from_str(s: &str) -> Result<Self, ArgError> {
        Metric::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| ArgError::UnknownMetric(s.to_string()))
    }
}

/// Warning and critical range of one metric; `None` never alerts.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Levels {
    /// `-w`.
    pub warning: Option<Range>,
    /// `-c`.
    pub critical: Option<Range>,
}

/// The thresholds of every metric.
#[derive(Debug, Clone, PartialEq)]
pub struct Thresholds {
    levels: BTreeMap<Metric, Levels>,
}

// === impl Thresholds ===

impl Thresholds {
    /// The defaults; the controller heartbeat's scale with its `poll_interval`
    /// (warning past 4 ticks + 60 s, critical past 20 ticks).
    pub fn defaults(poll_interval: Duration) -> Self {
        let poll = poll_interval.as_secs_f64().max(1.0);
        let above = |w: Option<f64>, c: Option<f64>| Levels {
            warning: w.map(Range::above),
            critical: c.map(Range::above),
        };
        let levels = Metric::ALL
            .into_iter()
            .map(|m| {
                let l = match m {
                    Metric::RunnersOffline => above(Some(0.0), Some(2.0)),
                    Metric::RunnersStale => above(Some(0.0), None),
                    Metric::RunnersNeverContacted => above(Some(0.0), Some(2.0)),
                    Metric::RunnerContactAge => above(Some(600.0), Some(1800.0)),
                    Metric::VmsError => above(Some(0.0), Some(2.0)),
                    Metric::VmsStuckBooting => above(Some(0.0), Some(2.0)),
                    Metric::VmsOrphaned => above(Some(0.0), Some(3.0)),
                    Metric::RunnersOrphaned => above(Some(0.0), Some(3.0)),
                    Metric::VmsLimitHeadroom => Levels {
                        warning: None,
                        critical: Some(Range::below(0.0)),
                    },
                    Metric::QuotaShortfall => above(Some(0.0), None),
                    Metric::JobsPending => Levels::default(),
                    Metric::PendingAge => above(Some(900.0), Some(3600.0)),
                    Metric::ControllerSuccessAge => above(
                        Some((4.0 * poll + 60.0).round()),
                        Some((20.0 * poll).round()),
                    ),
                };
                (m, l)
            })
            .collect();
        Thresholds { levels }
    }

    /// The levels of `metric`.
    pub fn get(&self, metric: Metric) -> Levels {
        self.levels.get(&metric).copied().unwrap_or_default()
    }

    /// Applies one `-w`/`-c` argument: `METRIC=RANGE`, or `METRIC=none` to disable.
    ///
    /// # Errors
    ///
    /// [`ArgError`] naming the argument when the metric or the range is unknown or malformed.
    pub fn apply(&mut self, critical: bool, arg: &str) -> Result<(), ArgError> {
        let flag = if critical { "-c" } else { "-w" };
        let (key, value) = arg.split_once('=').ok_or_else(|| ArgError::Threshold {
            flag,
            arg: arg.to_string(),
            reason: "expected METRIC=RANGE, e.g. runners_offline=2".into(),
        })?;
        let metric: Metric = key.trim().parse()?;
        let range = if value.trim().eq_ignore_ascii_case("none") {
            None
        } else {
            Some(value.parse::<Range>().map_err(|e| ArgError::Threshold {
                flag,
                arg: arg.to_string(),
                reason: e.to_string(),
            })?)
        };
        let l = self.levels.entry(metric).or_default();
        if critical {
            l.critical = range;
        } else {
            l.warning = range;
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn overrides_replace_one_level_and_keep_the_other() {
        let mut t = Thresholds::defaults(Duration::from_secs(15));
        t.apply(false, "runners_offline=3:").unwrap();
        let l = t.get(Metric::RunnersOffline);
        assert_eq!(l.warning, Some("3:".parse().unwrap()));
        assert_eq!(l.critical, Some(Range::above(2.0)));
    }

    #[test]
    fn none_disables_a_default() {
        let mut t = Thresholds::defaults(Duration::from_secs(15));
        t.apply(true, "pending_age=none").unwrap();
        assert_eq!(t.get(Metric::PendingAge).critical, None);
    }

    #[test]
    fn bad_threshold_arguments_name_the_argument() {
        let mut t = Thresholds::defaults(Duration::from_secs(15));
        let e = t.apply(false, "runners_ofline=2").unwrap_err();
        assert!(e.to_string().contains("runners_ofline"), "{e}");
        let e = t.apply(true, "pending_age=1:2:3").unwrap_err();
        assert!(e.to_string().contains("-c pending_age=1:2:3"), "{e}");
        let e = t.apply(true, "pending_age").unwrap_err();
        assert!(e.to_string().contains("METRIC=RANGE"), "{e}");
    }

    #[test]
    fn heartbeat_defaults_scale_with_poll_interval() {
        let t = Thresholds::defaults(Duration::from_secs(15));
        let l = t.get(Metric::ControllerSuccessAge);
        assert_eq!(l.warning, Some(Range::above(120.0)));
        assert_eq!(l.critical, Some(Range::above(300.0)));
    }

    #[test]
    fn every_metric_name_parses_back() {
        for m in Metric::ALL {
            assert_eq!(m.name().parse::<Metric>().unwrap(), m);
        }
        for s in Subcheck::ALL {
            assert_eq!(s.name().parse::<Subcheck>().unwrap(), s);
        }
    }
}
