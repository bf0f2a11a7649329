//! Stateful local fakes of everything the check talks to, on one loopback port:
//! GitLab REST (`/api/v4/...`, offset paging with `X-Next-Page`, `PRIVATE-TOKEN` checked),
//! Keystone (`/identity/v3/auth/tokens`), Nova (`/compute/v2.1/servers/detail` with tag
//! filter and marker paging, `/compute/v2.1/limits`) and the controller's `/status`.
//!
//! Used by the integration tests (in-process), by `examples/fake_services.rs` (for
//! `tests/icinga/run.sh` and the benchmark). [`World::scenario`] builds the named worlds.

#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Value, json};

/// The token the fake GitLab accepts.
pub const TOKEN: &str = "glpat-fake-check-token";
/// The password the fake Keystone accepts (the config's `password_env = "OS_PASSWORD"`).
pub const OS_PASSWORD: &str = "fake-os-password";
/// Controller id of every scenario.
pub const CONTROLLER: &str = "ci";

/// A runner as GitLab stores it.
#[derive(Debug, Clone)]
pub struct FakeRunner {
    pub id: u64,
    pub description: String,
    pub status: &'static str,
    pub paused: bool,
    pub created_at: DateTime<Utc>,
    pub contacted_at: Option<DateTime<Utc>>,
}

/// A server as Nova stores it.
#[derive(Debug, Clone)]
pub struct FakeServer {
    pub id: String,
    pub name: String,
    pub pool: String,
    pub status: &'static str,
    pub fault: Option<String>,
    pub created: DateTime<Utc>,
    pub runner_id: Option<u64>,
    /// Owned by another controller (must never be reported).
    pub foreign: bool,
}

/// A pending job.
#[derive(Debug, Clone)]
pub struct FakeJob {
    pub id: u64,
    pub project_id: u64,
    pub tags: Vec<String>,
    pub created_at: DateTime<Utc>,
    /// Seconds queued, as GitLab computes it for a pending job.
    pub queued_duration: f64,
}

/// Everything the fakes serve.
#[derive(Debug, Clone)]
pub struct World {
    pub runners: Vec<FakeRunner>,
    pub servers: Vec<FakeServer>,
    pub jobs: Vec<FakeJob>,
    /// Projects of group 7 (`scope.groups = ["7"]`).
    pub group_projects: Vec<u64>,
    pub max_instances: i64,
    /// `/status` body; `None` answers 404... the config then points elsewhere.
    pub status: Option<Value>,
    /// Whether GitLab accepts the token.
    pub token_ok: bool,
    /// Every answer waits this long (timeout scenario).
    pub delay: Duration,
    /// `limit` of the pools `docker` and `arm` in the generated config.
    pub limits: (u32, u32),
    /// Runners listed but deleted before their detail call (404).
    pub vanished: Vec<u64>,
}

fn at(now: DateTime<Utc>, secs_ago: i64) -> DateTime<Utc> {
    now - TimeDelta::seconds(secs_ago)
}

impl World {
    /// `vms` healthy VMs split over pools `docker` and `arm`, each with a live runner.
    pub fn healthy(now: DateTime<Utc>, vms: u64) -> World {
        let mut runners = Vec::new();
        let mut servers = Vec::new();
        for i in 1..=vms {
            let pool = if i % 4 == 0 { "arm" } else { "docker" };
            let name = format!("{CONTROLLER}-{pool}-{i:04}");
            runners.push(FakeRunner {
                id: 1000 + i,
                description: name.clone(),
                status: "online",
                paused: false,
                created_at: at(now, 3600),
                contacted_at: Some(at(now, (i % 5) as i64 + 1)),
            });
            servers.push(FakeServer {
                id: format!("00000000-0000-0000-0000-{i:012}"),
                name,
                pool: pool.into(),
                status: "ACTIVE",
                fault: None,
                created: at(now, 3500),
                runner_id: Some(1000 + i),
                foreign: false,
            });
        }
        // Someone else's runner and server: never ours to report.
        runners.push(FakeRunner {
            id: 9,
            description: "other-docker-1".into(),
            status: "offline",
            paused: false,
            created_at: at(now, 999_999),
            contacted_at: Some(at(now, 999_999)),
        });
        servers.push(FakeServer {
            id: "ffffffff-0000-0000-0000-000000000001".into(),
            name: "other-docker-1".into(),
            pool: "docker".into(),
            status: "ERROR",
            fault: Some("not ours".into()),
            created: at(now, 999_999),
            runner_id: Some(9),
            foreign: true,
        });
        World {
            runners,
            servers,
            jobs: vec![FakeJob {
                id: 501,
                project_id: 42,
                tags: vec!["docker".into()],
                created_at: at(now, 90),
                queued_duration: 30.0,
            }],
            group_projects: vec![42, 43],
            max_instances: 2 * vms as i64 + 100,
            status: Some(json!({
                "controller_id": CONTROLLER,
                "version": "0.1.0",
                "last_tick_at": at(now, 5),
                "last_success_at": at(now, 5),
                "last_error": null,
                "pools": [
                    {"name": "docker", "vms": vms - vms / 4, "desired": vms - vms / 4, "pending_jobs": 1, "circuit_open": false},
                    {"name": "arm", "vms": vms / 4, "desired": vms / 4, "pending_jobs": 0, "circuit_open": false}
                ]
            })),
            token_ok: true,
            delay: Duration::ZERO,
            limits: (24, 8),
            vanished: Vec::new(),
        }
    }

    /// The named scenarios: `ok`, `warning`, `critical`, `unknown`, `timeout`, `down`
    /// (controller not running, everything else fine), `big` (1,000 runners and VMs).
    pub fn scenario(name: &str, now: DateTime<Utc>) -> Option<World> {
        let mut w = World::healthy(now, 8);
        match name {
            "ok" => {}
            "warning" => {
                // One runner GitLab reports offline, and a job waiting 20 minutes.
                let r = &mut w.runners[2];
                r.status = "offline";
                r.contacted_at = Some(at(now, 3 * 3600 + 120));
                w.jobs.push(FakeJob {
                    id: 502,
                    project_id: 43,
                    tags: vec!["arm".into(), "docker".into()],
                    created_at: at(now, 1500),
                    queued_duration: 1200.0,
                });
            }
            "critical" | "down" => {
                if name == "critical" {
                    // Three servers in ERROR.
                    for (i, s) in w.servers.iter_mut().take(3).enumerate() {
                        s.status = "ERROR";
                        s.fault = Some(if i == 0 {
                            "No valid host was found. There are not enough hosts available.".into()
                        } else {
                            "Build of instance aborted | retry".into()
                        });
                    }
                }
                w.status = None;
            }
            "unknown" => w.token_ok = false,
            "timeout" => w.delay = Duration::from_secs(30),
            "big" => {
                w = World::healthy(now, 1000);
                w.limits = (800, 300);
            }
            _ => return None,
        }
        Some(w)
    }
}

/// A running fake.
pub struct Fake {
    pub addr: SocketAddr,
    pub requests: Arc<AtomicU64>,
    limits: (u32, u32),
}

struct Shared {
    world: World,
    base: String,
    requests: Arc<AtomicU64>,
}

type S = State<Arc<Shared>>;

impl Fake {
    /// Starts the fake on a free loopback port on the current tokio runtime.
    pub async fn start(world: World) -> std::io::Result<Fake> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let requests = Arc::new(AtomicU64::new(0));
        let pool_limits = world.limits;
        let shared = Arc::new(Shared {
            world,
            base: format!("http://{addr}"),
            requests: requests.clone(),
        });
        let app = Router::new()
            .route("/api/v4/runners", get(runner_list))
            .route("/api/v4/runners/all", get(runner_list))
            .route("/api/v4/runners/{id}", get(runner_detail))
            .route("/api/v4/groups/{id}/projects", get(group_projects))
            .route("/api/v4/projects/{id}/jobs", get(project_jobs))
            .route("/api/graphql", post(graphql))
            .route("/identity/v3/auth/tokens", post(keystone_token))
            .route("/compute/v2.1/servers/detail", get(servers))
            .route("/compute/v2.1/limits", get(limits))
            .route("/status", get(status))
            .with_state(shared);
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Fake {
            addr,
            requests,
            limits: pool_limits,
        })
    }

    /// The controller config pointing at this fake. `controller_up` = false points
    /// `listen` at a closed port.
    pub fn config(&self, controller_up: bool, closed_port: u16) -> String {
        let listen = if controller_up {
            self.addr.to_string()
        } else {
            format!("127.0.0.1:{closed_port}")
        };
        let base = format!("http://{}", self.addr);
        let (docker_limit, arm_limit) = self.limits;
        format!(
            r#"# written by the check plugin's fake services
[controller]
id = "{CONTROLLER}"
poll_interval = "15s"
listen = "{listen}"

[gitlab]
url = "{base}/"
token_env = "FAKE_GITLAB_TOKEN"

[gitlab.scope]
projects = [42]
groups = ["7"]

[openstack]
auth_url = "{base}/identity/v3"
username = "check"
project_name = "ci"
password_env = "OS_PASSWORD"

[[pools]]
name = "docker"
limit = {docker_limit}
boot_timeout = "10m"
[pools.server]
flavor = "m1.small"
image = "debian-12"
networks = ["ci-net"]
[pools.runner]
tags = ["docker"]
run_untagged = true

[[pools]]
name = "arm"
limit = {arm_limit}
boot_timeout = "10m"
[pools.server]
flavor = "m1.small"
image = "debian-12"
networks = ["ci-net"]
[pools.runner]
tags = ["arm", "docker"]
run_untagged = false
"#
        )
    }
}

async fn pause(s: &Shared) {
    s.requests.fetch_add(1, Ordering::Relaxed);
    if !s.world.delay.is_zero() {
        tokio::time::sleep(s.world.delay).await;
    }
}

fn gitlab_auth(s: &Shared, headers: &HeaderMap) -> Option<Response> {
    let ok = s.world.token_ok
        && headers
            .get("private-token")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| t == TOKEN);
    if ok {
        None
    } else {
        Some(
            (
                StatusCode::UNAUTHORIZED,
                axum::Json(json!({"message": "401 Unauthorized"})),
            )
                .into_response(),
        )
    }
}

/// One page of `items` with GitLab's offset paging headers.
fn paged(items: Vec<Value>, q: &HashMap<String, String>) -> Response {
    let per_page: usize = q
        .get("per_page")
        .and_then(|v| v.parse().ok())
        .unwrap_or(20)
        .clamp(1, 100);
    let page: usize = q
        .get("page")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
        .max(1);
    let start = (page - 1) * per_page;
    let slice: Vec<Value> = items.iter().skip(start).take(per_page).cloned().collect();
    let next = if start + per_page < items.len() {
        (page + 1).to_string()
    } else {
        String::new()
    };
    let mut resp = axum::Json(Value::Array(slice)).into_response();
    let h = resp.headers_mut();
    h.insert("x-page", HeaderValue::from(page));
    h.insert("x-per-page", HeaderValue::from(per_page));
    if let Ok(v) = HeaderValue::from_str(&next) {
        h.insert("x-next-page", v);
    }
    resp
}

fn runner_json(r: &FakeRunner, detail: bool) -> Value {
    let mut v = json!({
        "id": r.id, "description": r.description, "ip_address": null, "active": !r.paused,
        "paused": r.paused, "is_shared": true, "runner_type": "instance_type", "name": "gitlab-runner",
        "online": r.status == "online", "status": r.status, "created_at": r.created_at,
    });
    if detail {
        v["contacted_at"] = json!(r.contacted_at);
        v["tag_list"] = json!(["docker"]);
    }
    v
}

async fn runner_list(
    State(s): S,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    pause(&s).await;
    if let Some(r) = gitlab_auth(&s, &headers) {
        return r;
    }
    paged(
        s.world
            .runners
            .iter()
            .map(|r| runner_json(r, false))
            .collect(),
        &q,
    )
}

async fn runner_detail(State(s): S, headers: HeaderMap, Path(id): Path<u64>) -> Response {
    pause(&s).await;
    if let Some(r) = gitlab_auth(&s, &headers) {
        return r;
    }
    let found = s.world.runners.iter().find(|r| r.id == id);
    match found.filter(|_| !s.world.vanished.contains(&id)) {
        Some(r) => axum::Json(runner_json(r, true)).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"message": "404 Not found"})),
        )
            .into_response(),
    }
}

async fn group_projects(
    State(s): S,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    pause(&s).await;
    if let Some(r) = gitlab_auth(&s, &headers) {
        return r;
    }
    if id != "7" {
        return (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"message": "404 Group Not Found"})),
        )
            .into_response();
    }
    paged(
        s.world
            .group_projects
            .iter()
            .map(|p| json!({"id": p}))
            .collect(),
        &q,
    )
}

async fn project_jobs(
    State(s): S,
    headers: HeaderMap,
    Path(id): Path<u64>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    pause(&s).await;
    if let Some(r) = gitlab_auth(&s, &headers) {
        return r;
    }
    if q.get("scope[]").map(String::as_str) != Some("pending") {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": "expected scope[]=pending"})),
        )
            .into_response();
    }
    let jobs = s
        .world
        .jobs
        .iter()
        .filter(|j| j.project_id == id)
        .map(|j| {
            json!({
                "id": j.id, "status": "pending", "created_at": j.created_at, "started_at": null,
                "queued_duration": j.queued_duration, "tag_list": j.tags,
                "pipeline": {"id": j.id * 10, "project_id": j.project_id, "status": "pending"},
                "runner": null
            })
        })
        .collect();
    paged(jobs, &q)
}

async fn keystone_token(State(s): S, axum::Json(body): axum::Json<Value>) -> Response {
    pause(&s).await;
    let password = body
        .pointer("/auth/identity/password/user/password")
        .and_then(Value::as_str);
    if password != Some(OS_PASSWORD) {
        return (StatusCode::UNAUTHORIZED, axum::Json(json!({"error": {"code": 401, "message": "The request you have made requires authentication."}}))).into_response();
    }
    let now = Utc::now();
    let body = json!({"token": {
        "expires_at": now + TimeDelta::hours(1),
        "issued_at": now,
        "project": {"id": "p-ci", "name": "ci"},
        "catalog": [{"type": "compute", "name": "nova", "endpoints": [
            {"interface": "public", "region_id": "RegionOne", "region": "RegionOne",
             "url": format!("{}/compute/v2.1", s.base)}
        ]}]
    }});
    let mut resp = (StatusCode::CREATED, axum::Json(body)).into_response();
    resp.headers_mut().insert(
        "x-subject-token",
        HeaderValue::from_static("fake-keystone-token"),
    );
    resp
}

fn nova_auth(headers: &HeaderMap) -> Option<Response> {
    let ok = headers
        .get("x-auth-token")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t == "fake-keystone-token");
    (!ok).then(|| StatusCode::UNAUTHORIZED.into_response())
}

async fn servers(
    State(s): S,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    pause(&s).await;
    if let Some(r) = nova_auth(&headers) {
        return r;
    }
    let tag = q.get("tags").cloned().unwrap_or_default();
    let limit: usize = q
        .get("limit")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000)
        .max(1);
    let mut list: Vec<&FakeServer> = s
        .world
        .servers
        .iter()
        .filter(|sv| {
            let owner = if sv.foreign {
                "autoscaler:other".to_string()
            } else {
                format!("autoscaler:{CONTROLLER}")
            };
            tag.is_empty() || tag == owner
        })
        .collect();
    list.sort_by(|a, b| a.id.cmp(&b.id));
    if let Some(m) = q.get("marker") {
        let pos = list.iter().position(|sv| &sv.id == m).map_or(0, |p| p + 1);
        list = list.split_off(pos);
    }
    let more = list.len() > limit;
    list.truncate(limit);
    let servers: Vec<Value> = list
        .iter()
        .map(|sv| {
            let owner = if sv.foreign { "other" } else { CONTROLLER };
            let mut meta = json!({"autoscaler-controller": owner, "autoscaler-pool": sv.pool});
            if let Some(r) = sv.runner_id {
                meta["autoscaler-runner-id"] = json!(r.to_string());
            }
            let mut v = json!({
                "id": sv.id, "name": sv.name, "status": sv.status, "created": sv.created.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                "metadata": meta, "tags": [format!("autoscaler:{owner}"), format!("pool:{}", sv.pool)],
                "addresses": {}, "OS-EXT-STS:task_state": null
            });
            if let Some(f) = &sv.fault {
                v["fault"] = json!({"code": 500, "message": f});
            }
            v
        })
        .collect();
    let links = if more {
        json!([{"rel": "next", "href": format!("{}/compute/v2.1/servers/detail?marker={}", s.base, list.last().map_or("", |l| l.id.as_str()))}])
    } else {
        json!([])
    };
    axum::Json(json!({"servers": servers, "servers_links": links})).into_response()
}

async fn limits(State(s): S, headers: HeaderMap) -> Response {
    pause(&s).await;
    if let Some(r) = nova_auth(&headers) {
        return r;
    }
    let used = s.world.servers.iter().filter(|sv| !sv.foreign).count() + 1;
    axum::Json(json!({"limits": {"rate": [], "absolute": {
        "maxTotalInstances": s.world.max_instances, "totalInstancesUsed": used,
        "maxTotalCores": -1, "totalCoresUsed": used * 2,
        "maxTotalRAMSize": -1, "totalRAMUsed": used * 2048
    }}}))
    .into_response()
}

async fn status(State(s): S) -> Response {
    pause(&s).await;
    match &s.world.status {
        Some(v) => axum::Json(v.clone()).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// GraphQL `jobs(statuses: [PENDING])`, one job per page so paging is exercised.
async fn graphql(State(s): S, headers: HeaderMap, axum::Json(body): axum::Json<Value>) -> Response {
    pause(&s).await;
    if let Some(r) = gitlab_auth(&s, &headers) {
        return r;
    }
    let query = body.get("query").and_then(Value::as_str).unwrap_or("");
    if !query.contains("jobs(statuses: [PENDING]") {
        return axum::Json(json!({"errors": [{"message": "unexpected query"}]})).into_response();
    }
    let index: usize = body
        .pointer("/variables/after")
        .and_then(Value::as_str)
        .and_then(|c| c.parse().ok())
        .map_or(0, |c: usize| c + 1);
    let mut jobs = s.world.jobs.clone();
    jobs.sort_by_key(|j| j.id);
    let nodes: Vec<Value> = jobs
        .get(index)
        .map(|j| {
            vec![json!({
                "id": format!("gid://gitlab/Ci::Build/{}", j.id),
                "tags": j.tags,
                "createdAt": j.created_at,
                "queuedAt": j.created_at + TimeDelta::seconds(10),
                "project": {"id": format!("gid://gitlab/Project/{}", j.project_id)}
            })]
        })
        .unwrap_or_default();
    let more = index + 1 < jobs.len();
    axum::Json(json!({"data": {"jobs": {
        "pageInfo": {"hasNextPage": more, "endCursor": index.to_string()},
        "nodes": nodes
    }}}))
    .into_response()
}
