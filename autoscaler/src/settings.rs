//! Turns the validated configuration into what the planner and the simulator take.
//!
//! No I/O: the config is already loaded; periods are evaluated at the `now` given.

use anyhow::Context as _;
use autoscaler_bootstrap as bs;
use autoscaler_config::{self as cfg, Config, Pool, ProcessEnv};
use secrecy::SecretString;

use crate::sim::{SimPeriod, SimPool};
use autoscaler_core::forecast::ForecastSettings;
use autoscaler_core::model::{Backoff, Policy, PoolPolicy, Timestamp};

/// One pool as the planner sees it at `now` (its period in force applied).
pub fn pool_policy(pool: &Pool, now: Timestamp) -> PoolPolicy {
    PoolPolicy {
        name: pool.name.clone(),
        tags: pool.runner.tags.clone(),
        run_untagged: pool.runner.run_untagged,
        capacity: pool.capacity.get(),
        park_surplus: pool.park_surplus,
        limits: pool.policy_at(now).policy,
        forecast: ForecastSettings {
            days: pool.forecast_days,
            lookahead: pool.forecast_lookahead,
        },
        target_percentile: pool.target_percentile,
        billing_period: pool.billing_period,
    }
}

/// The whole policy at `now`.
pub fn policy_at(config: &Config, now: Timestamp) -> Policy {
    Policy {
        pools: config.pools.iter().map(|p| pool_policy(p, now)).collect(),
        backoff: backoff(),
        offline_after: config.controller.offline_after,
        delete_retry: Policy::DEFAULT_DELETE_RETRY,
        poll_interval: config.controller.poll_interval,
    }
}

/// `run --dev` only: the create retry and circuit-breaker settings scaled to the demo's
/// replay speed (set once at its start; the production binary has no such switch).
#[cfg(feature = "dev")]
static DEV_BACKOFF: std::sync::OnceLock<Backoff> = std::sync::OnceLock::new();

/// `run --dev`: use `backoff` instead of the default retry and breaker settings.
#[cfg(feature = "dev")]
pub(crate) fn set_dev_backoff(backoff: Backoff) {
    let _ = DEV_BACKOFF.set(backoff);
}

/// The create retry and circuit-breaker settings in force.
fn backoff() -> Backoff {
    #[cfg(feature = "dev")]
    if let Some(b) = DEV_BACKOFF.get() {
        return *b;
    }
    Backoff::default()
}

/// A pool for the simulator: root values plus period matchers built from the schedules.
pub fn sim_pool(pool: &Pool) -> SimPool {
    let mut policy = pool_policy(pool, Timestamp::UNIX_EPOCH);
    policy.limits = pool.policy;
    SimPool {
        policy,
        periods: pool
            .periods
            .iter()
            .map(|period| {
                let p = period.clone();
                SimPeriod {
                    label: period
                        .schedules
                        .iter()
                        .map(|s| s.source().to_string())
                        .collect::<Vec<_>>()
                        .join(", "),
                    active: Box::new(move |t| p.is_active(t)),
                    overrides: period.overrides,
                }
            })
            .collect(),
    }
}

/// Describes the period in force at `t` and the next transition, for `plan` and `simulate`.
pub fn period_summary(pool: &Pool, t: Timestamp) -> String {
    let eff = pool.policy_at(t);
    let now = match eff.period {
        Some(i) => {
            let p = &pool.periods[i];
            let schedules: Vec<&str> = p.schedules.iter().map(|s| s.source()).collect();
            format!(
                "period #{} ({}, {})",
                i + 1,
                schedules.join(", "),
                p.timezone
            )
        }
        None => "base policy (no period matches)".to_string(),
    };
    let next = match pool.next_transition(t) {
        Some(n) => {
            let to = match pool.policy_at(n).period {
                Some(i) => format!("period #{}", i + 1),
                None => "base policy".to_string(),
            };
            format!("next change {} to {to}", n.to_rfc3339())
        }
        None => "no change within 366 days".to_string(),
    };
    format!(
        "{now}: idle_count={} idle_time={} limit={}; {next}",
        eff.policy.idle_count,
        humantime::format_duration(eff.policy.idle_time),
        eff.policy.limit
    )
}

/// Renders every pool's user-data for a preview VM (secrets redacted, none read), so that
/// a pool whose VMs could not be bootstrapped is refused by `validate` instead of failing
/// every create of `run`. Returns one message per pool that cannot be rendered.
pub fn render_check(config: &Config) -> Vec<String> {
    let mut problems = Vec::new();
    for (i, pool) in config.pools.iter().enumerate() {
        let rendered = pool_bootstrap(pool, false).and_then(|p| {
            let params = bs::BootstrapParams {
                pool: p,
                vm: bs::VmIdentity::preview(
                    config.gitlab.url.to_string(),
                    format!("{}-{}-preview", config.controller.id, pool.name),
                ),
            };
            bs::render_preview(&params, bs::Secrets::Redacted)
                .map(|_| ())
                .map_err(anyhow::Error::from)
        });
        if let Err(e) = rendered {
            problems.push(format!(
                "pools[{i}] (`{}`): its VMs' user-data cannot be rendered: {e:#}",
                pool.name
            ));
        }
    }
    problems
}

/// Maps a configured pool to the renderer's parameters. S3 keys are read (from their files
/// or environment variables) only when `resolve` is set; otherwise placeholders keep a
/// preview free of secrets.
///
/// # Errors
///
/// A secret or the extra cloud-config file cannot be read; the message names which.
pub fn pool_bootstrap(pool: &cfg::Pool, resolve: bool) -> anyhow::Result<bs::PoolBootstrap> {
    let secret = |source: &cfg::SecretSource, what: &str| -> anyhow::Result<SecretString> {
        if resolve {
            source
                .resolve(&ProcessEnv as &dyn cfg::Env)
                .with_context(|| format!("pool `{}`: reading the S3 {what}", pool.name))
        } else {
            Ok(SecretString::from(bs::REDACTED.to_string()))
        }
    };
    let cache = match &pool.runner.cache {
        Some(c) => Some(bs::S3Cache {
            shared: c.shared,
            server_address: c.server_address.clone(),
            bucket_name: c.bucket_name.clone(),
            bucket_location: c.bucket_location.clone(),
            insecure: c.insecure,
            access_key: secret(&c.access_key, "access key")?,
            secret_key: secret(&c.secret_key, "secret key")?,
        }),
        None => None,
    };
    let b = &pool.bootstrap;
    let extra_cloud_config = match &b.extra_cloud_config_file {
        Some(path) => Some(std::fs::read_to_string(path).with_context(|| {
            format!(
                "pool `{}`: reading extra_cloud_config_file {}",
                pool.name,
                path.display()
            )
        })?),
        None => None,
    };
    Ok(bs::PoolBootstrap {
        capacity: pool.capacity,
        runner: bs::RunnerSettings {
            docker_image: pool.runner.docker_image.clone(),
            privileged: pool.runner.privileged,
            volumes: pool.runner.volumes.clone(),
            cache,
        },
        bootstrap: bs::BootstrapOptions {
            docker_install: b.docker_install.clone(),
            qemu_binfmt: b.qemu_binfmt,
            binfmt_arches: b.binfmt_arches.clone(),
            runner_install: b.runner_install.clone(),
            extra_cloud_config,
            shell_before: b.shell_before.clone(),
            shell_after: b.shell_after.clone(),
            block_metadata_in_jobs: b.block_metadata_in_jobs,
        },
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    /// Fails on the code before issue 12's first defect: the config accepted `mips64`, the
    /// renderer did not know it, and every create of `run` failed at render.
    #[test]
    fn every_architecture_the_config_accepts_renders() {
        let names: Vec<String> = autoscaler_config::binfmt_arches()
            .map(|a| format!("\"{a}\""))
            .collect();
        assert!(names.iter().any(|n| n == "\"mips64\""));
        // The shipped reference setup with every known architecture in each pool.
        let text = include_str!("../../docs/examples/reference-setup.toml").replace(
            "binfmt_arches = [\"arm64\", \"arm\"]",
            &format!("binfmt_arches = [{}]", names.join(", ")),
        );
        assert!(text.contains("mips64\", \"loong64"));
        let config = autoscaler_config::parse(&text, "t.toml").unwrap();
        assert_eq!(super::render_check(&config), Vec::<String>::new());
    }
}
