//! The controller's HTTP endpoint: `/metrics`, `/healthz`, `/status`, `/webhook/gitlab`.
//!
//! [`Telemetry`] is what the reconciler updates after each tick (status document and
//! Prometheus metrics); [`router`] serves it. The webhook accepts GitLab Job Hooks: the
//! `X-Gitlab-Token` header is compared in constant time, a bad token is 401, a malformed
//! body 400, and a job that became pending nudges an immediate poll of its project.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use secrecy::{ExposeSecret as _, SecretString};
use serde::Deserialize;
use tokio::sync::mpsc;

use crate::tick::{TickReport, TickTotals};
use autoscaler_core::model::Timestamp;
use autoscaler_core::plan::VmState;

pub use autoscaler_core::status::{ControllerPoolStatus, ControllerStatus};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolState {
    pool: String,
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolLabel {
    pool: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolCap {
    pool: String,
    cap: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ActionLabel {
    kind: String,
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ServiceLabel {
    service: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FailureLabel {
    service: String,
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabel {
    service: String,
    class: String,
}

/// Metrics, status and the webhook's nudge channel, fed from the reconciler's tick reports.
#[derive(Clone)]
pub struct Telemetry {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Registry,
    vms: Family<PoolState, Gauge>,
    pending: Family<PoolLabel, Gauge>,
    running: Family<PoolLabel, Gauge>,
    oldest_pending: Gauge<f64, std::sync::atomic::AtomicU64>,
    oldest_booting: Family<PoolLabel, Gauge<f64, std::sync::atomic::AtomicU64>>,
    capped: Family<PoolCap, Gauge>,
    expected: Family<PoolLabel, Gauge>,
    orphan_runners: Gauge,
    job_wait: Histogram,
    /// Jobs seen running on the last successful tick (`None` before the first): a job
    /// that appears running is observed in `job_wait` once.
    running_seen: Mutex<Option<BTreeSet<u64>>>,
    actions: Family<ActionLabel, Counter>,
    errors: Family<ErrorLabel, Counter>,
    tick_failures: Family<FailureLabel, Counter>,
    tick_seconds: Histogram,
    last_success: Gauge<f64, std::sync::atomic::AtomicU64>,
    api_up: Family<ServiceLabel, Gauge>,
    down_since: Family<ServiceLabel, Gauge<f64, std::sync::atomic::AtomicU64>>,
    status: Mutex<ControllerStatus>,
    /// The last report read and the totals it carried (counters grow by the difference).
    seen: Mutex<(u64, TickTotals)>,
    poll_interval: Duration,
    webhook_token: Option<SecretString>,
    nudges: mpsc::Sender<u64>,
}

impl std::fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Telemetry").finish_non_exhaustive()
    }
}

impl Telemetry {
    /// New telemetry for `controller_id`; returns the receiver of webhook nudges (project ids).
    pub fn new(
        controller_id: &str,
        poll_interval: Duration,
        webhook_token: Option<SecretString>,
    ) -> (Self, mpsc::Receiver<u64>) {
        let mut registry = Registry::with_prefix("autoscaler");
        let vms = Family::<PoolState, Gauge>::default();
        let pending = Family::<PoolLabel, Gauge>::default();
        let running = Family::<PoolLabel, Gauge>::default();
        let actions = Family::<ActionLabel, Counter>::default();
        let errors = Family::<ErrorLabel, Counter>::default();
        let tick_failures = Family::<FailureLabel, Counter>::default();
        let oldest_pending = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        let oldest_booting =
            Family::<PoolLabel, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
        let capped = Family::<PoolCap, Gauge>::default();
        let expected = Family::<PoolLabel, Gauge>::default();
        let orphan_runners = Gauge::default();
        let job_wait =
            Histogram::new([10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0]);
        let tick_seconds = Histogram::new([0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0]);
        let last_success = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        let api_up = Family::<ServiceLabel, Gauge>::default();
        let down_since =
            Family::<ServiceLabel, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
        registry.register(
            "api_up",
            "1 while the service (gitlab, openstack) could be read on the last tick, else 0",
            api_up.clone(),
        );
        registry.register(
            "api_down_since_timestamp_seconds",
            "Unix time since when the service cannot be read (0 while it can)",
            down_since.clone(),
        );
        registry.register("vms", "VMs by pool and state", vms.clone());
        registry.register("jobs_pending", "Pending jobs by pool", pending.clone());
        registry.register("jobs_running", "Running jobs by pool", running.clone());
        registry.register(
            "jobs_oldest_pending_age_seconds",
            "Age of the oldest pending job of the configured scope (0 when none is pending)",
            oldest_pending.clone(),
        );
        registry.register(
            "job_wait_seconds",
            "Time from a job's creation until the controller first saw it running (within one poll interval of its start)",
            job_wait.clone(),
        );
        registry.register(
            "vms_oldest_booting_age_seconds",
            "Age of the pool's oldest VM still creating or booting (0 when none is)",
            oldest_booting.clone(),
        );
        registry.register(
            "pool_capped",
            "1 while the cap (limit, max_growth, quota, backoff, circuit_open, starting) holds the pool's growth back, else 0",
            capped.clone(),
        );
        registry.register(
            "forecast_expected_jobs",
            "Job slots the forecast keeps warm per pool: the burst expected within the pre-warm look-ahead, or in wait-target mode the reserve sized for the wait target if larger (0 without a forecast)",
            expected.clone(),
        );
        registry.register(
            "orphan_runners",
            "Runners this controller created whose server does not exist",
            orphan_runners.clone(),
        );
        registry.register(
            "actions",
            "Actions carried out (not merely planned), by kind and reason",
            actions.clone(),
        );
        registry.register(
            "api_errors",
            "API errors by service and class",
            errors.clone(),
        );
        registry.register(
            "tick_failures",
            "Ticks that could not act, by the service at fault (openstack: the tick failed; gitlab: it acted on nothing) and kind (auth, unavailable, misconfigured, unexpected)",
            tick_failures.clone(),
        );
        registry.register(
            "tick_duration_seconds",
            "Duration of a reconcile tick",
            tick_seconds.clone(),
        );
        registry.register(
            "last_successful_tick_timestamp_seconds",
            "Unix time of the last successful tick",
            last_success.clone(),
        );
        let (tx, rx) = mpsc::channel(256);
        let t = Telemetry {
            inner: Arc::new(Inner {
                registry,
                vms,
                pending,
                running,
                oldest_pending,
                oldest_booting,
                capped,
                expected,
                orphan_runners,
                job_wait,
                running_seen: Mutex::new(None),
                actions,
                errors,
                tick_failures,
                tick_seconds,
                last_success,
                api_up,
                down_since,
                status: Mutex::new(ControllerStatus {
                    controller_id: controller_id.to_string(),
                    version: env!("CARGO_PKG_VERSION").to_string(),
                    ..ControllerStatus::default()
                }),
                seen: Mutex::new((0, TickTotals::default())),
                poll_interval,
                webhook_token,
                nudges: tx,
            }),
        };
        (t, rx)
    }

    /// Follows the reconciler's report channel: every report published there updates the
    /// metrics and the status document. Ends when the channel closes.
    pub fn follow(
        &self,
        mut reports: tokio::sync::watch::Receiver<Option<Arc<TickReport>>>,
    ) -> tokio::task::JoinHandle<()> {
        let t = self.clone();
        tokio::spawn(async move {
            loop {
                let report = reports.borrow_and_update().clone();
                if let Some(r) = report {
                    t.record(&r);
                }
                if reports.changed().await.is_err() {
                    return;
                }
            }
        })
    }

    /// Records one tick report: gauges and status from its outcome; counters and the
    /// duration histogram from its totals, so reports skipped in between are counted too.
    pub fn record(&self, report: &TickReport) {
        let i = &self.inner;
        {
            let mut seen = i.seen.lock().unwrap_or_else(PoisonError::into_inner);
            if report.seq <= seen.0 {
                return;
            }
            let (last_seq, last) = &*seen;
            for (seq, secs) in &report.totals.recent_seconds {
                if seq > last_seq {
                    i.tick_seconds.observe(*secs);
                }
            }
            for ((kind, reason), n) in &report.totals.applied {
                let before = last.applied.get(&(*kind, *reason)).copied().unwrap_or(0);
                if *n > before {
                    i.actions
                        .get_or_create(&ActionLabel {
                            kind: (*kind).to_string(),
                            reason: (*reason).to_string(),
                        })
                        .inc_by(n - before);
                }
            }
            for ((service, kind), n) in &report.totals.failures {
                let before = last.failures.get(&(*service, *kind)).copied().unwrap_or(0);
                if *n > before {
                    i.tick_failures
                        .get_or_create(&FailureLabel {
                            service: (*service).to_string(),
                            kind: (*kind).to_string(),
                        })
                        .inc_by(n - before);
                    let class = if *service == "gitlab" {
                        "unavailable"
                    } else {
                        "tick_failed"
                    };
                    i.errors
                        .get_or_create(&ErrorLabel {
                            service: (*service).to_string(),
                            class: class.to_string(),
                        })
                        .inc_by(n - before);
                }
            }
            *seen = (report.seq, report.totals.clone());
        }
        let started = report.started;
        let seconds = report.seconds;
        let mut status = i.status.lock().unwrap_or_else(PoisonError::into_inner);
        status.last_tick_at = Some(started);
        match &report.outcome {
            Ok(view) => {
                let (plan, summary) = (&view.plan, &view.summary);
                let end = started + chrono::Duration::milliseconds((seconds * 1000.0) as i64);
                status.last_success_at = Some(end);
                status.last_error = summary.failures.first().cloned();
                i.last_success.set(end.timestamp_millis() as f64 / 1000.0);
                status.pools = plan
                    .pools
                    .iter()
                    .map(|p| ControllerPoolStatus {
                        name: p.pool.clone(),
                        vms: p.vms.len() as u32,
                        desired: p.target,
                        pending_jobs: p.pending,
                        circuit_open: p
                            .caps
                            .iter()
                            .any(|c| matches!(c, autoscaler_core::plan::Cap::CircuitOpen(_))),
                        held_back: p.caps.iter().map(ToString::to_string).collect(),
                    })
                    .collect();
                for p in &plan.pools {
                    for s in VmState::ALL {
                        i.vms
                            .get_or_create(&PoolState {
                                pool: p.pool.clone(),
                                state: s.label().to_string(),
                            })
                            .set(i64::from(p.count(s)));
                    }
                    let label = PoolLabel {
                        pool: p.pool.clone(),
                    };
                    i.pending.get_or_create(&label).set(i64::from(p.pending));
                    i.running.get_or_create(&label).set(i64::from(p.running));
                    let booting = view
                        .observed
                        .vms
                        .iter()
                        .filter(|v| v.pool == p.pool)
                        .filter(|v| {
                            p.vms.iter().any(|(id, s)| {
                                *id == v.id && matches!(s, VmState::Creating | VmState::Booting)
                            })
                        })
                        .map(|v| age(view.at, v.created_at))
                        .fold(0.0, f64::max);
                    i.oldest_booting.get_or_create(&label).set(booting);
                    for (cap, on) in caps(&p.caps) {
                        i.capped
                            .get_or_create(&PoolCap {
                                pool: p.pool.clone(),
                                cap: cap.to_string(),
                            })
                            .set(i64::from(on));
                    }
                    // The burst forecast, or in wait-target mode the reserve if larger.
                    let burst = view.observed.expected.get(&p.pool).copied().unwrap_or(0);
                    let reserve = p.reserve.as_ref().map_or(0, |r| r.slots);
                    i.expected
                        .get_or_create(&label)
                        .set(i64::from(burst.max(reserve)));
                }
                self.record_jobs(view);
                status.openstack_unavailable_since = None;
                status.openstack_error = None;
                status.openstack_error_kind = None;
                self.set_up("openstack", None);
                match &summary.gitlab_down {
                    Some(o) => {
                        status.gitlab_unavailable_since = Some(o.since);
                        status.gitlab_error = Some(o.error.clone());
                        status.gitlab_error_kind = Some(o.kind.label().to_string());
                        status.last_error = Some(format!(
                            "gitlab unavailable since {} ({}): {}",
                            o.since.to_rfc3339(),
                            o.kind,
                            o.error
                        ));
                        self.set_up("gitlab", Some(o.since));
                    }
                    None => {
                        status.gitlab_unavailable_since = None;
                        status.gitlab_error = None;
                        status.gitlab_error_kind = None;
                        self.set_up("gitlab", None);
                    }
                }
                drop(status);
            }
            Err(o) => {
                status.openstack_unavailable_since = Some(o.since);
                status.openstack_error = Some(o.error.clone());
                status.openstack_error_kind = Some(o.kind.label().to_string());
                status.last_error = Some(o.error.clone());
                drop(status);
                self.set_up("openstack", Some(o.since));
            }
        }
    }

    /// Oldest pending job, orphan runners, and the wait of each job newly seen running.
    fn record_jobs(&self, view: &crate::tick::TickView) {
        let i = &self.inner;
        let obs = &view.observed;
        // GitLab unreadable: the last values stand (nothing new is known).
        if let Some(pending) = &obs.pending {
            i.oldest_pending.set(
                pending
                    .iter()
                    .map(|j| age(view.at, j.queued_since))
                    .fold(0.0, f64::max),
            );
        }
        i.orphan_runners.set(obs.orphan_runners.len() as i64);
        if obs.pending.is_none() {
            return;
        }
        let running: Vec<_> = obs
            .vms
            .iter()
            .filter_map(|v| v.runner.as_ref())
            .flat_map(|r| r.running.iter())
            .collect();
        let mut seen = i
            .running_seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(before) = seen.as_ref() {
            // Jobs already running when the controller started are not counted: their
            // start is unknown.
            for j in &running {
                if !before.contains(&j.id) {
                    i.job_wait.observe(age(view.at, j.queued_since));
                }
            }
        }
        *seen = Some(running.iter().map(|j| j.id).collect());
    }

    /// Sets `api_up` and `api_down_since_timestamp_seconds` of one service.
    fn set_up(&self, service: &str, down_since: Option<Timestamp>) {
        let label = ServiceLabel {
            service: service.to_string(),
        };
        self.inner
            .api_up
            .get_or_create(&label)
            .set(i64::from(down_since.is_none()));
        self.inner
            .down_since
            .get_or_create(&label)
            .set(down_since.map_or(0.0, |t| t.timestamp_millis() as f64 / 1000.0));
    }

    /// Counts an API error.
    pub fn api_error(&self, service: &str, class: &str) {
        self.inner
            .errors
            .get_or_create(&ErrorLabel {
                service: service.to_string(),
                class: class.to_string(),
            })
            .inc();
    }

    /// The status document now.
    pub fn status(&self) -> ControllerStatus {
        self.inner
            .status
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// OpenMetrics text.
    pub fn metrics_text(&self) -> String {
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.inner.registry);
        out
    }
}

/// Seconds from `since` to `at` (0 if `since` is later).
fn age(at: Timestamp, since: Timestamp) -> f64 {
    ((at - since).num_milliseconds().max(0) as f64) / 1000.0
}

/// Every cap label with whether it holds in `held`.
fn caps(held: &[autoscaler_core::plan::Cap]) -> [(&'static str, bool); 6] {
    use autoscaler_core::plan::Cap;
    let has = |f: fn(&Cap) -> bool| held.iter().any(f);
    [
        ("limit", has(|c| matches!(c, Cap::Limit))),
        ("max_growth", has(|c| matches!(c, Cap::MaxGrowth))),
        ("quota", has(|c| matches!(c, Cap::Quota))),
        ("backoff", has(|c| matches!(c, Cap::Backoff(_)))),
        ("circuit_open", has(|c| matches!(c, Cap::CircuitOpen(_)))),
        ("starting", has(|c| matches!(c, Cap::Starting(_)))),
    ]
}

/// The HTTP routes.
pub fn router(t: Telemetry) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/status", get(status))
        .route("/webhook/gitlab", post(webhook))
        .with_state(t)
}

async fn metrics(State(t): State<Telemetry>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        t.metrics_text(),
    )
        .into_response()
}

async fn status(State(t): State<Telemetry>) -> Response {
    axum::Json(t.status()).into_response()
}

/// 200 when the last successful tick is younger than three poll intervals (plus a minute)
/// and GitLab has not been unreadable for that long; 503 otherwise, saying since when and
/// why: a controller that cannot read its cloud or GitLab is not healthy (it acts on
/// nothing while GitLab is unreadable).
async fn healthz(State(t): State<Telemetry>) -> Response {
    let s = t.status();
    let max_age = chrono::Duration::from_std(t.inner.poll_interval * 3 + Duration::from_secs(60))
        .unwrap_or(chrono::Duration::MAX);
    let now = chrono::Utc::now();
    if let Some(since) = s.gitlab_unavailable_since {
        if now - since > max_age {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "gitlab unavailable since {}{}: {}\n",
                    since.to_rfc3339(),
                    kind_note(s.gitlab_error_kind.as_deref()),
                    s.gitlab_error.as_deref().unwrap_or("unknown error")
                ),
            )
                .into_response();
        }
    }
    match s.last_success_at {
        Some(at) if now - at <= max_age => (StatusCode::OK, "ok\n").into_response(),
        Some(at) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "last successful tick at {}{}\n",
                at.to_rfc3339(),
                s.openstack_error
                    .as_deref()
                    .map(|e| format!(
                        "; openstack{}: {e}",
                        kind_note(s.openstack_error_kind.as_deref())
                    ))
                    .unwrap_or_default()
            ),
        )
            .into_response(),
        None => (StatusCode::SERVICE_UNAVAILABLE, "no successful tick yet\n").into_response(),
    }
}

/// ` (auth)` after a service's name in `/healthz`, when the failure's kind is known.
fn kind_note(kind: Option<&str>) -> String {
    kind.map(|k| format!(" ({k})")).unwrap_or_default()
}

#[derive(Deserialize)]
struct JobHook {
    object_kind: String,
    project_id: u64,
    build_status: String,
}

async fn webhook(State(t): State<Telemetry>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(expected) = &t.inner.webhook_token else {
        return (StatusCode::NOT_FOUND, "webhook not configured\n").into_response();
    };
    let given = headers
        .get("x-gitlab-token")
        .map(|v| v.as_bytes())
        .unwrap_or_default();
    if !constant_time_eq(given, expected.expose_secret().as_bytes()) {
        return (StatusCode::UNAUTHORIZED, "bad token\n").into_response();
    }
    let hook: JobHook = match serde_json::from_slice(&body) {
        Ok(h) => h,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                format!("malformed job hook: {e}\n"),
            )
                .into_response();
        }
    };
    if hook.object_kind != "build" {
        return (StatusCode::BAD_REQUEST, "not a job hook\n").into_response();
    }
    if hook.build_status == "pending" {
        // Full channel: a poll is already due; dropping the nudge loses nothing.
        let _ = t.inner.nudges.try_send(hook.project_id);
    }
    (StatusCode::OK, "accepted\n").into_response()
}

/// Compares without an early exit, so timing does not reveal the matching prefix.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= usize::from(x ^ y);
    }
    diff == 0
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt as _;

    use autoscaler_core::plan::Plan;

    /// Feeds `t` one report of a tick that planned `plan` and did `summary`, as the
    /// reconciler's channel would (sequence numbers and totals carried on).
    fn record_tick(t: &Telemetry, seconds: f64, plan: &Plan, summary: &crate::tick::TickSummary) {
        let (seq, mut totals) = t.inner.seen.lock().unwrap().clone();
        totals.add(seq + 1, seconds, Ok(summary));
        t.record(&TickReport {
            seq: seq + 1,
            started: chrono::Utc::now(),
            seconds,
            outcome: Ok(crate::tick::TickView {
                at: chrono::Utc::now(),
                observed: autoscaler_core::model::Observed::default(),
                plan: plan.clone(),
                summary: summary.clone(),
            }),
            totals,
        });
    }

    fn telemetry() -> (Telemetry, mpsc::Receiver<u64>) {
        Telemetry::new(
            "ci",
            Duration::from_secs(15),
            Some(SecretString::from("s3cret".to_string())),
        )
    }

    async fn send(t: &Telemetry, token: Option<&str>, body: &str) -> StatusCode {
        let mut req = Request::post("/webhook/gitlab").header("content-type", "application/json");
        if let Some(tok) = token {
            req = req.header("X-Gitlab-Token", tok);
        }
        router(t.clone())
            .oneshot(req.body(Body::from(body.to_string())).unwrap())
            .await
            .unwrap()
            .status()
    }

    const PENDING: &str =
        r#"{"object_kind":"build","project_id":42,"build_status":"pending","build_id":7}"#;

    #[tokio::test]
    async fn a_pending_job_hook_nudges_its_project() {
        let (t, mut rx) = telemetry();
        assert_eq!(send(&t, Some("s3cret"), PENDING).await, StatusCode::OK);
        assert_eq!(rx.try_recv().unwrap(), 42);
    }

    #[tokio::test]
    async fn a_bad_or_missing_token_is_401_and_nudges_nothing() {
        let (t, mut rx) = telemetry();
        assert_eq!(
            send(&t, Some("s3creT"), PENDING).await,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(send(&t, None, PENDING).await, StatusCode::UNAUTHORIZED);
        assert!(rx.try_recv().is_err());
    }

    #[tokio::test]
    async fn a_malformed_body_is_400() {
        let (t, _rx) = telemetry();
        assert_eq!(
            send(&t, Some("s3cret"), "{nope").await,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            send(
                &t,
                Some("s3cret"),
                r#"{"object_kind":"push","project_id":1,"build_status":"x"}"#
            )
            .await,
            StatusCode::BAD_REQUEST
        );
    }

    #[tokio::test]
    async fn a_running_job_hook_is_accepted_without_a_nudge() {
        let (t, mut rx) = telemetry();
        let body = PENDING.replace("pending", "running");
        assert_eq!(send(&t, Some("s3cret"), &body).await, StatusCode::OK);
        assert!(rx.try_recv().is_err());
    }

    #[tokio::test]
    async fn healthz_is_503_before_the_first_successful_tick_and_200_after() {
        let (t, _rx) = telemetry();
        let get = |t: &Telemetry| {
            router(t.clone()).oneshot(Request::get("/healthz").body(Body::empty()).unwrap())
        };
        assert_eq!(
            get(&t).await.unwrap().status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        let plan = Plan::default();
        let summary = crate::tick::TickSummary::default();
        record_tick(&t, 0.01, &plan, &summary);
        assert_eq!(get(&t).await.unwrap().status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn metrics_carry_vm_states_and_actions() {
        let (t, _rx) = telemetry();
        let plan = Plan {
            pools: vec![autoscaler_core::plan::PoolPlan {
                pool: "docker".into(),
                pending: 3,
                running: 1,
                target: 4,
                vms: vec![(autoscaler_core::model::VmId("a".into()), VmState::Busy)],
                caps: vec![],
                unsettled: 0,
                reserve: None,
            }],
            actions: vec![autoscaler_core::plan::Action::Create {
                pool: "docker".into(),
                reason: autoscaler_core::plan::CreateReason::Demand,
            }],
            ..Plan::default()
        };
        // Two creates planned, one carried out: the counter counts what was done.
        let mut summary = crate::tick::TickSummary::default();
        summary.applied.insert(("create", "demand"), 1);
        let plan = Plan {
            actions: vec![plan.actions[0].clone(), plan.actions[0].clone()],
            ..plan
        };
        record_tick(&t, 0.2, &plan, &summary);
        let text = t.metrics_text();
        assert!(
            text.contains(r#"autoscaler_vms{pool="docker",state="busy"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"autoscaler_jobs_pending{pool="docker"} 3"#),
            "{text}"
        );
        assert!(
            text.contains(r#"autoscaler_actions_total{kind="create",reason="demand"} 1"#),
            "{text}"
        );
        assert!(
            text.contains("autoscaler_tick_duration_seconds_count 1"),
            "{text}"
        );
        let s = t.status();
        assert_eq!(s.pools[0].desired, 4);
        assert!(s.last_success_at.is_some());
        assert!(
            text.contains(r#"autoscaler_api_up{service="gitlab"} 1"#),
            "{text}"
        );
    }

    /// Fails on the code before issue 11: `/healthz` said 200 and `/status` had no error
    /// while GitLab could not be read.
    #[tokio::test]
    async fn gitlab_down_shows_in_status_metrics_and_healthz() {
        let (t, _rx) = telemetry();
        let since = chrono::Utc::now() - chrono::Duration::minutes(30);
        let summary = crate::tick::TickSummary {
            gitlab_down: Some(crate::tick::Outage {
                since,
                kind: crate::tick::FailureKind::Unavailable,
                error: "gitlab unreachable: connection refused".into(),
            }),
            ..crate::tick::TickSummary::default()
        };
        let plan = Plan {
            gitlab_unavailable: true,
            ..Plan::default()
        };
        record_tick(&t, 0.01, &plan, &summary);
        let s = t.status();
        assert_eq!(s.gitlab_unavailable_since, Some(since));
        assert!(
            s.last_error
                .as_deref()
                .is_some_and(|e| e.contains("connection refused"))
        );
        let text = t.metrics_text();
        assert!(
            text.contains(r#"autoscaler_api_up{service="gitlab"} 0"#),
            "{text}"
        );
        let r = router(t.clone())
            .oneshot(Request::get("/healthz").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body = axum::body::to_bytes(r.into_body(), 1 << 16).await.unwrap();
        let body = String::from_utf8_lossy(&body);
        assert!(body.contains("gitlab unavailable since"), "{body}");
        // GitLab back: healthy again.
        record_tick(
            &t,
            0.01,
            &Plan::default(),
            &crate::tick::TickSummary::default(),
        );
        let r = router(t)
            .oneshot(Request::get("/healthz").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    }

    /// Feeds `t` one report of a tick that observed `observed` at `at` and planned `plan`.
    fn record_observed(
        t: &Telemetry,
        at: Timestamp,
        observed: autoscaler_core::model::Observed,
        plan: &Plan,
    ) {
        let (seq, mut totals) = t.inner.seen.lock().unwrap().clone();
        let summary = crate::tick::TickSummary::default();
        totals.add(seq + 1, 0.01, Ok(&summary));
        t.record(&TickReport {
            seq: seq + 1,
            started: at,
            seconds: 0.01,
            outcome: Ok(crate::tick::TickView {
                at,
                observed,
                plan: plan.clone(),
                summary,
            }),
            totals,
        });
    }

    /// The alerting and dashboard metrics: oldest pending job, oldest booting VM, caps
    /// (circuit breaker, quota, limit), forecast, orphans and the wait of jobs seen starting.
    #[test]
    fn metrics_carry_queue_age_boot_age_caps_orphans_and_waits() {
        use autoscaler_core::model::{
            CloudStatus, JobArrival, Observed, OrphanRunner, PendingJob, RunnerLink, RunnerView,
            Vm, VmId,
        };
        use autoscaler_core::plan::{Cap, PoolPlan};
        let (t, _rx) = telemetry();
        let at = chrono::Utc::now();
        let secs = |s: i64| at - chrono::Duration::seconds(s);
        let vm = |id: &str, created: i64, running: Vec<JobArrival>| Vm {
            id: VmId(id.into()),
            name: id.into(),
            pool: "docker".into(),
            created_at: secs(created),
            phase: CloudStatus::Active,
            runner: Some(RunnerView {
                id: 1,
                paused: false,
                contacted_at: None,
                running_jobs: running.len() as u32,
                jobs_run: 0,
                last_job_at: None,
                running,
            }),
            runner_link: RunnerLink::Seen,
            deleting_since: None,
            address: None,
        };
        let job = |id: u64, age: i64| JobArrival {
            id,
            queued_since: secs(age),
        };
        let plan = Plan {
            pools: vec![PoolPlan {
                pool: "docker".into(),
                pending: 2,
                running: 1,
                target: 3,
                vms: vec![
                    (VmId("boot".into()), VmState::Booting),
                    (VmId("busy".into()), VmState::Busy),
                ],
                caps: vec![Cap::CircuitOpen(at), Cap::Quota],
                unsettled: 0,
                reserve: None,
            }],
            ..Plan::default()
        };
        let observed = |running: Vec<JobArrival>| Observed {
            pending: Some(vec![
                PendingJob {
                    id: 10,
                    tags: BTreeSet::new(),
                    queued_since: secs(600),
                },
                PendingJob {
                    id: 11,
                    tags: BTreeSet::new(),
                    queued_since: secs(30),
                },
            ]),
            vms: vec![vm("boot", 240, vec![]), vm("busy", 3600, running)],
            orphan_runners: vec![OrphanRunner {
                id: 9,
                pool: None,
                created_at: secs(60),
                running_jobs: 0,
                confirmed: false,
            }],
            expected: [("docker".to_string(), 2)].into(),
            ..Observed::default()
        };
        // First tick: job 1 was already running when the controller started: no wait known.
        record_observed(&t, at, observed(vec![job(1, 900)]), &plan);
        // Second tick: job 2 started, 45 s after it was created.
        record_observed(&t, at, observed(vec![job(1, 900), job(2, 45)]), &plan);
        let text = t.metrics_text();
        for line in [
            "autoscaler_jobs_oldest_pending_age_seconds 600.0",
            r#"autoscaler_vms_oldest_booting_age_seconds{pool="docker"} 240.0"#,
            r#"autoscaler_pool_capped{pool="docker",cap="circuit_open"} 1"#,
            r#"autoscaler_pool_capped{pool="docker",cap="quota"} 1"#,
            r#"autoscaler_pool_capped{pool="docker",cap="limit"} 0"#,
            r#"autoscaler_forecast_expected_jobs{pool="docker"} 2"#,
            "autoscaler_orphan_runners 1",
            "autoscaler_job_wait_seconds_count 1",
            "autoscaler_job_wait_seconds_sum 45.0",
        ] {
            assert!(text.contains(line), "{line} missing in\n{text}");
        }
        // Wait-target mode: the reserve the forecast sized counts when it is larger.
        let mut sized = plan.clone();
        sized.pools[0].reserve = Some(autoscaler_core::reserve::Reserve {
            slots: 5,
            boot: Duration::from_secs(90),
            boot_samples: 3,
            lead: Duration::from_secs(108),
            late: 1.0,
            allowed_miss: 0.05,
            rate_per_hour: 30.0,
            threshold: Some(2.0),
            history_days: 3.0,
            keep: Duration::from_secs(90),
        });
        record_observed(&t, at, observed(vec![job(2, 45)]), &sized);
        assert!(
            t.metrics_text()
                .contains(r#"autoscaler_forecast_expected_jobs{pool="docker"} 5"#)
        );
        // Nothing booting and the queue empty: both ages drop to 0.
        let mut quiet = observed(vec![job(2, 45)]);
        quiet.pending = Some(vec![]);
        quiet.vms.remove(0);
        let mut plan = plan;
        plan.pools[0].vms.remove(0);
        record_observed(&t, at, quiet, &plan);
        let text = t.metrics_text();
        assert!(
            text.contains("autoscaler_jobs_oldest_pending_age_seconds 0.0"),
            "{text}"
        );
        assert!(
            text.contains(r#"autoscaler_vms_oldest_booting_age_seconds{pool="docker"} 0.0"#),
            "{text}"
        );
        assert!(
            text.contains("autoscaler_job_wait_seconds_count 1"),
            "{text}"
        );
    }

    #[test]
    fn constant_time_eq_compares_whole_values() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(!constant_time_eq(b"", b"a"));
    }
}
