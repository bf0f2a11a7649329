//! From TOML text to a validated [`Config`], reporting every problem at once.
//!
//! The raw step walks the `toml_edit` document (which keeps spans) instead of using
//! serde, because serde stops at the first error; see `docs/adr/0001-config-format.md`.
//! Each table declares its known keys, so unknown keys are reported with a
//! "did you mean" hint, and inline secrets are refused. The second step checks
//! cross-field rules. No I/O here: [`crate::load`] reads the file.
//!
//! This file owns the root table; the rest is split:
//!
//! * `reader`: the positioned reader every section uses (typed values with their
//!   spans, unknown keys, durations, bounds, secrets, errors with file:line:col);
//!   `names` words its messages, `bounds` holds the limits of durations and counts.
//! * one reader per section: `controller`, `gitlab` (with its scope), `openstack`,
//!   `pools` (with `server`, `runner` and its cache, `bootstrap`, `periods`).

mod bounds;
mod controller;
mod gitlab;
mod names;
mod openstack;
mod pools;
mod reader;
#[cfg(test)]
mod testing;

use chrono::{DateTime, Utc};

use self::reader::{Ctx, Node};
use crate::error::ConfigErrors;
use crate::model::Config;

pub use self::pools::bootstrap::{DEFAULT_RUNNER_REPOSITORY, binfmt_arches};

/// Parses and validates `source`; `now` decides which schedules can still match.
pub(crate) fn parse_config(
    source: &str,
    origin: &str,
    now: DateTime<Utc>,
) -> Result<Config, ConfigErrors> {
    let mut ctx = Ctx::new(origin, source, now);
    let doc = match toml_edit::Document::parse(source) {
        Ok(doc) => doc,
        Err(e) => {
            let msg = e.message().trim().trim_end_matches('.').to_owned();
            ctx.err(&e.span(), "", format!("invalid TOML: {msg}"));
            return Err(ctx.into_errors());
        }
    };
    let root = Node {
        table: doc.as_table(),
        path: String::new(),
        span: Some(0..0),
    };
    ctx.check_keys(&root, &["controller", "gitlab", "openstack", "pools"], &[]);

    let controller = ctx
        .required_table(&root, "controller", "")
        .and_then(|n| controller::controller(&mut ctx, &n));
    let gitlab = ctx
        .required_table(&root, "gitlab", "")
        .and_then(|n| gitlab::gitlab(&mut ctx, &n));
    let openstack = ctx
        .table(&root, "openstack")
        .and_then(|n| openstack::openstack(&mut ctx, &n));
    let openstack_ok = !root.has("openstack") || openstack.is_some();
    let pools = match ctx.tables(&root, "pools") {
        Some(nodes) if !nodes.is_empty() => pools::pools(&mut ctx, &nodes),
        found => {
            if found.is_some() || !root.has("pools") {
                ctx.err(
                    &root.span,
                    "pools",
                    "at least one [[pools]] entry is required",
                );
            }
            None
        }
    };

    let sections = match (controller, gitlab, pools) {
        (Some(controller), Some(gitlab), Some(pools)) if openstack_ok => {
            Some((controller, gitlab, pools))
        }
        _ => None,
    };
    let ((controller, gitlab, pools), warnings) = ctx.finish(sections)?;
    Ok(Config {
        controller,
        gitlab,
        openstack,
        pools,
        warnings,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::net::SocketAddr;
    use std::time::Duration;

    use url::Url;

    use super::testing::*;
    use super::*;
    use crate::model::{AccessLevel, DockerInstall, RunnerInstall, RunnerType};
    use crate::policy::Policy;

    #[test]
    fn syntax_error_has_a_position() {
        let e = parse_config("[controller\nid = 1", "t.toml", now()).unwrap_err();
        assert_eq!(e.len(), 1);
        assert_eq!(e.0[0].line(), 1);
        assert!(e.0[0].message.starts_with("invalid TOML"), "{e}");
    }

    #[test]
    fn missing_sections_are_reported() {
        let e = errs("");
        let keys: Vec<&str> = e.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(keys, ["controller", "gitlab", "pools"]);
    }

    #[test]
    fn minimal_config_gets_the_documented_defaults() {
        let c = ok(&BASE);
        assert_eq!(c.controller.poll_interval, Duration::from_secs(15));
        assert_eq!(
            c.controller.listen,
            SocketAddr::from(([127, 0, 0, 1], 9252))
        );
        assert!(c.openstack.is_none());
        let p = &c.pools[0];
        assert_eq!(p.capacity.get(), 1);
        assert_eq!(
            p.policy,
            Policy {
                idle_count: 0,
                idle_time: Duration::from_secs(1800),
                max_builds: 0,
                limit: 4,
                max_growth: 0,
                boot_timeout: Duration::from_secs(600),
                target_wait: None,
            }
        );
        assert!(p.park_surplus);
        assert_eq!(p.runner.runner_type, RunnerType::Instance);
        assert!(
            !p.runner.run_untagged,
            "tags given: run_untagged defaults to false"
        );
        assert_eq!(p.runner.access_level, AccessLevel::NotProtected);
        assert_eq!(p.runner.docker_image, "alpine");
        assert_eq!(p.runner.volumes, ["/cache"]);
        assert_eq!(p.bootstrap.docker_install, DockerInstall::Distro);
        assert!(p.bootstrap.qemu_binfmt);
        assert!(p.bootstrap.block_metadata_in_jobs);
        assert_eq!(p.bootstrap.binfmt_arches, ["arm64", "arm"]);
        assert_eq!(
            p.bootstrap.runner_install,
            RunnerInstall::Repository(Url::parse(DEFAULT_RUNNER_REPOSITORY).unwrap().to_string())
        );
    }

    #[test]
    fn every_problem_is_reported_at_once_in_file_order() {
        let src =
            with("[controller]", "poll_interval = \"soon\"").replace("limit = 4", "limit = 0");
        let e = errs(&src);
        let keys: Vec<&str> = e.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(keys, ["controller.poll_interval", "pools[0].limit"]);
    }
}
