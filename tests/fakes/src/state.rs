//! The fake cloud's in-memory state and its rules: who may authenticate, which objects
//! exist, quota, and a server's life (BUILD → ACTIVE or ERROR, delete → deleting → gone).
//!
//! No HTTP and no timers here: the handlers in [`crate::keystone`], [`crate::nova`] and
//! [`crate::catalog`] call these methods under one lock, and [`crate::server`] schedules
//! the delayed transitions ([`State::finish_boot`], [`State::finish_delete`]).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Duration;

use base64::Engine as _;
use chrono::{DateTime, SubsecRound, Utc};
use serde_json::Value;

use crate::api::{ApiError, Microversion};
use crate::ids::{Rng, stable_id};
use crate::options::{FakeAppCredential, FakeFlavor, FakeOpenStackOptions, FakeQuota, FakeUser};

/// Largest base64 `user_data` Nova accepts.
pub(crate) const MAX_USER_DATA: usize = 65535;
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
pub(crate) struct Project {
    pub id: String,
    pub name: String,
}

/// What a token grants.
#[derive(Debug, Clone)]
pub(crate) struct TokenInfo {
    pub expires_at: DateTime<Utc>,
    pub issued_at: DateTime<Utc>,
    pub user_id: String,
    pub user_name: String,
    pub project: Option<Project>,
    pub methods: Vec<&'static str>,
}

/// An image, network or security group: an id and a name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Named {
    pub id: String,
    pub name: String,
}

/// A server plus what only the fake needs about it.
#[derive(Clone)]
pub(crate) struct Record {
    pub server: FakeServer,
    /// Creation order (Nova lists newest first).
    pub seq: u64,
    /// As sent, base64.
    pub user_data: Option<String>,
    /// Nova status shown over HTTP (kept while deleting, as Nova does).
    pub vm_status: &'static str,
    pub deleting: bool,
    pub boot_fault: Option<String>,
    pub flavor: FakeFlavor,
    pub security_groups: Vec<String>,
    pub user_id: String,
    pub updated: DateTime<Utc>,
    pub launched_at: Option<DateTime<Utc>>,
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

/// A scripted answer to the next create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ScriptedFailure {
    pub status: u16,
    pub message: String,
}

/// The whole fake cloud (no `Debug`: it holds passwords, tokens and user data).
pub(crate) struct State {
    pub region: String,
    pub token_lifetime: Duration,
    pub users: Vec<FakeUser>,
    pub app_credentials: Vec<FakeAppCredential>,
    pub flavors: Vec<FakeFlavor>,
    pub images: Vec<Named>,
    pub networks: Vec<Named>,
    pub security_groups: Vec<Named>,
    pub key_pairs: Vec<String>,
    pub quota: FakeQuota,
    pub latency: Duration,
    pub boot_delay: Duration,
    pub boot_jitter: Duration,
    pub delete_delay: Duration,
    pub servers: BTreeMap<String, Record>,
    pub tokens: HashMap<String, TokenInfo>,
    pub create_failures: VecDeque<ScriptedFailure>,
    pub boot_faults: VecDeque<String>,
    /// Requests served per route (`GET /v2.1/servers/detail`).
    pub requests: BTreeMap<String, u64>,
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

/// Nova's timestamp format (whole seconds, `Z`).
pub(crate) fn nova_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
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

// === impl State ===

impl State {
    pub fn new(o: &FakeOpenStackOptions) -> Self {
        State {
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
            latency: o.latency,
            boot_delay: o.boot_delay,
            boot_jitter: o.boot_jitter,
            delete_delay: o.delete_delay,
            servers: BTreeMap::new(),
            tokens: HashMap::new(),
            create_failures: VecDeque::new(),
            boot_faults: VecDeque::new(),
            requests: BTreeMap::new(),
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
            user_id: State::user_id(&user.name),
            user_name: user.name.clone(),
            project: scoped.then(|| State::project(&user.project)),
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
        body: &Value,
        project: &Project,
        user_id: &str,
        now: DateTime<Utc>,
    ) -> Result<(Record, Duration), ApiError> {
        let v = self.validate_create(body)?;
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
            server.project_id = State::project(project).id;
        }
        let user_id = self
            .users
            .first()
            .map(|u| State::user_id(&u.name))
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

    fn check_quota(&self, project: &Project, flavor: &FakeFlavor) -> Result<(), ApiError> {
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
                    return Err(ApiError::new(
                        crate::api::Svc::Compute,
                        403,
                        format!(
                            "Quota exceeded for {what}: Requested {requested}, but already used {used} of {max} {what}"
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    fn validate_create(&self, body: &Value) -> Result<Validated, ApiError> {
        fn bad(m: impl Into<String>) -> ApiError {
            ApiError::bad_request(m)
        }
        let s = body
            .get("server")
            .and_then(Value::as_object)
            .ok_or_else(|| {
                bad("Invalid input for field/attribute server. 'server' is a required property")
            })?;
        let required = |key: &str| {
            s.get(key).and_then(Value::as_str).ok_or_else(|| {
                bad(format!(
                    "Invalid input for field/attribute {key}. '{key}' is a required property"
                ))
            })
        };
        let name = required("name")?.to_string();
        if name.trim().is_empty() || name.len() > 255 {
            return Err(bad(format!(
                "Invalid input for field/attribute name. Value: {name}. name must be 1 to 255 non-blank characters"
            )));
        }
        let flavor_ref = required("flavorRef")?;
        let flavor = self
            .flavor_by_ref(flavor_ref)
            .cloned()
            .ok_or_else(|| bad(format!("Flavor {flavor_ref} could not be found.")))?;
        let image_id = self.create_image(s)?;
        let networks = self.create_networks(s)?;
        let mut security_groups = Vec::new();
        for g in s
            .get("security_groups")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let wanted = g.get("name").and_then(Value::as_str).unwrap_or_default();
            let found = self
                .security_groups
                .iter()
                .find(|sg| sg.id == wanted || sg.name == wanted)
                .ok_or_else(|| bad(format!("Security group {wanted} not found.")))?;
            security_groups.push(found.name.clone());
        }
        if security_groups.is_empty() {
            security_groups.push("default".into());
        }
        let key_name = match s.get("key_name") {
            None | Some(Value::Null) => None,
            Some(k) => {
                let k = k.as_str().unwrap_or_default();
                if !self.key_pairs.iter().any(|p| p == k) {
                    return Err(bad("Invalid key_name provided."));
                }
                Some(k.to_string())
            }
        };
        let metadata = create_metadata(s)?;
        let tags = create_tags(s)?;
        let user_data = match s.get("user_data") {
            None | Some(Value::Null) => None,
            Some(u) => {
                let u = u.as_str().ok_or_else(|| {
                    bad("Invalid input for field/attribute user_data. user_data must be a string")
                })?;
                if u.len() > MAX_USER_DATA {
                    // Nova quotes the value, as here; the real client must redact it.
                    return Err(bad(format!(
                        "Invalid input for field/attribute user_data. Value: {u}. '{u}' is too long"
                    )));
                }
                if base64::engine::general_purpose::STANDARD.decode(u).is_err() {
                    return Err(bad("User data needs to be valid base 64."));
                }
                Some(u.to_string())
            }
        };
        let availability_zone = match s.get("availability_zone").and_then(Value::as_str) {
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
            key_name,
            metadata,
            tags,
            user_data,
            availability_zone,
        })
    }

    /// The image of `imageRef`, or of a boot-from-volume mapping with `source_type: image`.
    fn create_image(&self, s: &serde_json::Map<String, Value>) -> Result<Option<String>, ApiError> {
        let bdm_image = s
            .get("block_device_mapping_v2")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find(|m| m.get("source_type").and_then(Value::as_str) == Some("image"))
            .and_then(|m| m.get("uuid").and_then(Value::as_str));
        let reference = match (s.get("imageRef").and_then(Value::as_str), bdm_image) {
            (Some(r), _) if !r.is_empty() => r,
            (_, Some(r)) => r,
            _ => return Err(ApiError::bad_request("Invalid imageRef provided.")),
        };
        let id = reference.rsplit('/').next().unwrap_or(reference);
        self.images
            .iter()
            .find(|i| i.id == id)
            .map(|i| Some(i.id.clone()))
            .ok_or_else(|| ApiError::bad_request(format!("Image {id} could not be found.")))
    }

    fn create_networks(&self, s: &serde_json::Map<String, Value>) -> Result<Vec<String>, ApiError> {
        let Some(list) = s.get("networks") else {
            // Nova picks the only network there is, and refuses to guess among several.
            return match self.networks.as_slice() {
                [one] => Ok(vec![one.name.clone()]),
                [] => Err(ApiError::bad_request(
                    "No networks are available for this project.",
                )),
                _ => Err(ApiError::new(
                    crate::api::Svc::Compute,
                    409,
                    "Multiple possible networks found, use a Network ID to be more specific.",
                )),
            };
        };
        if list.as_str() == Some("none") {
            return Ok(Vec::new());
        }
        let items = list.as_array().ok_or_else(|| {
            ApiError::bad_request(
                "Invalid input for field/attribute networks. networks must be a list",
            )
        })?;
        let mut out = Vec::new();
        for n in items {
            let uuid = n.get("uuid").and_then(Value::as_str).ok_or_else(|| {
                ApiError::bad_request("Invalid input for field/attribute networks. 'uuid' is required (ports are not supported by the fake)")
            })?;
            let net = self.networks.iter().find(|x| x.id == uuid).ok_or_else(|| {
                ApiError::bad_request(format!("Network {uuid} could not be found."))
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
    ) -> Result<Option<FakeServer>, ApiError> {
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

    /// Snapshot of every server, oldest first.
    pub fn snapshot(&self) -> Vec<FakeServer> {
        let mut v: Vec<&Record> = self.servers.values().collect();
        v.sort_by_key(|r| r.seq);
        v.into_iter().map(|r| r.server.clone()).collect()
    }
}

/// Nova's 404 for a server.
pub(crate) fn not_found(id: &str) -> ApiError {
    ApiError::new(
        crate::api::Svc::Compute,
        404,
        format!("Instance {id} could not be found."),
    )
}

fn create_metadata(
    s: &serde_json::Map<String, Value>,
) -> Result<BTreeMap<String, String>, ApiError> {
    let mut out = BTreeMap::new();
    let Some(m) = s.get("metadata") else {
        return Ok(out);
    };
    let m = m.as_object().ok_or_else(|| {
        ApiError::bad_request(
            "Invalid input for field/attribute metadata. metadata must be an object",
        )
    })?;
    for (k, v) in m {
        let v = v.as_str().ok_or_else(|| {
            ApiError::bad_request(format!(
                "Invalid input for field/attribute metadata. Value: {k}. metadata values must be strings"
            ))
        })?;
        if k.is_empty() || k.len() > 255 || v.len() > 255 {
            return Err(ApiError::bad_request(format!(
                "Invalid input for field/attribute metadata. Value: {k}. keys and values must be 1 to 255 characters"
            )));
        }
        out.insert(k.clone(), v.to_string());
    }
    Ok(out)
}

fn create_tags(s: &serde_json::Map<String, Value>) -> Result<Vec<String>, ApiError> {
    let Some(t) = s.get("tags") else {
        return Ok(Vec::new());
    };
    let bad = |detail: String| {
        ApiError::bad_request(format!("Invalid input for field/attribute tags. {detail}"))
    };
    let items = t
        .as_array()
        .ok_or_else(|| bad("tags must be a list".into()))?;
    if items.len() > MAX_TAGS {
        return Err(bad(format!("at most {MAX_TAGS} tags are allowed")));
    }
    let mut out: Vec<String> = Vec::new();
    for item in items {
        let tag = item
            .as_str()
            .ok_or_else(|| bad("tags must be strings".into()))?;
        if tag.is_empty() || tag.chars().count() > MAX_TAG_LEN || tag.contains(['/', ',']) {
            return Err(bad(format!(
                "Value: {tag}. a tag must be 1 to {MAX_TAG_LEN} characters without '/' or ','"
            )));
        }
        if !out.iter().any(|t| t == tag) {
            out.push(tag.to_string());
        }
    }
    Ok(out)
}

/// The microversion below which Nova ignores the `tags` filter and omits `tags`.
pub(crate) const TAGS_MICROVERSION: Microversion = Microversion(2, 26);

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn state() -> State {
        State::new(&FakeOpenStackOptions::default())
    }

    fn body(st: &State) -> Value {
        json!({"server": {
            "name": "runner-1",
            "flavorRef": st.flavors[0].id,
            "imageRef": st.images[0].id,
            "networks": [{"uuid": st.networks[0].id}],
            "security_groups": [{"name": "runner-sg"}],
            "key_name": "k1",
            "metadata": {"autoscaler-pool": "docker"},
            "tags": ["autoscaler:c1", "pool:docker"],
            "user_data": "I2Nsb3VkLWNvbmZpZwo=",
        }})
    }

    fn demo() -> Project {
        State::project("demo")
    }

    #[test]
    fn a_valid_create_starts_in_build_and_keeps_what_was_sent() {
        let mut st = state();
        let b = body(&st);
        let (r, boot) = st.create_server(&b, &demo(), "u", Utc::now()).unwrap();
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
        let cases = [
            (
                "flavorRef",
                json!("nope"),
                "Flavor nope could not be found.",
            ),
            (
                "imageRef",
                json!("img-x"),
                "Image img-x could not be found.",
            ),
            (
                "networks",
                json!([{"uuid": "net-x"}]),
                "Network net-x could not be found.",
            ),
            (
                "security_groups",
                json!([{"name": "sg-x"}]),
                "Security group sg-x not found.",
            ),
            ("key_name", json!("k9"), "Invalid key_name provided."),
            (
                "user_data",
                json!("%%%"),
                "User data needs to be valid base 64.",
            ),
        ];
        for (key, value, message) in cases {
            let mut b = body(&st);
            b["server"][key] = value;
            let e = st.create_server(&b, &demo(), "u", Utc::now()).unwrap_err();
            assert_eq!(
                (e.status.as_u16(), e.message.as_str()),
                (400, message),
                "{key}"
            );
        }
        assert!(st.servers.is_empty());
    }

    #[test]
    fn quota_refusal_quotes_use_and_limit_like_nova() {
        let mut st = state();
        st.quota.instances = Some(2);
        let b = body(&st);
        for _ in 0..2 {
            st.create_server(&b, &demo(), "u", Utc::now()).unwrap();
        }
        let e = st.create_server(&b, &demo(), "u", Utc::now()).unwrap_err();
        assert_eq!(e.status.as_u16(), 403);
        assert_eq!(
            e.message,
            "Quota exceeded for instances: Requested 1, but already used 2 of 2 instances"
        );
        st.quota = FakeQuota {
            instances: None,
            cores: Some(2),
            ram_mb: None,
        };
        let e = st.create_server(&b, &demo(), "u", Utc::now()).unwrap_err();
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
        let (r, _) = st.create_server(&b, &demo(), "u", Utc::now()).unwrap();
        st.start_delete(&r.server.id, &demo().id).unwrap();
        assert!(st.create_server(&b, &demo(), "u", Utc::now()).is_err());
        st.finish_delete(&r.server.id);
        assert!(st.create_server(&b, &demo(), "u", Utc::now()).is_ok());
    }

    #[test]
    fn boot_ends_active_with_an_address_or_error_with_the_scripted_fault() {
        let mut st = state();
        let b = body(&st);
        let (ok, _) = st.create_server(&b, &demo(), "u", Utc::now()).unwrap();
        st.boot_faults.push_back("No valid host was found.".into());
        let (bad, _) = st.create_server(&b, &demo(), "u", Utc::now()).unwrap();
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
        let (r, _) = st.create_server(&b, &demo(), "u", Utc::now()).unwrap();
        assert!(st.start_delete(&r.server.id, &demo().id).unwrap().is_some());
        assert!(st.start_delete(&r.server.id, &demo().id).unwrap().is_none());
        assert_eq!(st.finish_boot(&r.server.id, Utc::now()), None);
        let e = st.start_delete("missing", &demo().id).unwrap_err();
        assert_eq!(e.status.as_u16(), 404);
    }

    #[test]
    fn other_projects_cannot_delete_a_server() {
        let mut st = state();
        let b = body(&st);
        let (r, _) = st.create_server(&b, &demo(), "u", Utc::now()).unwrap();
        let other = State::project("other");
        assert_eq!(
            st.start_delete(&r.server.id, &other.id)
                .unwrap_err()
                .status
                .as_u16(),
            404
        );
    }

    #[test]
    fn record_debug_never_shows_user_data() {
        let mut st = state();
        let b = body(&st);
        let (r, _) = st.create_server(&b, &demo(), "u", Utc::now()).unwrap();
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
            let mut st = State::new(o);
            st.quota = FakeQuota::UNLIMITED;
            let b = body(&st);
            (0..20)
                .map(|_| st.create_server(&b, &demo(), "u", Utc::now()).unwrap().1)
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
        b["server"]["tags"] = json!(["a/b"]);
        assert_eq!(
            st.create_server(&b, &demo(), "u", Utc::now())
                .unwrap_err()
                .status
                .as_u16(),
            400
        );
        let mut b = body(&st);
        b["server"]["user_data"] = json!("A".repeat(MAX_USER_DATA + 4));
        let e = st.create_server(&b, &demo(), "u", Utc::now()).unwrap_err();
        assert!(e.message.ends_with("is too long"), "{}", &e.message[..60]);
    }
}
