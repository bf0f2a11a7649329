//! The fake cloud's world: who may authenticate, which objects exist, quota, and a
//! server's life (BUILD → ACTIVE or ERROR, delete → deleting → gone), as Nova, Keystone,
//! Glance and Neutron have them (`docs/openstack.md`, `docs/fakes.md`).
//!
//! No HTTP, no ports and no timers here. A face calls these methods under its own lock
//! and drives time: the HTTP fake (`autoscaler_fakes`) schedules the delayed transitions
//! ([`World::finish_boot`], [`World::finish_delete`]) with `tokio::time` sleeps; the
//! in-memory port fake (`autoscaler_core::testing::cloud`) applies them when a call sees
//! their deadline passed. Refusals are Nova's ([`Refusal`]: status and message); each face
//! words them its own way.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Duration;

use base64::Engine as _;
use chrono::{DateTime, SubsecRound, Utc};

use crate::ids::{Rng, stable_id};
use crate::options::{FakeAppCredential, FakeFlavor, FakeOpenStackOptions, FakeQuota, FakeUser};

/// Largest base64 `user_data` Nova accepts.
pub const MAX_USER_DATA: usize = 65535;
/// Longest tag Nova accepts.
const MAX_TAG_LEN: usize = 60;
/// Most tags per server Nova accepts.
const MAX_TAGS: usize = 50;

/// What a server is doing, as an observer sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FakeStatus {
    /// Booting (Nova `BUILD`).
    Build,
    /// Booted (Nova `ACTIVE`).
    Active,
    /// Failed to boot (Nova `ERROR`); the server's `fault` says why.
    Error,
    /// Deleted but not gone yet (Nova task state `deleting`).
    Deleting,
}

impl FakeStatus {
    /// The Nova spelling (`Deleting` has none: Nova keeps the old status and sets the task
    /// state, and so does the fake over HTTP).
    pub fn as_str(self) -> &'static str {
        match self {
            FakeStatus::Build => "BUILD",
            FakeStatus::Active => "ACTIVE",
            FakeStatus::Error => "ERROR",
            FakeStatus::Deleting => "DELETING",
        }
    }
}

/// A server of the fake cloud, as an observer sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeServer {
    /// Nova id (uuid-like, from the options' seed).
    pub id: String,
    /// The name given at create time.
    pub name: String,
    /// What it is doing.
    pub status: FakeStatus,
    /// Metadata given at create time (the autoscaler's ownership keys among them).
    pub metadata: BTreeMap<String, String>,
    /// Tags given at create time (the autoscaler's owner and pool tags among them).
    pub tags: Vec<String>,
    /// When it was created (whole seconds, as Nova reports it).
    pub created: DateTime<Utc>,
    /// Fault message of an ERROR server.
    pub fault: Option<String>,
    /// Name of its flavor.
    pub flavor: String,
    /// Id of the image it boots from.
    pub image_id: Option<String>,
    /// Names of the networks it is attached to.
    pub networks: Vec<String>,
    /// Its fixed IPv4 address, once ACTIVE.
    pub address: Option<String>,
    /// Key pair name, if one was given.
    pub key_name: Option<String>,
    /// Id of the project that owns it.
    pub project_id: String,
}

/// What happened to a server; sent to [`crate::FakeOpenStack::subscribe`] receivers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerEvent {
    /// What happened.
    pub kind: ServerEventKind,
    /// The server after the change (for [`ServerEventKind::Deleted`]: as it was last seen).
    pub server: FakeServer,
}

/// The kinds of [`ServerEvent`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ServerEventKind {
    /// A create was accepted; the server is in BUILD.
    Created,
    /// The server finished booting: start its runner now.
    Active,
    /// The server failed to boot.
    Error,
    /// A delete was accepted: stop its runner now.
    Deleting,
    /// The server is gone (GET answers 404).
    Deleted,
}

/// A Keystone project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Project {
    /// Keystone id.
    pub id: String,
    /// Name.
    pub name: String,
}

/// What a token grants.
#[derive(Debug, Clone)]
pub struct TokenInfo {
    /// End of validity.
    pub expires_at: DateTime<Utc>,
    /// When it was issued.
    pub issued_at: DateTime<Utc>,
    /// Keystone id of the user.
    pub user_id: String,
    /// Name of the user.
    pub user_name: String,
    /// Project scope, if scoped.
    pub project: Option<Project>,
    /// Authentication methods used.
    pub methods: Vec<&'static str>,
}

/// An image, network or security group: an id and a name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Named {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
}

/// A server plus what only the fake needs about it.
#[derive(Clone)]
pub struct Record {
    /// What observers see.
    pub server: FakeServer,
    /// Creation order (Nova lists newest first).
    pub seq: u64,
    /// As sent, base64.
    pub user_data: Option<String>,
    /// Nova status shown over HTTP (kept while deleting, as Nova does).
    pub vm_status: &'static str,
    /// A delete was accepted (task state `deleting`).
    pub deleting: bool,
    /// The fault its boot ends with, if scripted.
    pub boot_fault: Option<String>,
    /// Its flavor.
    pub flavor: FakeFlavor,
    /// Names of its security groups.
    pub security_groups: Vec<String>,
    /// Keystone id of the user who created it.
    pub user_id: String,
    /// Last change (whole seconds).
    pub updated: DateTime<Utc>,
    /// When it went ACTIVE.
    pub launched_at: Option<DateTime<Utc>>,
    /// Its availability zone.
    pub availability_zone: String,
}

impl std::fmt::Debug for Record {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The user data holds the runner token: never shown.
        f.debug_struct("Record")
            .field("server", &self.server)
            .field("vm_status", &self.vm_status)
            .field("deleting", &self.deleting)
            .finish_non_exhaustive()
    }
}

/// Nova's refusal of a request: an HTTP status and Nova's message. The HTTP face sends it
/// as Nova's error body; the in-memory face turns it into a port error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// Nova's status: 400 invalid, 403 quota, 404 unknown server, 409 conflict.
    pub status: u16,
    /// Nova's message (a 400 may quote what was sent, user data included).
    pub message: String,
    /// What the refusal is about, for faces that word it their own way.
    pub reason: Reason,
}

/// Why Nova refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// An invalid or unknown value (400).
    Invalid,
    /// `user_data` longer than [`MAX_USER_DATA`] bytes of base64 (400); the length.
    UserDataTooLong(usize),
    /// A quota would be exceeded (403).
    Quota,
    /// No such server (404).
    NotFound,
    /// Several networks and none chosen (409).
    Conflict,
}

impl Refusal {
    fn new(status: u16, reason: Reason, message: impl Into<String>) -> Self {
        Refusal {
            status,
            message: message.into(),
            reason,
        }
    }

    /// Nova's 400.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Refusal::new(400, Reason::Invalid, message)
    }
}

/// A create request in Nova's terms, references not yet resolved: what `POST /servers`
/// carries once its JSON shape is read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerRequest {
    /// `name`.
    pub name: String,
    /// `flavorRef`: a flavor id (or a link ending in it).
    pub flavor_ref: String,
    /// `imageRef`, or the image of a boot-from-volume mapping; `None` when neither.
    pub image_ref: Option<String>,
    /// Network ids; `None` when `networks` was not given (Nova picks the only network).
    pub networks: Option<Vec<String>>,
    /// Security groups by name or id; empty means `default`.
    pub security_groups: Vec<String>,
    /// `key_name`.
    pub key_name: Option<String>,
    /// `metadata`.
    pub metadata: BTreeMap<String, String>,
    /// `tags` as sent.
    pub tags: Vec<String>,
    /// `user_data`, base64 as sent (the user data holds a runner token: never shown).
    pub user_data: Option<String>,
    /// `availability_zone`.
    pub availability_zone: Option<String>,
}

/// The whole fake cloud (no `Debug`: it holds passwords, tokens and user data).
pub struct World {
    /// Region of every catalog endpoint.
    pub region: String,
    /// Lifetime of an issued token.
    pub token_lifetime: Duration,
    /// Users that can authenticate.
    pub users: Vec<FakeUser>,
    /// Application credentials.
    pub app_credentials: Vec<FakeAppCredential>,
    /// Flavors.
    pub flavors: Vec<FakeFlavor>,
    /// Images.
    pub images: Vec<Named>,
    /// Networks.
    pub networks: Vec<Named>,
    /// Security groups.
    pub security_groups: Vec<Named>,
    /// Key pair names.
    pub key_pairs: Vec<String>,
    /// Compute quota of every project.
    pub quota: FakeQuota,
    /// How long a new server stays in BUILD.
    pub boot_delay: Duration,
    /// Upper bound of a random extra boot time.
    pub boot_jitter: Duration,
    /// How long a deleted server stays (task state `deleting`).
    pub delete_delay: Duration,
    /// Every server, by id.
    pub servers: BTreeMap<String, Record>,
    /// Issued tokens.
    pub tokens: HashMap<String, TokenInfo>,
    /// Faults the next created servers end their boot with (`No valid host was found.`).
    pub boot_faults: VecDeque<String>,
    rng: Rng,
    seq: u64,
    next_host: u32,
}

fn named(kind: &str, names: &[String]) -> Vec<Named> {
    names
        .iter()
        .map(|n| Named {
            id: stable_id(kind, n),
            name: n.clone(),
        })
        .collect()
}

/// The id of `name` in `list`, added when missing.
fn ensure(list: &mut Vec<Named>, kind: &str, name: &str) -> String {
    if let Some(n) = list.iter().find(|n| n.name == name) {
        return n.id.clone();
    }
    let n = Named {
        id: stable_id(kind, name),
        name: name.to_string(),
    };
    let id = n.id.clone();
    list.push(n);
    id
}

/// What a create is allowed to become, before it exists.
struct Validated {
    name: String,
    flavor: FakeFlavor,
    image_id: Option<String>,
    networks: Vec<String>,
    security_groups: Vec<String>,
    key_name: Option<String>,
    metadata: BTreeMap<String, String>,
    tags: Vec<String>,
    user_data: Option<String>,
    availability_zone: String,
}

// === impl World ===

impl World {
    /// The cloud the options describe, with no server and no token.
    pub fn new(o: &FakeOpenStackOptions) -> Self {
        World {
            region: o.region.clone(),
            token_lifetime: o.token_lifetime,
            users: o.users.clone(),
            app_credentials: o.app_credentials.clone(),
            flavors: o.flavors.clone(),
            images: named("image", &o.images),
            networks: named("network", &o.networks),
            security_groups: named("security-group", &o.security_groups),
            key_pairs: o.key_pairs.clone(),
            quota: o.quota,
            boot_delay: o.boot_delay,
            boot_jitter: o.boot_jitter,
            delete_delay: o.delete_delay,
            servers: BTreeMap::new(),
            tokens: HashMap::new(),
            boot_faults: VecDeque::new(),
            rng: Rng::new(o.seed),
            seq: 0,
            next_host: 10,
        }
    }

    /// Keystone id of a user or project name (stable across runs).
    pub fn user_id(name: &str) -> String {
        stable_id("user", name).replace('-', "")
    }

    /// The project of a project name.
    pub fn project(name: &str) -> Project {
        Project {
            id: stable_id("project", name).replace('-', ""),
            name: name.to_string(),
        }
    }

    /// Records a new token for `user` and returns its value.
    pub fn issue_token(
        &mut self,
        user: &FakeUser,
        scoped: bool,
        methods: Vec<&'static str>,
        now: DateTime<Utc>,
    ) -> (String, TokenInfo) {
        // Forget expired tokens so a long `run --dev` does not grow without bound.
        self.tokens.retain(|_, t| t.expires_at > now);
        let value = self.rng.token();
        let lifetime = chrono::Duration::from_std(self.token_lifetime)
            .unwrap_or_else(|_| chrono::Duration::hours(1));
        let info = TokenInfo {
            issued_at: now,
            expires_at: now + lifetime,
            user_id: World::user_id(&user.name),
            user_name: user.name.clone(),
            project: scoped.then(|| World::project(&user.project)),
            methods,
        };
        self.tokens.insert(value.clone(), info.clone());
        (value, info)
    }

    /// Servers of `project`, newest first (Nova's default order).
    pub fn project_servers(&self, project_id: &str) -> Vec<&Record> {
        let mut v: Vec<&Record> = self
            .servers
            .values()
            .filter(|r| r.server.project_id == project_id)
            .collect();
        v.sort_by_key(|r| std::cmp::Reverse(r.seq));
        v
    }

    /// Instances, cores and RAM used by `project` (servers count until they are gone).
    pub fn usage(&self, project_id: &str) -> (u64, u64, u64) {
        self.project_servers(project_id)
            .iter()
            .fold((0, 0, 0), |(n, c, r), s| {
                (n + 1, c + s.flavor.vcpus, r + s.flavor.ram_mb)
            })
    }

    /// A new server id (uuid-like, from the seed).
    pub fn new_server_id(&mut self) -> String {
        self.rng.uuid()
    }

    /// The id of image `name`, added to Glance when missing (for faces that need no
    /// catalog).
    pub fn ensure_image(&mut self, name: &str) -> String {
        ensure(&mut self.images, "image", name)
    }

    /// The id of network `name`, added to Neutron when missing (for faces that need no
    /// catalog).
    pub fn ensure_network(&mut self, name: &str) -> String {
        ensure(&mut self.networks, "network", name)
    }

    /// Finds a flavor by id (Nova's `flavorRef`, also as a full link).
    pub fn flavor_by_ref(&self, reference: &str) -> Option<&FakeFlavor> {
        let id = reference.rsplit('/').next().unwrap_or(reference);
        self.flavors.iter().find(|f| f.id == id)
    }

    /// Validates a create body, checks quota, and adds the server in BUILD.
    ///
    /// # Errors
    ///
    /// Nova's answers: 400 for an invalid body or an unknown flavor, image, network,
    /// security group or key pair; 409 when no network is given and several exist; 403
    /// when a quota would be exceeded.
    pub fn create_server(
        &mut self,
        req: ServerRequest,
        project: &Project,
        user_id: &str,
        now: DateTime<Utc>,
    ) -> Result<(Record, Duration), Refusal> {
        let v = self.validate_create(req)?;
        self.check_quota(project, &v.flavor)?;
        self.seq += 1;
        let id = self.rng.uuid();
        let jitter_ms = self
            .rng
            .below_or_equal(u64::try_from(self.boot_jitter.as_millis()).unwrap_or(u64::MAX));
        let boot = self.boot_delay + Duration::from_millis(jitter_ms);
        let created = now.trunc_subsecs(0);
        let record = Record {
            server: FakeServer {
                id: id.clone(),
                name: v.name,
                status: FakeStatus::Build,
                metadata: v.metadata,
                tags: v.tags,
                created,
                fault: None,
                flavor: v.flavor.name.clone(),
                image_id: v.image_id,
                networks: v.networks,
                address: None,
                key_name: v.key_name,
                project_id: project.id.clone(),
            },
            seq: self.seq,
            user_data: v.user_data,
            vm_status: "BUILD",
            deleting: false,
            boot_fault: self.boot_faults.pop_front(),
            flavor: v.flavor,
            security_groups: v.security_groups,
            user_id: user_id.to_string(),
            updated: created,
            launched_at: None,
            availability_zone: v.availability_zone,
        };
        self.servers.insert(id, record.clone());
        Ok((record, boot))
    }

    /// Adds a server that already exists, without a create request or a quota check: in
    /// BUILD, ACTIVE or ERROR as `server.status` says (ERROR with `server.fault`), in the
    /// first user's project when `server.project_id` is empty, of its named flavor (else
    /// the first one). Returns the server as stored.
    pub fn insert_server(&mut self, mut server: FakeServer) -> FakeServer {
        if server.project_id.is_empty() {
            let project = self.users.first().map_or("demo", |u| u.project.as_str());
            server.project_id = World::project(project).id;
        }
        let user_id = self
            .users
            .first()
            .map(|u| World::user_id(&u.name))
            .unwrap_or_default();
        let flavor = self
            .flavors
            .iter()
            .find(|f| f.name == server.flavor)
            .or(self.flavors.first())
            .cloned()
            .unwrap_or_else(|| FakeFlavor::new(&server.flavor, 1, 1024, 10));
        server.flavor = flavor.name.clone();
        server.created = server.created.trunc_subsecs(0);
        let vm_status = match server.status {
            FakeStatus::Build => "BUILD",
            FakeStatus::Error => "ERROR",
            FakeStatus::Active | FakeStatus::Deleting => "ACTIVE",
        };
        self.seq += 1;
        let record = Record {
            seq: self.seq,
            user_data: None,
            vm_status,
            deleting: server.status == FakeStatus::Deleting,
            boot_fault: None,
            flavor,
            security_groups: vec!["default".into()],
            user_id,
            updated: server.created,
            launched_at: (server.status == FakeStatus::Active).then_some(server.created),
            availability_zone: "nova".into(),
            server: server.clone(),
        };
        self.servers.insert(server.id.clone(), record);
        server
    }

    fn check_quota(&self, project: &Project, flavor: &FakeFlavor) -> Result<(), Refusal> {
        let (n, cores, ram) = self.usage(&project.id);
        let q = self.quota;
        let checks = [
            ("instances", 1, n, q.instances),
            ("cores", flavor.vcpus, cores, q.cores),
            ("ram", flavor.ram_mb, ram, q.ram_mb),
        ];
        for (what, requested, used, max) in checks {
            if let Some(max) = max {
                if used + requested > max {
                    return Err(Refusal::new(
                        403,
                        Reason::Quota,
                        format!(
                            "Quota exceeded for {what}: Requested {requested}, but already used {used} of {max} {what}"
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    fn validate_create(&self, req: ServerRequest) -> Result<Validated, Refusal> {
        fn bad(m: impl Into<String>) -> Refusal {
            Refusal::bad_request(m)
        }
        let name = req.name;
        if name.trim().is_empty() || name.len() > 255 {
            return Err(bad(format!(
                "Invalid input for field/attribute name. Value: {name}. name must be 1 to 255 non-blank characters"
            )));
        }
        let flavor = self
            .flavor_by_ref(&req.flavor_ref)
            .cloned()
            .ok_or_else(|| bad(format!("Flavor {} could not be found.", req.flavor_ref)))?;
        let image_id = self.create_image(req.image_ref.as_deref())?;
        let networks = self.create_networks(req.networks)?;
        let mut security_groups = Vec::new();
        for wanted in &req.security_groups {
            let found = self
                .security_groups
                .iter()
                .find(|sg| &sg.id == wanted || &sg.name == wanted)
                .ok_or_else(|| bad(format!("Security group {wanted} not found.")))?;
            security_groups.push(found.name.clone());
        }
        if security_groups.is_empty() {
            security_groups.push("default".into());
        }
        if let Some(k) = &req.key_name {
            if !self.key_pairs.iter().any(|p| p == k) {
                return Err(bad("Invalid key_name provided."));
            }
        }
        check_metadata(&req.metadata)?;
        let tags = check_tags(req.tags)?;
        if let Some(u) = &req.user_data {
            if u.len() > MAX_USER_DATA {
                // Nova quotes the value, as here; the real client must redact it.
                return Err(Refusal::new(
                    400,
                    Reason::UserDataTooLong(u.len()),
                    format!(
                        "Invalid input for field/attribute user_data. Value: {u}. '{u}' is too long"
                    ),
                ));
            }
            if base64::engine::general_purpose::STANDARD.decode(u).is_err() {
                return Err(bad("User data needs to be valid base 64."));
            }
        }
        let availability_zone = match req.availability_zone.as_deref() {
            None | Some("nova") => "nova".to_string(),
            Some(other) => {
                return Err(bad(format!(
                    "The requested availability zone is not available: {other}"
                )));
            }
        };
        Ok(Validated {
            name,
            flavor,
            image_id,
            networks,
            security_groups,
            key_name: req.key_name,
            metadata: req.metadata,
            tags,
            user_data: req.user_data,
            availability_zone,
        })
    }

    /// The image of `imageRef` (or of a boot-from-volume mapping).
    fn create_image(&self, reference: Option<&str>) -> Result<Option<String>, Refusal> {
        let Some(reference) = reference.filter(|r| !r.is_empty()) else {
            return Err(Refusal::bad_request("Invalid imageRef provided."));
        };
        let id = reference.rsplit('/').next().unwrap_or(reference);
        self.images
            .iter()
            .find(|i| i.id == id)
            .map(|i| Some(i.id.clone()))
            .ok_or_else(|| Refusal::bad_request(format!("Image {id} could not be found.")))
    }

    fn create_networks(&self, ids: Option<Vec<String>>) -> Result<Vec<String>, Refusal> {
        let Some(ids) = ids else {
            // Nova picks the only network there is, and refuses to guess among several.
            return match self.networks.as_slice() {
                [one] => Ok(vec![one.name.clone()]),
                [] => Err(Refusal::bad_request(
                    "No networks are available for this project.",
                )),
                _ => Err(Refusal::new(
                    409,
                    Reason::Conflict,
                    "Multiple possible networks found, use a Network ID to be more specific.",
                )),
            };
        };
        let mut out = Vec::new();
        for uuid in ids {
            let net = self.networks.iter().find(|x| x.id == uuid).ok_or_else(|| {
                Refusal::bad_request(format!("Network {uuid} could not be found."))
            })?;
            out.push(net.name.clone());
        }
        Ok(out)
    }

    /// Ends the boot of `id`: ACTIVE, or ERROR when a boot fault was scripted. Returns the
    /// new state, or `None` when the server is gone, being deleted or not booting.
    pub fn finish_boot(&mut self, id: &str, now: DateTime<Utc>) -> Option<FakeServer> {
        let host = self.next_host;
        let r = self.servers.get_mut(id)?;
        if r.deleting || r.server.status != FakeStatus::Build {
            return None;
        }
        r.updated = now.trunc_subsecs(0);
        match r.boot_fault.clone() {
            Some(fault) => {
                r.server.status = FakeStatus::Error;
                r.vm_status = "ERROR";
                r.server.fault = Some(fault);
            }
            None => {
                r.server.status = FakeStatus::Active;
                r.vm_status = "ACTIVE";
                r.launched_at = Some(now);
                if !r.server.networks.is_empty() {
                    r.server.address = Some(format!("10.0.{}.{}", host / 250, host % 250 + 2));
                    self.next_host = host.wrapping_add(1);
                }
            }
        }
        Some(r.server.clone())
    }

    /// Starts deleting `id`. Returns the server when this call started the delete, `None`
    /// when it was already being deleted.
    ///
    /// # Errors
    ///
    /// 404 when there is no such server in `project`.
    pub fn start_delete(
        &mut self,
        id: &str,
        project_id: &str,
    ) -> Result<Option<FakeServer>, Refusal> {
        let r = self
            .servers
            .get_mut(id)
            .filter(|r| r.server.project_id == project_id)
            .ok_or_else(|| not_found(id))?;
        if r.deleting {
            return Ok(None);
        }
        r.deleting = true;
        r.server.status = FakeStatus::Deleting;
        Ok(Some(r.server.clone()))
    }

    /// Removes `id` for good; returns it as it was last seen.
    pub fn finish_delete(&mut self, id: &str) -> Option<FakeServer> {
        self.servers.remove(id).map(|r| r.server)
    }

    /// Puts `id` into ERROR now with `fault`, as an administrator's `os-resetState` does; a
    /// server being deleted stays `Deleting` to observers. Returns false when there is no
    /// such server.
    pub fn reset_to_error(&mut self, id: &str, fault: Option<&str>, now: DateTime<Utc>) -> bool {
        let Some(r) = self.servers.get_mut(id) else {
            return false;
        };
        r.vm_status = "ERROR";
        r.updated = now.trunc_subsecs(0);
        r.server.fault = fault.map(str::to_string);
        if !r.deleting {
            r.server.status = FakeStatus::Error;
        }
        true
    }

    /// Every server, oldest first.
    pub fn in_order(&self) -> Vec<&Record> {
        let mut v: Vec<&Record> = self.servers.values().collect();
        v.sort_by_key(|r| r.seq);
        v
    }

    /// Snapshot of every server, oldest first.
    pub fn snapshot(&self) -> Vec<FakeServer> {
        self.in_order()
            .into_iter()
            .map(|r| r.server.clone())
            .collect()
    }
}

/// Nova's 404 for a server.
pub fn not_found(id: &str) -> Refusal {
    Refusal::new(
        404,
        Reason::NotFound,
        format!("Instance {id} could not be found."),
    )
}

/// Nova's metadata rules: keys and values of 1 to 255 characters.
fn check_metadata(m: &BTreeMap<String, String>) -> Result<(), Refusal> {
    for (k, v) in m {
        if k.is_empty() || k.len() > 255 || v.len() > 255 {
            return Err(Refusal::bad_request(format!(
                "Invalid input for field/attribute metadata. Value: {k}. keys and values must be 1 to 255 characters"
            )));
        }
    }
    Ok(())
}

/// Nova's tag rules: at most [`MAX_TAGS`], each 1 to [`MAX_TAG_LEN`] characters without
/// `/` or `,`; repeats are dropped.
fn check_tags(items: Vec<String>) -> Result<Vec<String>, Refusal> {
    let bad = |detail: String| {
        Refusal::bad_request(format!("Invalid input for field/attribute tags. {detail}"))
    };
    if items.len() > MAX_TAGS {
        return Err(bad(format!("at most {MAX_TAGS} tags are allowed")));
    }
    let mut out: Vec<String> = Vec::new();
    for tag in items {
        if tag.is_empty() || tag.chars().count() > MAX_TAG_LEN || tag.contains(['/', ',']) {
            return Err(bad(format!(
                "Value: {tag}. a tag must be 1 to {MAX_TAG_LEN} characters without '/' or ','"
            )));
        }
        if !out.contains(&tag) {
            out.push(tag);
        }
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn state() -> World {
        World::new(&FakeOpenStackOptions::default())
    }

    fn body(st: &World) -> ServerRequest {
        ServerRequest {
            name: "runner-1".into(),
            flavor_ref: st.flavors[0].id.clone(),
            image_ref: Some(st.images[0].id.clone()),
            networks: Some(vec![st.networks[0].id.clone()]),
            security_groups: vec!["runner-sg".into()],
            key_name: Some("k1".into()),
            metadata: BTreeMap::from([("autoscaler-pool".into(), "docker".into())]),
            tags: vec!["autoscaler:c1".into(), "pool:docker".into()],
            user_data: Some("I2Nsb3VkLWNvbmZpZwo=".into()),
            availability_zone: None,
        }
    }

    fn demo() -> Project {
        World::project("demo")
    }

    #[test]
    fn a_valid_create_starts_in_build_and_keeps_what_was_sent() {
        let mut st = state();
        let b = body(&st);
        let (r, boot) = st
            .create_server(b.clone(), &demo(), "u", Utc::now())
            .unwrap();
        assert_eq!(r.server.status, FakeStatus::Build);
        assert_eq!(r.server.tags, vec!["autoscaler:c1", "pool:docker"]);
        assert_eq!(r.server.metadata["autoscaler-pool"], "docker");
        assert_eq!(r.server.networks, vec!["runner-net"]);
        assert_eq!(r.user_data.as_deref(), Some("I2Nsb3VkLWNvbmZpZwo="));
        assert_eq!(boot, Duration::from_millis(1500));
    }

    #[test]
    fn unknown_references_are_400_naming_the_value() {
        let mut st = state();
        type Edit = fn(&mut ServerRequest);
        let cases: [(&str, Edit, &str); 6] = [
            (
                "flavorRef",
                |b| b.flavor_ref = "nope".into(),
                "Flavor nope could not be found.",
            ),
            (
                "imageRef",
                |b| b.image_ref = Some("img-x".into()),
                "Image img-x could not be found.",
            ),
            (
                "networks",
                |b| b.networks = Some(vec!["net-x".into()]),
                "Network net-x could not be found.",
            ),
            (
                "security_groups",
                |b| b.security_groups = vec!["sg-x".into()],
                "Security group sg-x not found.",
            ),
            (
                "key_name",
                |b| b.key_name = Some("k9".into()),
                "Invalid key_name provided.",
            ),
            (
                "user_data",
                |b| b.user_data = Some("%%%".into()),
                "User data needs to be valid base 64.",
            ),
        ];
        for (key, edit, message) in cases {
            let mut b = body(&st);
            edit(&mut b);
            let e = st.create_server(b, &demo(), "u", Utc::now()).unwrap_err();
            assert_eq!((e.status, e.message.as_str()), (400, message), "{key}");
        }
        assert!(st.servers.is_empty());
    }

    #[test]
    fn quota_refusal_quotes_use_and_limit_like_nova() {
        let mut st = state();
        st.quota.instances = Some(2);
        let b = body(&st);
        for _ in 0..2 {
            st.create_server(b.clone(), &demo(), "u", Utc::now())
                .unwrap();
        }
        let e = st
            .create_server(b.clone(), &demo(), "u", Utc::now())
            .unwrap_err();
        assert_eq!(e.status, 403);
        assert_eq!(
            e.message,
            "Quota exceeded for instances: Requested 1, but already used 2 of 2 instances"
        );
        st.quota = FakeQuota {
            instances: None,
            cores: Some(2),
            ram_mb: None,
        };
        let e = st
            .create_server(b.clone(), &demo(), "u", Utc::now())
            .unwrap_err();
        assert_eq!(
            e.message,
            "Quota exceeded for cores: Requested 1, but already used 2 of 2 cores"
        );
    }

    #[test]
    fn deleting_servers_still_count_against_quota_until_gone() {
        let mut st = state();
        st.quota.instances = Some(1);
        let b = body(&st);
        let (r, _) = st
            .create_server(b.clone(), &demo(), "u", Utc::now())
            .unwrap();
        st.start_delete(&r.server.id, &demo().id).unwrap();
        assert!(
            st.create_server(b.clone(), &demo(), "u", Utc::now())
                .is_err()
        );
        st.finish_delete(&r.server.id);
        assert!(
            st.create_server(b.clone(), &demo(), "u", Utc::now())
                .is_ok()
        );
    }

    #[test]
    fn boot_ends_active_with_an_address_or_error_with_the_scripted_fault() {
        let mut st = state();
        let b = body(&st);
        let (ok, _) = st
            .create_server(b.clone(), &demo(), "u", Utc::now())
            .unwrap();
        st.boot_faults.push_back("No valid host was found.".into());
        let (bad, _) = st
            .create_server(b.clone(), &demo(), "u", Utc::now())
            .unwrap();
        let ok = st.finish_boot(&ok.server.id, Utc::now()).unwrap();
        assert_eq!(ok.status, FakeStatus::Active);
        assert!(ok.address.is_some());
        let bad = st.finish_boot(&bad.server.id, Utc::now()).unwrap();
        assert_eq!(bad.status, FakeStatus::Error);
        assert_eq!(bad.fault.as_deref(), Some("No valid host was found."));
        assert_eq!(st.finish_boot(&ok.id, Utc::now()), None, "boots once");
    }

    #[test]
    fn a_server_deleted_while_booting_never_becomes_active() {
        let mut st = state();
        let b = body(&st);
        let (r, _) = st
            .create_server(b.clone(), &demo(), "u", Utc::now())
            .unwrap();
        assert!(st.start_delete(&r.server.id, &demo().id).unwrap().is_some());
        assert!(st.start_delete(&r.server.id, &demo().id).unwrap().is_none());
        assert_eq!(st.finish_boot(&r.server.id, Utc::now()), None);
        let e = st.start_delete("missing", &demo().id).unwrap_err();
        assert_eq!(e.status, 404);
    }

    #[test]
    fn other_projects_cannot_delete_a_server() {
        let mut st = state();
        let b = body(&st);
        let (r, _) = st
            .create_server(b.clone(), &demo(), "u", Utc::now())
            .unwrap();
        let other = World::project("other");
        assert_eq!(
            st.start_delete(&r.server.id, &other.id).unwrap_err().status,
            404
        );
    }

    #[test]
    fn record_debug_never_shows_user_data() {
        let mut st = state();
        let b = body(&st);
        let (r, _) = st
            .create_server(b.clone(), &demo(), "u", Utc::now())
            .unwrap();
        assert!(!format!("{r:?}").contains("I2Nsb3Vk"));
    }

    #[test]
    fn expired_tokens_are_forgotten_when_a_new_one_is_issued() {
        let mut st = state();
        let user = st.users[0].clone();
        let long_ago = Utc::now() - chrono::Duration::hours(2);
        st.issue_token(&user, true, vec!["password"], long_ago);
        st.issue_token(&user, true, vec!["password"], Utc::now());
        assert_eq!(st.tokens.len(), 1);
    }

    #[test]
    fn boot_jitter_is_bounded_and_follows_the_seed() {
        let opts = FakeOpenStackOptions {
            boot_delay: Duration::from_millis(100),
            boot_jitter: Duration::from_millis(50),
            seed: 42,
            ..FakeOpenStackOptions::default()
        };
        let delays = |o: &FakeOpenStackOptions| {
            let mut st = World::new(o);
            st.quota = FakeQuota::UNLIMITED;
            let b = body(&st);
            (0..20)
                .map(|_| {
                    st.create_server(b.clone(), &demo(), "u", Utc::now())
                        .unwrap()
                        .1
                })
                .collect::<Vec<_>>()
        };
        let a = delays(&opts);
        assert_eq!(a, delays(&opts));
        assert!(
            a.iter()
                .all(|d| *d >= Duration::from_millis(100) && *d <= Duration::from_millis(150))
        );
        assert!(a.iter().any(|d| *d != a[0]), "jitter varies: {a:?}");
    }

    #[test]
    fn bad_tags_and_oversized_user_data_are_refused() {
        let mut st = state();
        let mut b = body(&st);
        b.tags = vec!["a/b".into()];
        assert_eq!(
            st.create_server(b.clone(), &demo(), "u", Utc::now())
                .unwrap_err()
                .status,
            400
        );
        let mut b = body(&st);
        b.user_data = Some("A".repeat(MAX_USER_DATA + 4));
        let e = st
            .create_server(b.clone(), &demo(), "u", Utc::now())
            .unwrap_err();
        assert!(e.message.ends_with("is too long"), "{}", &e.message[..60]);
    }
}
