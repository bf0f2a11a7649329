//! [`FakeCloud`]: the in-memory [`Cloud`] face of the fake cloud world
//! ([`autoscaler_world::cloud::World`]), with scripted failures, boot delays and latency.
//!
//! The world holds Nova's rules, the same ones the HTTP fake serves: servers are BUILD for
//! the boot delay, then ACTIVE (or ERROR with a scripted fault); a deleted server is
//! `deleting` for the delete delay, then gone; the instances, cores and RAM quota count
//! every server of the project (owned or not, deleting ones until they are gone) and is
//! enforced at create time (Nova's 403); user data over Nova's limit, bad names and bad
//! tags are refused. This face adds what the port adapter does: only servers with this
//! controller's ownership tag are listed, delete of a missing server is `Ok`, a server
//! needs a network, and names of flavors, images and networks need no catalog (an unknown
//! flavor counts no core and reports no size).
//!
//! Time comes from `tokio::time`: a call applies the boots and deletes whose deadline has
//! passed, so `tokio::time::pause()` + `advance()` drive them. A scripted "quota race"
//! ([`FakeCloud::fail_next_boot`]) lets a create succeed and the server go ERROR
//! afterwards (like concurrent creates in Nova).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use autoscaler_world::cloud::{FakeServer, FakeStatus, Project, Reason, ServerRequest, World};
use autoscaler_world::{FakeFlavor, FakeOpenStackOptions, FakeQuota};
use base64::Engine as _;
use chrono::{DateTime, Utc};
use secrecy::ExposeSecret;
use tokio::time::Instant;

use crate::ports::{
    Cloud, CloudError, CloudErrorKind, CloudResult, CloudServer, CloudStatus, ComputeQuota,
    ControllerId, CreateServer, META_POOL, META_RUNNER_ID, ServerId, owner_tag, ownership_labels,
};

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
            .field("servers", &s.world.servers.len())
            .finish_non_exhaustive()
    }
}

/// A delayed transition of the world, due at a `tokio::time` instant.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Due {
    /// The boot of this server ends.
    Boot(String),
    /// This server is gone.
    Gone(String),
}

/// The world and this face's scripting and clock.
struct State {
    controller: ControllerId,
    world: World,
    project: Project,
    user_id: String,
    epoch: DateTime<Utc>,
    started: Instant,
    /// Transitions not applied yet, by deadline (then order of scheduling).
    due: BTreeMap<(Instant, u64), Due>,
    scheduled: u64,
    /// Servers whose delete has a deadline (a stuck delete has none).
    ending: BTreeSet<String>,
    /// Flavors given a size with [`FakeCloud::set_flavor`].
    sized: BTreeSet<String>,
    latency: Duration,
    fail_create: std::collections::VecDeque<CloudError>,
    fail_delete: std::collections::VecDeque<CloudError>,
    fail_list: std::collections::VecDeque<CloudError>,
    creates: u64,
    deletes: u64,
}

/// The port's status of a world server.
fn status(s: &FakeServer) -> CloudStatus {
    match s.status {
        FakeStatus::Build => CloudStatus::Building,
        FakeStatus::Active => CloudStatus::Active,
        FakeStatus::Error => CloudStatus::Error {
            fault: s.fault.clone(),
        },
        FakeStatus::Deleting => CloudStatus::Deleting,
    }
}

/// The port's view of a world server.
fn view(s: &FakeServer) -> CloudServer {
    CloudServer {
        id: ServerId(s.id.clone()),
        name: s.name.clone(),
        status: status(s),
        created: s.created,
        pool: s.metadata.get(META_POOL).cloned(),
        runner_id: s.metadata.get(META_RUNNER_ID).and_then(|r| r.parse().ok()),
        tags: s.tags.clone(),
        address: s.address.clone(),
    }
}

// === impl FakeCloud ===

impl FakeCloud {
    /// An empty cloud for `controller` (no quota, 60 s boots, deletes gone at once);
    /// creation timestamps start at 2025-01-01T00:00:00Z and advance with `tokio::time`.
    pub fn new(controller: ControllerId) -> Self {
        let epoch = DateTime::parse_from_rfc3339("2025-01-01T00:00:00Z")
            .map(|d| d.with_timezone(&Utc))
            .unwrap_or_default();
        let options = FakeOpenStackOptions {
            flavors: Vec::new(),
            images: Vec::new(),
            networks: Vec::new(),
            boot_delay: Duration::from_secs(60),
            delete_delay: Duration::ZERO,
            quota: FakeQuota::UNLIMITED,
            ..FakeOpenStackOptions::default()
        };
        let world = World::new(&options);
        let user = options.users.first();
        let project = World::project(user.map_or("demo", |u| u.project.as_str()));
        let user_id = World::user_id(user.map_or("demo", |u| u.name.as_str()));
        FakeCloud {
            state: Arc::new(Mutex::new(State {
                controller,
                world,
                project,
                user_id,
                epoch,
                started: Instant::now(),
                due: BTreeMap::new(),
                scheduled: 0,
                ending: BTreeSet::new(),
                sized: BTreeSet::new(),
                latency: Duration::ZERO,
                fail_create: Default::default(),
                fail_delete: Default::default(),
                fail_list: Default::default(),
                creates: 0,
                deletes: 0,
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock only happens in a failing test; keep going.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The state with the world brought to now.
    fn now(&self) -> MutexGuard<'_, State> {
        let mut s = self.lock();
        s.settle(Instant::now());
        s
    }

    /// How long new servers stay `Building` (default 60 s).
    pub fn set_boot_delay(&self, d: Duration) {
        self.lock().world.boot_delay = d;
    }

    /// How long deleted servers stay listed as `Deleting` (default: gone at once).
    pub fn set_delete_delay(&self, d: Duration) {
        self.lock().world.delete_delay = d;
    }

    /// Delay added to every call (default none).
    pub fn set_latency(&self, d: Duration) {
        self.lock().latency = d;
    }

    /// Limits the instances quota; `None` = unlimited. Counts every server in the project,
    /// owned or not.
    pub fn set_quota_instances(&self, max: Option<u64>) {
        self.lock().world.quota.instances = max;
    }

    /// The cores quota (`None` = unlimited); servers use their flavor's vCPUs.
    pub fn set_quota_cores(&self, max: Option<u64>) {
        self.lock().world.quota.cores = max;
    }

    /// The size of flavor `name` (unknown flavors count 0 cores and report no size).
    pub fn set_flavor(&self, name: &str, size: crate::model::FlavorSize) {
        let mut s = self.lock();
        s.sized.insert(name.to_string());
        let flavor = FakeFlavor::new(name, u64::from(size.vcpus), size.ram_mb, 0);
        s.world.flavors.retain(|f| f.name != name);
        s.world.flavors.push(flavor);
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
        self.lock().world.boot_faults.push_back(fault.into());
    }

    /// Puts an existing server into `Error` now, like an admin's `os-resetState`.
    ///
    /// # Panics
    ///
    /// When the server does not exist: a test scripting error.
    pub fn make_error(&self, id: &ServerId, fault: Option<&str>) {
        let mut s = self.now();
        let wall = s.wall(Instant::now());
        let found = s.world.reset_to_error(&id.0, fault, wall);
        assert!(found, "make_error: no such server in FakeCloud");
    }

    /// Puts an existing server into `Deleting` for good, as if a delete had been accepted
    /// but got stuck (Nova's soft delete, or a `deleting` task state that never ends): it
    /// stays listed until a later [`Cloud::delete_server`] call. Returns false when the server
    /// does not exist or is already going away.
    pub fn make_stuck_deleting(&self, id: &ServerId) -> bool {
        let mut s = self.now();
        let project = s.project.id.clone();
        matches!(s.world.start_delete(&id.0, &project), Ok(Some(_)))
    }

    /// Adds a server that does not belong to this controller (another controller's or a
    /// human's); it must never be listed or deleted by the controller.
    pub fn insert_foreign(&self, name: &str, tags: Vec<String>) -> ServerId {
        let mut s = self.now();
        let id = s.world.new_server_id();
        // A flavor of no size: a foreign server counts as an instance, not as cores.
        if !s.world.flavors.iter().any(|f| f.name.is_empty()) {
            s.world.flavors.push(FakeFlavor::new("", 0, 0, 0));
        }
        let server = FakeServer {
            id: id.clone(),
            name: name.into(),
            status: FakeStatus::Active,
            metadata: BTreeMap::new(),
            tags,
            created: s.wall(Instant::now()),
            fault: None,
            flavor: String::new(),
            image_id: None,
            networks: Vec::new(),
            address: None,
            key_name: None,
            project_id: s.project.id.clone(),
        };
        s.world.insert_server(server);
        ServerId(id)
    }

    /// Every server in the project as it is now, owned or not, oldest first.
    pub fn servers(&self) -> Vec<CloudServer> {
        let s = self.now();
        s.world
            .in_order()
            .into_iter()
            .map(|r| view(&r.server))
            .collect()
    }

    /// The user data a server was created with (tests of token handling).
    pub fn user_data(&self, id: &ServerId) -> Option<String> {
        let s = self.lock();
        let r = s.world.servers.get(&id.0)?;
        let raw = r.user_data.as_deref().unwrap_or_default();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(raw)
            .unwrap_or_default();
        Some(String::from_utf8_lossy(&bytes).into_owned())
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
    fn wall(&self, now: Instant) -> DateTime<Utc> {
        let elapsed = now.saturating_duration_since(self.started);
        self.epoch + chrono::Duration::from_std(elapsed).unwrap_or_default()
    }

    fn schedule(&mut self, at: Instant, due: Due) {
        self.scheduled += 1;
        self.due.insert((at, self.scheduled), due);
    }

    /// Applies the transitions due by `now`, in the order of their deadlines.
    fn settle(&mut self, now: Instant) {
        while let Some(entry) = self.due.first_entry() {
            let (at, _) = *entry.key();
            if at > now {
                break;
            }
            let due = entry.remove();
            let wall = self.wall(at);
            match due {
                Due::Boot(id) => {
                    self.world.finish_boot(&id, wall);
                }
                Due::Gone(id) => {
                    self.ending.remove(&id);
                    self.world.finish_delete(&id);
                }
            }
        }
    }

    /// Starts or finishes the delete of `id`; a stuck delete gets its deadline now.
    fn delete(&mut self, id: &str, now: Instant) {
        let project = self.project.id.clone();
        if self.world.start_delete(id, &project).is_err() || self.ending.contains(id) {
            return;
        }
        let delay = self.world.delete_delay;
        if delay.is_zero() {
            self.world.finish_delete(id);
        } else {
            self.ending.insert(id.to_string());
            self.schedule(now + delay, Due::Gone(id.to_string()));
        }
    }

    /// Registers the names of a request's flavor, image and networks (this face needs no
    /// catalog) and returns the world's request.
    fn request(
        &mut self,
        req: &CreateServer,
        tags: Vec<String>,
        metadata: BTreeMap<String, String>,
    ) -> ServerRequest {
        let t = &req.template;
        let flavor = match self.world.flavors.iter().find(|f| f.name == t.flavor) {
            Some(f) => f.id.clone(),
            None => {
                let f = FakeFlavor::new(&t.flavor, 0, 0, 0);
                let id = f.id.clone();
                self.world.flavors.push(f);
                id
            }
        };
        let image = self.world.ensure_image(&t.image);
        let networks = t
            .networks
            .iter()
            .map(|n| self.world.ensure_network(n))
            .collect();
        ServerRequest {
            name: req.name.clone(),
            flavor_ref: flavor,
            image_ref: Some(image),
            networks: Some(networks),
            security_groups: Vec::new(),
            key_name: None,
            metadata,
            tags,
            user_data: Some(
                base64::engine::general_purpose::STANDARD
                    .encode(req.user_data.expose_secret().as_bytes()),
            ),
            availability_zone: None,
        }
    }
}

impl Cloud for FakeCloud {
    async fn list_owned_servers(&self) -> CloudResult<Vec<CloudServer>> {
        self.pause().await;
        let mut s = self.now();
        if let Some(e) = s.fail_list.pop_front() {
            return Err(e);
        }
        let tag = owner_tag(&s.controller);
        Ok(s.world
            .in_order()
            .into_iter()
            .filter(|r| r.server.tags.contains(&tag))
            .map(|r| view(&r.server))
            .collect())
    }

    async fn create_server(&self, req: CreateServer) -> CloudResult<ServerId> {
        self.pause().await;
        let mut s = self.now();
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
        let request = s.request(&req, tags, metadata);
        let now = Instant::now();
        let (project, user_id, wall) = (s.project.clone(), s.user_id.clone(), s.wall(now));
        let (record, boot) = s
            .world
            .create_server(request, &project, &user_id, wall)
            .map_err(|r| match r.reason {
                Reason::Quota => CloudError::new(CloudErrorKind::Quota, r.message),
                // Nova quotes the user data; say what the real adapter says instead.
                Reason::UserDataTooLong(len) => CloudError::new(
                    CloudErrorKind::Rejected,
                    format!(
                        "user data is {len} bytes of base64; Nova accepts at most {}",
                        autoscaler_world::cloud::MAX_USER_DATA
                    ),
                ),
                _ => CloudError::new(CloudErrorKind::Rejected, r.message),
            })?;
        let id = record.server.id;
        s.schedule(now + boot, Due::Boot(id.clone()));
        s.creates += 1;
        Ok(ServerId(id))
    }

    async fn delete_server(&self, id: &ServerId) -> CloudResult<()> {
        self.pause().await;
        let mut s = self.now();
        if let Some(e) = s.fail_delete.pop_front() {
            return Err(e);
        }
        s.deletes += 1;
        let tag = owner_tag(&s.controller);
        match s.world.servers.get(&id.0) {
            None => Ok(()),
            Some(r) if !r.server.tags.contains(&tag) => Err(CloudError::new(
                CloudErrorKind::Rejected,
                format!(
                    "fake cloud: server {id} is not owned by this controller; refusing to delete it"
                ),
            )),
            Some(_) => {
                s.delete(&id.0, Instant::now());
                Ok(())
            }
        }
    }

    async fn quota(&self) -> CloudResult<ComputeQuota> {
        self.pause().await;
        let s = self.now();
        let (instances, cores, _) = s.world.usage(&s.project.id);
        Ok(ComputeQuota {
            max_instances: s.world.quota.instances,
            used_instances: instances,
            max_cores: s.world.quota.cores,
            used_cores: cores,
            ..ComputeQuota::default()
        })
    }

    async fn flavor_size(&self, flavor: &str) -> CloudResult<Option<crate::model::FlavorSize>> {
        self.pause().await;
        let s = self.lock();
        if !s.sized.contains(flavor) {
            return Ok(None);
        }
        Ok(s.world
            .flavors
            .iter()
            .find(|f| f.name == flavor)
            .map(|f| crate::model::FlavorSize {
                vcpus: u32::try_from(f.vcpus).unwrap_or(u32::MAX),
                ram_mb: f.ram_mb,
            }))
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

    #[test]
    fn the_world_refuses_user_data_at_the_bootstrap_renderer_limit() {
        assert_eq!(
            autoscaler_world::cloud::MAX_USER_DATA,
            autoscaler_bootstrap::NOVA_USER_DATA_LIMIT
        );
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
