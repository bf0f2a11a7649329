//! Where a [`Snapshot`] comes from: the [`Source`] trait, the stage reporter
//! ([`Progress`]) that lets a timeout say how far the check got, and the live source.
//!
//! The live source ([`LiveSource`]) reads GitLab ([`gitlab`]) and OpenStack ([`openstack`])
//! through the controller's own adapters (`autoscaler_gitlab`, `autoscaler_openstack`),
//! and the controller's `/status` ([`controller`]), concurrently. It works whether the controller runs or not: only the
//! controller subcheck needs the controller.

pub mod controller;
pub mod gitlab;
pub mod openstack;

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use autoscaler_config::{Config, Env};
use chrono::{DateTime, Utc};
use secrecy::SecretString;

use reqwest::header::HeaderMap;
use serde::de::DeserializeOwned;

use crate::error::{SourceError, transport_reason};
use crate::model::{Fetched, PoolInfo, Snapshot};
use crate::thresholds::Subcheck;

/// Environment variable holding the GitLab token for the check; when unset, the config's
/// `token_env` / `token_file` is used.
pub const TOKEN_ENV: &str = "GITLAB_AUTOSCALER_TOKEN";

/// Produces a snapshot.
pub trait Source {
    /// Fetches what the `wanted` subchecks need, reporting each stage to `progress`.
    /// `now` is the evaluation time (GitLab reports queue durations relative to it).
    ///
    /// # Errors
    ///
    /// [`SourceError`] only when nothing can be fetched at all; a part that fails is
    /// recorded in the snapshot as [`Fetched::Failed`].
    fn snapshot(
        &self,
        wanted: &BTreeSet<Subcheck>,
        now: DateTime<Utc>,
        progress: &Progress,
    ) -> impl Future<Output = Result<Snapshot, SourceError>>;
}

/// Which stage each part of the fetch has reached, for the timeout message.
#[derive(Debug, Default)]
pub struct Progress {
    stages: Mutex<BTreeMap<&'static str, String>>,
}

// === impl Progress ===

impl Progress {
    /// Records that `part` (e.g. `gitlab`) is now at `stage`.
    pub fn stage(&self, part: &'static str, stage: impl Into<String>) {
        if let Ok(mut m) = self.stages.lock() {
            m.insert(part, stage.into());
        }
    }

    /// Records that `part` is done.
    pub fn done(&self, part: &'static str) {
        self.stage(part, "done");
    }

    /// `gitlab: runner details 312 of 1000; openstack: done`, or `starting`.
    pub fn describe(&self) -> String {
        let Ok(m) = self.stages.lock() else {
            return "unknown stage".into();
        };
        if m.is_empty() {
            return "starting".into();
        }
        m.iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// The pools as the check sees them (base policy values).
pub fn pools_of(config: &Config) -> Vec<PoolInfo> {
    config
        .pools
        .iter()
        .map(|p| PoolInfo {
            name: p.name.clone(),
            limit: p.policy.limit,
            boot_timeout: p.policy.boot_timeout,
            tags: p.runner.tags.iter().cloned().collect(),
            run_untagged: p.runner.run_untagged,
        })
        .collect()
}

/// The real thing: GitLab, OpenStack and the controller, as the config file names them.
pub struct LiveSource {
    config: Config,
    token: Result<SecretString, String>,
    os_auth: Result<autoscaler_openstack::ResolvedAuth, String>,
    timeout: Duration,
}

impl std::fmt::Debug for LiveSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveSource")
            .field("controller", &self.config.controller.id)
            .field("gitlab", &self.config.gitlab.url.as_str())
            .finish_non_exhaustive()
    }
}

// === impl LiveSource ===

impl LiveSource {
    /// Builds the source; the token comes from [`TOKEN_ENV`], else from the config's token
    /// source, and the OpenStack credentials from the config or `OS_*`, all read through
    /// `env` now. A missing token fails only the GitLab parts, missing credentials only the
    /// OpenStack part. `timeout` bounds each HTTP request.
    pub fn new(config: Config, env: &dyn Env, timeout: Duration) -> Self {
        let token = match env.var(TOKEN_ENV).filter(|t| !t.is_empty()) {
            Some(t) => Ok(SecretString::from(t)),
            None => config.gitlab.token.resolve(env).map_err(|e| {
                format!(
                    "no gitlab token: {TOKEN_ENV} is not set and the config's token ({}) failed: {}",
                    config.gitlab.token,
                    crate::chain(&e)
                )
            }),
        };
        let os_auth = openstack::credentials(&config, env).map_err(|e| crate::chain(&e));
        LiveSource {
            config,
            token,
            os_auth,
            timeout,
        }
    }
}

impl Source for LiveSource {
    async fn snapshot(
        &self,
        wanted: &BTreeSet<Subcheck>,
        now: DateTime<Utc>,
        progress: &Progress,
    ) -> Result<Snapshot, SourceError> {
        let need_runners = wanted.contains(&Subcheck::Runners) || wanted.contains(&Subcheck::Vms);
        let need_servers = wanted.contains(&Subcheck::Vms);
        let need_queue = wanted.contains(&Subcheck::Queue);
        let need_controller = wanted.contains(&Subcheck::Controller);
        let pools = pools_of(&self.config);
        let pool_names: Vec<String> = pools.iter().map(|p| p.name.clone()).collect();

        let gl = match &self.token {
            Ok(t) => Ok(gitlab::GitLab::new(&self.config, t.clone(), self.timeout)?),
            Err(m) => Err(m.clone()),
        };

        let runners = async {
            if !need_runners {
                return Fetched::Skipped;
            }
            match &gl {
                Err(m) => Fetched::Failed(m.clone()),
                Ok(gl) => match gl.runners(&pool_names, progress).await {
                    Ok(r) => {
                        progress.done("gitlab runners");
                        Fetched::Ok(r)
                    }
                    Err(e) => Fetched::Failed(crate::chain(&e)),
                },
            }
        };
        let pending = async {
            if !need_queue {
                return Fetched::Skipped;
            }
            match &gl {
                Err(m) => Fetched::Failed(m.clone()),
                Ok(gl) => match gl.pending_jobs(now, progress).await {
                    Ok(j) => {
                        progress.done("gitlab jobs");
                        Fetched::Ok(j)
                    }
                    Err(e) => Fetched::Failed(crate::chain(&e)),
                },
            }
        };
        let cloud = async {
            if !need_servers {
                return (Fetched::Skipped, Fetched::Skipped);
            }
            openstack::fetch(&self.config, self.os_auth.clone(), self.timeout, progress).await
        };
        let controller = async {
            if !need_controller {
                return Fetched::Skipped;
            }
            match controller::fetch(self.config.controller.listen, self.timeout, progress).await {
                Ok(s) => Fetched::Ok(s),
                Err(e) => Fetched::Failed(crate::chain(&e)),
            }
        };
        let (runners, pending, (servers, quota), controller) =
            tokio::join!(runners, pending, cloud, controller);
        Ok(Snapshot {
            controller_id: self.config.controller.id.clone(),
            pools,
            runners,
            servers,
            quota,
            pending,
            controller,
        })
    }
}

/// Largest response body read (the controller's adapter uses the same default).
pub const MAX_BODY: usize = autoscaler_gitlab::guard::DEFAULT_MAX_BODY;

/// Sends `req`, requires a 2xx answer and parses its JSON body (at most [`MAX_BODY`]
/// bytes). Errors name `what` and `shown` (the URL without query or credentials); `hint`
/// explains a status code.
async fn send_json<T: DeserializeOwned>(
    what: &str,
    shown: &str,
    req: reqwest::RequestBuilder,
    hint: fn(u16) -> &'static str,
) -> Result<(T, HeaderMap), SourceError> {
    let transport = |source: reqwest::Error| {
        if let Some(r) = autoscaler_gitlab::guard::off_origin(&source) {
            return SourceError::Redirect {
                what: what.to_string(),
                url: shown.to_string(),
                reason: format!("gitlab {r}"),
            };
        }
        SourceError::Transport {
            what: what.to_string(),
            url: shown.to_string(),
            reason: transport_reason(&source),
        }
    };
    let resp = req.send().await.map_err(transport)?;
    let status = resp.status().as_u16();
    tracing::debug!(url = %shown, status, "{what} answered");
    if !resp.status().is_success() {
        return Err(SourceError::Status {
            what: what.to_string(),
            url: shown.to_string(),
            status,
            hint: hint(status),
        });
    }
    let headers = resp.headers().clone();
    let bytes = autoscaler_gitlab::guard::read_limited(resp, MAX_BODY)
        .await
        .map_err(|e| match e {
            autoscaler_gitlab::guard::BodyError::TooLarge { limit } => SourceError::TooLarge {
                what: what.to_string(),
                url: shown.to_string(),
                limit,
            },
            autoscaler_gitlab::guard::BodyError::Read(source) => transport(source),
        })?;
    let body = serde_json::from_slice(&bytes).map_err(|source| SourceError::Body {
        what: what.to_string(),
        url: shown.to_string(),
        source,
    })?;
    Ok((body, headers))
}
