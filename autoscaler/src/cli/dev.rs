//! `autoscaler run --dev`: the real controller against fakes on loopback, fed from the
//! built-in job trace, with the VM table redrawn as it changes.
//!
//! What runs, all in this process and on 127.0.0.1 only:
//!
//! * the HTTP fake GitLab (`autoscaler_fakes::gitlab`) with one project per project of the
//!   trace, and the HTTP fake OpenStack (`autoscaler_fakes::FakeOpenStack`);
//! * a configuration written to a temporary directory (printed, so `autoscaler status` and
//!   `plan` can be pointed at it from another terminal while this runs) and loaded through
//!   the same parser as any operator's file;
//! * the real controller, exactly as `autoscaler run` starts it (GitLab and OpenStack
//!   clients over HTTP, reconciler, `/metrics`, `/status`, `/webhook/gitlab`);
//! * a runner simulator that plays gitlab-runner on each VM: when a server goes ACTIVE it
//!   reads the server's cloud-init user-data, finds the runner token the controller put
//!   there and tells the fake GitLab that runner has booted, so jobs start only on VMs that
//!   exist (`autoscaler_fakes::play_runners`);
//! * a feeder that replays the busiest hour of the built-in release week at `--speed`
//!   (default 30: one trace minute in two seconds), sending each new job to the webhook too;
//! * a fault control on its own loopback port (printed as `fault control`), for suites that
//!   watch the controller's alerts (`tests/prometheus/run.sh`): `POST /fault/gitlab-down`
//!   makes every GitLab request fail with 503 until `POST /fault/gitlab-up`;
//!   `POST /fault/boot-failures` makes every server created from then on go to ERROR
//!   instead of ACTIVE until `POST /fault/boot-ok`. Only in `run --dev`; never in a
//!   release binary. The create backoff and the circuit breaker's cooldown are scaled by
//!   `--speed` like the boot and idle times (`Pace::backoff`).
//!
//! When the replay is over and every job has finished, the pool shrinks back after its idle
//! time, then the controller drains and deletes every VM (as `run --drain-on-exit`) and a
//! summary is printed. Exit 0 only if no job was killed and no server or runner is left.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::IsTerminal as _;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use autoscaler_config::fixture::PoolFixture;
use autoscaler_fakes::ServerEventKind;
use autoscaler_fakes::gitlab::FakeGitLabServer;
use autoscaler_fakes::{FakeFlavor, FakeOpenStack, FakeOpenStackOptions, FakeQuota, FakeSite};
use tokio::sync::{broadcast, watch};

use super::RunArgs;
use super::controller::{ControllerOptions, serve_and_reconcile, status_rows, status_text};
use crate::sim::trace::{Trace, TraceJob};
use crate::tick::{TickReport, TickView};

/// Secret the dev webhook is configured with (a fake, on loopback only).
const WEBHOOK_TOKEN: &str = "dev-webhook-token";
/// Name of the dev configuration's main pool.
const POOL: &str = "docker";
/// VMs the dev configuration keeps warm.
const IDLE_COUNT: u32 = 2;

/// Knobs derived from `--speed`.
#[derive(Debug, Clone, Copy)]
struct Pace {
    speed: f64,
    boot: Duration,
    idle_time: Duration,
    poll: Duration,
}

impl Pace {
    fn new(speed: f64) -> Pace {
        let scaled = |trace_secs: f64, lo: f64, hi: f64| {
            Duration::from_secs_f64((trace_secs / speed).clamp(lo, hi))
        };
        Pace {
            speed,
            // A Debian VM with Docker takes about two minutes to boot and register.
            boot: scaled(120.0, 1.0, 8.0),
            // Ten trace minutes idle before a surplus VM goes.
            idle_time: Duration::from_secs(scaled(600.0, 5.0, 60.0).as_secs().max(5)),
            poll: Duration::from_secs(2),
        }
    }

    /// The default create backoff and circuit breaker, scaled like the rest of the demo
    /// (at x30: 1 s first wait, 20 s at most, the breaker open for 30 s), so a boot-failure
    /// storm opens and closes the breaker within minutes.
    fn backoff(&self) -> autoscaler_core::model::Backoff {
        let d = autoscaler_core::model::Backoff::default();
        let scale = |t: Duration| Duration::from_secs_f64((t.as_secs_f64() / self.speed).max(1.0));
        autoscaler_core::model::Backoff {
            base: scale(d.base),
            max: scale(d.max),
            breaker_threshold: d.breaker_threshold,
            breaker_cooldown: scale(d.breaker_cooldown),
        }
    }

    /// Real time a trace duration takes at this speed (at least a second).
    fn real(&self, trace_secs: f64) -> Duration {
        Duration::from_secs_f64((trace_secs / self.speed).max(1.0))
    }
}

/// The jobs of the busiest hour of a trace, with a quiet lead-in: (offset from the start of
/// the window in trace seconds, job).
fn busiest_window(trace: &Trace, lead_in: i64, length: i64) -> Vec<(i64, TraceJob)> {
    let jobs = &trace.jobs;
    if jobs.is_empty() {
        return Vec::new();
    }
    // The 10-minute slice with the most arrivals anchors the window.
    let mut counts: BTreeMap<i64, usize> = BTreeMap::new();
    for j in jobs {
        *counts
            .entry(j.submitted.timestamp().div_euclid(600))
            .or_default() += 1;
    }
    let busiest = counts
        .iter()
        .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
        .map_or(0, |(slice, _)| *slice);
    let start = busiest * 600 - lead_in;
    let mut window: Vec<(i64, TraceJob)> = jobs
        .iter()
        .map(|j| (j.submitted.timestamp() - start, j.clone()))
        .filter(|(off, _)| (0..length).contains(off))
        .collect();
    window.sort_by_key(|(off, _)| *off);
    window
}

/// Counts servers created and the most that existed at once.
#[derive(Debug, Default, Clone, Copy)]
struct CloudCounts {
    created: usize,
    deleted: usize,
    peak: usize,
}

async fn count_servers(cloud: Arc<FakeOpenStack>, counts: watch::Sender<CloudCounts>) {
    let mut events = cloud.subscribe();
    loop {
        match events.recv().await {
            Ok(e) => counts.send_modify(|c| match e.kind {
                ServerEventKind::Created => {
                    c.created += 1;
                    c.peak = c.peak.max(cloud.servers().len());
                }
                ServerEventKind::Deleted => c.deleted += 1,
                _ => {}
            }),
            Err(broadcast::error::RecvError::Lagged(_)) => {}
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// Replays the window: each job is queued in the fake GitLab at its (scaled) time and
/// announced to the controller's webhook.
async fn feed(
    gitlab: Arc<FakeGitLabServer>,
    projects: BTreeMap<String, u64>,
    window: Vec<(i64, TraceJob)>,
    pace: Pace,
    webhook: String,
    fed: watch::Sender<usize>,
) {
    let http = reqwest::Client::new();
    let start = tokio::time::Instant::now();
    for (offset, job) in window {
        #[allow(clippy::cast_precision_loss)]
        let at = start + Duration::from_secs_f64(offset as f64 / pace.speed);
        tokio::time::sleep_until(at).await;
        let Some(&project) = projects.get(&job.project) else {
            continue;
        };
        let tags: Vec<&str> = job.tags.iter().map(String::as_str).collect();
        gitlab.add_job(project, &tags, pace.real(f64::from(job.duration_s)));
        fed.send_modify(|n| *n += 1);
        let hook = serde_json::json!({
            "object_kind": "build",
            "project_id": project,
            "build_status": "pending",
        });
        // A lost hook only delays the job until the next poll.
        let _ = http
            .post(&webhook)
            .header("X-Gitlab-Token", WEBHOOK_TOKEN)
            .json(&hook)
            .timeout(Duration::from_secs(2))
            .send()
            .await;
    }
}

/// The configuration the controller runs with, written next to its secrets.
fn write_config(
    dir: &Path,
    site: &FakeSite,
    listen: std::net::SocketAddr,
    projects: &[String],
    pace: Pace,
) -> anyhow::Result<std::path::PathBuf> {
    let q = |s: &str| serde_json::Value::String(s.to_string()).to_string();
    let project_list: Vec<String> = projects.iter().map(|p| q(p)).collect();
    let config = site
        .config(
            dir,
            &format!("projects = [{}]", project_list.join(", ")),
            Some(WEBHOOK_TOKEN),
        )
        .with_context(|| format!("writing the fakes' credentials into {}", dir.display()))?;
    let pool = |name: &str, idle_count: u32, limit: u32| {
        PoolFixture::new(name)
            .capacity(1)
            .idle_count(idle_count)
            .idle_time(&format!("{}s", pace.idle_time.as_secs()))
            .max_builds(8)
            .limit(limit)
            .boot_timeout("2m")
            .forecast_days(0)
            .networks(&["runner-net"])
            .security_groups(&["runner-sg"])
            .run_untagged(false)
            .docker_image("alpine")
            .qemu_binfmt(true)
            .binfmt_arches(&["arm64", "arm"])
    };
    let text = config
        .header(
            "Written by `autoscaler run --dev`: the controller runs with this file against the\n\
             fake GitLab and fake OpenStack of this process. Point `autoscaler status --config` or\n\
             `autoscaler plan --config` at it from another terminal while it runs.\n",
        )
        .id("dev")
        .poll_interval(&format!("{}s", pace.poll.as_secs()))
        .listen(listen)
        .pool(pool(POOL, IDLE_COUNT, 10).tags(&["docker"]))
        // Jobs tagged `privileged` run here, on demand only.
        .pool(
            pool("privileged", 0, 2)
                .tags(&["docker", "privileged"])
                .privileged(true),
        )
        .render();
    let path = dir.join("autoscaler.toml");
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// Job counts by state in the fake GitLab.
#[derive(Debug, Default, PartialEq, Eq, Clone, Copy)]
struct JobCounts {
    pending: usize,
    running: usize,
    done: usize,
    killed: usize,
}

fn job_counts(gitlab: &FakeGitLabServer) -> JobCounts {
    let mut c = JobCounts::default();
    for j in gitlab.jobs() {
        if j.killed {
            c.killed += 1;
        } else {
            match j.status.as_str() {
                "pending" => c.pending += 1,
                "running" => c.running += 1,
                _ => c.done += 1,
            }
        }
    }
    c
}

/// One screen: header, the `status` table of the controller's last tick, its actions.
fn screen(view: &TickView, jobs: JobCounts, fed: usize, total: usize, pace: Pace) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "autoscaler run --dev  {}  replaying {fed}/{total} jobs at x{}",
        view.at.format("%H:%M:%S"),
        pace.speed
    );
    let _ = writeln!(
        o,
        "jobs: {} pending, {} running, {} done, {} killed",
        jobs.pending, jobs.running, jobs.done, jobs.killed
    );
    for p in &view.plan.pools {
        let states: Vec<String> = autoscaler_core::plan::VmState::ALL
            .iter()
            .filter_map(|s| {
                let n = p.count(*s);
                (n > 0).then(|| format!("{n} {}", s.label()))
            })
            .collect();
        let _ = writeln!(
            o,
            "pool {}: target {} VM(s); VMs: {}",
            p.pool,
            p.target,
            if states.is_empty() {
                "none".into()
            } else {
                states.join(", ")
            }
        );
    }
    let _ = writeln!(o);
    o.push_str(&status_text(&status_rows(
        &view.observed,
        &view.plan,
        view.at,
    )));
    if !view.plan.actions.is_empty() {
        let _ = writeln!(o, "\nthis tick:");
        for a in view.plan.actions.iter().take(8) {
            let _ = writeln!(o, "  - {a} ({})", a.reason_label());
        }
        if view.plan.actions.len() > 8 {
            let _ = writeln!(o, "  ... {} more", view.plan.actions.len() - 8);
        }
    }
    o
}

/// What changes between two screens (non-terminal output prints only changes).
fn fingerprint(view: &TickView, jobs: JobCounts) -> String {
    let rows = status_rows(&view.observed, &view.plan, view.at);
    let mut f = format!("{jobs:?}");
    for r in rows {
        let _ = write!(f, "|{}:{}:{}", r.name, r.state, r.jobs_run);
    }
    f
}

/// `autoscaler run --dev`.
pub(super) fn run(args: &RunArgs) -> anyhow::Result<i32> {
    let speed = args.speed;
    anyhow::ensure!(
        speed.is_finite() && (1.0..=3600.0).contains(&speed),
        "--speed {speed}: expected a number from 1 to 3600"
    );
    let pace = Pace::new(speed);
    crate::settings::set_dev_backoff(pace.backoff());
    let trace = Trace::parse(super::REFERENCE_TRACE, "release-week.csv (built-in)")?;
    let window = busiest_window(&trace, 15 * 60, 75 * 60);
    anyhow::ensure!(!window.is_empty(), "the built-in trace has no jobs");
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(dev(args, pace, window))
}

async fn dev(args: &RunArgs, pace: Pace, window: Vec<(i64, TraceJob)>) -> anyhow::Result<i32> {
    let site = FakeSite::start(FakeOpenStackOptions {
        flavors: vec![FakeFlavor::new("s1.large", 4, 8192, 80)],
        boot_delay: pace.boot,
        boot_jitter: pace.boot / 2,
        delete_delay: Duration::from_millis(500),
        quota: FakeQuota {
            instances: Some(40),
            cores: Some(160),
            ram_mb: Some(40 * 8192),
        },
        ..FakeOpenStackOptions::default()
    })
    .await
    .context("starting the fake GitLab and OpenStack")?;
    let (cloud, gitlab) = (Arc::clone(&site.cloud), Arc::clone(&site.gitlab));
    let names: BTreeSet<String> = window.iter().map(|(_, j)| j.project.clone()).collect();
    let mut projects = BTreeMap::new();
    let mut paths = Vec::new();
    for name in names {
        let path = format!("release/{name}");
        projects.insert(name, gitlab.add_project(&path, None));
        paths.push(path);
    }
    let dir = tempfile::Builder::new()
        .prefix("autoscaler-dev-")
        .tempdir()
        .context("creating a temporary directory")?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("listening on 127.0.0.1")?;
    let listen = listener.local_addr()?;
    let path = write_config(dir.path(), &site, listen, &paths, pace)?;
    let config = Arc::new(autoscaler_config::load(&path).map_err(|e| anyhow::anyhow!("{e}"))?);

    eprintln!("fake GitLab    {}", gitlab.url());
    eprintln!("fake OpenStack {}", cloud.auth_url());
    eprintln!("controller     http://{listen}/status  /metrics");
    eprintln!("configuration  {}", path.display());
    let control = fault_control(Arc::clone(&cloud), Arc::clone(&gitlab)).await?;
    eprintln!(
        "fault control  http://{control}/fault/{{gitlab-down,gitlab-up,boot-failures,boot-ok}}"
    );
    eprintln!(
        "replaying {} jobs of the built-in release week's busiest hour at x{}; Ctrl-C stops early",
        window.len(),
        pace.speed
    );

    let total = window.len();
    let (counts_tx, counts) = watch::channel(CloudCounts::default());
    let counter = tokio::spawn(count_servers(Arc::clone(&cloud), counts_tx));
    let (fed_tx, fed) = watch::channel(0usize);
    let feeder = tokio::spawn(feed(
        Arc::clone(&gitlab),
        projects,
        window,
        pace,
        format!("http://{listen}/webhook/gitlab"),
        fed_tx,
    ));

    let (reports_tx, mut views) = watch::channel::<Option<Arc<TickReport>>>(None);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let controller = {
        let config = Arc::clone(&config);
        tokio::spawn(async move {
            serve_and_reconcile(
                config,
                listener,
                ControllerOptions {
                    drain_on_exit: true,
                    drain_timeout: Duration::from_secs(120),
                    reports: Some(reports_tx),
                    // The demo world starts empty, and so does the controller's memory of
                    // it: nothing in flight, no reason to wait for a second runner listing.
                    memory: Some(Arc::new(empty_memory())),
                },
                async move {
                    let _ = stop_rx.await;
                },
            )
            .await
        })
    };

    let tty = std::io::stdout().is_terminal();
    let deadline = args.duration.map(|d| tokio::time::Instant::now() + d);
    let mut last = String::new();
    let mut settled = 0;
    let mut interrupted = false;
    let mut stop_tx = Some(stop_tx);
    let mut controller = controller;
    let result = loop {
        tokio::select! {
            changed = views.changed() => {
                if changed.is_err() {
                    break None;
                }
            }
            r = &mut controller => break Some(r),
            _ = tokio::signal::ctrl_c(), if !interrupted => {
                interrupted = true;
                eprintln!("interrupted: draining every VM, then stopping");
                if let Some(tx) = stop_tx.take() { let _ = tx.send(()); }
                continue;
            }
        }
        let Some(view) = latest_view(&mut views) else {
            continue;
        };
        let jobs = job_counts(&gitlab);
        let fed_now = *fed.borrow();
        if tty {
            print!("\x1b[H\x1b[2J{}", screen(&view, jobs, fed_now, total, pace));
        } else {
            let f = fingerprint(&view, jobs);
            if f != last {
                println!("{}", screen(&view, jobs, fed_now, total, pace));
                last = f;
            }
        }
        // Done: everything fed and finished, the pool back at its idle count, nothing to do.
        let quiet = feeder.is_finished()
            && jobs.pending == 0
            && jobs.running == 0
            && view.plan.actions.is_empty()
            && view.observed.vms.len() <= IDLE_COUNT as usize;
        settled = if quiet { settled + 1 } else { 0 };
        let out_of_time = deadline.is_some_and(|d| tokio::time::Instant::now() >= d);
        if settled >= 2 || out_of_time {
            if let Some(tx) = stop_tx.take() {
                eprintln!("replay over: draining every VM, then stopping");
                let _ = tx.send(());
            }
        }
    };
    let outcome = match result {
        Some(joined) => joined.context("the controller task failed")?,
        None => (&mut controller)
            .await
            .context("the controller task failed")?,
    };
    // The drain's last tick may land after the loop stopped watching: show it.
    if let Some(view) = latest_view(&mut views) {
        let jobs = job_counts(&gitlab);
        let fed_now = *fed.borrow();
        if tty {
            print!("\x1b[H\x1b[2J{}", screen(&view, jobs, fed_now, total, pace));
        } else if fingerprint(&view, jobs) != last {
            println!("{}", screen(&view, jobs, fed_now, total, pace));
        }
    }
    feeder.abort();
    counter.abort();

    let jobs = job_counts(&gitlab);
    let c = *counts.borrow();
    let servers_left = cloud.servers().len();
    let runners_left = gitlab.runners().len();
    println!(
        "\nsummary: {} of {total} jobs fed, {} done, {} killed; {} VMs created (at most {} at once), {} deleted; left: {servers_left} servers, {runners_left} runners",
        *fed.borrow(),
        jobs.done,
        jobs.killed,
        c.created,
        c.peak,
        c.deleted
    );
    outcome?;
    Ok(
        if jobs.killed == 0 && servers_left == 0 && runners_left == 0 {
            0
        } else {
            1
        },
    )
}

/// Requests the fake GitLab fails while `gitlab-down` holds (far more than a run makes).
const GITLAB_DOWN_REQUESTS: usize = 1_000_000;
/// Boots that fail while `boot-failures` holds.
const BOOT_FAULTS: usize = 10_000;

/// Serves the fault control (see the module docs) on a loopback port; returns its address.
async fn fault_control(
    cloud: Arc<FakeOpenStack>,
    gitlab: Arc<FakeGitLabServer>,
) -> anyhow::Result<std::net::SocketAddr> {
    use axum::routing::post;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("listening on 127.0.0.1 for the fault control")?;
    let addr = listener.local_addr()?;
    let down = Arc::clone(&gitlab);
    let up = gitlab;
    let storm = Arc::clone(&cloud);
    let calm = cloud;
    let app = axum::Router::new()
        .route(
            "/fault/gitlab-down",
            post(move || async move {
                eprintln!("fault: GitLab answers 503 to every request");
                down.fail_next(GITLAB_DOWN_REQUESTS, 503);
                "gitlab down\n"
            }),
        )
        .route(
            "/fault/gitlab-up",
            post(move || async move {
                eprintln!("fault cleared: GitLab answers again");
                up.clear_failures();
                "gitlab up\n"
            }),
        )
        .route(
            "/fault/boot-failures",
            post(move || async move {
                eprintln!("fault: every new server goes to ERROR");
                for _ in 0..BOOT_FAULTS {
                    storm.boot_fault_next("No valid host was found. (dev fault control)");
                }
                "boots fail\n"
            }),
        )
        .route(
            "/fault/boot-ok",
            post(move || async move {
                eprintln!("fault cleared: servers boot again");
                calm.clear_boot_faults();
                "boots ok\n"
            }),
        );
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(addr)
}

/// A memory store holding an empty memory document.
fn empty_memory() -> autoscaler_core::memory::MemoryStore {
    let store = autoscaler_core::memory::MemoryStore::default();
    // Saving into memory cannot fail.
    let _ = autoscaler_core::memory::StateStore::save(
        &store,
        &autoscaler_core::memory::Memory::default().to_text(),
    );
    store
}

/// The view of the latest tick that got as far as a plan (a tick whose cloud listing
/// failed has none).
fn latest_view(reports: &mut watch::Receiver<Option<Arc<TickReport>>>) -> Option<TickView> {
    let report = reports.borrow_and_update().clone()?;
    report.outcome.as_ref().ok().cloned()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_window_holds_the_busiest_slice_after_a_lead_in() {
        let trace = Trace::parse(super::super::REFERENCE_TRACE, "built-in").unwrap();
        let w = busiest_window(&trace, 900, 4500);
        assert!(w.len() >= 39, "{} jobs", w.len());
        assert!(w.iter().all(|(off, _)| (0..4500).contains(off)));
        assert!(w.windows(2).all(|p| p[0].0 <= p[1].0));
        // The busiest 10-minute slice starts after the 15-minute lead-in, and no other
        // slice of the window (same alignment) has more jobs.
        let in_slice = |from: i64| {
            w.iter()
                .filter(|(off, _)| (from..from + 600).contains(off))
                .count()
        };
        let busiest = in_slice(900);
        assert!(busiest >= 39, "{busiest}");
        for k in 0..7 {
            assert!(in_slice(300 + k * 600) <= busiest);
        }
    }

    #[test]
    fn pace_scales_boot_and_idle_time() {
        let p = Pace::new(30.0);
        assert_eq!(p.boot, Duration::from_secs(4));
        assert_eq!(p.idle_time, Duration::from_secs(20));
        assert_eq!(p.real(300.0), Duration::from_secs(10));
        let fast = Pace::new(600.0);
        assert_eq!(fast.boot, Duration::from_secs(1));
        assert_eq!(fast.idle_time, Duration::from_secs(5));
        assert_eq!(fast.real(1.0), Duration::from_secs(1));
        let b = p.backoff();
        assert_eq!(b.base, Duration::from_secs(1));
        assert_eq!(b.max, Duration::from_secs(20));
        assert_eq!(b.breaker_cooldown, Duration::from_secs(30));
        assert_eq!(b.breaker_threshold, 5);
    }
}
