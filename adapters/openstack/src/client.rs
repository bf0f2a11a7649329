//! The HTTP side of the adapter: one `reqwest` client, the cached token, retries and counters.
//!
//! Rules every request follows:
//!
//! * it has a timeout ([`ClientOptions::request_timeout`]);
//! * a token is fetched lazily, cached, renewed before `expires_at`, and renewed once more
//!   when a service answers 401 (then the request is sent again, once);
//! * idempotent requests (GET, DELETE, token requests) are retried with exponential backoff
//!   on transient failures: no response (including a connection reset, which Keystone and
//!   Placement under uwsgi cause), 5xx, 429. A create (POST) is never retried, because a
//!   retried create can duplicate a server;
//! * tokens, passwords and user data are never logged nor put into an error;
//! * a redirect is followed only within the origin (scheme, host, port) the request was
//!   addressed to, so neither the token nor the password is ever sent elsewhere
//!   ([`Error::OffOriginRedirect`]);
//! * a response body is read up to [`ClientOptions::max_body`] bytes
//!   ([`Error::BodyTooLarge`]), the Keystone token with its catalog included.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde_json::Value;
use tracing::{debug, warn};

use super::auth::ResolvedAuth;
use super::error::{Error, Result};
use super::guard::{self, BodyError};
use super::keystone::{Token, TokenResponse, token_request_body};
use autoscaler_core::ports::ControllerId;

/// The Nova microversion every compute request pins (tags in the create body need 2.52).
pub const COMPUTE_MICROVERSION: &str = "2.52";

/// Tunables of the client; [`Default`] is what production uses.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Upper bound of one HTTP request, connect to last byte.
    pub request_timeout: Duration,
    /// Upper bound of establishing a connection.
    pub connect_timeout: Duration,
    /// Attempts of an idempotent request, first one included.
    pub attempts: u32,
    /// Delay before the first retry; doubled each time, capped at 8 s.
    pub retry_delay: Duration,
    /// `limit` of one page when listing servers or flavors.
    pub page_size: u32,
    /// Largest response body read, in bytes; a larger one is an error, so a broken or
    /// hostile endpoint cannot make the process buffer without bound.
    pub max_body: usize,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            request_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            attempts: 4,
            retry_delay: Duration::from_millis(500),
            page_size: 200,
            max_body: guard::DEFAULT_MAX_BODY,
        }
    }
}

/// An OpenStack service the client talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Service {
    Compute,
    Image,
    Network,
}

impl Service {
    fn name(self) -> &'static str {
        match self {
            Service::Compute => "compute",
            Service::Image => "image",
            Service::Network => "network",
        }
    }

    fn catalog_types(self) -> &'static [&'static str] {
        match self {
            Service::Compute => &["compute"],
            Service::Image => &["image"],
            Service::Network => &["network"],
        }
    }

    /// Version prefix appended when the catalog URL has none (Glance and Neutron register
    /// their root URL; Nova registers `/v2.1`).
    fn version_suffix(self) -> Option<&'static str> {
        match self {
            Service::Compute => None,
            Service::Image => Some("/v2"),
            Service::Network => Some("/v2.0"),
        }
    }
}

/// One request, before a token and an endpoint are attached.
pub(crate) struct Call<'a> {
    /// Counter name (`create_server`, `list_servers`, ...).
    pub op: &'static str,
    pub service: Service,
    pub method: Method,
    /// Path below the service's versioned endpoint, already percent-encoded.
    pub path: String,
    pub query: Vec<(&'a str, String)>,
    pub body: Option<Value>,
}

impl<'a> Call<'a> {
    pub fn get(op: &'static str, service: Service, path: impl Into<String>) -> Self {
        Call {
            op,
            service,
            method: Method::GET,
            path: path.into(),
            query: Vec::new(),
            body: None,
        }
    }

    pub fn query(mut self, key: &'a str, value: impl Into<String>) -> Self {
        self.query.push((key, value.into()));
        self
    }

    fn idempotent(&self) -> bool {
        matches!(self.method, Method::GET | Method::DELETE | Method::HEAD)
    }
}

/// Counters of the requests the client sent, for benchmarks and metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApiStats {
    /// HTTP requests sent per operation (`auth`, `create_server`, `get_server`, ...),
    /// retries included.
    pub requests: BTreeMap<&'static str, u64>,
    /// Retries of idempotent requests after a transient failure.
    pub retries: u64,
    /// Re-authentications caused by a 401 from a service.
    pub reauth_after_401: u64,
}

impl ApiStats {
    /// All requests sent.
    pub fn total(&self) -> u64 {
        self.requests.values().sum()
    }
}

#[derive(Default)]
struct Counters {
    requests: Mutex<BTreeMap<&'static str, u64>>,
    retries: AtomicU64,
    reauth_after_401: AtomicU64,
}

impl Counters {
    fn count(&self, op: &'static str) {
        if let Ok(mut m) = self.requests.lock() {
            *m.entry(op).or_default() += 1;
        }
    }
}

/// The OpenStack adapter: Keystone, Nova, Glance and Neutron over one HTTP client.
///
/// Cheap to clone (shared state behind an `Arc`). Implements [`autoscaler_core::ports::Cloud`] for
/// the servers owned by one controller id.
#[derive(Clone)]
pub struct OpenStack {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    http: reqwest::Client,
    pub(crate) auth: ResolvedAuth,
    pub(crate) controller: ControllerId,
    pub(crate) options: ClientOptions,
    token: tokio::sync::Mutex<Option<Arc<Token>>>,
    pub(crate) lookups: tokio::sync::Mutex<HashMap<(&'static str, String), Found>>,
    counters: Counters,
}

impl std::fmt::Debug for OpenStack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // ResolvedAuth's Debug redacts its secrets; the token is never shown.
        f.debug_struct("OpenStack")
            .field("auth_url", &self.inner.auth.auth_url.as_str())
            .field("origin", &self.inner.auth.origin)
            .field("region", &self.inner.auth.region)
            .field("interface", &self.inner.auth.interface)
            .field("controller", &self.inner.controller)
            .finish_non_exhaustive()
    }
}

// === impl OpenStack ===

impl OpenStack {
    /// Builds a client for `controller`'s servers. Does no network I/O: the first call
    /// authenticates.
    ///
    /// # Errors
    ///
    /// [`Error::ReadFile`] or [`Error::Tls`] when the CA file cannot be read or used.
    pub fn new(
        auth: ResolvedAuth,
        controller: ControllerId,
        options: ClientOptions,
    ) -> Result<Self> {
        let mut builder = reqwest::Client::builder()
            .timeout(options.request_timeout)
            .connect_timeout(options.connect_timeout)
            .redirect(guard::redirect_policy())
            .user_agent(concat!(
                "gitlab-runner-autoscaler/",
                env!("CARGO_PKG_VERSION")
            ));
        if let Some(path) = &auth.cacert {
            let pem = std::fs::read(path).map_err(|source| Error::ReadFile {
                path: path.clone(),
                source,
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| Error::Tls {
                message: format!("{}: {e}", path.display()),
            })?;
            builder = builder.tls_certs_merge(certs);
        }
        if !auth.verify_tls {
            warn!(origin = %auth.origin, "TLS certificate verification is disabled");
            builder = builder.tls_danger_accept_invalid_certs(true);
        }
        let http = builder.build().map_err(|e| Error::Tls {
            message: e.to_string(),
        })?;
        Ok(OpenStack {
            inner: Arc::new(Inner {
                http,
                auth,
                controller,
                options,
                token: tokio::sync::Mutex::new(None),
                lookups: tokio::sync::Mutex::new(HashMap::new()),
                counters: Counters::default(),
            }),
        })
    }

    /// The controller id whose servers this client lists and creates.
    pub fn controller(&self) -> &ControllerId {
        &self.inner.controller
    }

    /// Where the credentials came from (for reports; no secrets).
    pub fn origin(&self) -> &str {
        &self.inner.auth.origin
    }

    /// Authenticates now (or returns the cached token's expiry) and checks the catalog has
    /// a compute endpoint.
    ///
    /// # Errors
    ///
    /// Keystone's refusal ([`Error::Status`] 401), no answer, or [`Error::NoEndpoint`].
    pub async fn authenticate(&self) -> Result<chrono::DateTime<Utc>> {
        let token = self.token().await?;
        self.endpoint(&token, Service::Compute)?;
        Ok(token.expires_at)
    }

    /// A snapshot of the request counters.
    pub fn stats(&self) -> ApiStats {
        let c = &self.inner.counters;
        ApiStats {
            requests: c.requests.lock().map(|m| m.clone()).unwrap_or_default(),
            retries: c.retries.load(Ordering::Relaxed),
            reauth_after_401: c.reauth_after_401.load(Ordering::Relaxed),
        }
    }

    /// Project id of the current token, if it is project scoped.
    pub(crate) async fn project_id(&self) -> Result<Option<String>> {
        Ok(self.token().await?.project_id.clone())
    }

    /// Whether the catalog has a service of one of `types`.
    pub(crate) async fn has_service(&self, types: &[&str]) -> Result<bool> {
        Ok(self.token().await?.has_service(types))
    }

    /// Sends `call` and decodes the JSON answer.
    pub(crate) async fn json<T: DeserializeOwned>(&self, call: Call<'_>) -> Result<T> {
        let (service, path) = (call.service.name(), call.path.clone());
        let body = self.send(call).await?;
        serde_json::from_str(&body).map_err(|e| Error::Response {
            service,
            path,
            message: format!("cannot decode the body: {e}"),
        })
    }

    /// Sends `call` with a token, re-authenticating once on 401 and retrying idempotent
    /// calls on transient failures. Returns the body of a 2xx answer; others become
    /// [`Error::Status`].
    pub(crate) async fn send(&self, call: Call<'_>) -> Result<String> {
        let opts = &self.inner.options;
        let mut reauthed = false;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let token = self.token().await?;
            let mut url = self.endpoint(&token, call.service)?;
            let base = url.path().trim_end_matches('/').to_string();
            url.set_path(&format!("{base}{}", call.path));
            if !call.query.is_empty() {
                url.query_pairs_mut()
                    .extend_pairs(call.query.iter().map(|(k, v)| (*k, v.as_str())));
            }
            let mut req = self
                .inner
                .http
                .request(call.method.clone(), url)
                .header("X-Auth-Token", token.value.expose_secret())
                .header("Accept", "application/json");
            if call.service == Service::Compute {
                req = req.header(
                    "OpenStack-API-Version",
                    format!("compute {COMPUTE_MICROVERSION}"),
                );
            }
            if let Some(body) = &call.body {
                req = req.json(body);
            }
            self.inner.counters.count(call.op);
            let result = self.finish(req, &call).await;
            match result {
                Err(e) if e.is_auth() && !reauthed => {
                    reauthed = true;
                    self.inner
                        .counters
                        .reauth_after_401
                        .fetch_add(1, Ordering::Relaxed);
                    warn!(op = call.op, "token refused (401): re-authenticating once");
                    self.invalidate(&token).await;
                }
                Err(e) if e.is_transient() && call.idempotent() && attempt < opts.attempts => {
                    self.backoff(call.op, attempt, &e).await;
                }
                other => return other,
            }
        }
    }

    async fn finish(&self, req: reqwest::RequestBuilder, call: &Call<'_>) -> Result<String> {
        let method = method_name(&call.method);
        let resp = req
            .send()
            .await
            .map_err(|e| send_error(method, call.service.name(), &call.path, e))?;
        let status = resp.status();
        let text = self
            .read_body(resp, method, call.service.name(), &call.path)
            .await?;
        if status.is_success() {
            return Ok(text);
        }
        Err(Error::Status {
            method,
            service: call.service.name(),
            path: call.path.clone(),
            status,
            message: error_message(&text),
        })
    }

    /// The body of `resp` as text, refused over [`ClientOptions::max_body`].
    async fn read_body(
        &self,
        resp: reqwest::Response,
        method: &'static str,
        service: &'static str,
        path: &str,
    ) -> Result<String> {
        let limit = self.inner.options.max_body;
        match guard::read_limited(resp, limit).await {
            Ok(bytes) => Ok(String::from_utf8_lossy(&bytes).into_owned()),
            Err(BodyError::TooLarge { .. }) => Err(Error::BodyTooLarge {
                method,
                service,
                path: path.to_string(),
                limit,
            }),
            Err(BodyError::Read(source)) => Err(Error::Transport {
                method,
                service,
                path: path.to_string(),
                source,
            }),
        }
    }

    async fn backoff(&self, op: &'static str, attempt: u32, e: &Error) {
        let delay = self
            .inner
            .options
            .retry_delay
            .saturating_mul(1 << (attempt - 1).min(5))
            .min(Duration::from_secs(8));
        self.inner.counters.retries.fetch_add(1, Ordering::Relaxed);
        warn!(op, attempt, delay_ms = delay.as_millis() as u64, error = %e, "transient failure, retrying");
        tokio::time::sleep(delay).await;
    }

    fn endpoint(&self, token: &Token, service: Service) -> Result<url::Url> {
        let auth = &self.inner.auth;
        let mut url = token.endpoint(
            service.catalog_types(),
            auth.interface,
            auth.region.as_deref(),
        )?;
        if let Some(suffix) = service.version_suffix() {
            let path = url.path().trim_end_matches('/').to_string();
            if !path.ends_with(suffix) {
                url.set_path(&format!("{path}{suffix}"));
            }
        }
        Ok(url)
    }

    /// The cached token, or a new one when there is none or it is due for renewal. One
    /// caller authenticates while the others wait for its result.
    pub(crate) async fn token(&self) -> Result<Arc<Token>> {
        let mut slot = self.inner.token.lock().await;
        if let Some(t) = slot.as_ref() {
            if !t.needs_renewal(Utc::now()) {
                return Ok(t.clone());
            }
            debug!(expires_at = %t.expires_at, "renewing token before expiry");
        }
        let fresh = Arc::new(self.request_token().await?);
        *slot = Some(fresh.clone());
        Ok(fresh)
    }

    async fn invalidate(&self, used: &Arc<Token>) {
        let mut slot = self.inner.token.lock().await;
        if slot.as_ref().is_some_and(|t| Arc::ptr_eq(t, used)) {
            *slot = None;
        }
    }

    async fn request_token(&self) -> Result<Token> {
        let auth = &self.inner.auth;
        let mut url = auth.auth_url.clone();
        let base = url.path().trim_end_matches('/').to_string();
        url.set_path(&format!("{base}/auth/tokens"));
        let body = token_request_body(&auth.method);
        let mut attempt = 0;
        loop {
            attempt += 1;
            self.inner.counters.count("auth");
            let result = self.token_attempt(url.clone(), &body).await;
            match result {
                // Asking for a token has no side effect: safe to retry like a GET.
                Err(e) if e.is_transient() && attempt < self.inner.options.attempts => {
                    self.backoff("auth", attempt, &e).await;
                }
                other => return other,
            }
        }
    }

    async fn token_attempt(&self, url: url::Url, body: &Value) -> Result<Token> {
        let path = "/v3/auth/tokens".to_string();
        let resp = self
            .inner
            .http
            .post(url)
            .json(body)
            .send()
            .await
            .map_err(|e| send_error("POST", "identity", &path, e))?;
        let status = resp.status();
        let header = resp
            .headers()
            .get("X-Subject-Token")
            .and_then(|v| v.to_str().ok())
            .map(|v| SecretString::from(v.to_string()));
        let text = self.read_body(resp, "POST", "identity", &path).await?;
        if !status.is_success() {
            return Err(Error::Status {
                method: "POST",
                service: "identity",
                path,
                status,
                message: error_message(&text),
            });
        }
        let value = header.ok_or_else(|| Error::Response {
            service: "identity",
            path: path.clone(),
            message: "no X-Subject-Token header".into(),
        })?;
        let parsed: TokenResponse = serde_json::from_str(&text).map_err(|e| Error::Response {
            service: "identity",
            path: path.clone(),
            message: format!("cannot decode the token body: {e}"),
        })?;
        let token = Token::new(value, parsed);
        debug!(expires_at = %token.expires_at, origin = %self.inner.auth.origin, "authenticated");
        Ok(token)
    }
}

/// A request that got no usable answer; a refused redirect says where it pointed.
fn send_error(
    method: &'static str,
    service: &'static str,
    path: &str,
    source: reqwest::Error,
) -> Error {
    if let Some(r) = guard::off_origin(&source) {
        return Error::OffOriginRedirect {
            method,
            service,
            path: path.to_string(),
            from: r.from.clone(),
            to: r.to.clone(),
        };
    }
    Error::Transport {
        method,
        service,
        path: path.to_string(),
        source,
    }
}

fn method_name(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::PATCH => "PATCH",
        _ => "REQUEST",
    }
}

/// The human message of an OpenStack error body: Nova `{"badRequest": {"message": ..}}`,
/// Keystone `{"error": {"message": ..}}`, Neutron `{"NeutronError": {"message": ..}}`,
/// or the text itself, shortened.
pub(crate) fn error_message(body: &str) -> String {
    let from_json = serde_json::from_str::<Value>(body).ok().and_then(|v| {
        let direct = v.get("message").and_then(Value::as_str).map(str::to_string);
        direct.or_else(|| {
            v.as_object()?
                .values()
                .find_map(|inner| inner.get("message").and_then(Value::as_str))
                .map(str::to_string)
        })
    });
    let text = from_json.unwrap_or_else(|| body.split_whitespace().collect::<Vec<_>>().join(" "));
    let text = text.trim();
    if text.is_empty() {
        return "(no message)".into();
    }
    let mut out: String = text.chars().take(300).collect();
    if text.chars().count() > 300 {
        out.push('…');
    }
    out
}

/// A resolved object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The cloud's id.
    pub id: String,
    /// vCPUs (flavors only).
    pub vcpus: Option<u64>,
    /// RAM in MiB (flavors only).
    pub ram_mb: Option<u64>,
}

/// Percent-encodes one path segment (ids and names from settings go into paths).
pub(crate) fn segment(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_message_reads_each_services_error_shape() {
        assert_eq!(
            error_message(r#"{"forbidden":{"code":403,"message":"Quota exceeded for instances"}}"#),
            "Quota exceeded for instances"
        );
        assert_eq!(
            error_message(
                r#"{"error":{"code":401,"message":"The request you have made requires authentication.","title":"Unauthorized"}}"#
            ),
            "The request you have made requires authentication."
        );
        assert_eq!(
            error_message(
                r#"{"NeutronError":{"type":"x","message":"Network n not found.","detail":""}}"#
            ),
            "Network n not found."
        );
        assert_eq!(
            error_message("<html>\n 502   Bad Gateway</html>"),
            "<html> 502 Bad Gateway</html>"
        );
        assert_eq!(error_message(""), "(no message)");
        assert_eq!(error_message(&"x".repeat(400)).chars().count(), 301);
    }
}
