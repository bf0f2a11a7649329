//! Issue 12: the check decides "ours" by the controller's one ownership rule (description
//! prefix AND the maintenance-note marker), against the shared HTTP fake GitLab.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use autoscaler_check::model::Fetched;
use autoscaler_check::{LiveSource, Progress, Source, Subcheck};
use autoscaler_config::fixture::{ConfigFixture, PoolFixture};
use autoscaler_fakes::gitlab::{ADMIN_TOKEN, FakeGitLabServer};

fn config(gitlab: &str) -> String {
    ConfigFixture::new()
        .poll_interval("15s")
        .listen("127.0.0.1:1")
        .gitlab_url(&format!("{gitlab}/"))
        .token_env("FAKE_GITLAB_TOKEN")
        .scope("projects = [42]")
        .password_auth("http://127.0.0.1:1/v3", "check", "ci", "OS_PASSWORD")
        .pool(
            PoolFixture::new("docker")
                .flavor("m1.small")
                .image("debian-12")
                .networks(&["ci-net"]),
        )
        .render()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runner_named_like_ours_without_the_marker_is_not_ours() {
    let gitlab = FakeGitLabServer::start().await.unwrap();
    // An administrator's runner named alike: prefix `ci-`, but no maintenance-note marker.
    let admins = gitlab.add_runners(1, "ci-docker-");
    assert_eq!(admins.len(), 1);
    // One the controller created: prefix and marker.
    let controller = autoscaler_core::ports::ControllerId::new("ci".to_string()).unwrap();
    let ours = gitlab.add_runner(
        "ci-docker-7",
        &autoscaler_core::ports::runner_maintenance_note(&controller, "docker"),
    );
    let config = autoscaler_config::parse(&config(&gitlab.url()), "c.toml").unwrap();
    let env = BTreeMap::from([("FAKE_GITLAB_TOKEN".to_string(), ADMIN_TOKEN.to_string())]);
    let source = LiveSource::new(config, &env, Duration::from_secs(10));
    let snap = source
        .snapshot(
            &BTreeSet::from([Subcheck::Runners]),
            chrono::Utc::now(),
            &Progress::default(),
        )
        .await
        .unwrap();
    let Fetched::Ok(runners) = &snap.runners else {
        panic!("{:?}", snap.runners)
    };
    let ids: Vec<u64> = runners.iter().map(|r| r.id).collect();
    assert_eq!(
        ids,
        vec![ours],
        "a runner without the marker is not this controller's: {runners:?}"
    );
    assert_eq!(runners[0].pool.as_deref(), Some("docker"));
}
