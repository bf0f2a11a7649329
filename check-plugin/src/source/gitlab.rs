//! A small, read-only GitLab REST client for the check: this controller's runners and the
//! pending jobs of the watched projects. Kept apart so the controller's full GitLab adapter
//! can replace it later. GitLab's JSON stays in this module.
//!
//! Calls: `GET /runners` or `/runners/all` (paged, filtered here by the description prefix
//! `<controller-id>-`), `GET /runners/:id` (for `contacted_at`, bounded concurrency),
//! `GET /groups/:id/projects`, `GET /projects/:id/jobs?scope[]=pending`, and for an
//! instance-wide scope GraphQL `jobs(statuses: [PENDING])`.

use std::sync::Arc;
use std::time::Duration;

use autoscaler_config::{ProjectRef, Scope};
use chrono::{DateTime, Utc};
use reqwest::header::HeaderMap;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use url::Url;

use super::Progress;
use crate::error::SourceError;
use crate::model::{PendingJob, Runner, RunnerStatus};

/// Parallel `GET /runners/:id` and per-project job listings.
const CONCURRENCY: usize = 32;
/// GitLab's maximum page size.
const PER_PAGE: usize = 100;
/// Safety stop for paging.
const MAX_PAGES: u32 = 1000;

/// The client.
#[derive(Clone)]
pub struct GitLab {
    http: reqwest::Client,
    /// `<instance>/api/v4/`.
    api: Url,
    /// `<instance>/api/graphql`.
    graphql: Url,
    token: SecretString,
}

impl std::fmt::Debug for GitLab {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitLab")
            .field("api", &self.api.as_str())
            .finish_non_exhaustive()
    }
}

/// A list item with an id (for the list integrity checks).
trait HasId {
    fn id(&self) -> u64;
}

impl HasId for RunnerDto {
    fn id(&self) -> u64 {
        self.id
    }
}

impl HasId for JobDto {
    fn id(&self) -> u64 {
        self.id
    }
}

impl HasId for ProjectDto {
    fn id(&self) -> u64 {
        self.id
    }
}

#[derive(Deserialize)]
struct RunnerDto {
    id: u64,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    paused: Option<bool>,
    #[serde(default)]
    active: Option<bool>,
    #[serde(default)]
    created_at: Option<DateTime<Utc>>,
    #[serde(default)]
    contacted_at: Option<DateTime<Utc>>,
}

#[derive(Deserialize)]
struct JobDto {
    id: u64,
    created_at: DateTime<Utc>,
    #[serde(default)]
    queued_duration: Option<f64>,
    #[serde(default)]
    tag_list: Vec<String>,
    #[serde(default)]
    pipeline: Option<PipelineDto>,
}

#[derive(Deserialize)]
struct PipelineDto {
    #[serde(default)]
    project_id: Option<u64>,
}

#[derive(Deserialize)]
struct ProjectDto {
    id: u64,
}

// === impl GitLab ===

impl GitLab {
    /// A client for the instance at `base` (e.g. `https://gitlab.example/`). It follows
    /// redirects only within `base`'s origin (the token is never sent elsewhere) and warns
    /// when `base` is plain `http://` to a non-loopback host.
    ///
    /// # Errors
    ///
    /// [`SourceError::Setup`] when the HTTP client cannot be built.
    pub fn new(base: Url, token: SecretString, timeout: Duration) -> Result<Self, SourceError> {
        let mut base = base;
        if !base.path().ends_with('/') {
            let p = format!("{}/", base.path());
            base.set_path(&p);
        }
        let join = |p: &str| {
            base.join(p)
                .map_err(|e| SourceError::Setup(format!("gitlab url {base}: {e}")))
        };
        if let Some(w) = autoscaler::gitlab::guard::plain_http_warning(&base) {
            tracing::warn!("{w}");
        }
        let http = reqwest::Client::builder()
            .redirect(autoscaler::gitlab::guard::redirect_policy())
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .user_agent(concat!(
                "check_gitlab_autoscaler/",
                env!("CARGO_PKG_VERSION")
            ))
            .build()
            .map_err(|e| SourceError::Setup(format!("cannot build the http client: {e}")))?;
        Ok(GitLab {
            http,
            api: join("api/v4/")?,
            graphql: join("api/graphql")?,
            token,
        })
    }

    fn url(&self, path: &str) -> Result<Url, SourceError> {
        self.api
            .join(path)
            .map_err(|e| SourceError::Setup(format!("gitlab path {path}: {e}")))
    }

    /// GET returning the parsed body and the headers.
    async fn get<T: DeserializeOwned>(
        &self,
        what: &str,
        url: Url,
    ) -> Result<(T, HeaderMap), SourceError> {
        let shown = shown(&url);
        let req = self
            .http
            .get(url)
            .header("PRIVATE-TOKEN", self.token.expose_secret());
        super::send_json(what, &shown, req, hint).await
    }

    /// Follows offset paging (`X-Next-Page`, else until a short page). A list longer than
    /// the page cap is an error, never a silently short list. `strict` also checks the
    /// pages against each other and against `X-Total`/`X-Total-Pages` (an id seen twice,
    /// counts that change: the list changed while it was read) and fails on any mismatch;
    /// without it, duplicates are left to the caller (pending jobs come and go all the time).
    async fn paged<T: DeserializeOwned + HasId>(
        &self,
        what: &str,
        path: &str,
        query: &[(&str, &str)],
        strict: bool,
    ) -> Result<Vec<T>, SourceError> {
        use autoscaler::gitlab::paging::{Next, OffsetListing, PageHeaders};
        let per_page = u32::try_from(PER_PAGE).unwrap_or(100);
        let mut listing = OffsetListing::new(what, per_page, MAX_PAGES);
        let mut out = Vec::new();
        loop {
            let page = listing.page();
            let mut url = self.url(path)?;
            {
                let mut q = url.query_pairs_mut();
                for (k, v) in query {
                    q.append_pair(k, v);
                }
                q.append_pair("per_page", &PER_PAGE.to_string());
                q.append_pair("page", &page.to_string());
            }
            let shown = shown(&url);
            let (items, headers): (Vec<T>, _) = self.get(what, url).await?;
            let number = |name: &str| {
                headers
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::trim)
                    .map(|v| v.parse::<u64>().ok())
            };
            let h = if strict {
                PageHeaders {
                    page: number("x-page").flatten(),
                    per_page: number("x-per-page").flatten(),
                    next_page: number("x-next-page"),
                    total: number("x-total").flatten(),
                    total_pages: number("x-total-pages").flatten(),
                }
            } else {
                PageHeaders {
                    next_page: number("x-next-page"),
                    ..PageHeaders::default()
                }
            };
            // Lenient lists: ids made unique per page so only the structure is checked.
            let ids: Vec<u64> = if strict {
                items.iter().map(HasId::id).collect()
            } else {
                let base = (u64::from(page) - 1) * PER_PAGE as u64;
                (0..items.len() as u64).map(|i| base + i).collect()
            };
            out.extend(items);
            match listing.add(&ids, h) {
                Ok(Next::Page(_)) => {}
                Ok(Next::Done) => return Ok(out),
                Err(e) => {
                    let reason = match e {
                        autoscaler::ports::GitLabError::Unexpected { message, .. } => message,
                        other => other.to_string(),
                    };
                    return Err(SourceError::Setup(format!("{what}: {shown}: {reason}")));
                }
            }
        }
    }

    /// This controller's runners: listed, filtered by `prefix`, then read one by one for
    /// `contacted_at`. `all` uses `/runners/all` (instance runners need an admin token).
    ///
    /// # Errors
    ///
    /// The first failing call.
    pub async fn runners(
        &self,
        all: bool,
        prefix: &str,
        pools: &[String],
        progress: &Progress,
    ) -> Result<Vec<Runner>, SourceError> {
        const PART: &str = "gitlab runners";
        progress.stage(PART, "listing runners");
        let path = if all { "runners/all" } else { "runners" };
        let listed: Vec<RunnerDto> = self.paged("gitlab runner list", path, &[], true).await?;
        let ours: Vec<RunnerDto> = listed
            .into_iter()
            .filter(|r| {
                r.description
                    .as_deref()
                    .is_some_and(|d| d.starts_with(prefix))
            })
            .collect();
        let total = ours.len();
        progress.stage(PART, format!("runner details 0 of {total}"));

        let sem = Arc::new(Semaphore::new(CONCURRENCY));
        let mut set = JoinSet::new();
        for r in ours {
            let me = self.clone();
            let sem = sem.clone();
            set.spawn(async move {
                let _permit = sem.acquire_owned().await;
                let url = me.url(&format!("runners/{}", r.id))?;
                match me.get::<RunnerDto>("gitlab runner details", url).await {
                    Ok((d, _)) => Ok(Some((r, d))),
                    // Deleted between the list and this call: it is gone, not a failure.
                    Err(SourceError::Status { status: 404, .. }) => Ok(None),
                    Err(e) => Err(e),
                }
            });
        }
        let mut out = Vec::with_capacity(total);
        let mut done = 0usize;
        while let Some(joined) = set.join_next().await {
            let found = joined
                .map_err(|e| SourceError::Setup(format!("runner detail task failed: {e}")))??;
            done += 1;
            if let Some((listed, detail)) = found {
                out.push(to_runner(listed, detail, prefix, pools));
            }
            progress.stage(PART, format!("runner details {done} of {total}"));
        }
        out.sort_by_key(|r| r.id);
        Ok(out)
    }

    /// Pending jobs of the scope's projects and groups, or of the instance.
    ///
    /// # Errors
    ///
    /// The first failing call.
    pub async fn pending_jobs(
        &self,
        scope: &Scope,
        now: DateTime<Utc>,
        progress: &Progress,
    ) -> Result<Vec<PendingJob>, SourceError> {
        const PART: &str = "gitlab jobs";
        if scope.instance {
            progress.stage(PART, "graphql pending jobs");
            return self.instance_jobs(now).await;
        }
        let mut projects: Vec<String> = scope
            .projects
            .iter()
            .map(|p| match p {
                ProjectRef::Id(id) => id.to_string(),
                ProjectRef::Path(path) => encode(path),
            })
            .collect();
        for (i, g) in scope.groups.iter().enumerate() {
            progress.stage(
                PART,
                format!(
                    "projects of group {g} ({} of {})",
                    i + 1,
                    scope.groups.len()
                ),
            );
            let list: Vec<ProjectDto> = self
                .paged(
                    "gitlab group projects",
                    &format!("groups/{}/projects", encode(g)),
                    &[
                        ("include_subgroups", "true"),
                        ("simple", "true"),
                        ("archived", "false"),
                    ],
                    true,
                )
                .await?;
            projects.extend(list.into_iter().map(|p| p.id.to_string()));
        }
        projects.sort();
        projects.dedup();
        let total = projects.len();
        progress.stage(PART, format!("pending jobs of 0 of {total} projects"));
        let sem = Arc::new(Semaphore::new(CONCURRENCY.min(8)));
        let mut set = JoinSet::new();
        for p in projects {
            let me = self.clone();
            let sem = sem.clone();
            set.spawn(async move {
                let _permit = sem.acquire_owned().await;
                let jobs: Vec<JobDto> = me
                    .paged(
                        "gitlab pending jobs",
                        &format!("projects/{p}/jobs"),
                        &[("scope[]", "pending")],
                        false,
                    )
                    .await?;
                Ok::<_, SourceError>((p, jobs))
            });
        }
        let mut out = Vec::new();
        let mut finished = 0;
        while let Some(joined) = set.join_next().await {
            let (project, jobs) = joined
                .map_err(|e| SourceError::Setup(format!("job listing task failed: {e}")))??;
            let fallback = project.parse::<u64>().unwrap_or(0);
            out.extend(jobs.into_iter().map(|j| to_job(j, fallback, now)));
            finished += 1;
            progress.stage(
                PART,
                format!("pending jobs of {finished} of {total} projects"),
            );
        }
        out.sort_by_key(|j| j.id);
        out.dedup_by_key(|j| j.id);
        Ok(out)
    }

    async fn instance_jobs(&self, now: DateTime<Utc>) -> Result<Vec<PendingJob>, SourceError> {
        const QUERY: &str = "query($after: String) { jobs(statuses: [PENDING], first: 100, after: $after) { pageInfo { hasNextPage endCursor } nodes { id tags createdAt queuedAt project { id } } } }";
        #[derive(Deserialize)]
        struct Resp {
            data: Option<Data>,
        }
        #[derive(Deserialize)]
        struct Data {
            jobs: Conn,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Conn {
            page_info: PageInfo,
            nodes: Vec<Node>,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct PageInfo {
            has_next_page: bool,
            end_cursor: Option<String>,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Node {
            id: String,
            #[serde(default)]
            tags: Vec<String>,
            created_at: DateTime<Utc>,
            queued_at: Option<DateTime<Utc>>,
            project: Option<Gid>,
        }
        #[derive(Deserialize)]
        struct Gid {
            id: String,
        }
        let gid = |s: &str| s.rsplit('/').next().and_then(|n| n.parse::<u64>().ok());
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let body = serde_json::json!({"query": QUERY, "variables": {"after": after}});
            let shown = shown(&self.graphql);
            let req = self
                .http
                .post(self.graphql.clone())
                .header("PRIVATE-TOKEN", self.token.expose_secret())
                .json(&body);
            let (r, _): (Resp, _) =
                super::send_json("gitlab graphql jobs", &shown, req, hint).await?;
            let Some(data) = r.data else {
                return Err(SourceError::Setup(format!(
                    "gitlab graphql jobs: {shown} returned errors (instance scope needs an admin token)"
                )));
            };
            for n in data.jobs.nodes {
                let Some(id) = gid(&n.id) else { continue };
                out.push(PendingJob {
                    id,
                    project_id: n.project.and_then(|p| gid(&p.id)).unwrap_or(0),
                    tags: n.tags,
                    queued_at: n.queued_at.unwrap_or(n.created_at).min(now),
                });
            }
            if !data.jobs.page_info.has_next_page || data.jobs.page_info.end_cursor.is_none() {
                break;
            }
            after = data.jobs.page_info.end_cursor;
        }
        out.sort_by_key(|j| j.id);
        Ok(out)
    }
}

/// URL without query and credentials, for messages.
fn shown(url: &Url) -> String {
    let mut u = url.clone();
    u.set_query(None);
    let _ = u.set_password(None);
    let _ = u.set_username("");
    u.to_string()
}

/// What a GitLab status code usually means for the check.
fn hint(status: u16) -> &'static str {
    match status {
        401 => " (token refused)",
        403 => " (token lacks permission)",
        404 => " (not found, or not visible to the token)",
        429 => " (rate limited)",
        _ => "",
    }
}

/// Percent-encodes a project or group path for use as `:id`.
fn encode(path: &str) -> String {
    url::form_urlencoded::byte_serialize(path.as_bytes()).collect()
}

/// Pool named by a description `<prefix><pool>-...`; the longest matching pool wins.
pub fn pool_of(description: &str, prefix: &str, pools: &[String]) -> Option<String> {
    let rest = description.strip_prefix(prefix)?;
    pools
        .iter()
        .filter(|p| {
            rest.strip_prefix(p.as_str())
                .is_some_and(|r| r.is_empty() || r.starts_with('-'))
        })
        .max_by_key(|p| p.len())
        .cloned()
}

fn to_runner(listed: RunnerDto, detail: RunnerDto, prefix: &str, pools: &[String]) -> Runner {
    let description = detail
        .description
        .or(listed.description)
        .unwrap_or_default();
    let status_text = detail.status.or(listed.status).unwrap_or_default();
    let paused = detail
        .paused
        .or(listed.paused)
        .or(detail.active.map(|a| !a))
        .unwrap_or(false);
    let mut status = RunnerStatus::parse(&status_text).unwrap_or(RunnerStatus::Offline);
    if status == RunnerStatus::Paused {
        // Old GitLab hides liveness behind "paused": judge it by the contact time.
        status = match detail.contacted_at {
            None => RunnerStatus::NeverContacted,
            Some(_) => RunnerStatus::Online,
        };
    }
    Runner {
        id: listed.id,
        pool: pool_of(&description, prefix, pools),
        description,
        status,
        paused: paused || status_text == "paused",
        created_at: detail.created_at.or(listed.created_at),
        contacted_at: detail.contacted_at,
    }
}

fn to_job(j: JobDto, project: u64, now: DateTime<Utc>) -> PendingJob {
    let queued_at = match j.queued_duration {
        Some(d) if d.is_finite() && d >= 0.0 => {
            now - chrono::Duration::milliseconds((d * 1000.0) as i64)
        }
        _ => j.created_at,
    };
    PendingJob {
        id: j.id,
        project_id: j.pipeline.and_then(|p| p.project_id).unwrap_or(project),
        tags: j.tag_list,
        queued_at,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn pool_is_the_longest_pool_name_after_the_prefix() {
        let pools = vec!["docker".to_string(), "docker-priv".to_string()];
        assert_eq!(
            pool_of("ci-docker-priv-7", "ci-", &pools).as_deref(),
            Some("docker-priv")
        );
        assert_eq!(
            pool_of("ci-docker-7", "ci-", &pools).as_deref(),
            Some("docker")
        );
        assert_eq!(pool_of("ci-dockerx-7", "ci-", &pools), None);
        assert_eq!(pool_of("other-docker-7", "ci-", &pools), None);
    }

    #[test]
    fn queued_duration_wins_over_created_at() {
        let now: DateTime<Utc> = "2026-01-01T12:00:00Z".parse().unwrap();
        let j: JobDto = serde_json::from_value(serde_json::json!({
            "id": 5, "created_at": "2026-01-01T10:00:00Z", "queued_duration": 60.5,
            "tag_list": ["docker"], "pipeline": {"id": 1, "project_id": 9}
        }))
        .unwrap();
        let p = to_job(j, 0, now);
        assert_eq!(p.queued_at, now - chrono::Duration::milliseconds(60_500));
        assert_eq!(p.project_id, 9);
        let j: JobDto = serde_json::from_value(serde_json::json!({
            "id": 6, "created_at": "2026-01-01T10:00:00Z", "queued_duration": null
        }))
        .unwrap();
        assert_eq!(
            to_job(j, 3, now).queued_at,
            "2026-01-01T10:00:00Z".parse::<DateTime<Utc>>().unwrap()
        );
    }

    #[test]
    fn urls_in_messages_lose_query_and_credentials() {
        let u =
            Url::parse("https://user:pw@gitlab.example/api/v4/runners?private_token=x").unwrap();
        assert_eq!(shown(&u), "https://gitlab.example/api/v4/runners");
    }
}
