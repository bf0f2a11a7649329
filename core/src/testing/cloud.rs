//! [`FakeCloud`]: an in-memory [`Cloud`] with scripted failures, boot delays and latency.
//!
//! It behaves like Nova where the reconciler can tell: servers are `Building` for the boot
//! delay, then `Active` (or `Error` when scripted); delete of a missing server is `Ok`; only
//! servers with this controller's ownership tag are listed; the instances quota is
//! enforced at create time (like Nova's 403), and a scripted "quota race" lets a create
//! succeed and the server go `Error` afterwards (like concurrent creates in Nova).
//!
//! Time comes from `tokio::time`, so `tokio::time::pause()` + `advance()` drive boots.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};
use secrecy::ExposeSecret;
use tokio::time::Instant;

use crate::ports::{
    Cloud, CloudError, CloudErrorKind, CloudResult, CloudServer, CloudStatus, ComputeQuota,
    ControllerId, CreateServer, META_POOL, META_RUNNER_ID, ServerId, owner_tag, ownership_labels,
};

// Largest user data, as Nova counts it (bytes of base64).
use autoscaler_bootstrap::NOVA_USER_DATA_LIMIT as MAX_USER_DATA_BASE64;

/// An in-memory cloud. Clones share state.
#[derive(Clone)]
pub struct FakeCloud {
    state: Arc<Mutex<State>>,
}

impl std::fmt::Debug for FakeCloud {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.lock();
        f.debug_struct("FakeCloud")
            .field("controller", &s.controller)
            .field("servers", &s.servers.len())
            .finish_non_exhaustive()
    }
}

struct State {
    controller: ControllerId,
    epoch: DateTime<Utc>,
    started: Instant,
    next_id: u64,
    servers: BTreeMap<ServerId, FakeServer>,
    boot_delay: Duration,
    delete_delay: Duration,
    latency: Duration,
    max_instances: Option<u64>,
    max_cores: Option<u64>,
    flavors: BTreeMap<String, crate::model::FlavorSize>,
    flavor_of: BTreeMap<ServerId, String>,
    fail_create: VecDeque<CloudError>,
    fail_delete: VecDeque<CloudError>,
    fail_list: VecDeque<CloudError>,
    fail_boot: VecDeque<String>,
    creates: u64,
    deletes: u64,
}

struct FakeServer {
    server: CloudServer,
    user_data: String,
    ready_at: Instant,
    boot_fault: Option<String>,
    gone_at: Option<Instant>,
}

impl FakeServer {
    /// The server as seen at `now`, or `None` once its deletion has completed.
    fn view(&self, now: Instant) -> Option<CloudServer> {
        let mut s = self.server.clone();
        if let Some(gone) = self.gone_at {
            if now >= gone {
                return None;
            }
            s.status = CloudStatus::Deleting;
        } else if s.status == CloudStatus::Building && now >= self.ready_at {
            s.status = match &self.boot_fault {
                Some(f) => CloudStatus::Error {
                    fault: Some(f.clone()),
                },
                None => CloudStatus::Active,
            };
        }
        Some(s)
    }
}

// === impl FakeCloud ===

impl FakeCloud {
    /// An empty cloud for `controller`; creation timestamps start at 2025-01-01T00:00:00Z
    /// and advance with `tokio::time`.
    pub fn new(controller: ControllerId) -> Self {
        let epoch = DateTime::parse_from_rfc3339("2025-01-01T00:00:00Z")
            .map(|d| d.with_timezone(&Utc))
            .unwrap_or_default();
        FakeCloud {
            state: Arc::new(Mutex::new(State {
                controller,
                epoch,
                started: Instant::now(),
                next_id: 1,
                servers: BTreeMap::new(),
                boot_delay: Duration::from_secs(60),
                delete_delay: Duration::ZERO,
                latency: Duration::ZERO,
                max_instances: None,
                max_cores: None,
                flavors: BTreeMap::new(),
                flavor_of: BTreeMap::new(),
                fail_create: VecDeque::new(),
                fail_delete: VecDeque::new(),
                fail_list: VecDeque::new(),
                fail_boot: VecDeque::new(),
                creates: 0,
                deletes: 0,
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock only happens in a failing test; keep going.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How long new servers stay `Building` (default 60 s).
    pub fn set_boot_delay(&self, d: Duration) {
        self.lock().boot_delay = d;
    }

    /// How long deleted servers stay listed as `Deleting` (default: gone at once).
    pub fn set_delete_delay(&self, d: Duration) {
        self.lock().delete_delay = d;
    }

    /// Delay added to every call (default none).
    pub fn set_latency(&self, d: Duration) {
        self.lock().latency = d;
    }

    /// Limits the instances quota; `None` = unlimited. Counts every server in the project,
    /// owned or not.
    pub fn set_quota_instances(&self, max: Option<u64>) {
        self.lock().max_instances = max;
    }

    /// The cores quota (`None` = unlimited); servers use their flavor's vCPUs.
    pub fn set_quota_cores(&self, max: Option<u64>) {
        self.lock().max_cores = max;
    }

    /// The size of flavor `name` (unknown flavors count 0 cores and report no size).
    pub fn set_flavor(&self, name: &str, size: crate::model::FlavorSize) {
        self.lock().flavors.insert(name.to_string(), size);
    }

    /// The next create fails with `err` (queued: call several times for several failures).
    pub fn fail_next_create(&self, err: CloudError) {
        self.lock().fail_create.push_back(err);
    }

    /// The next delete fails with `err`.
    pub fn fail_next_delete(&self, err: CloudError) {
        self.lock().fail_delete.push_back(err);
    }

    /// The next list fails with `err`.
    pub fn fail_next_list(&self, err: CloudError) {
        self.lock().fail_list.push_back(err);
    }

    /// The next created server is accepted but goes `Error` with `fault` when its boot
    /// delay ends (Nova's "No valid host", or a lost quota race).
    pub fn fail_next_boot(&self, fault: impl Into<String>) {
        self.lock().fail_boot.push_back(fault.into());
    }

    /// Puts an existing server into `Error` now, like an admin's `os-resetState`.
    ///
    /// # Panics
    ///
    /// When the server does not exist: a test scripting error.
    pub fn make_error(&self, id: &ServerId, fault: Option<&str>) {
        let mut s = self.lock();
        #[allow(clippy::expect_used)]
        let srv = s
            .servers
            .get_mut(id)
            .expect("make_error: no such server in FakeCloud");
        srv.server.status = CloudStatus::Error {
            fault: fault.map(str::to_string),
        };
    }

    /// Puts an existing server into `Deleting` for good, as if a delete had been accepted
    /// but got stuck (Nova's soft delete, or a `deleting` task state that never ends): it
    /// stays listed until a later [`Cloud::delete_server`] call. Returns false when the server
    /// does not exist or is already going away.
    pub fn make_stuck_deleting(&self, id: &ServerId) -> bool {
        let mut s = self.lock();
        match s.servers.get_mut(id) {
            Some(srv) if srv.gone_at.is_none() => {
                srv.server.status = CloudStatus::Deleting;
                true
            }
            _ => false,
        }
    }

    /// Adds a server that does not belong to this controller (another controller's or a
    /// human's); it must never be listed or deleted by the controller.
    pub fn insert_foreign(&self, name: &str, tags: Vec<String>) -> ServerId {
        let mut s = self.lock();
        let id = s.new_id();
        let now = Instant::now();
        let server = CloudServer {
            id: id.clone(),
            name: name.into(),
            status: CloudStatus::Active,
            created: s.timestamp(now),
            pool: None,
            runner_id: None,
            tags,
            address: None,
        };
        s.servers.insert(
            id.clone(),
            FakeServer {
                server,
                user_data: String::new(),
                ready_at: now,
                boot_fault: None,
                gone_at: None,
            },
        );
        id
    }

    /// Every server in the project as it is now, owned or not, sorted by id.
    pub fn servers(&self) -> Vec<CloudServer> {
        let s = self.lock();
        let now = Instant::now();
        s.servers.values().filter_map(|f| f.view(now)).collect()
    }

    /// The user data a server was created with (tests of token handling).
    pub fn user_data(&self, id: &ServerId) -> Option<String> {
        self.lock().servers.get(id).map(|f| f.user_data.clone())
    }

    /// Creates accepted so far.
    pub fn create_count(&self) -> u64 {
        self.lock().creates
    }

    /// Deletes accepted so far (including deletes of missing servers).
    pub fn delete_count(&self) -> u64 {
        self.lock().deletes
    }

    async fn pause(&self) {
        let latency = self.lock().latency;
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
    }
}

impl State {
    fn new_id(&mut self) -> ServerId {
        let id = ServerId(format!("fake-{:06}", self.next_id));
        self.next_id += 1;
        id
    }

    fn timestamp(&self, now: Instant) -> DateTime<Utc> {
        let elapsed = now.saturating_duration_since(self.started);
        self.epoch + chrono::Duration::from_std(elapsed).unwrap_or_default()
    }

    fn live_count(&self, now: Instant) -> u64 {
        self.servers
            .values()
            .filter(|f| f.view(now).is_some())
            .count() as u64
    }

    /// vCPUs of the servers that still exist (by their flavor's size).
    fn used_cores(&self, now: Instant) -> u64 {
        self.servers
            .iter()
            .filter(|(_, f)| f.view(now).is_some())
            .filter_map(|(id, _)| self.flavor_of.get(id))
            .filter_map(|name| self.flavors.get(name))
            .map(|f| u64::from(f.vcpus))
            .sum()
    }

    fn purge(&mut self, now: Instant) {
        self.servers.retain(|_, f| f.view(now).is_some());
        let live: BTreeSet<ServerId> = self.servers.keys().cloned().collect();
        self.flavor_of.retain(|id, _| live.contains(id));
    }
}

impl Cloud for FakeCloud {
    async fn list_owned_servers(&self) -> CloudResult<Vec<CloudServer>> {
        self.pause().await;
        let mut s = self.lock();
        if let Some(e) = s.fail_list.pop_front() {
            return Err(e);
        }
        let now = Instant::now();
        s.purge(now);
        let tag = owner_tag(&s.controller);
        Ok(s.servers
            .values()
            .filter(|f| f.server.tags.contains(&tag))
            .filter_map(|f| f.view(now))
            .collect())
    }

    async fn create_server(&self, req: CreateServer) -> CloudResult<ServerId> {
        self.pause().await;
        let mut s = self.lock();
        if let Some(e) = s.fail_create.pop_front() {
            return Err(e);
        }
        let (tags, metadata) = ownership_labels(&s.controller, &req)?;
        if req.template.networks.is_empty() {
            return Err(CloudError::new(
                CloudErrorKind::Rejected,
                format!("pool {:?}: at least one network is needed", req.pool),
            ));
        }
        let user_data = req.user_data.expose_secret().to_string();
        let encoded_len = user_data.len().div_ceil(3) * 4;
        if encoded_len > MAX_USER_DATA_BASE64 {
            return Err(CloudError::new(
                CloudErrorKind::Rejected,
                format!(
                    "user data is {encoded_len} bytes of base64; Nova accepts at most {MAX_USER_DATA_BASE64}"
                ),
            ));
        }
        let now = Instant::now();
        if let Some(max) = s.max_instances {
            let used = s.live_count(now);
            if used >= max {
                return Err(CloudError::new(
                    CloudErrorKind::Quota,
                    format!(
                        "Quota exceeded for instances: Requested 1, but already used {used} of {max} instances"
                    ),
                ));
            }
        }
        if let Some(max) = s.max_cores {
            let used = s.used_cores(now);
            let want = s
                .flavors
                .get(&req.template.flavor)
                .map_or(0, |f| u64::from(f.vcpus));
            if used + want > max {
                return Err(CloudError::new(
                    CloudErrorKind::Quota,
                    format!(
                        "Quota exceeded for cores: Requested {want}, but already used {used} of {max} cores"
                    ),
                ));
            }
        }
        let id = s.new_id();
        s.flavor_of.insert(id.clone(), req.template.flavor.clone());
        let server = CloudServer {
            id: id.clone(),
            name: req.name,
            status: CloudStatus::Building,
            created: s.timestamp(now),
            pool: metadata.get(META_POOL).cloned(),
            runner_id: metadata.get(META_RUNNER_ID).and_then(|r| r.parse().ok()),
            tags,
            address: Some(format!("10.0.{}.{}", s.next_id / 250, s.next_id % 250 + 2)),
        };
        let boot_fault = s.fail_boot.pop_front();
        let ready_at = now + s.boot_delay;
        s.servers.insert(
            id.clone(),
            FakeServer {
                server,
                user_data,
                ready_at,
                boot_fault,
                gone_at: None,
            },
        );
        s.creates += 1;
        Ok(id)
    }

    async fn delete_server(&self, id: &ServerId) -> CloudResult<()> {
        self.pause().await;
        let mut s = self.lock();
        if let Some(e) = s.fail_delete.pop_front() {
            return Err(e);
        }
        let tag = owner_tag(&s.controller);
        let delay = s.delete_delay;
        let now = Instant::now();
        s.deletes += 1;
        match s.servers.get_mut(id) {
            None => Ok(()),
            Some(f) if !f.server.tags.contains(&tag) => Err(CloudError::new(
                CloudErrorKind::Rejected,
                format!(
                    "fake cloud: server {id} is not owned by this controller; refusing to delete it"
                ),
            )),
            Some(f) => {
                if f.gone_at.is_none() {
                    f.gone_at = Some(now + delay);
                }
                s.purge(now);
                Ok(())
            }
        }
    }

    async fn quota(&self) -> CloudResult<ComputeQuota> {
        self.pause().await;
        let s = self.lock();
        Ok(ComputeQuota {
            max_instances: s.max_instances,
            used_instances: s.live_count(Instant::now()),
            max_cores: s.max_cores,
            used_cores: s.used_cores(Instant::now()),
            ..ComputeQuota::default()
        })
    }

    async fn flavor_size(&self, flavor: &str) -> CloudResult<Option<crate::model::FlavorSize>> {
        self.pause().await;
        Ok(self.lock().flavors.get(flavor).copied())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use secrecy::SecretString;

    use super::*;
    use crate::ports::ServerTemplateSpec;

    fn cloud() -> CloudResult<FakeCloud> {
        Ok(FakeCloud::new(ControllerId::new("ctl")?))
    }

    fn req(name: &str) -> CreateServer {
        CreateServer {
            name: name.into(),
            pool: "docker".into(),
            runner_id: Some(7),
            template: ServerTemplateSpec {
                flavor: "m1.small".into(),
                image: "debian-12".into(),
                networks: vec!["runner-net".into()],
                ..ServerTemplateSpec::default()
            },
            user_data: SecretString::from("#cloud-config\n"),
            metadata: BTreeMap::new(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn servers_build_then_become_active_after_the_boot_delay() -> CloudResult<()> {
        let c = cloud()?;
        c.set_boot_delay(Duration::from_secs(30));
        let id = c.create_server(req("r1")).await?;
        let s = c.list_owned_servers().await?;
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].status, CloudStatus::Building);
        assert_eq!(s[0].pool.as_deref(), Some("docker"));
        assert_eq!(s[0].runner_id, Some(7));
        tokio::time::advance(Duration::from_secs(30)).await;
        let s = c.list_owned_servers().await?;
        assert_eq!(s[0].id, id);
        assert_eq!(s[0].status, CloudStatus::Active);
        Ok(())
    }

    #[tokio::test(start_paused = true)]
    async fn foreign_servers_are_never_listed_nor_deleted() -> CloudResult<()> {
        let c = cloud()?;
        let other = c.insert_foreign("human-vm", vec!["autoscaler:someone-else".into()]);
        c.create_server(req("r1")).await?;
        let listed = c.list_owned_servers().await?;
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].name, "r1");
        let err = c.delete_server(&other).await.expect_err("must refuse");
        assert_eq!(err.kind(), CloudErrorKind::Rejected);
        assert!(c.servers().iter().any(|s| s.id == other));
        Ok(())
    }

    #[tokio::test(start_paused = true)]
    async fn instances_quota_refuses_creates_past_the_limit() -> CloudResult<()> {
        let c = cloud()?;
        c.set_quota_instances(Some(2));
        c.insert_foreign("human-vm", vec![]);
        c.create_server(req("r1")).await?;
        let err = c.create_server(req("r2")).await.expect_err("over quota");
        assert_eq!(err.kind(), CloudErrorKind::Quota);
        let q = c.quota().await?;
        assert_eq!((q.max_instances, q.used_instances), (Some(2), 2));
        Ok(())
    }

    #[tokio::test(start_paused = true)]
    async fn scripted_failures_apply_once_in_order() -> CloudResult<()> {
        let c = cloud()?;
        c.fail_next_create(CloudError::new(CloudErrorKind::Transient, "503"));
        c.fail_next_boot("No valid host was found.");
        assert!(c.create_server(req("r1")).await.is_err());
        let id = c.create_server(req("r2")).await?;
        tokio::time::advance(Duration::from_secs(60)).await;
        let s = c.list_owned_servers().await?;
        assert_eq!(
            s[0].status,
            CloudStatus::Error {
                fault: Some("No valid host was found.".into())
            }
        );
        c.delete_server(&id).await?;
        c.delete_server(&id).await?;
        assert!(c.list_owned_servers().await?.is_empty());
        assert_eq!((c.create_count(), c.delete_count()), (1, 2));
        Ok(())
    }

    #[tokio::test(start_paused = true)]
    async fn deleting_servers_stay_listed_for_the_delete_delay() -> CloudResult<()> {
        let c = cloud()?;
        c.set_delete_delay(Duration::from_secs(5));
        let id = c.create_server(req("r1")).await?;
        c.make_error(&id, Some("reset"));
        c.delete_server(&id).await?;
        assert_eq!(
            c.list_owned_servers().await?[0].status,
            CloudStatus::Deleting
        );
        tokio::time::advance(Duration::from_secs(5)).await;
        assert!(c.list_owned_servers().await?.is_empty());
        Ok(())
    }

    #[tokio::test(start_paused = true)]
    async fn latency_delays_calls_in_paused_time() -> CloudResult<()> {
        let c = cloud()?;
        c.set_latency(Duration::from_millis(250));
        let start = Instant::now();
        c.quota().await?;
        assert_eq!(start.elapsed(), Duration::from_millis(250));
        Ok(())
    }

    #[tokio::test(start_paused = true)]
    async fn oversized_user_data_is_rejected() -> CloudResult<()> {
        let c = cloud()?;
        let mut r = req("r1");
        r.user_data = SecretString::from("x".repeat(50_000));
        let err = c.create_server(r).await.expect_err("too large");
        assert_eq!(err.kind(), CloudErrorKind::Rejected);
        assert!(err.message().contains("65535"));
        Ok(())
    }
}
