//! What a fake OpenStack starts with: credentials, seed objects, delays, quota.
//!
//! Plain data with a [`Default`] that matches the loopback OpenStack of the project's
//! integration tests (user `demo`/`demo`, project `demo`, application credential
//! `autoscaler`/`autoscaler-secret`, flavor `m1.small`, image `Debian 12`, network
//! `runner-net`, security group `runner-sg`, key pair `k1`). No I/O here.

use std::fmt;
use std::time::Duration;

/// Everything a fake cloud is started with. Change fields of [`Default::default`] as needed.
#[derive(Clone)]
pub struct FakeOpenStackOptions {
    /// TCP port on 127.0.0.1; `0` picks a free one (tests), a fixed port suits `run --dev`.
    pub port: u16,
    /// Region every catalog endpoint is registered in.
    pub region: String,
    /// Users that can authenticate with a password, each a member of one project.
    pub users: Vec<FakeUser>,
    /// Application credentials (authenticate without a password, scoped to the owner's project).
    pub app_credentials: Vec<FakeAppCredential>,
    /// How long an issued token is valid; the real client renews before expiry.
    pub token_lifetime: Duration,
    /// Flavors Nova offers (names may repeat, to test ambiguous lookups).
    pub flavors: Vec<FakeFlavor>,
    /// Names of the active images Glance lists.
    pub images: Vec<String>,
    /// Names of the networks Neutron lists.
    pub networks: Vec<String>,
    /// Names of the security groups of every project.
    pub security_groups: Vec<String>,
    /// Names of the Nova key pairs.
    pub key_pairs: Vec<String>,
    /// How long a new server stays in BUILD before it goes ACTIVE (or ERROR).
    pub boot_delay: Duration,
    /// Upper bound of a random extra boot time per server (0: every server boots in
    /// exactly `boot_delay`); drawn from [`FakeOpenStackOptions::seed`].
    pub boot_jitter: Duration,
    /// How long a deleted server stays visible (task state `deleting`) before it is gone.
    pub delete_delay: Duration,
    /// Delay added before every answer, to model a slow cloud.
    pub latency: Duration,
    /// Compute quota of each project.
    pub quota: FakeQuota,
    /// Seed of server ids, boot jitter and token values: the same seed and the same calls
    /// give the same ids and timings.
    pub seed: u64,
}

impl Default for FakeOpenStackOptions {
    fn default() -> Self {
        FakeOpenStackOptions {
            port: 0,
            region: "RegionOne".into(),
            users: vec![FakeUser {
                name: "demo".into(),
                password: "demo".into(),
                project: "demo".into(),
            }],
            app_credentials: vec![FakeAppCredential {
                id: "autoscaler".into(),
                name: "autoscaler".into(),
                secret: "autoscaler-secret".into(),
                user: "demo".into(),
            }],
            token_lifetime: Duration::from_secs(3600),
            flavors: vec![
                FakeFlavor::new("m1.small", 1, 2048, 20),
                FakeFlavor::new("s1.large", 4, 8192, 80),
            ],
            images: vec!["Debian 12".into()],
            networks: vec!["runner-net".into()],
            security_groups: vec!["runner-sg".into()],
            key_pairs: vec!["k1".into()],
            boot_delay: Duration::from_millis(1500),
            boot_jitter: Duration::ZERO,
            delete_delay: Duration::from_millis(500),
            latency: Duration::ZERO,
            quota: FakeQuota::default(),
            seed: 1,
        }
    }
}

impl fmt::Debug for FakeOpenStackOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeOpenStackOptions")
            .field("port", &self.port)
            .field("region", &self.region)
            .field("users", &self.users)
            .field("app_credentials", &self.app_credentials)
            .field("token_lifetime", &self.token_lifetime)
            .field("flavors", &self.flavors)
            .field("images", &self.images)
            .field("networks", &self.networks)
            .field("security_groups", &self.security_groups)
            .field("key_pairs", &self.key_pairs)
            .field("boot_delay", &self.boot_delay)
            .field("boot_jitter", &self.boot_jitter)
            .field("delete_delay", &self.delete_delay)
            .field("latency", &self.latency)
            .field("quota", &self.quota)
            .field("seed", &self.seed)
            .finish()
    }
}

/// A Keystone user with a password, member of one project (in domain `Default`).
#[derive(Clone, PartialEq, Eq)]
pub struct FakeUser {
    /// User name.
    pub name: String,
    /// Password (redacted in Debug).
    pub password: String,
    /// Name of the user's project; a token request may scope to it only.
    pub project: String,
}

impl fmt::Debug for FakeUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeUser")
            .field("name", &self.name)
            .field("password", &"[REDACTED]")
            .field("project", &self.project)
            .finish()
    }
}

/// A Keystone application credential of a user, scoped to that user's project.
#[derive(Clone, PartialEq, Eq)]
pub struct FakeAppCredential {
    /// Id, as in `OS_APPLICATION_CREDENTIAL_ID`.
    pub id: String,
    /// Name (unique per user), usable with the user instead of the id.
    pub name: String,
    /// Secret (redacted in Debug).
    pub secret: String,
    /// Name of the owning [`FakeUser`].
    pub user: String,
}

impl fmt::Debug for FakeAppCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeAppCredential")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("secret", &"[REDACTED]")
            .field("user", &self.user)
            .finish()
    }
}

/// A Nova flavor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeFlavor {
    /// Flavor id; [`FakeFlavor::new`] derives a stable uuid-like one from the name.
    pub id: String,
    /// Flavor name.
    pub name: String,
    /// Virtual CPUs (counted against the cores quota).
    pub vcpus: u64,
    /// RAM in MiB (counted against the RAM quota).
    pub ram_mb: u64,
    /// Root disk in GiB (informational).
    pub disk_gb: u64,
}

impl FakeFlavor {
    /// A flavor whose id is derived from its name (stable across runs).
    pub fn new(name: &str, vcpus: u64, ram_mb: u64, disk_gb: u64) -> Self {
        FakeFlavor {
            id: crate::ids::stable_id("flavor", name),
            name: name.into(),
            vcpus,
            ram_mb,
            disk_gb,
        }
    }
}

/// Compute quota of a project; `None` is unlimited (Nova's `-1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FakeQuota {
    /// `instances`: servers in any state until they are gone.
    pub instances: Option<u64>,
    /// `cores`: sum of the flavors' vCPUs.
    pub cores: Option<u64>,
    /// `ram`: sum of the flavors' RAM in MiB.
    pub ram_mb: Option<u64>,
}

impl FakeQuota {
    /// No limit at all.
    pub const UNLIMITED: FakeQuota = FakeQuota {
        instances: None,
        cores: None,
        ram_mb: None,
    };

    /// At most `n` servers; cores and RAM unlimited.
    pub fn instances(n: u64) -> FakeQuota {
        FakeQuota {
            instances: Some(n),
            ..FakeQuota::UNLIMITED
        }
    }
}

impl Default for FakeQuota {
    /// Nova's default project quota: 10 instances, 20 cores, 50 GiB of RAM.
    fn default() -> Self {
        FakeQuota {
            instances: Some(10),
            cores: Some(20),
            ram_mb: Some(51200),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_of_options_hides_passwords_and_secrets() {
        let text = format!("{:?}", FakeOpenStackOptions::default());
        assert!(!text.contains("autoscaler-secret"), "{text}");
        assert!(!text.contains("password: \"demo\""), "{text}");
        assert!(text.contains("[REDACTED]"), "{text}");
    }

    #[test]
    fn default_seed_objects_match_the_loopback_stack() {
        let o = FakeOpenStackOptions::default();
        let small = o.flavors.iter().find(|f| f.name == "m1.small");
        assert_eq!(small.map(|f| (f.vcpus, f.ram_mb)), Some((1, 2048)));
        assert!(o.flavors.iter().any(|f| f.name == "s1.large"));
        assert_eq!(o.images, vec!["Debian 12".to_string()]);
        assert_eq!(o.region, "RegionOne");
    }
}
