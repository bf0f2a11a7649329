//! The operator's online check: can this controller boot every pool's servers?
//!
//! [`preflight`] authenticates, resolves each pool's flavor, image, networks, security
//! groups and key pair, checks for a volume service when a pool boots from volume, and
//! reads the quota headroom. It collects every problem instead of stopping at the first,
//! and creates nothing. `autoscaler validate --online` prints the [`PreflightReport`].

use std::fmt;

use super::client::OpenStack;
use super::error::render_chain;
use autoscaler_core::ports::{ComputeQuota, ServerTemplateSpec};

/// What one check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Fine; the text says what was found (e.g. the resolved id).
    Ok(String),
    /// A problem the operator must fix.
    Problem(String),
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// The pool the check belongs to; `None` for cloud-wide checks (auth, quota).
    pub pool: Option<String>,
    /// What was checked, e.g. `flavor "m1.small"`.
    pub subject: String,
    /// The result.
    pub outcome: Outcome,
}

/// Everything [`preflight`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreflightReport {
    /// Where the credentials came from.
    pub origin: String,
    /// Every check, in the order made.
    pub checks: Vec<Check>,
    /// The quota headroom, when it could be read.
    pub quota: Option<ComputeQuota>,
}

impl PreflightReport {
    /// Whether no check found a problem.
    pub fn is_ok(&self) -> bool {
        self.problems().next().is_none()
    }

    /// The checks that found a problem.
    pub fn problems(&self) -> impl Iterator<Item = &Check> {
        self.checks
            .iter()
            .filter(|c| matches!(c.outcome, Outcome::Problem(_)))
    }

    fn push(&mut self, pool: Option<&str>, subject: String, outcome: Outcome) {
        self.checks.push(Check {
            pool: pool.map(str::to_string),
            subject,
            outcome,
        });
    }
}

impl fmt::Display for PreflightReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "OpenStack preflight ({})", self.origin)?;
        for c in &self.checks {
            let scope = c
                .pool
                .as_deref()
                .map(|p| format!("pool {p}: "))
                .unwrap_or_default();
            match &c.outcome {
                Outcome::Ok(t) => writeln!(f, "  ok       {scope}{}: {t}", c.subject)?,
                Outcome::Problem(t) => writeln!(f, "  PROBLEM  {scope}{}: {t}", c.subject)?,
            }
        }
        let n = self.problems().count();
        if n == 0 {
            write!(f, "all {} checks passed", self.checks.len())
        } else {
            write!(f, "{n} problem(s) found in {} checks", self.checks.len())
        }
    }
}

fn outcome<T>(r: super::Result<T>, ok: impl FnOnce(T) -> String) -> Outcome {
    match r {
        Ok(v) => Outcome::Ok(ok(v)),
        Err(e) => Outcome::Problem(render_chain(&e)),
    }
}

/// Checks that every pool's template can be booted with the configured credentials.
pub async fn preflight(
    client: &OpenStack,
    templates: &[(String, ServerTemplateSpec)],
) -> PreflightReport {
    let mut report = PreflightReport {
        origin: client.origin().to_string(),
        checks: Vec::new(),
        quota: None,
    };
    let auth = client.authenticate().await;
    let authenticated = auth.is_ok();
    report.push(
        None,
        "authentication".into(),
        outcome(auth, |exp| {
            format!("token valid until {}", exp.to_rfc3339())
        }),
    );
    if !authenticated {
        return report;
    }
    let quota = client.limits().await;
    if let Ok(q) = &quota {
        report.quota = Some(*q);
    }
    report.push(None, "quota".into(), outcome(quota, |q| describe_quota(&q)));
    for (pool, t) in templates {
        let pool = Some(pool.as_str());
        let flavor = client.find_flavor(&t.flavor).await;
        if let (Ok(fl), Some(q)) = (&flavor, &report.quota) {
            if let Some(0) = q.servers_left(fl.vcpus.unwrap_or(1), fl.ram_mb.unwrap_or(0)) {
                report.push(
                    pool,
                    "quota headroom".into(),
                    Outcome::Problem(format!(
                        "no room for one more server of flavor {:?} ({})",
                        t.flavor,
                        describe_quota(q)
                    )),
                );
            }
        }
        report.push(
            pool,
            format!("flavor {:?}", t.flavor),
            outcome(flavor, |f| format!("id {}", f.id)),
        );
        let image = client.find_image(&t.image).await;
        report.push(
            pool,
            format!("image {:?}", t.image),
            outcome(image, |f| format!("id {}", f.id)),
        );
        if t.networks.is_empty() {
            report.push(
                pool,
                "networks".into(),
                Outcome::Problem("no network configured".into()),
            );
        }
        for n in &t.networks {
            let r = client.find_network(n).await;
            report.push(
                pool,
                format!("network {n:?}"),
                outcome(r, |f| format!("id {}", f.id)),
            );
        }
        for g in &t.security_groups {
            let r = client.find_security_group(g).await;
            report.push(
                pool,
                format!("security group {g:?}"),
                outcome(r, |f| format!("id {}", f.id)),
            );
        }
        if let Some(k) = &t.key_name {
            let r = client.find_key_pair(k).await;
            report.push(
                pool,
                format!("key pair {k:?}"),
                outcome(r, |()| "exists".into()),
            );
        }
        if let Some(size) = t.boot_volume_size {
            let r = client
                .has_service(&["volumev3", "block-storage", "volume"])
                .await;
            let o = match r {
                Ok(true) => Outcome::Ok(format!("{size} GiB, volume service in catalog")),
                Ok(false) => Outcome::Problem(
                    "boot_volume_size is set but the catalog has no volume service".into(),
                ),
                Err(e) => Outcome::Problem(render_chain(&e)),
            };
            report.push(pool, "boot volume".into(), o);
        }
    }
    report
}

fn describe_quota(q: &ComputeQuota) -> String {
    let part = |used: u64, max: Option<u64>, unit: &str| match max {
        Some(m) => format!("{used}/{m} {unit}"),
        None => format!("{used}/unlimited {unit}"),
    };
    format!(
        "{}, {}, {}",
        part(q.used_instances, q.max_instances, "instances"),
        part(q.used_cores, q.max_cores, "cores"),
        part(q.used_ram_mb, q.max_ram_mb, "MiB RAM")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_display_lists_every_problem_and_counts_them() {
        let mut r = PreflightReport {
            origin: "clouds.yaml cloud \"demo\"".into(),
            checks: Vec::new(),
            quota: None,
        };
        r.push(
            None,
            "authentication".into(),
            Outcome::Ok("token valid".into()),
        );
        r.push(
            Some("docker"),
            "flavor \"m1.nope\"".into(),
            Outcome::Problem("flavor \"m1.nope\" not found".into()),
        );
        r.push(
            Some("docker"),
            "image \"gone\"".into(),
            Outcome::Problem("image \"gone\" not found".into()),
        );
        assert!(!r.is_ok());
        assert_eq!(
            r.to_string(),
            "OpenStack preflight (clouds.yaml cloud \"demo\")\n\
             \x20 ok       authentication: token valid\n\
             \x20 PROBLEM  pool docker: flavor \"m1.nope\": flavor \"m1.nope\" not found\n\
             \x20 PROBLEM  pool docker: image \"gone\": image \"gone\" not found\n\
             2 problem(s) found in 3 checks"
        );
    }

    #[test]
    fn quota_description_shows_unlimited() {
        let q = ComputeQuota {
            max_instances: Some(10),
            used_instances: 2,
            max_cores: None,
            used_cores: 2,
            max_ram_mb: Some(51200),
            used_ram_mb: 512,
        };
        assert_eq!(
            describe_quota(&q),
            "2/10 instances, 2/unlimited cores, 512/51200 MiB RAM"
        );
    }
}
