//! `check_gitlab_autoscaler`: an Icinga 2 / Nagios check of the GitLab runner autoscaler,
//! following the Monitoring Plugins guidelines.
//!
//! ```text
//! argv ──cli──> Options ─┐
//! config file ───────────┼─> Source::snapshot (GitLab, OpenStack, /status; under -t) ─> Snapshot
//!                        └─> Thresholds ─┐                                              │
//!                                 evaluate(&Snapshot, &subchecks, &Thresholds, now) <──┘
//!                                        └─> CheckResult ─render─> stdout, exit 0..3
//! ```
//!
//! # Layout
//!
//! * [`cli`]: arguments (`-C -s -w -c -t -v -h -V`) and the run sequence.
//! * [`model`]: the snapshot types and the controller's `/status` schema
//!   ([`ControllerStatus`]).
//! * [`range`]: the `[@][start:][end]` threshold range parser (pure).
//! * [`thresholds`]: metrics, defaults, `-w`/`-c` overrides (pure).
//! * [`mod@evaluate`]: the pure core, [`evaluate()`].
//! * [`output`]: rendering for Icinga's parser (pure).
//! * [`source`]: the [`Source`] trait, the stage reporter and the live GitLab / OpenStack /
//!   controller source.
//! * [`error`]: error types.
//!
//! Nothing here writes to stderr unless `-v` is given; every failure ends as one UNKNOWN
//! line on stdout.

pub mod cli;
pub mod error;
pub mod evaluate;
pub mod model;
pub mod output;
pub mod range;
pub mod source;
pub mod thresholds;

pub use crate::evaluate::{CheckResult, State, evaluate};
pub use crate::model::{ControllerPoolStatus, ControllerStatus, Snapshot};
pub use crate::range::Range;
pub use crate::source::{LiveSource, Progress, Source};
pub use crate::thresholds::{Metric, Subcheck, Thresholds};

/// An error and its causes as one line: `outer: cause: root cause`.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let m = c.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cur = c.source();
    }
    s
}
