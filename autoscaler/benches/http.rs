//! The `autoscaler run` process against the HTTP fakes on loopback:
//! `cargo bench -p autoscaler --bench http` (about 4 minutes; `-- webhook`, `-- poll` or
//! `-- burst` or `-- scale` runs one part).
//!
//! 1. **webhook**: a job is queued and its Job Hook posted; time until the fake Nova receives
//!    the server create (poll interval 30 s, so only the nudge can explain a fast create).
//! 2. **poll**: the same without the hook, jobs queued at spread-out moments; poll 5 s.
//! 3. **burst**: 200 VMs wanted at once with 100 ms latency on every request of both fakes.
//! 4. **scale**: 500 projects in one group and 2,000 VMs with 2,000 runners in steady state:
//!    the controller process's CPU per tick and resident memory (from /proc of the child,
//!    the fakes run in this process), and jobs-list requests per minute against GitLab's
//!    default 600 per minute.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use autoscaler_fakes::gitlab::FakeGitLabServer;
use autoscaler_fakes::{
    FakeOpenStack, FakeOpenStackOptions, FakeQuota, FakeSite, free_loopback_addr,
};

const HOOK: &str = "bench-webhook";

struct Setup {
    cloud: Arc<FakeOpenStack>,
    gitlab: Arc<FakeGitLabServer>,
    listen: std::net::SocketAddr,
    child: Child,
    _site: FakeSite,
    _dir: tempfile::TempDir,
}

impl Drop for Setup {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Fakes, config and the controller process, after its first tick. `scope` is the TOML of
/// `[gitlab.scope]`; `populate` fills the fake GitLab before the controller starts.
async fn setup(
    poll: &str,
    scope: &str,
    idle_count: u32,
    limit: u32,
    populate: impl FnOnce(&FakeGitLabServer),
) -> Setup {
    let s = setup_opts(poll, scope, idle_count, limit, populate, None).await;
    s.wait_first_tick().await;
    s
}

/// [`setup`] without waiting for the first tick, with optional latency on every OpenStack
/// request.
async fn setup_opts(
    poll: &str,
    scope: &str,
    idle_count: u32,
    limit: u32,
    populate: impl FnOnce(&FakeGitLabServer),
    cloud_latency: Option<Duration>,
) -> Setup {
    let site = FakeSite::start(FakeOpenStackOptions {
        boot_delay: Duration::from_millis(500),
        delete_delay: Duration::from_millis(100),
        quota: FakeQuota::instances(5000),
        latency: cloud_latency.unwrap_or_default(),
        ..FakeOpenStackOptions::default()
    })
    .await
    .unwrap();
    populate(&site.gitlab);
    let dir = tempfile::tempdir().unwrap();
    let listen = free_loopback_addr().unwrap();
    let config = dir.path().join("bench.toml");
    let text = site
        .config(dir.path(), scope, Some(HOOK))
        .unwrap()
        .id("bench")
        .poll_interval(poll)
        .listen(listen)
        .pool(
            FakeSite::pool("docker")
                .idle_count(idle_count)
                .limit(limit)
                .idle_time("2s")
                .boot_timeout("5m"),
        )
        .render();
    std::fs::write(&config, text).unwrap();
    let child = spawn(&config);
    Setup {
        cloud: Arc::clone(&site.cloud),
        gitlab: Arc::clone(&site.gitlab),
        listen,
        child,
        _site: site,
        _dir: dir,
    }
}

fn spawn(config: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_autoscaler"))
        .args(["run", "--config"])
        .arg(config)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

impl Setup {
    async fn wait_first_tick(&self) {
        let http = reqwest::Client::new();
        for _ in 0..600 {
            if let Ok(r) = http
                .get(format!("http://{}/status", self.listen))
                .send()
                .await
            {
                if let Ok(v) = r.json::<serde_json::Value>().await {
                    if !v["last_success_at"].is_null() {
                        return;
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the controller never completed a tick");
    }

    /// `/metrics` value of a sample line starting with `name` (first match).
    async fn metric(&self, name: &str) -> f64 {
        let text = reqwest::get(format!("http://{}/metrics", self.listen))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    }

    /// Waits (at most 30 s) until every server runs a job: a spare idle VM would take the
    /// next job without a create.
    async fn no_spare_vm(&self) {
        for _ in 0..300 {
            let running = self
                .gitlab
                .jobs()
                .iter()
                .filter(|j| j.status == "running")
                .count();
            if self.cloud.servers().len() == running {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("spare VMs were not removed within 30 s");
    }

    /// Queues one job and measures until the fake Nova has one more server.
    async fn time_to_create(&self, project: u64, hook: bool) -> Duration {
        self.no_spare_vm().await;
        let before = self.cloud.servers().len();
        let mut events = self.cloud.subscribe();
        let t0 = tokio::time::Instant::now();
        self.gitlab
            .add_job(project, &["docker"], Duration::from_secs(3600));
        if hook {
            let body = serde_json::json!({"object_kind": "build", "project_id": project, "build_status": "pending"});
            let r = reqwest::Client::new()
                .post(format!("http://{}/webhook/gitlab", self.listen))
                .header("X-Gitlab-Token", HOOK)
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
        }
        loop {
            let Ok(e) = tokio::time::timeout(Duration::from_secs(60), events.recv()).await else {
                let reqs = self.gitlab.requests();
                let status = reqwest::get(format!("http://{}/status", self.listen))
                    .await
                    .unwrap()
                    .text()
                    .await
                    .unwrap();
                panic!(
                    "no create within 60 s; status {status}; last GitLab requests {:#?}",
                    &reqs[reqs.len().saturating_sub(15)..]
                );
            };
            let e = e.unwrap();
            if e.kind == autoscaler_fakes::ServerEventKind::Created {
                break;
            }
        }
        let dt = t0.elapsed();
        assert!(self.cloud.servers().len() > before);
        dt
    }
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

fn report(name: &str, mut v: Vec<Duration>) {
    v.sort();
    println!(
        "{name}: n={} p50={:.0} ms p95={:.0} ms p99={:.0} ms max={:.0} ms",
        v.len(),
        pct(&v, 0.50).as_secs_f64() * 1e3,
        pct(&v, 0.95).as_secs_f64() * 1e3,
        pct(&v, 0.99).as_secs_f64() * 1e3,
        v.last().unwrap().as_secs_f64() * 1e3
    );
}

async fn webhook() {
    let mut project = 0;
    let s = setup("30s", "projects = [\"demo/app\"]", 0, 300, |g| {
        project = g.add_project("demo/app", None);
    })
    .await;
    let mut v = Vec::new();
    for _ in 0..100 {
        v.push(s.time_to_create(project, true).await);
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    report("webhook -> Nova create (poll 30 s)", v);
}

async fn poll() {
    let mut project = 0;
    let s = setup("5s", "projects = [\"demo/app\"]", 0, 300, |g| {
        project = g.add_project("demo/app", None);
    })
    .await;
    let mut v = Vec::new();
    for i in 0..20u32 {
        // Spread the arrival over the poll cycle (golden-ratio steps of 5 s).
        let phase = (f64::from(i) * 0.618_034).fract() * 5.0;
        tokio::time::sleep(Duration::from_secs_f64(phase)).await;
        v.push(s.time_to_create(project, false).await);
    }
    report("no webhook -> Nova create (poll 5 s)", v);
}

/// 200 warm VMs wanted at once, 100 ms latency on every GitLab and OpenStack request:
/// from the process's start until the fake Nova has accepted 200 creates.
async fn burst() {
    let latency = Duration::from_millis(100);
    let t0 = tokio::time::Instant::now();
    let s = setup_opts(
        "15s",
        "projects = [\"demo/app\"]",
        200,
        200,
        |g| {
            g.add_project("demo/app", None);
            g.set_latency(latency);
        },
        Some(latency),
    )
    .await;
    while s.cloud.servers().len() < 200 {
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "not 200 servers in 120 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!(
        "burst: 200 servers requested {:.2} s after the controller process was started (100 ms latency on every GitLab and OpenStack request)",
        t0.elapsed().as_secs_f64()
    );
}

/// CPU seconds (user + system) and resident MiB of a process, from /proc.
fn proc_usage(pid: u32) -> (f64, f64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |x| x.1);
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0);
    ((ticks(11) + ticks(12)) / 100.0, rss)
}

async fn scale() {
    let gitlab_projects = 500;
    let started = tokio::time::Instant::now();
    let s = setup("15s", "groups = [\"big\"]", 2000, 2000, |g| {
        let group = g.add_group("big", None);
        for i in 0..gitlab_projects {
            let p = g.add_project(&format!("big/p{i:03}"), Some(group));
            // 20 busy projects, each with a job no runner takes (a tag nobody has).
            if i < 20 {
                g.add_job(p, &["nobody-has-this"], Duration::from_secs(3600));
            }
        }
    })
    .await;
    let t0 = started;
    loop {
        let active = s
            .cloud
            .servers()
            .iter()
            .filter(|x| x.status == autoscaler_fakes::FakeStatus::Active)
            .count();
        if active >= 2000 {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(300),
            "only {active} of 2,000 VMs after 5 minutes"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    println!(
        "scale: 2,000 VMs ACTIVE {:.1} s after the controller was started",
        t0.elapsed().as_secs_f64()
    );
    // Steady state: the runners' creation is more than the adapter's 2-minute "recently
    // active" window ago (until then each runner's job history is read on every tick), the
    // group expansion and the poll cadence have settled. Then measure 2 minutes.
    tokio::time::sleep(Duration::from_secs(140)).await;
    let pid = s.child.id();
    let ticks0 = s.metric("autoscaler_tick_duration_seconds_count").await;
    let (cpu0, _) = proc_usage(pid);
    s.gitlab.clear_requests();
    let window = Duration::from_secs(120);
    let mut peak_rss = 0.0f64;
    let start = tokio::time::Instant::now();
    while start.elapsed() < window {
        peak_rss = peak_rss.max(proc_usage(pid).1);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let (cpu1, rss) = proc_usage(pid);
    let ticks1 = s.metric("autoscaler_tick_duration_seconds_count").await;
    let requests = s.gitlab.requests();
    let jobs_lists = requests
        .iter()
        .filter(|r| r.starts_with("GET /api/v4/projects/") && r.contains("/jobs"))
        .count();
    let ticks = ticks1 - ticks0;
    #[allow(clippy::cast_precision_loss)]
    let per_min = jobs_lists as f64 / 2.0;
    println!(
        "scale: {} servers, {} runners, {gitlab_projects} projects; {ticks} ticks in 120 s; CPU {:.1} ms per tick; RSS {rss:.1} MiB (peak {peak_rss:.1}); {} GitLab requests ({per_min:.0} jobs-list requests per minute, budget 600)",
        s.cloud.servers().len(),
        s.gitlab.runners().len(),
        (cpu1 - cpu0) / ticks.max(1.0) * 1e3,
        requests.len(),
    );
}

fn main() {
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let want = |name: &str| filter.is_empty() || filter.iter().any(|f| name.contains(f.as_str()));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        if want("webhook") {
            webhook().await;
        }
        if want("poll") {
            poll().await;
        }
        if want("burst") {
            burst().await;
        }
        if want("scale") {
            scale().await;
        }
    });
}
