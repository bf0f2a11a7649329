//! The running fake: the listening socket, the routes, the delayed server transitions, and
//! the handle ([`FakeOpenStack`]) that tests and `autoscaler run --dev` observe and script.
//!
//! All state sits behind one mutex that is never held across an `.await`. Boot and delete
//! delays are `tokio::time` sleeps in tasks owned by the handle, so tests with paused time
//! control them, and dropping the handle stops the server and every pending transition.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use axum::Router;
use axum::extract::{MatchedPath, Request, State as AxState};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::Utc;
use tokio::net::TcpListener;
use tokio::sync::{broadcast, oneshot, watch};
use tokio::task::{JoinHandle, JoinSet};
use tracing::{debug, warn};

use crate::error::Error;
use crate::options::{FakeOpenStackOptions, FakeQuota};
use crate::state::{FakeServer, FakeStatus, ScriptedFailure, ServerEvent, ServerEventKind, State};
use crate::{catalog, keystone, nova};

/// Events a slow subscriber may fall behind by before it sees `Lagged`.
const EVENT_CAPACITY: usize = 4096;

/// What the handlers share.
pub(crate) type App = Arc<Shared>;

/// State plus the channels and tasks around it.
pub(crate) struct Shared {
    state: Mutex<State>,
    /// `http://127.0.0.1:PORT`: catalog URLs and links point here.
    pub base_url: String,
    events: broadcast::Sender<ServerEvent>,
    snapshot: watch::Sender<Vec<FakeServer>>,
    /// Pending boot and delete transitions; aborted when the handle is dropped.
    tasks: Mutex<JoinSet<()>>,
}

// === impl Shared ===

impl Shared {
    /// The state; a panic while it was held (a bug in the fake) does not poison later calls.
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Tells observers about a change; called with the state lock held so events are in order.
    pub fn publish(&self, st: &State, kind: ServerEventKind, server: FakeServer) {
        debug!(server_id = %server.id, ?kind, "fake server changed");
        // No subscriber is fine: nobody is watching.
        let _ = self.events.send(ServerEvent { kind, server });
        if self.snapshot.receiver_count() > 0 {
            self.snapshot.send_replace(st.snapshot());
        }
    }

    fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        let mut tasks = self.tasks.lock().unwrap_or_else(PoisonError::into_inner);
        while tasks.try_join_next().is_some() {}
        tasks.spawn(task);
    }

    /// Ends the boot of `id` after `delay`.
    pub fn schedule_boot(self: &Arc<Self>, id: String, delay: Duration) {
        let weak: Weak<Shared> = Arc::downgrade(self);
        self.spawn(async move {
            tokio::time::sleep(delay).await;
            let Some(app) = weak.upgrade() else { return };
            let mut st = app.lock();
            if let Some(server) = st.finish_boot(&id, Utc::now()) {
                let kind = match server.status {
                    FakeStatus::Active => ServerEventKind::Active,
                    _ => ServerEventKind::Error,
                };
                app.publish(&st, kind, server);
            }
        });
    }

    /// Removes `id` after `delay`.
    pub fn schedule_delete(self: &Arc<Self>, id: String, delay: Duration) {
        let weak: Weak<Shared> = Arc::downgrade(self);
        self.spawn(async move {
            tokio::time::sleep(delay).await;
            let Some(app) = weak.upgrade() else { return };
            let mut st = app.lock();
            if let Some(server) = st.finish_delete(&id) {
                app.publish(&st, ServerEventKind::Deleted, server);
            }
        });
    }
}

/// Counts the request under its route and adds the configured latency.
async fn observe(AxState(app): AxState<App>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_string();
    let latency = {
        let mut st = app.lock();
        *st.requests
            .entry(format!("{} {route}", req.method()))
            .or_default() += 1;
        st.latency
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    next.run(req).await
}

async fn fallback(req: Request) -> Response {
    let message = format!(
        "The resource could not be found: {} {}",
        req.method(),
        req.uri().path()
    );
    (
        StatusCode::NOT_FOUND,
        axum::Json(serde_json::json!({"itemNotFound": {"code": 404, "message": message}})),
    )
        .into_response()
}

fn router(app: App) -> Router {
    Router::new()
        .route("/v3", get(keystone::version))
        .route("/v3/auth/tokens", post(keystone::issue_token))
        .route("/v2.1", get(nova::version))
        .route(
            "/v2.1/servers",
            post(nova::create_server).get(nova::list_summary),
        )
        .route("/v2.1/servers/detail", get(nova::list_detail))
        .route(
            "/v2.1/servers/{id}",
            get(nova::get_server).delete(nova::delete_server),
        )
        .route("/v2.1/flavors", get(nova::flavors_summary))
        .route("/v2.1/flavors/detail", get(nova::flavors_detail))
        .route("/v2.1/flavors/{id}", get(nova::get_flavor))
        .route("/v2.1/os-keypairs", get(nova::keypairs))
        .route("/v2.1/os-keypairs/{name}", get(nova::get_keypair))
        .route("/v2.1/limits", get(nova::limits))
        .route("/v2/images", get(catalog::images))
        .route("/v2/images/{id}", get(catalog::get_image))
        .route("/v2.0/networks", get(catalog::networks))
        .route("/v2.0/security-groups", get(catalog::security_groups))
        .route_layer(middleware::from_fn_with_state(app.clone(), observe))
        .fallback(fallback)
        .with_state(app)
}

fn check(options: &FakeOpenStackOptions) -> Result<(), Error> {
    for (i, c) in options.app_credentials.iter().enumerate() {
        if !options.users.iter().any(|u| u.name == c.user) {
            return Err(Error::Options {
                message: format!(
                    "app_credentials[{i}] ({:?}): user {:?} is not one of the users",
                    c.name, c.user
                ),
            });
        }
    }
    if options.region.is_empty() {
        return Err(Error::Options {
            message: "region must not be empty".into(),
        });
    }
    Ok(())
}

/// A fake OpenStack (Keystone v3, Nova, Glance, Neutron) on `127.0.0.1`, for tests,
/// benchmarks and `autoscaler run --dev`.
///
/// Dropping the handle stops the server and every pending boot or delete.
pub struct FakeOpenStack {
    shared: Arc<Shared>,
    addr: SocketAddr,
    /// Tells the server to stop accepting and to close idle keep-alive connections.
    stop: Option<oneshot::Sender<()>>,
    /// The serving task, to know when it has stopped.
    server: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for FakeOpenStack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeOpenStack")
            .field("url", &self.shared.base_url)
            .finish_non_exhaustive()
    }
}

// === impl FakeOpenStack ===

impl FakeOpenStack {
    /// Binds `127.0.0.1:{options.port}` and serves until the handle is dropped.
    /// Must be called inside a tokio runtime.
    ///
    /// # Errors
    ///
    /// [`Error::Options`] for inconsistent options, [`Error::Bind`] when the port cannot be
    /// opened.
    pub async fn start(options: FakeOpenStackOptions) -> Result<FakeOpenStack, Error> {
        check(&options)?;
        let wanted = SocketAddr::from(([127, 0, 0, 1], options.port));
        let listener = TcpListener::bind(wanted)
            .await
            .map_err(|source| Error::Bind {
                addr: wanted,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| Error::Bind {
            addr: wanted,
            source,
        })?;
        let (events, _) = broadcast::channel(EVENT_CAPACITY);
        let (snapshot, _) = watch::channel(Vec::new());
        let shared = Arc::new(Shared {
            state: Mutex::new(State::new(&options)),
            base_url: format!("http://{addr}"),
            events,
            snapshot,
            tasks: Mutex::new(JoinSet::new()),
        });
        let app = router(shared.clone());
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async {
                // A dropped sender means the same as a sent stop.
                let _ = stopped.await;
            });
            if let Err(e) = serve.await {
                warn!(error = %e, "fake openstack stopped serving");
            }
        });
        debug!(url = %shared.base_url, "fake openstack listening");
        Ok(FakeOpenStack {
            shared,
            addr,
            stop: Some(stop),
            server: Some(server),
        })
    }

    /// Base URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.shared.base_url
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Keystone v3 URL (`{url}/v3`): the `auth_url` of clouds.yaml or `OS_AUTH_URL`.
    pub fn auth_url(&self) -> String {
        format!("{}/v3", self.shared.base_url)
    }

    /// The region of every catalog endpoint.
    pub fn region(&self) -> String {
        self.shared.lock().region.clone()
    }

    /// A `clouds.yaml` with one cloud named `cloud` that logs in as the first configured
    /// user with its password (a fake credential, meant to be written to a temp dir).
    /// `None` when no user is configured.
    pub fn clouds_yaml(&self, cloud: &str) -> Option<String> {
        let st = self.shared.lock();
        let u = st.users.first()?;
        let q = |s: &str| serde_json::Value::String(s.to_string()).to_string();
        Some(format!(
            "clouds:\n  {cloud}:\n    auth:\n      auth_url: {}\n      username: {}\n      password: {}\n      project_name: {}\n      user_domain_name: Default\n      project_domain_name: Default\n    region_name: {}\n    interface: public\n    identity_api_version: 3\n",
            q(&self.auth_url()),
            q(&u.name),
            q(&u.password),
            q(&u.project),
            q(&st.region),
        ))
    }

    /// Every server that is not gone, oldest first.
    pub fn servers(&self) -> Vec<FakeServer> {
        self.shared.lock().snapshot()
    }

    /// One server, unless it is gone.
    pub fn server(&self, id: &str) -> Option<FakeServer> {
        self.shared.lock().servers.get(id).map(|r| r.server.clone())
    }

    /// The user data a server was created with, decoded from base64 (invalid UTF-8 is
    /// replaced). `None` when the server is gone or had none.
    pub fn user_data(&self, id: &str) -> Option<String> {
        use base64::Engine as _;
        let st = self.shared.lock();
        let encoded = st.servers.get(id)?.user_data.as_ref()?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .ok()?;
        Some(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// Every later server change ([`ServerEvent`]), in order. A receiver that falls more
    /// than 4096 events behind gets `Lagged` and should re-read [`FakeOpenStack::servers`].
    pub fn subscribe(&self) -> broadcast::Receiver<ServerEvent> {
        self.shared.events.subscribe()
    }

    /// The current list of servers (as [`FakeOpenStack::servers`]), updated on every change.
    pub fn watch_servers(&self) -> watch::Receiver<Vec<FakeServer>> {
        let st = self.shared.lock();
        self.shared.snapshot.send_replace(st.snapshot());
        self.shared.snapshot.subscribe()
    }

    /// Adds a server that already exists (as an earlier controller run, or someone else,
    /// left it): no create request, no quota check, no boot. `project_id` empty means the
    /// first user's project; status BUILD, ACTIVE or ERROR (with `fault`). Returns it as
    /// stored (creation time in whole seconds, as Nova reports it).
    pub fn insert_server(&self, server: FakeServer) -> FakeServer {
        let mut st = self.shared.lock();
        let stored = st.insert_server(server);
        if self.shared.snapshot.receiver_count() > 0 {
            self.shared.snapshot.send_replace(st.snapshot());
        }
        stored
    }

    /// The next create is answered with `status` and Nova's error body carrying `message`
    /// (a status that is not valid HTTP becomes 500). Calls queue up.
    pub fn fail_next_create(&self, status: u16, message: impl Into<String>) {
        self.shared
            .lock()
            .create_failures
            .push_back(ScriptedFailure {
                status,
                message: message.into(),
            });
    }

    /// The next server created goes to ERROR instead of ACTIVE when it finishes booting,
    /// with `message` as its fault. Calls queue up.
    pub fn boot_fault_next(&self, message: impl Into<String>) {
        self.shared.lock().boot_faults.push_back(message.into());
    }

    /// Drops the boot faults [`FakeOpenStack::boot_fault_next`] queued and not yet used.
    pub fn clear_boot_faults(&self) {
        self.shared.lock().boot_faults.clear();
    }

    /// Delay added before every later answer.
    pub fn set_latency(&self, latency: Duration) {
        self.shared.lock().latency = latency;
    }

    /// Replaces the compute quota (servers already there stay).
    pub fn set_quota(&self, quota: FakeQuota) {
        self.shared.lock().quota = quota;
    }

    /// Invalidates every issued token: services answer 401 until the client
    /// authenticates again.
    pub fn expire_tokens(&self) {
        self.shared.lock().tokens.clear();
    }

    /// Requests served so far per route, e.g. `"GET /v2.1/servers/detail"`.
    pub fn request_counts(&self) -> BTreeMap<String, u64> {
        self.shared.lock().requests.clone()
    }

    /// Stops serving, cancels every pending boot and delete, and waits until the port is
    /// closed and open connections have finished (idle keep-alive connections are closed).
    /// Dropping the handle does the same without waiting.
    pub async fn shutdown(mut self) {
        self.stop_now();
        if let Some(server) = self.server.take() {
            // A panic in the serving task has nothing left to clean up.
            let _ = server.await;
        }
    }

    fn stop_now(&mut self) {
        if let Some(stop) = self.stop.take() {
            // The serving task may already be gone: nothing to stop then.
            let _ = stop.send(());
        }
        self.shared
            .tasks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .abort_all();
    }
}

impl Drop for FakeOpenStack {
    fn drop(&mut self) {
        self.stop_now();
    }
}
