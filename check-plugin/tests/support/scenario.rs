//! The check's named worlds, seeded into the project's shared HTTP fakes
//! (`autoscaler-fakes`: [`FakeGitLabServer`] and [`FakeOpenStack`], which follow the real
//! services, maintenance notes included), plus a fixed controller `/status` document.
//!
//! Used by the integration tests (in-process) and by `examples/fake_services.rs` (for
//! `tests/icinga/run.sh` and the benchmark). [`World::scenario`] builds the named worlds;
//! [`Fake::start`] seeds them with the ids, times and states the expected output names.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use autoscaler_config::fixture::{ConfigFixture, PoolFixture};
use autoscaler_core::ports::{ControllerId, runner_maintenance_note};
use autoscaler_fakes::gitlab::{ADMIN_TOKEN, FakeGitLabServer};
use autoscaler_fakes::{
    FakeOpenStack, FakeOpenStackOptions, FakeQuota, FakeServer, FakeStatus, FakeUser,
};
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Value, json};

/// The token the fake GitLab accepts (an administrator's: instance runners are listed with
/// `/runners/all`).
pub const TOKEN: &str = ADMIN_TOKEN;
/// The password the fake Keystone accepts (the config's `password_env = "OS_PASSWORD"`).
pub const OS_PASSWORD: &str = "fake-os-password";
/// Controller id of every scenario.
pub const CONTROLLER: &str = "ci";
/// Group watched by the scenarios' config (`scope.groups = ["7"]`).
pub const GROUP: u64 = 7;

/// A runner as GitLab stores it.
#[derive(Debug, Clone)]
pub struct FakeRunner {
    pub id: u64,
    pub description: String,
    /// Maintenance note: the controller's marker for its own runners.
    pub note: String,
    pub created_at: DateTime<Utc>,
    pub contacted_at: Option<DateTime<Utc>>,
}

/// A server as Nova stores it.
#[derive(Debug, Clone)]
pub struct FakeVm {
    pub id: String,
    pub name: String,
    pub pool: String,
    pub error: Option<String>,
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
    /// When it became pending (GitLab's `queued_duration` counts from here).
    pub queued_at: DateTime<Utc>,
}

/// Everything the fakes serve.
#[derive(Debug, Clone)]
pub struct World {
    /// The fakes' clock (GitLab computes runner statuses and queue durations from it).
    pub now: DateTime<Utc>,
    pub runners: Vec<FakeRunner>,
    pub servers: Vec<FakeVm>,
    pub jobs: Vec<FakeJob>,
    /// Projects of group [`GROUP`].
    pub group_projects: Vec<u64>,
    pub max_instances: u64,
    /// `/status` body; `None`: the controller is not running (the config points at a
    /// closed port).
    pub status: Option<Value>,
    /// Whether GitLab accepts the token.
    pub token_ok: bool,
    /// Every answer waits this long (timeout scenario).
    pub delay: Duration,
    /// `limit` of the pools `docker` and `arm` in the generated config.
    pub limits: (u32, u32),
    /// Runners listed but deleted right after the list (their details answer 404).
    pub vanished: Vec<u64>,
}

fn at(now: DateTime<Utc>, secs_ago: i64) -> DateTime<Utc> {
    now - TimeDelta::seconds(secs_ago)
}

fn note(controller: &str, pool: &str) -> String {
    let id = ControllerId::new(controller.to_string()).expect("valid controller id");
    runner_maintenance_note(&id, pool)
}

impl World {
    /// `vms` healthy VMs split over pools `docker` and `arm`, each with a live runner, plus
    /// another controller's runner and server and an administrator's runner named like ours
    /// (no marker in its maintenance note): none of those is ever reported.
    pub fn healthy(now: DateTime<Utc>, vms: u64) -> World {
        let mut runners = Vec::new();
        let mut servers = Vec::new();
        for i in 1..=vms {
            let pool = if i % 4 == 0 { "arm" } else { "docker" };
            let name = format!("{CONTROLLER}-{pool}-{i:04}");
            runners.push(FakeRunner {
                id: 1000 + i,
                description: name.clone(),
                note: note(CONTROLLER, pool),
                created_at: at(now, 3600),
                contacted_at: Some(at(now, (i % 5) as i64 + 1)),
            });
            servers.push(FakeVm {
                id: format!("00000000-0000-0000-0000-{i:012}"),
                name,
                pool: pool.into(),
                error: None,
                created: at(now, 3500),
                runner_id: Some(1000 + i),
                foreign: false,
            });
        }
        // An administrator's runner named like ours: not ours without the marker.
        runners.push(FakeRunner {
            id: 8,
            description: format!("{CONTROLLER}-docker-admin"),
            note: "maintained by the CI admins".into(),
            created_at: at(now, 999_999),
            contacted_at: Some(at(now, 999_999)),
        });
        // Someone else's runner and server: never ours to report.
        runners.push(FakeRunner {
            id: 9,
            description: "other-docker-1".into(),
            note: note("other", "docker"),
            created_at: at(now, 999_999),
            contacted_at: Some(at(now, 999_999)),
        });
        servers.push(FakeVm {
            id: "ffffffff-0000-0000-0000-000000000001".into(),
            name: "other-docker-1".into(),
            pool: "docker".into(),
            error: Some("not ours".into()),
            created: at(now, 999_999),
            runner_id: Some(9),
            foreign: true,
        });
        World {
            now,
            runners,
            servers,
            jobs: vec![FakeJob {
                id: 501,
                project_id: 42,
                tags: vec!["docker".into()],
                created_at: at(now, 90),
                queued_at: at(now, 30),
            }],
            group_projects: vec![42, 43],
            max_instances: 2 * vms + 100,
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
                w.runners[2].contacted_at = Some(at(now, 3 * 3600 + 120));
                w.jobs.push(FakeJob {
                    id: 502,
                    project_id: 43,
                    tags: vec!["arm".into(), "docker".into()],
                    created_at: at(now, 1500),
                    queued_at: at(now, 1200),
                });
            }
            "critical" | "down" => {
                if name == "critical" {
                    // Three servers in ERROR.
                    for (i, s) in w.servers.iter_mut().take(3).enumerate() {
                        s.error = Some(if i == 0 {
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

/// The running fakes of one world.
pub struct Fake {
    pub gitlab: FakeGitLabServer,
    pub cloud: FakeOpenStack,
    /// Serves the controller's `/status`.
    pub addr: SocketAddr,
    status_task: tokio::task::JoinHandle<()>,
    limits: (u32, u32),
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.status_task.abort();
    }
}

impl Fake {
    /// Starts the fakes on free loopback ports on the current tokio runtime and seeds
    /// `world` into them.
    pub async fn start(world: World) -> Result<Fake, Box<dyn std::error::Error>> {
        let gitlab = FakeGitLabServer::start().await?;
        gitlab.freeze_clock(world.now);
        seed_gitlab(&gitlab, &world)?;
        let cloud = FakeOpenStack::start(FakeOpenStackOptions {
            users: vec![FakeUser {
                name: "check".into(),
                password: OS_PASSWORD.into(),
                project: "ci".into(),
            }],
            app_credentials: Vec::new(),
            quota: FakeQuota::instances(world.max_instances),
            ..FakeOpenStackOptions::default()
        })
        .await?;
        for s in &world.servers {
            cloud.insert_server(vm(s));
        }
        if !world.delay.is_zero() {
            gitlab.set_latency(world.delay);
            cloud.set_latency(world.delay);
        }
        if !world.token_ok {
            gitlab.revoke_tokens();
        }
        let (addr, status_task) = serve_status(world.status.clone(), world.delay).await?;
        Ok(Fake {
            gitlab,
            cloud,
            addr,
            status_task,
            limits: world.limits,
        })
    }

    /// Requests the fake GitLab and OpenStack served so far.
    pub fn requests(&self) -> u64 {
        let gitlab = self.gitlab.requests().len() as u64;
        let cloud: u64 = self.cloud.request_counts().values().sum();
        gitlab + cloud
    }

    /// The controller config pointing at these fakes. `controller_up` = false points
    /// `listen` at a closed port.
    pub fn config(&self, controller_up: bool, closed_port: u16) -> String {
        let listen = if controller_up {
            self.addr.to_string()
        } else {
            format!("127.0.0.1:{closed_port}")
        };
        let gitlab = self.gitlab.url();
        let auth_url = self.cloud.auth_url();
        let (docker_limit, arm_limit) = self.limits;
        let pool = |name: &str, limit: u32| {
            PoolFixture::new(name)
                .limit(limit)
                .boot_timeout("10m")
                .flavor("m1.small")
                .image("debian-12")
                .networks(&["ci-net"])
        };
        ConfigFixture::new()
            .header("written by the check plugin's fake services")
            .id(CONTROLLER)
            .poll_interval("15s")
            .listen(listen)
            .gitlab_url(&format!("{gitlab}/"))
            .token_env("FAKE_GITLAB_TOKEN")
            .scope(&format!("projects = [42]\ngroups = [\"{GROUP}\"]"))
            .password_auth(&auth_url, "check", "ci", "OS_PASSWORD")
            .pool(pool("docker", docker_limit).run_untagged(true))
            .pool(
                pool("arm", arm_limit)
                    .tags(&["arm", "docker"])
                    .run_untagged(false),
            )
            .render()
    }
}

/// One object to create in the fake GitLab, in id order.
enum Seed<'a> {
    Group,
    Project(u64),
    Job(&'a FakeJob),
    Runner(&'a FakeRunner),
}

/// Creates the world's group, projects, jobs and runners with exactly their ids (GitLab's
/// ids only grow, so they are created in id order).
fn seed_gitlab(gitlab: &FakeGitLabServer, w: &World) -> Result<(), String> {
    let mut seeds: Vec<(u64, Seed<'_>)> = vec![(GROUP, Seed::Group)];
    seeds.extend(w.group_projects.iter().map(|p| (*p, Seed::Project(*p))));
    seeds.extend(w.jobs.iter().map(|j| (j.id, Seed::Job(j))));
    seeds.extend(w.runners.iter().map(|r| (r.id, Seed::Runner(r))));
    seeds.sort_by_key(|(id, _)| *id);
    let mut group = None;
    for (want, seed) in seeds {
        gitlab.set_next_id(want);
        let got = match seed {
            Seed::Group => {
                let g = gitlab.add_group("ci-group", None);
                group = Some(g);
                g
            }
            Seed::Project(p) => gitlab.add_project(&format!("ci-group/p{p}"), group),
            Seed::Job(j) => {
                let tags: Vec<&str> = j.tags.iter().map(String::as_str).collect();
                let id = gitlab.add_job(j.project_id, &tags, Duration::from_secs(60));
                gitlab.set_job_times(id, j.created_at, j.queued_at);
                id
            }
            Seed::Runner(r) => {
                let id = gitlab.add_runner(&r.description, &r.note);
                gitlab.set_created_at(id, r.created_at);
                gitlab.set_contacted_at(id, r.contacted_at);
                id
            }
        };
        if got != want {
            return Err(format!("fake gitlab gave id {got}, wanted {want}"));
        }
    }
    for id in &w.vanished {
        gitlab.delete_runner_after_list_page(1, *id);
    }
    Ok(())
}

fn vm(s: &FakeVm) -> FakeServer {
    let owner = if s.foreign { "other" } else { CONTROLLER };
    let mut metadata = BTreeMap::from([
        ("autoscaler-controller".to_string(), owner.to_string()),
        ("autoscaler-pool".to_string(), s.pool.clone()),
    ]);
    if let Some(r) = s.runner_id {
        metadata.insert("autoscaler-runner-id".into(), r.to_string());
    }
    FakeServer {
        id: s.id.clone(),
        name: s.name.clone(),
        status: if s.error.is_some() {
            FakeStatus::Error
        } else {
            FakeStatus::Active
        },
        metadata,
        tags: vec![format!("autoscaler:{owner}"), format!("pool:{}", s.pool)],
        created: s.created,
        fault: s.error.clone(),
        flavor: "m1.small".into(),
        image_id: None,
        networks: Vec::new(),
        address: None,
        key_name: None,
        project_id: String::new(),
    }
}

/// Serves `GET /status` with `body` (404 when `None`) after `delay`.
async fn serve_status(
    body: Option<Value>,
    delay: Duration,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    use axum::http::StatusCode;
    use axum::response::IntoResponse;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let app = axum::Router::new().route(
        "/status",
        axum::routing::get(move || {
            let body = body.clone();
            async move {
                tokio::time::sleep(delay).await;
                match body {
                    Some(v) => axum::Json(v).into_response(),
                    None => StatusCode::NOT_FOUND.into_response(),
                }
            }
        }),
    );
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((addr, task))
}
