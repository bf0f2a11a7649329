//! HTTP side of the fake: one handler that authenticates, injects failures, latency and
//! rate limits, then routes by hand (paths carry URL-encoded project paths).

use std::collections::{BTreeSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::{Value, json};
use tokio::time::Instant;

use autoscaler_world::gitlab::{AVAILABLE_STATUSES, Job, Runner, World};

use super::render::Render;

/// Token with administrator access.
pub const ADMIN_TOKEN: &str = "glpat-fake-admin-token";
/// Token of a regular user (no admin: `/runners/all` is 403, GraphQL `jobs` empty).
pub const USER_TOKEN: &str = "glpat-fake-user-token";

/// Scripted behaviour and bookkeeping beside the world.
#[derive(Debug)]
pub(crate) struct Control {
    pub fail_next: VecDeque<StatusCode>,
    pub rate_limited: u32,
    pub retry_after: u64,
    pub latency: Duration,
    pub jobs_limit: u32,
    pub jobs_calls: VecDeque<Instant>,
    pub requests: Vec<String>,
    /// `(page, runner)`: right after serving that page of a runner list, the runner is
    /// deleted (as another client would between two page requests).
    pub delete_after_list_page: Vec<(usize, u64)>,
    /// Groups whose project list answers 403, by id.
    pub forbidden_groups: BTreeSet<u64>,
    /// Projects whose jobs answer 403, by id.
    pub forbidden_projects: BTreeSet<u64>,
    /// Every token is refused (401), as after it was revoked.
    pub tokens_revoked: bool,
}

impl Default for Control {
    fn default() -> Self {
        Control {
            fail_next: VecDeque::new(),
            rate_limited: 0,
            retry_after: 30,
            latency: Duration::ZERO,
            jobs_limit: 600,
            jobs_calls: VecDeque::new(),
            requests: Vec::new(),
            delete_after_list_page: Vec::new(),
            forbidden_groups: BTreeSet::new(),
            forbidden_projects: BTreeSet::new(),
            tokens_revoked: false,
        }
    }
}

/// World and control behind one lock.
#[derive(Debug, Default)]
pub(crate) struct Inner {
    pub world: World,
    pub control: Control,
}

/// Shared state of the server.
pub(crate) type Shared = Arc<Mutex<Inner>>;

pub(crate) fn lock(s: &Shared) -> MutexGuard<'_, Inner> {
    s.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Parsed query string: repeated keys kept in order.
struct Query(Vec<(String, String)>);

impl Query {
    fn parse(uri: &Uri) -> Self {
        Query(
            url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
    fn all(&self, key: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }
    fn per_page(&self) -> usize {
        self.get("per_page")
            .and_then(|v| v.parse::<usize>().ok())
            .filter(|n| *n > 0)
            .map_or(20, |n| n.min(100))
    }
    fn page(&self) -> usize {
        self.get("page")
            .and_then(|v| v.parse::<usize>().ok())
            .filter(|n| *n > 0)
            .unwrap_or(1)
    }
    fn keyset(&self) -> bool {
        self.get("pagination") == Some("keyset")
    }
    /// The query with `key` set to `value` (other pairs kept).
    fn with(&self, key: &str, value: &str) -> String {
        let mut s = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in &self.0 {
            if k != key {
                s.append_pair(k, v);
            }
        }
        s.append_pair(key, value);
        s.finish()
    }
}

/// Body params from JSON or form encoding.
struct Params(Vec<(String, Value)>);

impl Params {
    fn parse(headers: &HeaderMap, body: &[u8]) -> Self {
        let json = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        if json {
            let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
            let pairs = v
                .as_object()
                .map(|o| o.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                .unwrap_or_default();
            return Params(pairs);
        }
        Params(
            url::form_urlencoded::parse(body)
                .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
                .collect(),
        )
    }
    fn get(&self, key: &str) -> Option<&Value> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }
    fn str(&self, key: &str) -> Option<String> {
        self.get(key).map(|v| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
    }
    fn bool(&self, key: &str) -> Result<Option<bool>, String> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(Value::String(s)) if s == "true" => Ok(Some(true)),
            Some(Value::String(s)) if s == "false" => Ok(Some(false)),
            Some(_) => Err(format!("{key} is invalid")),
        }
    }
    fn u64(&self, key: &str) -> Result<Option<u64>, String> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Number(n)) => n.as_u64().map(Some).ok_or(format!("{key} is invalid")),
            Some(Value::String(s)) => s.parse().map(Some).map_err(|_| format!("{key} is invalid")),
            Some(_) => Err(format!("{key} is invalid")),
        }
    }
    /// `tag_list`: array or comma-separated string (also `tag_list[]` repeated in forms).
    fn tags(&self) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        for (k, v) in &self.0 {
            if k == "tag_list" || k == "tag_list[]" {
                match v {
                    Value::Array(a) => {
                        out.extend(a.iter().filter_map(|t| t.as_str()).map(str::to_string))
                    }
                    Value::String(s) => out.extend(
                        s.split(',')
                            .map(str::trim)
                            .filter(|t| !t.is_empty())
                            .map(str::to_string),
                    ),
                    _ => {}
                }
            }
        }
        out
    }
}

fn message(status: StatusCode, msg: &str) -> Response {
    (status, axum::Json(json!({ "message": msg }))).into_response()
}

fn error(status: StatusCode, msg: &str) -> Response {
    (status, axum::Json(json!({ "error": msg }))).into_response()
}

fn http_date(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

/// 429 as GitLab's throttles send it.
fn throttled(limit: u32, observed: u32, retry_after: u64) -> Response {
    let reset =
        chrono::Utc::now() + chrono::Duration::seconds(i64::try_from(retry_after).unwrap_or(60));
    let mut h = HeaderMap::new();
    let mut put = |k: &'static str, v: String| {
        if let Ok(v) = HeaderValue::from_str(&v) {
            h.insert(k, v);
        }
    };
    put("ratelimit-name", "throttle_authenticated_api".into());
    put("ratelimit-limit", limit.to_string());
    put("ratelimit-observed", observed.to_string());
    put("ratelimit-remaining", "0".into());
    put("ratelimit-reset", reset.timestamp().to_string());
    put("ratelimit-resettime", http_date(reset));
    put("retry-after", retry_after.to_string());
    (StatusCode::TOO_MANY_REQUESTS, h, "Retry later\n").into_response()
}

/// Percent-decodes one path segment.
fn decode(seg: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", seg.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// The one handler.
pub(crate) async fn handle(
    State(shared): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let latency = {
        let mut inner = lock(&shared);
        inner.control.requests.push(format!(
            "{method} {}",
            uri.path_and_query().map(|p| p.as_str()).unwrap_or("")
        ));
        inner.control.latency
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let mut inner = lock(&shared);
    if inner.control.rate_limited > 0 {
        inner.control.rate_limited -= 1;
        return throttled(2000, 2001, inner.control.retry_after);
    }
    if let Some(status) = inner.control.fail_next.pop_front() {
        return message(status, &format!("{} injected failure", status.as_u16()));
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1")
        .to_string();
    let segs: Vec<String> = uri
        .path()
        .trim_matches('/')
        .split('/')
        .map(decode)
        .collect();
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    let q = Query::parse(&uri);
    inner.world.advance();

    // Runner protocol: authenticated by the runner token in the body.
    if method == Method::POST && segs == ["api", "v4", "jobs", "request"] {
        let p = Params::parse(&headers, &body);
        let token = p.str("token").unwrap_or_default();
        let Some(id) = inner.world.runner_by_token(&token) else {
            return message(StatusCode::FORBIDDEN, "403 Forbidden");
        };
        return match inner.world.pick_job(id) {
            Some(job) => (
                StatusCode::CREATED,
                axum::Json(json!({ "id": job, "token": format!("job-token-{job}"),
                                   "job_info": { "name": format!("job-{job}"), "stage": "test" } })),
            )
                .into_response(),
            None => StatusCode::NO_CONTENT.into_response(),
        };
    }

    let token = headers
        .get("private-token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| {
            headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .map(str::to_string)
        });
    let admin = match token.as_deref() {
        _ if inner.control.tokens_revoked => {
            return message(StatusCode::UNAUTHORIZED, "401 Unauthorized");
        }
        Some(ADMIN_TOKEN) => true,
        Some(USER_TOKEN) => false,
        _ => return message(StatusCode::UNAUTHORIZED, "401 Unauthorized"),
    };
    let inner = &mut *inner;
    let world = &mut inner.world;
    let control = &mut inner.control;
    let base = format!("http://{host}{}", uri.path());

    match (method.clone(), segs.as_slice()) {
        (Method::GET, ["api", "v4", "user"]) => axum::Json(json!({
            "id": if admin { 1 } else { 2 },
            "username": if admin { "root" } else { "ci-user" },
            "name": "Fake User", "state": "active", "is_admin": admin,
            "web_url": format!("http://{host}/root"),
        }))
        .into_response(),
        (Method::POST, ["api", "graphql"]) => graphql(world, admin, &body),
        (Method::GET, ["api", "v4", "projects", project, "jobs"]) => {
            project_jobs(world, control, project, &q, &base)
        }
        (Method::GET, ["api", "v4", "groups", group, "projects"]) => {
            let Some(g) = world.group(group).map(|g| g.id) else {
                return message(StatusCode::NOT_FOUND, "404 Group Not Found");
            };
            if control.forbidden_groups.contains(&g) {
                return message(StatusCode::FORBIDDEN, "403 Forbidden");
            }
            if q.keyset() {
                return keyset_unsupported();
            }
            let subgroups = q.get("include_subgroups") == Some("true");
            let items: Vec<Value> = world
                .group_projects(g, subgroups)
                .iter()
                .map(|p| {
                    json!({ "id": p.id, "path_with_namespace": p.path,
                                 "name": p.path.rsplit('/').next(), "archived": false })
                })
                .collect();
            offset_page(items, &q, &base, true)
        }
        (Method::GET, ["api", "v4", "runners"])
        | (Method::GET, ["api", "v4", "runners", "all"]) => {
            let all = segs.len() == 4;
            if all && !admin {
                return message(StatusCode::FORBIDDEN, "403 Forbidden");
            }
            if q.keyset() {
                return keyset_unsupported();
            }
            let rsp = list_runners(world, all, &q, &base);
            // Another client deletes a runner between this page and the next.
            let page = q.page();
            let (now, later): (Vec<_>, Vec<_>) = control
                .delete_after_list_page
                .drain(..)
                .partition(|(p, _)| *p == page);
            control.delete_after_list_page = later;
            for (_, id) in now {
                world.delete_runner(id);
            }
            rsp
        }
        (Method::POST, ["api", "v4", "user", "runners"]) => {
            create_runner(world, admin, &headers, &body)
        }
        (m, ["api", "v4", "runners", id, rest @ ..]) => {
            let Ok(id) = id.parse::<u64>() else {
                return message(StatusCode::NOT_FOUND, "404 Not found");
            };
            if !world.runners.contains_key(&id) {
                return message(StatusCode::NOT_FOUND, "404 Runner Not Found");
            }
            match (m, rest) {
                (Method::GET, []) => {
                    axum::Json(world.runner_details_json(&world.runners[&id])).into_response()
                }
                (Method::PUT, []) => edit_runner(world, id, &headers, &body),
                (Method::DELETE, []) => {
                    world.delete_runner(id);
                    StatusCode::NO_CONTENT.into_response()
                }
                (Method::GET, ["jobs"]) => runner_jobs(world, id, &q, &base),
                _ => message(StatusCode::NOT_FOUND, "404 Not found"),
            }
        }
        _ => message(StatusCode::NOT_FOUND, "404 Not found"),
    }
}

fn keyset_unsupported() -> Response {
    message(
        StatusCode::METHOD_NOT_ALLOWED,
        "405 Method Not Allowed - Keyset pagination is not yet available for this type of request",
    )
}

/// GitLab leaves out `X-Total`, `X-Total-Pages` and `rel="last"` above this many items.
const MAX_COUNTED: usize = 10_000;

/// Offset pagination headers; `with_count` adds `X-Total`, `X-Total-Pages`, `rel="last"`
/// (unless there are more than 10,000 items). The page is cut from `items` as they are
/// now, so a list read page by page shifts when items are added or deleted in between.
fn offset_page(items: Vec<Value>, q: &Query, base: &str, with_count: bool) -> Response {
    offset_page_of(items, q, base, with_count, |v| v.clone())
}

/// [`offset_page`] rendering only the items of the page.
fn offset_page_of<T>(
    items: Vec<T>,
    q: &Query,
    base: &str,
    with_count: bool,
    render: impl Fn(&T) -> Value,
) -> Response {
    let per = q.per_page();
    let page = q.page();
    let total = items.len();
    let pages = total.div_ceil(per).max(1);
    let slice: Vec<Value> = items
        .iter()
        .skip((page - 1) * per)
        .take(per)
        .map(render)
        .collect();
    let next = (page < pages).then(|| page + 1);
    let prev = (page > 1).then(|| page - 1);
    let mut h = HeaderMap::new();
    let mut put = |k: &'static str, v: String| {
        if let Ok(v) = HeaderValue::from_str(&v) {
            h.insert(k, v);
        }
    };
    put("x-page", page.to_string());
    put("x-per-page", per.to_string());
    put(
        "x-next-page",
        next.map(|n| n.to_string()).unwrap_or_default(),
    );
    put(
        "x-prev-page",
        prev.map(|n| n.to_string()).unwrap_or_default(),
    );
    let link =
        |p: usize, rel: &str| format!("<{base}?{}>; rel=\"{rel}\"", q.with("page", &p.to_string()));
    let mut links = Vec::new();
    if let Some(p) = prev {
        links.push(link(p, "prev"));
    }
    if let Some(n) = next {
        links.push(link(n, "next"));
    }
    links.push(link(1, "first"));
    if with_count && total <= MAX_COUNTED {
        links.push(link(pages, "last"));
        put("x-total", total.to_string());
        put("x-total-pages", pages.to_string());
    }
    put("link", links.join(", "));
    (StatusCode::OK, h, axum::Json(Value::Array(slice))).into_response()
}

fn encode_cursor(id: u64) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("{{\"id\":\"{id}\",\"_kd\":\"n\"}}"))
}

fn decode_cursor(c: &str) -> Option<u64> {
    let raw = base64::engine::general_purpose::STANDARD.decode(c).ok()?;
    let v: Value = serde_json::from_slice(&raw).ok()?;
    v.get("id")?.as_str()?.parse().ok()
}

/// `GET /projects/:id/jobs`: `scope`/`scope[]`, jobs_index limit, keyset or offset paging
/// without counts (`without_count: true`).
fn project_jobs(
    world: &World,
    control: &mut Control,
    project: &str,
    q: &Query,
    base: &str,
) -> Response {
    // jobs_index: per user, per minute.
    let now = Instant::now();
    while control
        .jobs_calls
        .front()
        .is_some_and(|t| now.saturating_duration_since(*t) >= Duration::from_secs(60))
    {
        control.jobs_calls.pop_front();
    }
    if control.jobs_calls.len() >= control.jobs_limit as usize {
        let observed = u32::try_from(control.jobs_calls.len()).unwrap_or(u32::MAX) + 1;
        let wait = control.jobs_calls.front().map_or(60, |t| {
            60u64
                .saturating_sub(now.saturating_duration_since(*t).as_secs())
                .max(1)
        });
        return throttled(control.jobs_limit, observed, wait);
    }
    control.jobs_calls.push_back(now);
    let Some(p) = world.project(project).map(|p| p.id) else {
        return message(StatusCode::NOT_FOUND, "404 Project Not Found");
    };
    if control.forbidden_projects.contains(&p) {
        return message(StatusCode::FORBIDDEN, "403 Forbidden");
    }
    let mut scopes = q.all("scope");
    scopes.extend(q.all("scope[]"));
    if scopes.iter().any(|s| !AVAILABLE_STATUSES.contains(s)) {
        return error(StatusCode::BAD_REQUEST, "scope does not have a valid value");
    }
    let mut jobs: Vec<&Job> = world
        .jobs
        .values()
        .filter(|j| j.project == p && (scopes.is_empty() || scopes.contains(&j.status.as_str())))
        .collect();
    jobs.sort_by_key(|j| std::cmp::Reverse(j.id));
    if q.keyset() {
        if q.get("order_by").is_some_and(|o| o != "id")
            || q.get("sort").is_some_and(|s| s != "desc")
        {
            return keyset_unsupported();
        }
        let after = q.get("cursor").and_then(decode_cursor);
        if q.get("cursor").is_some() && after.is_none() {
            return error(StatusCode::BAD_REQUEST, "cursor is invalid");
        }
        let per = q.per_page();
        let rest: Vec<&Job> = jobs
            .into_iter()
            .filter(|j| after.is_none_or(|a| j.id < a))
            .collect();
        let page: Vec<Value> = rest.iter().take(per).map(|j| world.job_json(j)).collect();
        let mut h = HeaderMap::new();
        if rest.len() > per {
            let last = rest[per - 1].id;
            let link = format!(
                "<{base}?{}>; rel=\"next\"",
                q.with("cursor", &encode_cursor(last))
            );
            if let Ok(v) = HeaderValue::from_str(&link) {
                h.insert(header::LINK, v);
            }
        }
        return (StatusCode::OK, h, axum::Json(Value::Array(page))).into_response();
    }
    let items = jobs.iter().map(|j| world.job_json(j)).collect();
    offset_page(items, q, base, false)
}

fn list_runners(world: &World, all: bool, q: &Query, base: &str) -> Response {
    const STATUSES: [&str; 6] = [
        "online",
        "offline",
        "stale",
        "never_contacted",
        "active",
        "paused",
    ];
    let status = q.get("status").or(q.get("scope"));
    if status.is_some_and(|s| !STATUSES.contains(&s)) {
        return message(
            StatusCode::BAD_REQUEST,
            "400 Bad request - Scope contains invalid value",
        );
    }
    let type_ = q.get("type");
    if type_.is_some_and(|t| !["instance_type", "group_type", "project_type"].contains(&t)) {
        return message(
            StatusCode::BAD_REQUEST,
            "400 Bad request - type does not have a valid value",
        );
    }
    let paused = match q.get("paused") {
        None => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(_) => return error(StatusCode::BAD_REQUEST, "paused is invalid"),
    };
    let items: Vec<&Runner> = world
        .runners
        .values()
        .filter(|r| all || r.runner_type != "instance_type")
        .filter(|r| type_.is_none_or(|t| r.runner_type == t))
        .filter(|r| paused.is_none_or(|p| r.paused == p))
        .filter(|r| {
            let s = world.runner_status(r);
            match status {
                None => true,
                Some("offline") => s == "offline" || s == "stale",
                Some("active") => !r.paused,
                Some("paused") => r.paused,
                Some(x) => s == x,
            }
        })
        .collect();
    offset_page_of(items, q, base, true, |r| world.runner_json(r))
}

fn runner_jobs(world: &World, id: u64, q: &Query, base: &str) -> Response {
    if let Some(s) = q.get("status") {
        if !AVAILABLE_STATUSES.contains(&s) {
            return error(
                StatusCode::BAD_REQUEST,
                "status does not have a valid value",
            );
        }
    }
    if q.get("order_by").is_some_and(|o| o != "id") {
        return error(
            StatusCode::BAD_REQUEST,
            "order_by does not have a valid value",
        );
    }
    let asc = match q.get("sort") {
        None | Some("desc") => false,
        Some("asc") => true,
        Some(_) => return error(StatusCode::BAD_REQUEST, "sort does not have a valid value"),
    };
    let mut jobs: Vec<&Job> = world
        .jobs
        .values()
        .filter(|j| j.runner == Some(id) && q.get("status").is_none_or(|s| j.status == s))
        .collect();
    jobs.sort_by_key(|j| j.id);
    if !asc {
        jobs.reverse();
    }
    let items = jobs
        .iter()
        .map(|j| world.job_with_project_json(j))
        .collect();
    offset_page(items, q, base, true)
}

fn create_runner(world: &mut World, admin: bool, headers: &HeaderMap, body: &[u8]) -> Response {
    let p = Params::parse(headers, body);
    let bad = |m: &str| message(StatusCode::BAD_REQUEST, &format!("400 Bad request - {m}"));
    let Some(runner_type) = p.str("runner_type") else {
        return bad("runner_type is missing");
    };
    let owner_id = match runner_type.as_str() {
        "instance_type" => {
            if !admin {
                return message(StatusCode::FORBIDDEN, "403 Forbidden");
            }
            None
        }
        "group_type" => match p.u64("group_id") {
            Ok(Some(g)) if world.groups.contains_key(&g) => Some(g),
            Ok(Some(_)) => return message(StatusCode::FORBIDDEN, "403 Forbidden"),
            Ok(None) => return bad("group_id is missing"),
            Err(e) => return bad(&e),
        },
        "project_type" => match p.u64("project_id") {
            Ok(Some(id)) if world.projects.contains_key(&id) => Some(id),
            Ok(Some(_)) => return message(StatusCode::FORBIDDEN, "403 Forbidden"),
            Ok(None) => return bad("project_id is missing"),
            Err(e) => return bad(&e),
        },
        _ => return bad("runner_type does not have a valid value"),
    };
    let access_level = p
        .str("access_level")
        .unwrap_or_else(|| "not_protected".into());
    if !["not_protected", "ref_protected"].contains(&access_level.as_str()) {
        return bad("access_level does not have a valid value");
    }
    let flags = (
        p.bool("paused"),
        p.bool("locked"),
        p.bool("run_untagged"),
        p.u64("maximum_timeout"),
    );
    let (Ok(paused), Ok(locked), Ok(run_untagged), Ok(maximum_timeout)) = flags else {
        return bad("a boolean or integer parameter is invalid");
    };
    let note = p.str("maintenance_note").unwrap_or_default();
    if note.len() > 1024 {
        return bad("maintenance_note is too long (maximum is 1024 characters)");
    }
    let (id, token) = world.register_runner(Runner {
        runner_type,
        owner_id,
        tags: p.tags(),
        run_untagged: run_untagged.unwrap_or(true),
        paused: paused.unwrap_or(false),
        locked: locked.unwrap_or(false),
        access_level,
        maximum_timeout,
        ..Runner::new(p.str("description").unwrap_or_default(), note)
    });
    (
        StatusCode::CREATED,
        axum::Json(json!({ "id": id, "token": token, "token_expires_at": null })),
    )
        .into_response()
}

fn edit_runner(world: &mut World, id: u64, headers: &HeaderMap, body: &[u8]) -> Response {
    let p = Params::parse(headers, body);
    if p.get("paused").is_some() && p.get("active").is_some() {
        return message(
            StatusCode::BAD_REQUEST,
            "400 Bad request - paused, active are mutually exclusive",
        );
    }
    let (Ok(paused), Ok(active)) = (p.bool("paused"), p.bool("active")) else {
        return message(
            StatusCode::BAD_REQUEST,
            "400 Bad request - paused is invalid",
        );
    };
    let desc = p.str("description");
    let Some(r) = world.runners.get_mut(&id) else {
        return message(StatusCode::NOT_FOUND, "404 Runner Not Found");
    };
    if let Some(v) = paused.or(active.map(|a| !a)) {
        r.paused = v;
    }
    if let Some(d) = desc {
        r.description = d;
    }
    let r = r.clone();
    axum::Json(world.runner_details_json(&r)).into_response()
}

/// The GraphQL subset: `jobs(statuses: [PENDING], first:, after:)` for administrators.
fn graphql(world: &World, admin: bool, body: &[u8]) -> Response {
    let req: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let query = req.get("query").and_then(Value::as_str).unwrap_or("");
    if !(query.contains("jobs(") && query.contains("PENDING")) {
        return axum::Json(
            json!({ "errors": [{ "message": "the fake only answers jobs(statuses: [PENDING])" }] }),
        )
        .into_response();
    }
    let first = query
        .split("first:")
        .nth(1)
        .and_then(|r| r.trim_start().split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse::<usize>().ok())
        .unwrap_or(100)
        .min(100);
    let after = req
        .pointer("/variables/after")
        .and_then(Value::as_str)
        .and_then(decode_cursor);
    let pending: Vec<&Job> = if admin {
        world
            .jobs
            .values()
            .rev()
            .filter(|j| j.status == "pending" && after.is_none_or(|a| j.id < a))
            .collect()
    } else {
        Vec::new()
    };
    let nodes: Vec<Value> = pending
        .iter()
        .take(first)
        .map(|j| {
            json!({
                "id": format!("gid://gitlab/Ci::Build/{}", j.id),
                "status": "PENDING",
                "tags": j.tags,
                "createdAt": j.created_at,
                "queuedAt": j.queued_at,
                "queuedDuration": (world.now() - j.queued_at).num_milliseconds() as f64 / 1000.0,
                "project": { "id": format!("gid://gitlab/Project/{}", j.project),
                             "fullPath": world.projects.get(&j.project).map(|p| p.path.clone()) },
                "pipeline": { "id": format!("gid://gitlab/Ci::Pipeline/{}", j.id) },
                "runner": null,
            })
        })
        .collect();
    let has_next = pending.len() > first;
    let end = nodes
        .last()
        .and_then(|_| pending.get(nodes.len().saturating_sub(1)))
        .map(|j| encode_cursor(j.id));
    axum::Json(json!({ "data": { "jobs": {
        "pageInfo": { "hasNextPage": has_next, "endCursor": end },
        "nodes": nodes,
    } } }))
    .into_response()
}
