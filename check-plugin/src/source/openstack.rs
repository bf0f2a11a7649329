//! Servers and quota through the autoscaler crate's OpenStack client
//! (`autoscaler_openstack`), with the check's timeout and a single attempt per call.

use std::time::Duration;

use autoscaler_config::{Config, Env};
use autoscaler_core::ports::{CloudServer, CloudStatus, ControllerId};
use autoscaler_openstack::{AuthSettings, ClientOptions, OpenStack, ResolvedAuth, resolve_auth};

use super::Progress;
use crate::error::SourceError;
use crate::model::{Fetched, Quota, Server, ServerStatus};

const PART: &str = "openstack";

/// Resolves the credentials: the config's `[openstack]` section, else `OS_CLOUD` / `OS_*`
/// from `env`, reading the secret files or variables they name.
///
/// # Errors
///
/// [`SourceError::OpenStack`] naming the missing or unreadable setting.
pub fn credentials(config: &Config, env: &dyn Env) -> Result<ResolvedAuth, SourceError> {
    let settings = config
        .openstack
        .as_ref()
        .map(AuthSettings::from)
        .unwrap_or_default();
    resolve_auth(&settings, env).map_err(|source| SourceError::OpenStack {
        what: "credentials",
        source,
    })
}

/// Lists the controller's servers and reads the quota with the resolved credentials.
pub async fn fetch(
    config: &Config,
    auth: Result<ResolvedAuth, String>,
    timeout: Duration,
    progress: &Progress,
) -> (Fetched<Vec<Server>>, Fetched<Quota>) {
    let client = auth
        .map_err(SourceError::Setup)
        .and_then(|auth| client(config, auth, timeout));
    match client {
        Err(e) => {
            let m = crate::chain(&e);
            (Fetched::Failed(m.clone()), Fetched::Failed(m))
        }
        Ok(os) => {
            progress.stage(PART, "authenticating with keystone");
            if let Err(e) = os.authenticate().await {
                let m = crate::chain(&SourceError::OpenStack {
                    what: "authentication",
                    source: e,
                });
                return (Fetched::Failed(m.clone()), Fetched::Failed(m));
            }
            progress.stage(PART, "listing servers and limits");
            let (servers, limits) = tokio::join!(os.list_owned(), os.limits());
            let servers = match servers {
                Ok(s) => Fetched::Ok(s.into_iter().map(to_server).collect()),
                Err(source) => Fetched::Failed(crate::chain(&SourceError::OpenStack {
                    what: "server list",
                    source,
                })),
            };
            let quota = match limits {
                Ok(q) => Fetched::Ok(Quota {
                    used_instances: q.used_instances,
                    max_instances: q.max_instances,
                }),
                Err(source) => Fetched::Failed(crate::chain(&SourceError::OpenStack {
                    what: "limits",
                    source,
                })),
            };
            progress.done(PART);
            (servers, quota)
        }
    }
}

fn client(
    config: &Config,
    auth: ResolvedAuth,
    timeout: Duration,
) -> Result<OpenStack, SourceError> {
    let controller = ControllerId::new(config.controller.id.clone())
        .map_err(|e| SourceError::Setup(format!("controller id: {e}")))?;
    let options = ClientOptions {
        request_timeout: timeout,
        connect_timeout: timeout.min(Duration::from_secs(10)),
        attempts: 1,
        ..ClientOptions::default()
    };
    OpenStack::new(auth, controller, options).map_err(|source| SourceError::OpenStack {
        what: "client",
        source,
    })
}

fn to_server(s: CloudServer) -> Server {
    Server {
        id: s.id.0,
        name: s.name,
        pool: s.pool,
        status: match s.status {
            CloudStatus::Building => ServerStatus::Building,
            CloudStatus::Active => ServerStatus::Active,
            CloudStatus::Error { fault } => ServerStatus::Error(fault),
            CloudStatus::Deleting => ServerStatus::Deleting,
            CloudStatus::Other(o) => ServerStatus::Other(o),
        },
        created: s.created,
        runner_id: s.runner_id,
    }
}
