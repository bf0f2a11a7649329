//! The `autoscaler run` process as an operator runs it, against the HTTP fakes on loopback
//! (fake GitLab, fake OpenStack, and a runner simulator that starts a VM's runner when the
//! server goes ACTIVE): SIGKILL during a create and during a delete followed by a restart,
//! a webhook nudge, a 429 storm, quota exhaustion and an off-peak switch. Every scenario
//! asserts that no job was killed, that the pool never exceeded its limit, and that nothing
//! is left once it is over.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use autoscaler_fakes::gitlab::{ADMIN_TOKEN, FakeGitLabServer};
use autoscaler_fakes::{
    FakeOpenStack, FakeOpenStackOptions, FakeQuota, FakeSite, FakeStatus, free_loopback_addr,
};

const WEBHOOK_TOKEN: &str = "process-test-webhook";

/// Pool settings of one scenario.
struct Pool {
    idle_count: u32,
    limit: u32,
    idle_time: &'static str,
    boot_timeout: &'static str,
    poll: &'static str,
    /// Extra TOML appended to the pool (periods).
    extra: &'static str,
}

impl Default for Pool {
    fn default() -> Self {
        Pool {
            idle_count: 0,
            limit: 4,
            idle_time: "2s",
            boot_timeout: "30s",
            poll: "1s",
            extra: "",
        }
    }
}

struct World {
    cloud: Arc<FakeOpenStack>,
    gitlab: Arc<FakeGitLabServer>,
    project: u64,
    config: PathBuf,
    listen: std::net::SocketAddr,
    limit: usize,
    /// Most servers seen at once by the watcher.
    peak: Arc<AtomicUsize>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    child: Option<Child>,
    _site: FakeSite,
    _dir: tempfile::TempDir,
}

impl Drop for World {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        for t in &self.tasks {
            t.abort();
        }
    }
}

async fn world(pool: Pool, quota_instances: u64) -> World {
    let site = FakeSite::start(FakeOpenStackOptions {
        boot_delay: Duration::from_millis(800),
        delete_delay: Duration::from_millis(300),
        quota: FakeQuota::instances(quota_instances),
        ..FakeOpenStackOptions::default()
    })
    .await
    .unwrap();
    let (cloud, gitlab) = (Arc::clone(&site.cloud), Arc::clone(&site.gitlab));
    let project = gitlab.add_project("demo/app", None);
    let dir = tempfile::tempdir().unwrap();
    // A free port for the controller's endpoint.
    let listen = free_loopback_addr().unwrap();
    let config = dir.path().join("autoscaler.toml");
    let text = site
        .config(dir.path(), "projects = [\"demo/app\"]", Some(WEBHOOK_TOKEN))
        .unwrap()
        .id("proc")
        .poll_interval(pool.poll)
        .listen(listen)
        .state_dir(&dir.path().join("state"))
        .pool(
            FakeSite::pool("docker")
                .idle_count(pool.idle_count)
                .limit(pool.limit)
                .idle_time(pool.idle_time)
                .boot_timeout(pool.boot_timeout)
                .extra(pool.extra),
        )
        .render();
    std::fs::write(&config, text).unwrap();
    let peak = Arc::new(AtomicUsize::new(0));
    let watcher = {
        let mut servers = cloud.watch_servers();
        let peak = Arc::clone(&peak);
        tokio::spawn(async move {
            while servers.changed().await.is_ok() {
                let n = servers.borrow_and_update().len();
                peak.fetch_max(n, Ordering::SeqCst);
            }
        })
    };
    World {
        cloud,
        gitlab,
        project,
        config,
        listen,
        limit: pool.limit as usize,
        peak,
        tasks: vec![watcher],
        child: None,
        _site: site,
        _dir: dir,
    }
}

impl World {
    /// Starts `autoscaler run --config` (a second start replaces a killed one).
    fn start(&mut self) {
        assert!(self.child.is_none(), "already running");
        let child = Command::new(env!("CARGO_BIN_EXE_autoscaler"))
            .args(["run", "--config"])
            .arg(&self.config)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
    }

    /// SIGKILL: no shutdown code runs.
    fn kill(&mut self) {
        let mut c = self.child.take().expect("running");
        c.kill().unwrap();
        c.wait().unwrap();
    }

    /// SIGTERM, then waits for the exit (at most 30 s); returns the exit code.
    async fn terminate(&mut self) -> Option<i32> {
        let mut c = self.child.take().expect("running");
        let pid = c.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        for _ in 0..300 {
            if let Some(s) = c.try_wait().unwrap() {
                return s.code();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        c.kill().unwrap();
        panic!("autoscaler did not exit within 30 s of SIGTERM");
    }

    fn add_jobs(&self, n: usize, secs: f64) -> Vec<u64> {
        (0..n)
            .map(|_| {
                self.gitlab
                    .add_job(self.project, &["docker"], Duration::from_secs_f64(secs))
            })
            .collect()
    }

    fn servers(&self) -> usize {
        self.cloud.servers().len()
    }

    fn jobs_done(&self, ids: &[u64]) -> bool {
        self.gitlab
            .jobs()
            .iter()
            .filter(|j| ids.contains(&j.id))
            .all(|j| j.status == "success")
    }

    /// Polls `cond` every 50 ms for at most `secs` seconds.
    async fn until(&self, what: &str, secs: u64, cond: impl Fn(&World) -> bool) {
        for _ in 0..secs * 20 {
            if cond(self) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "timed out after {secs} s waiting for: {what}; servers {:?}, runners {:?}, jobs {:?}",
            self.cloud
                .servers()
                .iter()
                .map(|s| (&s.name, s.status))
                .collect::<Vec<_>>(),
            self.gitlab
                .runners()
                .iter()
                .map(|r| (r.id, &r.description, r.paused))
                .collect::<Vec<_>>(),
            self.gitlab
                .jobs()
                .iter()
                .map(|j| (j.id, j.status.clone()))
                .collect::<Vec<_>>()
        );
    }

    /// The end of every scenario: no job killed, never above the limit, and once the jobs
    /// are done and the pool has shrunk to `idle`, no runner without a server and no
    /// server without a runner.
    async fn assert_clean(&self, idle: usize) {
        self.until("the pool back at its idle count", 60, |w| {
            let servers = w.cloud.servers();
            let runners = w.gitlab.runners();
            servers.len() == idle
                && runners.len() == idle
                && servers.iter().all(|s| s.status == FakeStatus::Active)
                && servers
                    .iter()
                    .all(|s| runners.iter().any(|r| r.description == s.name))
        })
        .await;
        assert_eq!(self.gitlab.killed_jobs(), Vec::<u64>::new(), "killed jobs");
        let peak = self.peak.load(Ordering::SeqCst);
        assert!(
            peak <= self.limit,
            "{peak} servers at once, limit {}",
            self.limit
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_a_create_then_restart_converges_without_leaks() {
    let mut w = world(Pool::default(), 20).await;
    // A slow Nova: every create is in flight for about a second.
    w.cloud.set_latency(Duration::from_millis(1000));
    let jobs = w.add_jobs(3, 1.0);
    w.start();
    // Kill while a runner exists whose server create has not landed yet.
    w.until("a runner whose server is not there yet", 30, |w| {
        let servers = w.cloud.servers();
        w.gitlab
            .runners()
            .iter()
            .any(|r| !servers.iter().any(|s| s.name == r.description))
    })
    .await;
    w.kill();
    w.cloud.set_latency(Duration::ZERO);
    w.start();
    w.until("every job done", 60, |w| w.jobs_done(&jobs)).await;
    w.assert_clean(0).await;
    assert_eq!(w.terminate().await, Some(0));
    assert_eq!(w.servers(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_a_delete_then_restart_converges_without_leaks() {
    let mut w = world(Pool::default(), 20).await;
    let jobs = w.add_jobs(2, 0.5);
    w.start();
    w.until("every job done", 30, |w| w.jobs_done(&jobs)).await;
    // Scale-in starts after the idle time; a slow Nova keeps the delete in flight.
    w.cloud.set_latency(Duration::from_millis(1000));
    w.until("a VM being removed (runner paused or gone)", 30, |w| {
        let runners = w.gitlab.runners();
        runners.iter().any(|r| r.paused) || runners.len() < w.servers()
    })
    .await;
    w.kill();
    w.cloud.set_latency(Duration::ZERO);
    w.start();
    w.assert_clean(0).await;
    assert_eq!(w.terminate().await, Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_nudge_creates_long_before_the_next_poll() {
    let mut w = world(
        Pool {
            poll: "60s",
            ..Pool::default()
        },
        20,
    )
    .await;
    w.start();
    // The first tick (at start) sees nothing; wait for the endpoint.
    let status = format!("http://{}/status", w.listen);
    let http = reqwest::Client::new();
    for _ in 0..200 {
        if let Ok(r) = http.get(&status).send().await {
            let v: serde_json::Value = r.json().await.unwrap();
            if !v["last_success_at"].is_null() {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let jobs = w.add_jobs(1, 0.5);
    let hook = serde_json::json!({"object_kind": "build", "project_id": w.project, "build_status": "pending"});
    let webhook = format!("http://{}/webhook/gitlab", w.listen);
    let bad = http
        .post(&webhook)
        .header("X-Gitlab-Token", "wrong")
        .json(&hook)
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 401);
    let ok = http
        .post(&webhook)
        .header("X-Gitlab-Token", WEBHOOK_TOKEN)
        .json(&hook)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    // Without the nudge the next poll is 60 s away.
    w.until("a server created after the nudge", 15, |w| w.servers() == 1)
        .await;
    w.until("the job done", 30, |w| w.jobs_done(&jobs)).await;
    assert_eq!(w.terminate().await, Some(0));
    assert_eq!(w.gitlab.killed_jobs(), Vec::<u64>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_storm_deletes_no_busy_vm_and_the_pool_recovers() {
    let mut w = world(Pool::default(), 20).await;
    let first = w.add_jobs(3, 6.0);
    w.start();
    w.until("three jobs running", 30, |w| {
        w.gitlab
            .jobs()
            .iter()
            .filter(|j| j.status == "running")
            .count()
            == 3
    })
    .await;
    // Every GitLab request is refused for a while (Retry-After 1 s), while the jobs run.
    w.gitlab.rate_limit(10_000, 1);
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(w.servers(), 3, "no VM may go while its job runs");
    w.gitlab.rate_limit(0, 0);
    w.until("the first jobs done", 60, |w| w.jobs_done(&first))
        .await;
    let second = w.add_jobs(2, 0.5);
    w.until("the later jobs done", 60, |w| w.jobs_done(&second))
        .await;
    w.assert_clean(0).await;
    assert_eq!(w.terminate().await, Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quota_exhaustion_holds_growth_at_the_quota_and_resumes_when_it_grows() {
    let mut w = world(
        Pool {
            limit: 5,
            ..Pool::default()
        },
        2,
    )
    .await;
    let jobs = w.add_jobs(5, 3.0);
    w.start();
    w.until("two servers (the quota)", 30, |w| w.servers() == 2)
        .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(w.servers(), 2, "no server beyond the quota");
    w.until(
        "no runner left over from a create the quota refused",
        10,
        |w| w.gitlab.runners().len() == 2,
    )
    .await;
    w.cloud.set_quota(FakeQuota::instances(20));
    w.until("every job done", 60, |w| w.jobs_done(&jobs)).await;
    w.assert_clean(0).await;
    assert_eq!(w.terminate().await, Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_off_peak_period_shrinks_the_warm_pool_and_its_end_restores_it() {
    // Off-peak in the first half of every minute (7-field syntax with seconds).
    let mut w = world(
        Pool {
            idle_count: 3,
            extra: "\n[[pools.periods]]\nschedules = [\"0-29 * * * * * *\"]\ntimezone = \"UTC\"\nidle_count = 1\n",
            ..Pool::default()
        },
        20,
    )
    .await;
    w.start();
    let started = tokio::time::Instant::now();
    let second = || chrono::Utc::now().timestamp().rem_euclid(60);
    // Whichever half it starts in, the pool is seen in both. The first look waits until the
    // controller has been up for a while (its start-up warm-up takes two runner listings), so
    // a start a few seconds before the end of the off-peak half is not read as "no pool".
    {
        w.until("the last seconds of the off-peak half", 90, |_| {
            started.elapsed() > Duration::from_secs(12) && (24..28).contains(&second())
        })
        .await;
        assert_eq!(w.servers(), 1, "off-peak: idle_count 1");
        w.until("the last seconds of the working half", 70, |_| {
            (54..58).contains(&second())
        })
        .await;
        assert_eq!(w.servers(), 3, "working hours: idle_count 3");
    }
    assert_eq!(w.terminate().await, Some(0));
    assert_eq!(w.gitlab.killed_jobs(), Vec::<u64>::new());
    assert!(w.peak.load(Ordering::SeqCst) <= 4);
}

/// Issue 12: `plan` on the same host shows what the running controller acts on. A create
/// is refused by Nova, so `run` backs off; `plan`, run beside it, reads the memory `run`
/// keeps in `state_dir` and shows the same failure and the same backoff (its end included)
/// as `run`'s `/status`. Before, `plan` planned from an empty memory and showed a create.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_beside_run_shows_the_backoff_run_acts_on() {
    let mut w = world(Pool::default(), 20).await;
    w.cloud
        .fail_next_create(400, "Image not usable for this flavor");
    let jobs = w.add_jobs(1, 0.5);
    w.start();
    let status = format!("http://{}/status", w.listen);
    let http = reqwest::Client::new();
    let mut held_back = Vec::new();
    for _ in 0..300 {
        if let Ok(r) = http.get(&status).send().await {
            if let Ok(v) = r.json::<serde_json::Value>().await {
                held_back = v["pools"][0]["held_back"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                if held_back
                    .iter()
                    .any(|c| c.as_str().is_some_and(|c| c.starts_with("backing off")))
                {
                    break;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!held_back.is_empty(), "run never backed off");
    let out = Command::new(env!("CARGO_BIN_EXE_autoscaler"))
        .args(["plan", "--format", "json", "--config"])
        .arg(&w.config)
        .env("RUST_LOG", "error")
        .output()
        .unwrap();
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "plan output: {e}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let pool = &plan["pools"][0];
    assert_eq!(
        pool["caps"].as_array().cloned().unwrap_or_default(),
        held_back,
        "plan holds back as run does: {plan}"
    );
    assert_eq!(pool["failures"], 1, "{plan}");
    assert!(
        plan["actions"]
            .as_array()
            .is_some_and(|a| !a.iter().any(|a| a["kind"] == "create")),
        "plan shows no create while run backs off: {plan}"
    );
    let text = Command::new(env!("CARGO_BIN_EXE_autoscaler"))
        .args(["plan", "--config"])
        .arg(&w.config)
        .env("RUST_LOG", "error")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("create/boot failures: 1 in a row"), "{text}");
    assert!(text.contains("growth held back: backing off"), "{text}");
    // After the backoff, run creates and the job runs.
    w.until("the job done after the backoff", 90, |w| w.jobs_done(&jobs))
        .await;
    w.assert_clean(0).await;
    assert_eq!(w.terminate().await, Some(0));
}

/// `autoscaler import` of the reference docker+machine config.toml, pointed at the fakes,
/// is accepted by `validate`, and `plan` on it shows the reference setup's behaviour.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_imported_reference_setup_plans_4_warm_vms_2_off_peak_and_at_most_24() {
    let cloud = FakeOpenStack::start(FakeOpenStackOptions {
        flavors: vec![autoscaler_fakes::FakeFlavor::new("s1.large", 4, 8192, 80)],
        images: vec!["Debian 10.1".into()],
        networks: vec!["customer-network".into()],
        security_groups: vec!["mine".into()],
        key_pairs: vec!["GitLab Runner".into()],
        quota: FakeQuota::instances(100),
        ..FakeOpenStackOptions::default()
    })
    .await
    .unwrap();
    let gitlab = FakeGitLabServer::start().await.unwrap();
    let project = gitlab.add_project("icinga/icinga2", None);
    let dir = tempfile::tempdir().unwrap();
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_autoscaler"))
            .args(args)
            .current_dir(&repo)
            .env_remove("RUST_LOG")
            .output()
            .unwrap()
    };
    let imported = run(&["import", "docs/examples/docker-machine-config.toml"]);
    assert_eq!(imported.status.code(), Some(0));
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    };
    // Only the addresses and secret files change: every pool setting is the import's.
    let mut text = String::from_utf8(imported.stdout).unwrap();
    for (from, to) in [
        ("https://git.icinga.com/", format!("{}/", gitlab.url())),
        (
            "/etc/gitlab-autoscaler/gitlab-token",
            write("gitlab-token", ADMIN_TOKEN),
        ),
        ("https://cloud.netways.de:5000/v3/", cloud.auth_url()),
        ("customer-login", "demo".into()),
        ("1234-openstack-customer", "demo".into()),
        // The fake Keystone spells the default domain's name as Keystone does.
        (
            "user_domain_name = \"default\"",
            "user_domain_name = \"Default\"".into(),
        ),
        (
            "project_domain_name = \"default\"",
            "project_domain_name = \"Default\"".into(),
        ),
        (
            "/etc/gitlab-autoscaler/openstack-password",
            write("openstack-password", "demo"),
        ),
    ] {
        assert!(text.contains(from), "the import no longer writes {from}");
        text = text.replace(from, &to);
    }
    let config = write("imported.toml", &text);
    let v = run(&["validate", &config]);
    assert_eq!(
        v.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&v.stdout)
    );

    let plan = |at: &str| {
        let o = run(&["plan", "--config", &config, "--at", at, "--format", "json"]);
        assert_eq!(
            o.status.code(),
            Some(2),
            "changes pending: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap()
    };
    let creates = |p: &serde_json::Value, reason: &str| {
        p["actions"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["kind"] == "create" && a["reason"] == reason)
            .count()
    };
    // Tuesday 10:00 in Berlin: working hours.
    let day = plan("2026-11-24T10:00:00+01:00");
    assert_eq!(day["pools"][0]["idle_count"], 4);
    assert_eq!(day["pools"][0]["limit"], 24);
    assert_eq!(day["pools"][0]["period"], serde_json::Value::Null);
    assert_eq!(creates(&day, "idle_floor"), 4, "{day:#}");
    // Tuesday 23:00 and Saturday noon: off-peak.
    for at in ["2026-11-24T23:00:00+01:00", "2026-11-28T12:00:00+01:00"] {
        let night = plan(at);
        assert_eq!(night["pools"][0]["idle_count"], 2, "{at}");
        assert_eq!(creates(&night, "idle_floor"), 2, "{at}: {night:#}");
    }
    // A release fan-out of 40 jobs: at most 24 VMs.
    for _ in 0..40 {
        gitlab.add_job(project, &[], Duration::from_secs(600));
    }
    let burst = plan("2026-11-24T10:00:00+01:00");
    let all_creates = burst["actions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["kind"] == "create")
        .count();
    assert_eq!(all_creates, 24, "{burst:#}");
    assert_eq!(burst["pools"][0]["pending"], 40);
    // plan changed nothing.
    assert!(cloud.servers().is_empty());
    assert!(gitlab.runners().is_empty());
}

/// Fails on the code before issue 11: the handler was installed only when the first tick
/// had finished, so a SIGTERM during start-up killed the process (exit 143) and skipped
/// `--drain-on-exit`. Signals at several points of the start-up: each must end in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_start_up_or_the_first_tick_ends_in_order() {
    let mut w = world(Pool::default(), 20).await;
    for after_ms in [50u64, 150, 400] {
        w.start();
        tokio::time::sleep(Duration::from_millis(after_ms)).await;
        assert_eq!(
            w.terminate().await,
            Some(0),
            "SIGTERM {after_ms} ms after start"
        );
    }
    // With --drain-on-exit, a SIGTERM while the first VMs are being made still drains.
    w.add_jobs(2, 0.3);
    let child = Command::new(env!("CARGO_BIN_EXE_autoscaler"))
        .args(["run", "--drain-on-exit", "--config"])
        .arg(&w.config)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    w.child = Some(child);
    w.until("a server is being created", 15, |w| w.servers() >= 1)
        .await;
    assert_eq!(w.terminate().await, Some(0));
    assert_eq!(w.servers(), 0, "drained before exit");
    assert_eq!(w.gitlab.killed_jobs(), Vec::<u64>::new());
}
