//! Both fakes and the runner simulator together, plus the part of an autoscaler
//! configuration that points at them: what `run --dev`, the process tests and the HTTP
//! benchmark share.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

#[cfg(feature = "config")]
use autoscaler_config::fixture::{ConfigFixture, PoolFixture};

use crate::gitlab::{ADMIN_TOKEN, FakeGitLabServer};
use crate::{Error, FakeOpenStack, FakeOpenStackOptions, play_runners};

/// A fake GitLab, a fake OpenStack and a runner simulator joining them, on 127.0.0.1.
/// Dropping it stops the simulator and the fake GitLab.
#[derive(Debug)]
pub struct FakeSite {
    /// The fake OpenStack.
    pub cloud: Arc<FakeOpenStack>,
    /// The fake GitLab.
    pub gitlab: Arc<FakeGitLabServer>,
    runners: tokio::task::JoinHandle<()>,
}

impl Drop for FakeSite {
    fn drop(&mut self) {
        self.runners.abort();
    }
}

impl FakeSite {
    /// Starts both fakes (OpenStack with `options`) and the runner simulator.
    ///
    /// # Errors
    ///
    /// A fake cannot bind its port.
    pub async fn start(options: FakeOpenStackOptions) -> Result<FakeSite, Error> {
        let cloud = Arc::new(FakeOpenStack::start(options).await?);
        let gitlab = Arc::new(
            FakeGitLabServer::start()
                .await
                .map_err(|source| Error::Bind {
                    addr: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
                    source,
                })?,
        );
        let runners = tokio::spawn(play_runners(Arc::clone(&cloud), Arc::clone(&gitlab)));
        Ok(FakeSite {
            cloud,
            gitlab,
            runners,
        })
    }

    /// Writes the GitLab admin token, the webhook token (when given) and a `clouds.yaml`
    /// (cloud `fake`) into `dir`, and returns the `[gitlab]`, `[gitlab.scope]` (with
    /// `scope`, TOML lines) and `[openstack]` tables of a configuration using them.
    ///
    /// # Errors
    ///
    /// A file cannot be written.
    pub fn connection_toml(
        &self,
        dir: &Path,
        scope: &str,
        webhook_token: Option<&str>,
    ) -> std::io::Result<String> {
        let write = |name: &str, text: &str| -> std::io::Result<String> {
            let path = dir.join(name);
            std::fs::write(&path, text)?;
            Ok(toml_string(&path.display().to_string()))
        };
        let token = write("gitlab-token", ADMIN_TOKEN)?;
        let webhook = match webhook_token {
            Some(t) => format!("webhook_token_file = {}\n", write("webhook-token", t)?),
            None => String::new(),
        };
        let clouds_yaml = self
            .cloud
            .clouds_yaml("fake")
            .ok_or_else(|| std::io::Error::other("the fake OpenStack has no user"))?;
        let clouds = write("clouds.yaml", &clouds_yaml)?;
        Ok(format!(
            "[gitlab]\nurl = {}\ntoken_file = {token}\n{webhook}\n[gitlab.scope]\n{scope}\n\n\
             [openstack]\ncloud = \"fake\"\nclouds_file = {clouds}\n",
            toml_string(&self.gitlab.url()),
        ))
    }

    /// A configuration pointing at these fakes (feature `config`): [`FakeSite::connection_toml`] written into
    /// `dir`, everything else as [`ConfigFixture::new`] has it. Add pools (for example
    /// [`FakeSite::pool`]) and controller settings.
    ///
    /// # Errors
    ///
    /// A file cannot be written.
    #[cfg(feature = "config")]
    pub fn config(
        &self,
        dir: &Path,
        scope: &str,
        webhook_token: Option<&str>,
    ) -> std::io::Result<ConfigFixture> {
        let connection = self.connection_toml(dir, scope, webhook_token)?;
        Ok(ConfigFixture::new().connection(&connection))
    }

    /// A pool (feature `config`) of VMs made from the default seed objects of [`FakeOpenStackOptions`]
    /// (flavor `m1.small`, image `Debian 12`, network `runner-net`, security group
    /// `runner-sg`), Docker and gitlab-runner in the image, no forecast.
    #[cfg(feature = "config")]
    pub fn pool(name: &str) -> PoolFixture {
        PoolFixture::new(name)
            .forecast_days(0)
            .flavor("m1.small")
            .image("Debian 12")
            .networks(&["runner-net"])
            .security_groups(&["runner-sg"])
            .preinstalled_image()
    }
}

/// A loopback address with a port free right now, for a controller's endpoint.
///
/// # Errors
///
/// No port can be bound.
pub fn free_loopback_addr() -> std::io::Result<SocketAddr> {
    std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()
}

/// A TOML basic string (JSON string syntax is valid TOML for these values).
fn toml_string(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}
