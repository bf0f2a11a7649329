//! The GitLab adapter against the fake GitLab server, and the fake itself against GitLab's
//! behaviour as `docs/gitlab.md` records it: if the fake drifts from GitLab, the `fake_*`
//! tests fail.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use autoscaler_config::fixture::{ConfigFixture, PoolFixture};
use autoscaler_config::{ProjectRef, Scope};
use autoscaler_core::ports::{
    ControllerId, CreateRunner, GitLab, GitLabError, runner_maintenance_note,
};
use autoscaler_core::testing::gitlab::runner_request;
use autoscaler_gitlab::{GitLabAdapter, GitLabSettings};
use autoscaler_tests::fake_gitlab::{ADMIN_TOKEN, FakeGitLabServer, USER_TOKEN};
use reqwest::StatusCode;
use secrecy::SecretString;
use serde_json::Value;

// === helpers ===

async fn fake() -> FakeGitLabServer {
    FakeGitLabServer::start().await.unwrap()
}

fn settings(fake: &FakeGitLabServer, scope: Scope) -> GitLabSettings {
    GitLabSettings {
        scope,
        connect_attempts: 5,
        ..settings_for(&fake.url())
    }
}

fn projects(ids: &[ProjectRef]) -> Scope {
    Scope {
        projects: ids.to_vec(),
        groups: vec![],
        instance: false,
    }
}

async fn adapter(fake: &FakeGitLabServer, scope: Scope) -> GitLabAdapter {
    GitLabAdapter::connect(settings(fake, scope), SecretString::from(ADMIN_TOKEN))
        .await
        .unwrap()
}

fn runner_req(name: &str, tags: &[&str]) -> CreateRunner {
    CreateRunner {
        maximum_timeout: Some(3600),
        ..runner_request(name, tags)
    }
}

struct Raw {
    http: reqwest::Client,
    base: String,
}

impl Raw {
    fn new(fake: &FakeGitLabServer) -> Self {
        Raw {
            http: reqwest::Client::new(),
            base: fake.url(),
        }
    }
    async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.base))
            .header("PRIVATE-TOKEN", ADMIN_TOKEN)
            .send()
            .await
            .unwrap()
    }
    async fn send(&self, method: reqwest::Method, path: &str, body: Value) -> reqwest::Response {
        self.http
            .request(method, format!("{}{path}", self.base))
            .header("PRIVATE-TOKEN", ADMIN_TOKEN)
            .json(&body)
            .send()
            .await
            .unwrap()
    }
}

fn header(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_string())
}

async fn ids(r: reqwest::Response) -> Vec<u64> {
    let v: Vec<Value> = r.json().await.unwrap();
    v.iter().map(|j| j["id"].as_u64().unwrap()).collect()
}

// === the fake against the facts ===

#[tokio::test]
async fn fake_user_endpoint_accepts_private_token_and_bearer_and_refuses_others() {
    let f = fake().await;
    let raw = Raw::new(&f);
    assert_eq!(raw.get("/api/v4/user").await.status(), StatusCode::OK);
    let bearer = raw
        .http
        .get(format!("{}/api/v4/user", raw.base))
        .bearer_auth(USER_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(bearer.status(), StatusCode::OK);
    let bad = raw
        .http
        .get(format!("{}/api/v4/user", raw.base))
        .header("PRIVATE-TOKEN", "nope")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn fake_scope_works_as_array_and_as_string_and_unknown_scope_is_400() {
    let f = fake().await;
    let p = f.add_project("g/p", None);
    let job = f.add_job(p, &["docker"], Duration::from_secs(60));
    let raw = Raw::new(&f);
    for q in ["scope[]=pending", "scope=pending"] {
        let r = raw.get(&format!("/api/v4/projects/{p}/jobs?{q}")).await;
        assert_eq!(r.status(), StatusCode::OK, "{q}");
        assert_eq!(ids(r).await, vec![job], "{q}");
    }
    let r = raw
        .get(&format!("/api/v4/projects/{p}/jobs?scope[]=running"))
        .await;
    assert!(ids(r).await.is_empty());
    let r = raw
        .get(&format!("/api/v4/projects/{p}/jobs?scope[]=bogus"))
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    // Projects by URL-encoded path.
    let r = raw.get("/api/v4/projects/g%2Fp/jobs?scope[]=pending").await;
    assert_eq!(ids(r).await, vec![job]);
}

#[tokio::test]
async fn fake_job_entity_has_tag_list_and_no_queued_at() {
    let f = fake().await;
    let p = f.add_project("g/p", None);
    f.add_job(p, &["ubuntu", "docker"], Duration::from_secs(60));
    let r = Raw::new(&f)
        .get(&format!("/api/v4/projects/{p}/jobs"))
        .await;
    let jobs: Vec<Value> = r.json().await.unwrap();
    let j = &jobs[0];
    assert_eq!(j["tag_list"], serde_json::json!(["docker", "ubuntu"]));
    assert!(j.get("queued_at").is_none());
    for key in [
        "queued_duration",
        "created_at",
        "pipeline",
        "runner",
        "runner_manager",
        "web_url",
    ] {
        assert!(j.get(key).is_some(), "{key} missing");
    }
    assert!(
        j.get("failure_reason").is_none(),
        "only present when failed"
    );
}

#[tokio::test]
async fn fake_keyset_pages_link_next_with_cursor_and_last_page_has_no_link_or_total() {
    let f = fake().await;
    let p = f.add_project("g/p", None);
    for _ in 0..5 {
        f.add_job(p, &[], Duration::from_secs(60));
    }
    let raw = Raw::new(&f);
    let mut path = format!(
        "/api/v4/projects/{p}/jobs?scope[]=pending&pagination=keyset&per_page=2&order_by=id&sort=desc"
    );
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let r = raw.get(&path).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(header(&r, "x-total"), None);
        assert_eq!(header(&r, "x-total-pages"), None);
        let link = header(&r, "link");
        seen.extend(ids(r).await);
        pages += 1;
        let Some(link) = link else { break };
        assert!(link.contains("rel=\"next\""), "{link}");
        assert!(link.contains("cursor="), "{link}");
        let url = link.trim_start_matches('<').split('>').next().unwrap();
        path = url.trim_start_matches(&raw.base).to_string();
    }
    assert_eq!(pages, 3);
    let mut sorted = seen.clone();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(seen, sorted, "newest first");
    assert_eq!(seen.len(), 5);
    // Keyset only with order_by=id&sort=desc.
    let r = raw
        .get(&format!(
            "/api/v4/projects/{p}/jobs?pagination=keyset&sort=asc"
        ))
        .await;
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn fake_offset_jobs_pages_have_no_counts_and_per_page_is_capped_at_100() {
    let f = fake().await;
    let p = f.add_project("g/p", None);
    for _ in 0..120 {
        f.add_job(p, &[], Duration::from_secs(60));
    }
    let raw = Raw::new(&f);
    let r = raw
        .get(&format!("/api/v4/projects/{p}/jobs?per_page=500"))
        .await;
    assert_eq!(header(&r, "x-per-page").as_deref(), Some("100"));
    assert_eq!(header(&r, "x-next-page").as_deref(), Some("2"));
    assert_eq!(header(&r, "x-prev-page").as_deref(), Some(""));
    assert_eq!(header(&r, "x-total"), None);
    assert!(!header(&r, "link").unwrap().contains("rel=\"last\""));
    assert_eq!(ids(r).await.len(), 100);
    let r = raw
        .get(&format!("/api/v4/projects/{p}/jobs?page=2&per_page=100"))
        .await;
    assert_eq!(header(&r, "x-next-page").as_deref(), Some(""));
    assert_eq!(ids(r).await.len(), 20);
    let r = raw.get(&format!("/api/v4/projects/{p}/jobs")).await;
    assert_eq!(ids(r).await.len(), 20, "per_page defaults to 20");
}

#[tokio::test]
async fn fake_create_runner_is_201_with_glrt_token_and_validates_runner_type() {
    let f = fake().await;
    let raw = Raw::new(&f);
    let r = raw
        .send(
            reqwest::Method::POST,
            "/api/v4/user/runners",
            serde_json::json!({"runner_type": "instance_type", "description": "ctl-x", "tag_list": ["a", "b"]}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let v: Value = r.json().await.unwrap();
    assert!(v["id"].as_u64().is_some());
    assert!(v["token"].as_str().unwrap().starts_with("glrt-"));
    assert!(v.get("token_expires_at").is_some() && v["token_expires_at"].is_null());
    let r = raw
        .send(
            reqwest::Method::POST,
            "/api/v4/user/runners",
            serde_json::json!({"description": "x"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = raw
        .send(
            reqwest::Method::POST,
            "/api/v4/user/runners",
            serde_json::json!({"runner_type": "group_type"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST, "group_id is required");
    assert_eq!(f.runners()[0].tags.len(), 2);
}

#[tokio::test]
async fn fake_delete_is_204_then_404_and_put_paused_excludes_active() {
    let f = fake().await;
    let raw = Raw::new(&f);
    let r = raw
        .send(
            reqwest::Method::POST,
            "/api/v4/user/runners",
            serde_json::json!({"runner_type": "instance_type"}),
        )
        .await;
    let id = r.json::<Value>().await.unwrap()["id"].as_u64().unwrap();
    let path = format!("/api/v4/runners/{id}");
    let r = raw
        .send(
            reqwest::Method::PUT,
            &path,
            serde_json::json!({"paused": true}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        (v["paused"].as_bool(), v["active"].as_bool()),
        (Some(true), Some(false))
    );
    let r = raw
        .send(
            reqwest::Method::PUT,
            &path,
            serde_json::json!({"paused": true, "active": true}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = raw.send(reqwest::Method::DELETE, &path, Value::Null).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = raw.send(reqwest::Method::DELETE, &path, Value::Null).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(raw.get(&path).await.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn fake_429_carries_retry_after_and_ratelimit_headers() {
    let f = fake().await;
    f.rate_limit(1, 7);
    let raw = Raw::new(&f);
    let r = raw.get("/api/v4/user").await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(header(&r, "retry-after").as_deref(), Some("7"));
    for h in [
        "ratelimit-limit",
        "ratelimit-observed",
        "ratelimit-remaining",
        "ratelimit-reset",
        "ratelimit-resettime",
    ] {
        assert!(header(&r, h).is_some(), "{h} missing");
    }
    assert!(
        header(&r, "ratelimit-reset")
            .unwrap()
            .parse::<i64>()
            .is_ok(),
        "unix time"
    );
    assert!(
        header(&r, "ratelimit-resettime").unwrap().ends_with("GMT"),
        "HTTP date"
    );
    assert_eq!(raw.get("/api/v4/user").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn fake_jobs_index_limit_is_per_minute() {
    let f = fake().await;
    f.set_jobs_limit(2);
    let p = f.add_project("g/p", None);
    let raw = Raw::new(&f);
    let path = format!("/api/v4/projects/{p}/jobs");
    assert_eq!(raw.get(&path).await.status(), StatusCode::OK);
    assert_eq!(raw.get(&path).await.status(), StatusCode::OK);
    let r = raw.get(&path).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(header(&r, "retry-after").is_some());
}

#[tokio::test]
async fn fake_runner_jobs_filter_by_status_and_runner_protocol_answers_201_204_403() {
    let f = fake().await;
    let p = f.add_project("g/p", None);
    let raw = Raw::new(&f);
    let r = raw
        .send(
            reqwest::Method::POST,
            "/api/v4/user/runners",
            serde_json::json!({"runner_type": "instance_type"}),
        )
        .await;
    let v: Value = r.json().await.unwrap();
    let (id, token) = (
        v["id"].as_u64().unwrap(),
        v["token"].as_str().unwrap().to_string(),
    );
    let job = f.add_job(p, &[], Duration::from_secs(600));
    let request = |t: &str| {
        raw.send(
            reqwest::Method::POST,
            "/api/v4/jobs/request",
            serde_json::json!({"token": t}),
        )
    };
    assert_eq!(request("glrt-wrong").await.status(), StatusCode::FORBIDDEN);
    let r = request(&token).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(r.json::<Value>().await.unwrap()["id"].as_u64(), Some(job));
    assert_eq!(request(&token).await.status(), StatusCode::NO_CONTENT);
    let r = raw
        .get(&format!("/api/v4/runners/{id}/jobs?status=running"))
        .await;
    let jobs: Vec<Value> = r.json().await.unwrap();
    assert_eq!(jobs.len(), 1);
    assert!(jobs[0].get("tag_list").is_none() && jobs[0].get("runner").is_none());
    assert!(jobs[0]["project"]["path_with_namespace"].is_string());
    let r = raw
        .get(&format!("/api/v4/runners/{id}/jobs?status=success"))
        .await;
    assert!(ids(r).await.is_empty());
    let r = raw
        .get(&format!("/api/v4/runners/{id}/jobs?status=bogus"))
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn fake_runner_status_is_stale_then_never_contacted_then_online_offline_then_paused() {
    let f = fake().await;
    let raw = Raw::new(&f);
    let runner = |paused: bool| {
        let raw = &raw;
        async move {
            let r = raw
                .send(
                    reqwest::Method::POST,
                    "/api/v4/user/runners",
                    serde_json::json!({"runner_type": "instance_type", "paused": paused}),
                )
                .await;
            r.json::<Value>().await.unwrap()["id"].as_u64().unwrap()
        }
    };
    let now = chrono::Utc::now();
    let never = runner(false).await;
    let never_paused = runner(true).await;
    let online = runner(false).await;
    f.set_contacted_at(online, Some(now - chrono::Duration::minutes(119)));
    let offline = runner(false).await;
    f.set_contacted_at(offline, Some(now - chrono::Duration::minutes(121)));
    let paused = runner(true).await;
    f.set_contacted_at(paused, Some(now));
    let stale = runner(false).await;
    f.set_created_at(stale, now - chrono::Duration::days(8));
    f.set_contacted_at(
        stale,
        Some(now - chrono::Duration::days(7) - chrono::Duration::minutes(1)),
    );
    let status = |id: u64| {
        let raw = &raw;
        async move {
            let v: Value = raw
                .get(&format!("/api/v4/runners/{id}"))
                .await
                .json()
                .await
                .unwrap();
            v["status"].as_str().unwrap().to_string()
        }
    };
    assert_eq!(status(never).await, "never_contacted");
    assert_eq!(status(never_paused).await, "never_contacted");
    assert_eq!(status(online).await, "online");
    assert_eq!(status(offline).await, "offline");
    assert_eq!(status(paused).await, "paused");
    assert_eq!(status(stale).await, "stale");
    // The offline filter includes stale runners.
    let r = raw.get("/api/v4/runners/all?status=offline").await;
    let mut got = ids(r).await;
    got.sort_unstable();
    assert_eq!(got, vec![offline, stale]);
    assert_eq!(
        raw.get("/api/v4/runners/all?status=bogus").await.status(),
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn fake_lists_instance_runners_only_in_runners_all_and_only_for_admins() {
    let f = fake().await;
    let raw = Raw::new(&f);
    raw.send(
        reqwest::Method::POST,
        "/api/v4/user/runners",
        serde_json::json!({"runner_type": "instance_type"}),
    )
    .await;
    assert!(ids(raw.get("/api/v4/runners").await).await.is_empty());
    assert_eq!(ids(raw.get("/api/v4/runners/all").await).await.len(), 1);
    let r = raw
        .http
        .get(format!("{}/api/v4/runners/all", raw.base))
        .header("PRIVATE-TOKEN", USER_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
}

// === the adapter against the fake ===

#[tokio::test]
async fn adapter_connect_retries_until_gitlab_answers_and_does_not_retry_a_bad_token() {
    let f = fake().await;
    f.fail_next(3, 502);
    let a = GitLabAdapter::connect(
        settings(&f, Scope::default()),
        SecretString::from(ADMIN_TOKEN),
    )
    .await;
    assert!(a.is_ok(), "{a:?}");
    let user_calls = f
        .requests()
        .iter()
        .filter(|r| r.starts_with("GET /api/v4/user"))
        .count();
    assert_eq!(user_calls, 4);
    f.clear_requests();
    let err = GitLabAdapter::connect(
        settings(&f, Scope::default()),
        SecretString::from("glpat-wrong"),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, GitLabError::Auth { status: 401, .. }),
        "{err:?}"
    );
    assert_eq!(f.requests().len(), 1, "auth failures are not retried");
    assert!(!format!("{err:?} {err}").contains("glpat-wrong"));
}

#[tokio::test]
async fn adapter_pages_pending_jobs_by_keyset_with_scope_pending() {
    let f = fake().await;
    let p = f.add_project("grp/app", None);
    let mut want = Vec::new();
    for i in 0..250 {
        let tags: &[&str] = if i % 2 == 0 { &["docker"] } else { &[] };
        want.push(f.add_job(p, tags, Duration::from_secs(60)));
    }
    let a = adapter(&f, projects(&[ProjectRef::Path("grp/app".into())])).await;
    let jobs = a.pending_jobs().await.unwrap();
    let mut got: Vec<u64> = jobs.iter().map(|j| j.id).collect();
    got.sort_unstable();
    assert_eq!(got, want);
    assert!(jobs.iter().any(|j| j.tags.contains("docker")));
    let job_requests: Vec<String> = f
        .requests()
        .into_iter()
        .filter(|r| r.contains("/jobs"))
        .collect();
    assert_eq!(job_requests.len(), 3, "{job_requests:?}");
    assert!(
        job_requests[0].contains("projects/grp%2Fapp/jobs"),
        "{job_requests:?}"
    );
    assert!(
        job_requests[0].contains("scope%5B%5D=pending"),
        "{job_requests:?}"
    );
    assert!(job_requests[0].contains("pagination=keyset"));
    assert!(job_requests[1].contains("cursor="));
}

#[tokio::test]
async fn adapter_expands_groups_with_subgroups_and_polls_dormant_projects_less() {
    let f = fake().await;
    f.set_jobs_limit(60);
    let g = f.add_group("grp", None);
    let sub = f.add_group("grp/sub", Some(g));
    let busy = f.add_project("grp/sub/busy", Some(sub));
    let quiet = f.add_project("grp/quiet", Some(g));
    let _elsewhere = f.add_project("other/x", None);
    let job = f.add_job(busy, &[], Duration::from_secs(60));
    let scope = Scope {
        projects: vec![],
        groups: vec!["grp".into()],
        instance: false,
    };
    // A budget too small to poll both projects on every call (2 per second > 80 % of 60
    // per minute): the quiet project backs off.
    let mut s = settings(&f, scope);
    s.jobs_per_minute = 60;
    let a = GitLabAdapter::connect(s, SecretString::from(ADMIN_TOKEN))
        .await
        .unwrap();
    let (jobs, stats) = a.pending_jobs_with_stats().await.unwrap();
    assert_eq!(jobs.iter().map(|j| j.id).collect::<Vec<_>>(), vec![job]);
    assert_eq!(stats.polled, 2);
    f.clear_requests();
    let (jobs, stats) = a.pending_jobs_with_stats().await.unwrap();
    assert_eq!(
        jobs.len(),
        1,
        "the dormant project's last result still counts"
    );
    assert_eq!((stats.polled, stats.not_due), (1, 1));
    let reqs = f.requests();
    assert!(
        reqs.iter()
            .any(|r| r.contains(&format!("projects/{busy}/jobs"))),
        "{reqs:?}"
    );
    assert!(
        !reqs
            .iter()
            .any(|r| r.contains(&format!("projects/{quiet}/jobs"))),
        "{reqs:?}"
    );
    assert!(
        !reqs.iter().any(|r| r.contains("/groups/")),
        "groups are not re-read every call"
    );
    // A webhook nudge makes the dormant project due again.
    a.nudge_project(quiet).await;
    let (_, stats) = a.pending_jobs_with_stats().await.unwrap();
    assert_eq!(stats.polled, 2);
}

#[tokio::test]
async fn adapter_polls_every_project_on_every_call_while_the_budget_allows() {
    let f = fake().await;
    let busy = f.add_project("g/busy", None);
    let quiet = f.add_project("g/quiet", None);
    f.add_job(busy, &[], Duration::from_secs(60));
    let a = adapter(&f, projects(&[ProjectRef::Id(busy), ProjectRef::Id(quiet)])).await;
    // 2 projects polled every second are 120 per minute: within 80 % of 600.
    for _ in 0..3 {
        let (_, stats) = a.pending_jobs_with_stats().await.unwrap();
        assert_eq!((stats.polled, stats.not_due), (2, 0));
    }
    // So a job in the quiet project is seen on the very next call.
    let late = f.add_job(quiet, &[], Duration::from_secs(60));
    let jobs = a.pending_jobs().await.unwrap();
    assert!(jobs.iter().any(|j| j.id == late), "{jobs:?}");
}

#[tokio::test]
async fn adapter_never_exceeds_the_jobs_list_budget_and_reports_what_waits() {
    let f = fake().await;
    f.set_jobs_limit(3);
    let refs: Vec<ProjectRef> = (0..5)
        .map(|i| {
            let p = f.add_project(&format!("g/p{i}"), None);
            f.add_job(p, &[], Duration::from_secs(60));
            ProjectRef::Id(p)
        })
        .collect();
    let mut s = settings(&f, projects(&refs));
    s.jobs_per_minute = 3;
    let a = GitLabAdapter::connect(s, SecretString::from(ADMIN_TOKEN))
        .await
        .unwrap();
    // Issue 11, item 7: a spent budget degrades polling; it does not fail the call.
    let (jobs, stats) = a.pending_jobs_with_stats().await.unwrap();
    assert_eq!((jobs.len(), stats.polled, stats.over_budget), (3, 3, 2));
    let jobs_calls = f.requests().iter().filter(|r| r.contains("/jobs")).count();
    assert_eq!(
        jobs_calls, 3,
        "the budget stops polling before GitLab's limit"
    );
    let skipped = a.skipped_scope();
    assert_eq!(skipped.len(), 1, "{skipped:?}");
    assert!(skipped[0].entry.starts_with("2 projects"), "{skipped:?}");
    assert!(skipped[0].reason.contains("budget"), "{skipped:?}");
}

#[tokio::test]
async fn adapter_polls_a_large_scope_round_robin_a_bounded_number_per_call() {
    let f = fake().await;
    let ids: Vec<u64> = (0..25)
        .map(|i| f.add_project(&format!("g/p{i}"), None))
        .collect();
    let last = f.add_job(ids[24], &[], Duration::from_secs(60));
    let refs: Vec<ProjectRef> = ids.iter().map(|p| ProjectRef::Id(*p)).collect();
    let mut s = settings(&f, projects(&refs));
    s.max_polls_per_call = 10;
    let a = GitLabAdapter::connect(s, SecretString::from(ADMIN_TOKEN))
        .await
        .unwrap();
    let mut polled = std::collections::BTreeSet::new();
    let mut seen_last = false;
    for call in 0..3 {
        f.clear_requests();
        let (jobs, stats) = a.pending_jobs_with_stats().await.unwrap();
        assert!(stats.polled <= 10, "call {call}: {stats:?}");
        seen_last |= jobs.iter().any(|j| j.id == last);
        for r in f.requests() {
            if let Some(p) = r.split("/projects/").nth(1) {
                polled.insert(p.split('/').next().unwrap().to_string());
            }
        }
    }
    assert_eq!(polled.len(), 25, "every project had its turn: {polled:?}");
    assert!(seen_last);
    assert!(a.skipped_scope().is_empty(), "{:?}", a.skipped_scope());
}

#[tokio::test]
async fn adapter_skips_a_group_answering_403_and_reports_it() {
    let f = fake().await;
    let good1 = f.add_project("a/one", None);
    let good2 = f.add_project("b/two", None);
    let bad = f.add_group("secret", None);
    let hidden = f.add_project("secret/x", Some(bad));
    f.add_job(hidden, &[], Duration::from_secs(60));
    let j1 = f.add_job(good1, &[], Duration::from_secs(60));
    let j2 = f.add_job(good2, &[], Duration::from_secs(60));
    f.forbid_group(bad);
    let scope = Scope {
        projects: vec![ProjectRef::Id(good1), ProjectRef::Path("b/two".into())],
        groups: vec!["secret".into(), "missing".into()],
        instance: false,
    };
    let a = adapter(&f, scope).await;
    // Issue 11, item 7: one failing scope entry does not make GitLab unavailable.
    let jobs = a.pending_jobs().await.unwrap();
    let mut got: Vec<u64> = jobs.iter().map(|j| j.id).collect();
    got.sort_unstable();
    assert_eq!(got, vec![j1, j2]);
    let skipped = a.skipped_scope();
    let entries: Vec<&str> = skipped.iter().map(|p| p.entry.as_str()).collect();
    assert_eq!(
        entries,
        vec!["group secret", "group missing"],
        "{skipped:?}"
    );
    assert!(skipped[0].reason.contains("403"), "{skipped:?}");
    assert!(!skipped[0].reason.contains(ADMIN_TOKEN));
}

#[tokio::test]
async fn adapter_skips_a_forbidden_project_and_fails_only_when_gitlab_itself_fails() {
    let f = fake().await;
    let good = f.add_project("a/good", None);
    let bad = f.add_project("a/bad", None);
    let j = f.add_job(good, &[], Duration::from_secs(60));
    f.add_job(bad, &[], Duration::from_secs(60));
    f.forbid_project(bad);
    let a = adapter(&f, projects(&[ProjectRef::Id(good), ProjectRef::Id(bad)])).await;
    let jobs = a.pending_jobs().await.unwrap();
    assert_eq!(jobs.iter().map(|x| x.id).collect::<Vec<_>>(), vec![j]);
    let skipped = a.skipped_scope();
    assert_eq!(skipped.len(), 1, "{skipped:?}");
    assert_eq!(skipped[0].entry, format!("project {bad}"));
    // Every entry refused on its own: an empty scope for now, reported; not an outage.
    let only_bad = adapter(&f, projects(&[ProjectRef::Id(bad)])).await;
    assert!(only_bad.pending_jobs().await.unwrap().is_empty());
    assert_eq!(only_bad.skipped_scope().len(), 1);
    // GitLab itself failing for every entry is "GitLab unavailable", not "no jobs".
    let grp = f.add_group("grp", None);
    f.add_project("grp/p", Some(grp));
    let groups_only = Scope {
        projects: vec![],
        groups: vec!["grp".into()],
        instance: false,
    };
    let g = adapter(&f, groups_only).await;
    f.fail_next(1, 502);
    let err = g.pending_jobs().await.unwrap_err();
    assert!(
        matches!(err, GitLabError::Server { status: 502, .. }),
        "{err:?}"
    );
    assert_eq!(g.skipped_scope()[0].entry, "group grp");
    assert!(
        g.pending_jobs().await.is_ok(),
        "the next call reads the group"
    );
}

#[tokio::test]
async fn adapter_honours_retry_after_without_sending() {
    let f = fake().await;
    let p = f.add_project("g/p", None);
    let a = adapter(&f, projects(&[ProjectRef::Id(p)])).await;
    f.rate_limit(1, 1);
    let err = a.pending_jobs().await.unwrap_err();
    assert!(matches!(err, GitLabError::RateLimited { .. }), "{err:?}");
    assert!(err.is_transient());
    f.clear_requests();
    let err = a.pending_jobs().await.unwrap_err();
    assert!(matches!(err, GitLabError::RateLimited { .. }), "{err:?}");
    assert!(
        f.requests().is_empty(),
        "nothing is sent during Retry-After"
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(a.pending_jobs().await.is_ok());
}

#[tokio::test]
async fn adapter_classifies_5xx_as_transient() {
    let f = fake().await;
    let p = f.add_project("g/p", None);
    let a = adapter(&f, projects(&[ProjectRef::Id(p)])).await;
    f.fail_next(1, 503);
    let err = a.pending_jobs().await.unwrap_err();
    assert!(
        matches!(err, GitLabError::Server { status: 503, .. }),
        "{err:?}"
    );
    assert_eq!(err.label(), "server");
    assert!(a.pending_jobs().await.is_ok());
}

#[tokio::test]
async fn adapter_reads_instance_wide_pending_jobs_through_graphql() {
    let f = fake().await;
    let p = f.add_project("g/p", None);
    let want: Vec<u64> = (0..130)
        .map(|_| f.add_job(p, &["x"], Duration::from_secs(60)))
        .collect();
    let scope = Scope {
        projects: vec![],
        groups: vec![],
        instance: true,
    };
    let a = adapter(&f, scope).await;
    let got: Vec<u64> = a
        .pending_jobs()
        .await
        .unwrap()
        .iter()
        .map(|j| j.id)
        .collect();
    assert_eq!(got, want);
    assert_eq!(
        f.requests()
            .iter()
            .filter(|r| r.contains("/api/graphql"))
            .count(),
        2
    );
}

#[tokio::test]
async fn adapter_runner_lifecycle_create_list_pause_count_delete() {
    let f = fake().await;
    let p = f.add_project("g/p", None);
    let a = adapter(&f, projects(&[ProjectRef::Id(p)])).await;
    let controller = ControllerId::new("ctl").unwrap();
    // Runners this controller does not own.
    let raw = Raw::new(&f);
    raw.send(
        reqwest::Method::POST,
        "/api/v4/user/runners",
        serde_json::json!({"runner_type": "instance_type", "description": "ctl-hand-made"}),
    )
    .await;
    raw.send(
        reqwest::Method::POST,
        "/api/v4/user/runners",
        serde_json::json!({"runner_type": "instance_type", "description": "other-1",
                           "maintenance_note": runner_maintenance_note(&controller, "docker")}),
    )
    .await;

    let new = a
        .create_runner(runner_req("ctl-docker-1", &["docker"]))
        .await
        .unwrap();
    assert!(!format!("{new:?}").contains("glrt-"));
    let created = f.runners().into_iter().find(|r| r.id == new.id).unwrap();
    assert_eq!(created.description, "ctl-docker-1");
    assert!(created.tags.contains("docker") && !created.run_untagged);
    assert_eq!(created.maximum_timeout, Some(3600));

    let owned = a.owned_runners().await.unwrap();
    assert_eq!(owned.len(), 1);
    assert_eq!(
        (owned[0].id, owned[0].pool.as_deref()),
        (new.id, Some("docker"))
    );
    assert_eq!(owned[0].contacted_at, None);

    a.set_paused(new.id, true).await.unwrap();
    let token = secrecy::ExposeSecret::expose_secret(&new.token).to_string();
    assert!(token.starts_with("glrt-"));
    assert!(f.runner_booted(&token));
    let j1 = f.add_job(p, &["docker"], Duration::from_millis(300));
    assert!(a.owned_runners().await.unwrap()[0].paused);
    assert_eq!(
        a.running_jobs(new.id).await.unwrap(),
        0,
        "paused runners take no job"
    );
    a.set_paused(new.id, false).await.unwrap();
    assert_eq!(a.running_jobs(new.id).await.unwrap(), 1);
    let r = &a.owned_runners().await.unwrap()[0];
    assert_eq!((r.running_jobs, r.jobs_run), (1, 1));
    assert!(r.contacted_at.is_some() && r.last_job_at.is_some());

    tokio::time::sleep(Duration::from_millis(350)).await;
    let j2 = f.add_job(p, &["docker"], Duration::from_secs(600));
    let r = &a.owned_runners().await.unwrap()[0];
    assert_eq!(
        (r.running_jobs, r.jobs_run),
        (1, 2),
        "{j1} done, {j2} running"
    );

    // A delete with the job running kills it: the fake records that.
    a.delete_runner(new.id).await.unwrap();
    assert_eq!(f.killed_jobs(), vec![j2]);
    a.delete_runner(new.id).await.unwrap();
    assert!(a.owned_runners().await.unwrap().is_empty());
}

#[tokio::test]
async fn adapter_counts_jobs_run_without_repaging_history() {
    let f = fake().await;
    f.set_capacity(300);
    let p = f.add_project("g/p", None);
    let a = adapter(&f, projects(&[ProjectRef::Id(p)])).await;
    let new = a
        .create_runner(runner_req("ctl-docker-1", &[]))
        .await
        .unwrap();
    for _ in 0..250 {
        f.add_job(p, &[], Duration::ZERO);
    }
    f.runner_booted(secrecy::ExposeSecret::expose_secret(&new.token));
    assert_eq!(a.owned_runners().await.unwrap()[0].jobs_run, 250);
    f.clear_requests();
    f.add_job(p, &[], Duration::ZERO);
    assert_eq!(a.owned_runners().await.unwrap()[0].jobs_run, 251);
    let history: Vec<String> = f
        .requests()
        .into_iter()
        .filter(|r| {
            r.contains(&format!("runners/{}/jobs", new.id)) && !r.contains("status=running")
        })
        .collect();
    assert_eq!(
        history.len(),
        1,
        "one page, not the whole history: {history:?}"
    );
}

#[tokio::test]
async fn adapter_create_refuses_descriptions_without_the_controller_prefix() {
    let f = fake().await;
    let a = adapter(&f, Scope::default()).await;
    let err = a
        .create_runner(runner_req("docker-1", &[]))
        .await
        .unwrap_err();
    assert!(matches!(err, GitLabError::Misconfigured { .. }), "{err:?}");
    assert!(f.runners().is_empty());
}

#[tokio::test]
async fn adapter_debug_output_has_no_token() {
    let f = fake().await;
    let a = adapter(&f, Scope::default()).await;
    assert!(!format!("{a:?}").contains(ADMIN_TOKEN));
}

// === runner listing integrity (issue 11, item 1) ===

/// Runner ids of one raw `/runners/all` page and its `X-Total`.
async fn raw_runner_page(raw: &Raw, page: usize) -> (Vec<u64>, Option<String>) {
    let r = raw
        .get(&format!("/api/v4/runners/all?per_page=100&page={page}"))
        .await;
    let total = header(&r, "x-total");
    (ids(r).await, total)
}

#[tokio::test]
async fn fake_offset_pages_shift_when_a_runner_is_deleted_between_requests() {
    let f = fake().await;
    let all = f.add_runners(250, "other-");
    let raw = Raw::new(&f);
    // GitLab offers only offset paging for runner lists: keyset is Grape's 405.
    for path in ["/api/v4/runners/all", "/api/v4/runners"] {
        let r = raw.get(&format!("{path}?pagination=keyset")).await;
        assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED, "{path}");
    }
    let (page1, total1) = raw_runner_page(&raw, 1).await;
    assert_eq!(page1, all[..100].to_vec());
    assert_eq!(total1.as_deref(), Some("250"));
    // Someone deletes a runner of page 1 before page 2 is asked for.
    let r = raw
        .send(
            reqwest::Method::DELETE,
            &format!("/api/v4/runners/{}", all[5]),
            Value::Null,
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let (page2, total2) = raw_runner_page(&raw, 2).await;
    // GitLab computes each page when asked: everything moved up one place, so the runner
    // that was first on page 2 is now last on page 1 and is never seen.
    assert_eq!(page2, all[101..201].to_vec());
    assert!(!page1.contains(&all[100]) && !page2.contains(&all[100]));
    assert_eq!(total2.as_deref(), Some("249"));
    // The scripted form does the same right after serving a page.
    f.delete_runner_after_list_page(1, all[6]);
    let (page1, _) = raw_runner_page(&raw, 1).await;
    let (page2, _) = raw_runner_page(&raw, 2).await;
    assert_eq!(page1.last(), Some(&all[100]));
    assert_eq!(page2.first(), Some(&all[102]), "all[101] was skipped");
}

#[tokio::test]
async fn fake_runner_list_counts_are_left_out_above_10000() {
    let f = fake().await;
    f.add_runners(10_001, "other-");
    let raw = Raw::new(&f);
    let r = raw.get("/api/v4/runners/all?per_page=100&page=1").await;
    assert_eq!(header(&r, "x-total"), None);
    assert_eq!(header(&r, "x-total-pages"), None);
    assert!(!header(&r, "link").unwrap().contains("rel=\"last\""));
    assert_eq!(header(&r, "x-next-page").as_deref(), Some("2"));
    let r = raw.get("/api/v4/runners/all?per_page=100&page=101").await;
    assert_eq!(header(&r, "x-next-page").as_deref(), Some(""));
    assert_eq!(ids(r).await.len(), 1);
    let small = fake().await;
    small.add_runners(3, "other-");
    let r = Raw::new(&small).get("/api/v4/runners/all").await;
    assert_eq!(header(&r, "x-total").as_deref(), Some("3"));
}

/// 100 foreign runners, then ours (first item of page 2), then 50 more foreign ones.
async fn ours_first_on_page_two(f: &FakeGitLabServer, a: &GitLabAdapter) -> (Vec<u64>, u64) {
    let mut others = f.add_runners(100, "other-");
    let ours = a
        .create_runner(runner_req("ctl-docker-1", &[]))
        .await
        .unwrap()
        .id;
    others.extend(f.add_runners(50, "other-"));
    (others, ours)
}

#[tokio::test]
async fn adapter_refuses_a_runner_list_that_shifted_between_pages() {
    let f = fake().await;
    let a = adapter(&f, Scope::default()).await;
    let (others, ours) = ours_first_on_page_two(&f, &a).await;
    assert_eq!(a.owned_runners().await.unwrap().len(), 1);
    // Another client deletes a foreign runner between page 1 and page 2: ours moves to
    // page 1 after it was read, so the listing never shows it.
    f.delete_runner_after_list_page(1, others[0]);
    let listed = a.owned_runners().await;
    assert!(
        matches!(&listed, Err(GitLabError::Unexpected { message, .. }) if message.contains("counts changed")),
        "a shifted listing must be an error, not a list without runner {ours}: {listed:?}"
    );
    // The runner is still there, and GET /runners/:id says so.
    let by_id = a.runner_by_id(ours).await.unwrap();
    assert_eq!(by_id.map(|r| r.id), Some(ours));
    // The next, undisturbed listing is whole again.
    let again = a.owned_runners().await.unwrap();
    assert_eq!(again.iter().map(|r| r.id).collect::<Vec<_>>(), vec![ours]);
}

#[tokio::test]
async fn adapter_refuses_a_runner_list_truncated_by_the_page_cap() {
    let f = fake().await;
    let a = adapter(&f, Scope::default()).await;
    f.add_runners(10_000, "other-");
    let ours = a
        .create_runner(runner_req("ctl-docker-1", &[]))
        .await
        .unwrap()
        .id;
    // 10,001 runners: page 101 holds ours, one page beyond the cap of 100 pages.
    let listed = a.owned_runners().await;
    assert!(
        matches!(&listed, Err(GitLabError::Unexpected { message, .. }) if message.contains("truncated")),
        "a truncated listing must be an error, not a list without runner {ours}: {listed:?}"
    );
}

#[tokio::test]
async fn adapter_cannot_see_a_shift_without_counts_but_runner_by_id_finds_the_runner() {
    // Documents the limit of what a listing can prove (docs/gitlab.md): above 10,000
    // runners GitLab sends no counts, so a shift between pages is invisible.
    let f = fake().await;
    let mut s = settings(&f, Scope::default());
    s.max_list_pages = 200;
    let a = GitLabAdapter::connect(s, SecretString::from(ADMIN_TOKEN))
        .await
        .unwrap();
    let (others, ours) = ours_first_on_page_two(&f, &a).await;
    f.add_runners(10_000, "other-");
    f.delete_runner_after_list_page(1, others[0]);
    let listed = a.owned_runners().await.unwrap();
    assert!(listed.is_empty(), "the shift skipped runner {ours}");
    assert_eq!(
        a.runner_by_id(ours).await.unwrap().map(|r| r.id),
        Some(ours),
        "absence from a listing is not proof: GET /runners/:id still finds it"
    );
}

// === the token stays on the configured origin; bodies are bounded (items 8 and 9) ===

/// What a loopback server saw.
#[derive(Debug, Default)]
struct Seen {
    requests: Vec<String>,
    tokens: Vec<String>,
}

type SeenLog = std::sync::Arc<std::sync::Mutex<Seen>>;

/// A loopback server answering `/api/v4/user` with 200 and everything else with `body()`,
/// recording each request and any `PRIVATE-TOKEN` / `Authorization` it carried.
async fn recording_server(body: fn() -> String) -> (String, SeenLog) {
    let seen: SeenLog = SeenLog::default();
    let log = seen.clone();
    let app = axum::Router::new().fallback(
        move |uri: axum::http::Uri, headers: axum::http::HeaderMap| {
            let log = log.clone();
            async move {
                let mut s = log.lock().unwrap();
                s.requests.push(uri.path().to_string());
                for h in ["private-token", "authorization"] {
                    if let Some(v) = headers.get(h) {
                        s.tokens.push(v.to_str().unwrap_or("?").to_string());
                    }
                }
                let json = [(axum::http::header::CONTENT_TYPE, "application/json")];
                if uri.path() == "/api/v4/user" {
                    (json, r#"{"id":1,"username":"root"}"#.to_string())
                } else {
                    (json, body())
                }
            }
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

/// A loopback server redirecting every request (307, same path and query) to `target`.
async fn redirector(target: String) -> String {
    let app = axum::Router::new().fallback(move |uri: axum::http::Uri| {
        let to = format!(
            "{target}{}",
            uri.path_and_query().map(|p| p.as_str()).unwrap_or("/")
        );
        async move { axum::response::Redirect::temporary(&to) }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

fn settings_for(url: &str) -> GitLabSettings {
    GitLabSettings {
        url: url.parse().unwrap(),
        scope: Scope::default(),
        controller: ControllerId::new("ctl").unwrap(),
        list_all_runners: true,
        jobs_per_minute: 600,
        request_timeout: Duration::from_secs(5),
        quiet_base: Duration::from_secs(10),
        dormant_interval: Duration::from_secs(120),
        group_refresh: Duration::from_secs(600),
        max_stale: Duration::from_secs(300),
        concurrency: 4,
        connect_attempts: 1,
        connect_backoff: Duration::from_millis(20),
        max_body: 32 * 1024 * 1024,
        max_list_pages: 100,
        max_polls_per_call: 200,
    }
}

fn empty_list() -> String {
    "[]".into()
}

/// A 40 MiB runner list (one runner with a huge description).
fn huge_list() -> String {
    format!(
        r#"[{{"id":1,"description":"{}"}}]"#,
        "x".repeat(40 * 1024 * 1024)
    )
}

#[tokio::test]
async fn adapter_never_sends_the_token_on_a_cross_origin_redirect() {
    let (elsewhere, seen) = recording_server(empty_list).await;
    let gitlab = redirector(elsewhere.clone()).await;
    let err = GitLabAdapter::connect(settings_for(&gitlab), SecretString::from(ADMIN_TOKEN))
        .await
        .unwrap_err();
    let s = seen.lock().unwrap();
    assert!(
        s.tokens.is_empty(),
        "the token reached another origin: {s:?}"
    );
    assert!(s.requests.is_empty(), "the redirect was followed: {s:?}");
    let msg = err.to_string();
    assert!(
        matches!(err, GitLabError::Misconfigured { .. }) && msg.contains("another origin"),
        "{msg}"
    );
    assert!(
        msg.contains(&elsewhere) && !msg.contains(ADMIN_TOKEN),
        "{msg}"
    );
}

#[tokio::test]
async fn adapter_refuses_a_body_over_the_limit_naming_the_path() {
    let (url, _) = recording_server(huge_list).await;
    let a = GitLabAdapter::connect(settings_for(&url), SecretString::from(ADMIN_TOKEN))
        .await
        .unwrap();
    let err = a.owned_runners().await.unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, GitLabError::Unexpected { .. }), "{msg}");
    assert!(
        msg.contains("GET /api/v4/runners/all") && msg.contains("limit"),
        "{msg}"
    );
    assert!(!msg.contains('?'), "no query in the message: {msg}");
}

/// The check plugin's GitLab source (the controller's adapter underneath) for controller
/// `ctl` with one instance-runner pool, so runners are listed with `/runners/all`.
fn check_client(url: &str) -> autoscaler_check::source::gitlab::GitLab {
    let text = ConfigFixture::new()
        .id("ctl")
        .gitlab_url(url)
        .token_env("T")
        .scope("projects = [1]")
        .password_auth("http://127.0.0.1:1/v3", "u", "p", "P")
        .pool(
            PoolFixture::new("docker")
                .limit(1)
                .flavor("f")
                .image("i")
                .networks(&["n"]),
        )
        .render();
    let config = autoscaler_config::parse(&text, "check.toml").unwrap();
    autoscaler_check::source::gitlab::GitLab::new(
        &config,
        SecretString::from(ADMIN_TOKEN),
        Duration::from_secs(5),
    )
    .unwrap()
}

#[tokio::test]
async fn check_plugin_never_sends_the_token_on_a_cross_origin_redirect() {
    let (elsewhere, seen) = recording_server(empty_list).await;
    let gitlab = redirector(elsewhere.clone()).await;
    let progress = autoscaler_check::Progress::default();
    let err = check_client(&gitlab)
        .runners(&[], &progress)
        .await
        .unwrap_err();
    let s = seen.lock().unwrap();
    assert!(
        s.tokens.is_empty(),
        "the token reached another origin: {s:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("another origin") && msg.contains(&elsewhere),
        "{msg}"
    );
    assert!(!msg.contains(ADMIN_TOKEN));
}

#[tokio::test]
async fn check_plugin_refuses_a_body_over_the_limit() {
    let (url, _) = recording_server(huge_list).await;
    let progress = autoscaler_check::Progress::default();
    let err = check_client(&url)
        .runners(&[], &progress)
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("limit") && msg.contains("/api/v4/runners/all"),
        "{msg}"
    );
}

#[tokio::test]
async fn check_plugin_refuses_a_runner_list_that_shifted_between_pages() {
    let f = fake().await;
    let a = adapter(&f, Scope::default()).await;
    let (others, ours) = ours_first_on_page_two(&f, &a).await;
    let progress = autoscaler_check::Progress::default();
    let check = check_client(&f.url());
    let whole = check.runners(&[], &progress).await.unwrap();
    assert_eq!(whole.iter().map(|r| r.id).collect::<Vec<_>>(), vec![ours]);
    f.delete_runner_after_list_page(1, others[0]);
    let err = check
        .runners(&[], &progress)
        .await
        .expect_err("a shifted listing must be an error, not a list without our runner");
    let msg = err.to_string();
    assert!(msg.contains("counts changed"), "{msg}");
}

#[tokio::test]
async fn adapter_follows_a_redirect_within_the_configured_origin() {
    // `/old/...` moved to `/new/...` on the same host and port: followed, token included.
    let seen: SeenLog = SeenLog::default();
    let log = seen.clone();
    let app = axum::Router::new().fallback(
        move |uri: axum::http::Uri, headers: axum::http::HeaderMap| {
            let log = log.clone();
            async move {
                use axum::response::IntoResponse;
                let path = uri.path().to_string();
                if let Some(rest) = path.strip_prefix("/old/") {
                    return axum::response::Redirect::temporary(&format!("/new/{rest}"))
                        .into_response();
                }
                let mut s = log.lock().unwrap();
                s.requests.push(path.clone());
                if let Some(v) = headers.get("private-token") {
                    s.tokens.push(v.to_str().unwrap_or("?").to_string());
                }
                if path == "/new/api/v4/user" {
                    axum::Json(serde_json::json!({"id": 1})).into_response()
                } else {
                    StatusCode::NOT_FOUND.into_response()
                }
            }
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/old/", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let a = GitLabAdapter::connect(settings_for(&url), SecretString::from(ADMIN_TOKEN)).await;
    assert!(a.is_ok(), "{a:?}");
    let s = seen.lock().unwrap();
    assert_eq!(s.requests, vec!["/new/api/v4/user".to_string()]);
    assert_eq!(s.tokens, vec![ADMIN_TOKEN.to_string()]);
}
