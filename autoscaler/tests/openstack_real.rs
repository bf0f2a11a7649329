//! The OpenStack adapter against a real OpenStack (Keystone, Nova with the fake virt driver,
//! Glance, Neutron, Placement) on loopback.
//!
//! Every test is `#[ignore]`: plain `cargo test` skips them. `bash tests/openstack/run.sh`
//! starts the stack, sets `AUTOSCALER_TEST_STACK` to its state folder (holding `clouds.yaml`
//! with clouds `demo` and `admin`, and `run/appcred.env`), runs this suite one test at a time,
//! and stops the stack. Each test uses its own controller id and deletes what it created.
//! Admin-only steps (quota, `os-resetState`, servers the controller does not own) use the
//! `openstack` CLI with the `admin` or `demo` cloud.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use autoscaler_core::ports::{
    Cloud, CloudErrorKind, CloudServer, CloudStatus, ControllerId, CreateServer, ServerId,
    ServerTemplateSpec,
};
use autoscaler_openstack::{
    AuthSettings, ClientOptions, Error, OpenStack, preflight, resolve_auth,
};
use base64::Engine as _;
use secrecy::SecretString;
use serde_json::Value;

const USER_DATA: &str = "#cloud-config\nruncmd:\n  - echo runner-token-glrt-test-only\n";

fn stack() -> PathBuf {
    let dir = std::env::var("AUTOSCALER_TEST_STACK")
        .expect("AUTOSCALER_TEST_STACK is not set: run `bash tests/openstack/run.sh`");
    PathBuf::from(dir)
}

fn clouds_yaml() -> PathBuf {
    stack().join("clouds.yaml")
}

/// The `export K=V` lines of `run/appcred.env`.
fn appcred_env() -> HashMap<String, String> {
    let text = std::fs::read_to_string(stack().join("run/appcred.env")).unwrap();
    text.lines()
        .filter_map(|l| l.strip_prefix("export "))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", std::process::id())
}

/// A client for `controller` authenticating with the demo user's password (clouds.yaml).
fn password_client(controller: &str) -> OpenStack {
    let settings = AuthSettings {
        cloud: Some("demo".into()),
        clouds_file: Some(clouds_yaml()),
        ..AuthSettings::default()
    };
    let auth = resolve_auth(&settings, &HashMap::<String, String>::new()).unwrap();
    OpenStack::new(
        auth,
        ControllerId::new(controller).unwrap(),
        ClientOptions::default(),
    )
    .unwrap()
}

/// A client for `controller` authenticating with the application credential (`OS_*`).
fn appcred_client(controller: &str) -> OpenStack {
    let auth = resolve_auth(&AuthSettings::default(), &appcred_env()).unwrap();
    OpenStack::new(
        auth,
        ControllerId::new(controller).unwrap(),
        ClientOptions::default(),
    )
    .unwrap()
}

/// Runs the `openstack` CLI as `cloud` and returns its JSON output (or `Null`).
fn cli(cloud: &str, args: &[&str]) -> Value {
    let out = Command::new("/usr/bin/openstack")
        .env("OS_CLIENT_CONFIG_FILE", clouds_yaml())
        .args(["--os-cloud", cloud])
        .args(args)
        .output()
        .expect("run /usr/bin/openstack");
    assert!(
        out.status.success(),
        "openstack {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
}

fn set_instances_quota(n: u64) {
    cli(
        "admin",
        &["quota", "set", "--instances", &n.to_string(), "demo"],
    );
}

fn template() -> ServerTemplateSpec {
    ServerTemplateSpec {
        flavor: "m1.tiny".into(),
        image: "fake-image".into(),
        networks: vec!["runner-net".into()],
        security_groups: vec!["runner-sg".into()],
        key_name: Some("k1".into()),
        availability_zone: None,
        boot_volume_size: None,
    }
}

fn request(name: &str, runner_id: u64) -> CreateServer {
    CreateServer {
        name: name.into(),
        pool: "docker".into(),
        runner_id: Some(runner_id),
        template: template(),
        user_data: SecretString::from(USER_DATA),
        metadata: BTreeMap::from([("purpose".to_string(), "integration-test".to_string())]),
    }
}

/// Polls until `done(server)` holds; panics after `secs` seconds.
async fn wait_for(
    c: &OpenStack,
    id: &ServerId,
    secs: u64,
    done: impl Fn(&CloudServer) -> bool,
) -> CloudServer {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let s = c.get_server(id).await.unwrap();
        if done(&s) {
            return s;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "server {id} stuck in {:?}",
            s.status
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Polls until the server is gone (404); panics after `secs` seconds.
async fn wait_gone(c: &OpenStack, id: &ServerId, secs: u64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        match c.get_server(id).await {
            Err(e) if e.is_not_found() => return,
            Err(e) => panic!("get {id}: {e}"),
            Ok(s) => assert!(
                tokio::time::Instant::now() < deadline,
                "server {id} not gone: {:?}",
                s.status
            ),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Deletes every owned server and waits until the list is empty.
async fn clean(c: &OpenStack) {
    let servers = c.list_owned_servers().await.unwrap();
    for s in &servers {
        c.delete_server(&s.id).await.unwrap();
    }
    for s in &servers {
        wait_gone(c, &s.id, 60).await;
    }
    assert!(c.list_owned_servers().await.unwrap().is_empty());
}

#[tokio::test]
#[ignore = "needs the loopback OpenStack: bash tests/openstack/run.sh"]
async fn password_and_application_credential_auth_both_work() {
    for c in [password_client("it-auth"), appcred_client("it-auth")] {
        let expires = c.authenticate().await.unwrap();
        assert!(expires > chrono::Utc::now());
        let q = c.quota().await.unwrap();
        assert!(q.max_instances.is_some(), "{q:?}");
        assert_eq!(c.stats().requests.get("auth"), Some(&1));
    }
}

#[tokio::test]
#[ignore = "needs the loopback OpenStack: bash tests/openstack/run.sh"]
async fn created_server_carries_user_data_metadata_and_tags_goes_active_and_deletes_to_404() {
    let ctl = unique("it-create");
    let c = appcred_client(&ctl);
    let id = c.create_server(request("it-create-1", 4242)).await.unwrap();
    let s = wait_for(&c, &id, 60, |s| s.status != CloudStatus::Building).await;
    assert_eq!(s.status, CloudStatus::Active);
    assert_eq!(s.name, "it-create-1");
    assert_eq!(s.pool.as_deref(), Some("docker"));
    assert_eq!(s.runner_id, Some(4242));
    assert!(
        s.tags.contains(&format!("autoscaler:{ctl}")),
        "{:?}",
        s.tags
    );
    assert!(s.tags.contains(&"pool:docker".to_string()), "{:?}", s.tags);
    assert!(
        s.address.is_some(),
        "an ACTIVE server on runner-net has an address"
    );
    let listed = c.list_owned_servers().await.unwrap();
    assert_eq!(listed.iter().map(|s| &s.id).collect::<Vec<_>>(), [&id]);

    // What Nova stored, read back as admin: user data and metadata.
    let shown = cli(
        "admin",
        &[
            "--os-compute-api-version",
            "2.3",
            "server",
            "show",
            "-f",
            "json",
            id.as_str(),
        ],
    );
    let ud = shown["OS-EXT-SRV-ATTR:user_data"]
        .as_str()
        .expect("user_data shown to admin");
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(ud)
        .unwrap();
    assert_eq!(decoded, USER_DATA.as_bytes());
    let props = shown["properties"].clone();
    assert_eq!(props["autoscaler-controller"], ctl.as_str(), "{props}");
    assert_eq!(props["autoscaler-runner-id"], "4242", "{props}");
    assert_eq!(props["purpose"], "integration-test", "{props}");

    c.delete_server(&id).await.unwrap();
    wait_gone(&c, &id, 60).await;
    c.delete_server(&id)
        .await
        .expect("deleting a deleted server is done");
    assert!(c.list_owned_servers().await.unwrap().is_empty());
}

#[tokio::test]
#[ignore = "needs the loopback OpenStack: bash tests/openstack/run.sh"]
async fn listing_by_tag_never_returns_unowned_servers() {
    let ctl = unique("it-owner");
    let c = password_client(&ctl);
    let other = password_client(&unique("it-other"));
    let mine = [
        c.create_server(request("it-own-1", 1)).await.unwrap(),
        c.create_server(request("it-own-2", 2)).await.unwrap(),
    ];
    let theirs = other
        .create_server(request("it-theirs-1", 3))
        .await
        .unwrap();
    let human = cli(
        "demo",
        &[
            "--os-compute-api-version",
            "2.52",
            "server",
            "create",
            "-f",
            "json",
            "--flavor",
            "m1.tiny",
            "--image",
            "fake-image",
            "--network",
            "runner-net",
            "--tag",
            "autoscaler",
            "--wait",
            "it-human-1",
        ],
    );
    let human = ServerId(human["id"].as_str().unwrap().to_string());

    let mut listed: Vec<ServerId> = c
        .list_owned_servers()
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    listed.sort();
    let mut expected = mine.to_vec();
    expected.sort();
    assert_eq!(listed, expected);

    clean(&c).await;
    // The unowned servers were not touched.
    assert_eq!(c.get_server(&theirs).await.unwrap().name, "it-theirs-1");
    assert_eq!(c.get_server(&human).await.unwrap().name, "it-human-1");
    clean(&other).await;
    c.delete(&human).await.unwrap();
    wait_gone(&c, &human, 60).await;
}

#[tokio::test]
#[ignore = "needs the loopback OpenStack: bash tests/openstack/run.sh"]
async fn quota_refusals_and_quota_race_errors_are_detected_and_cleaned() {
    let ctl = unique("it-quota");
    let c = appcred_client(&ctl);
    let used = c.quota().await.unwrap().used_instances;
    set_instances_quota(used + 2);

    // Sequential: the third create gets Nova's 403.
    c.create_server(request("it-q-1", 1)).await.unwrap();
    c.create_server(request("it-q-2", 2)).await.unwrap();
    let err = c.create_server(request("it-q-3", 3)).await.unwrap_err();
    assert_eq!(err.kind(), CloudErrorKind::Quota, "{err}");
    assert!(
        err.message().contains("Quota exceeded for instances"),
        "{err}"
    );
    let q = c.quota().await.unwrap();
    assert_eq!(q.max_instances, Some(used + 2));
    clean(&c).await;

    // Concurrent: several creates race for two slots. Each is either refused with 403 or
    // accepted; accepted extras go ERROR with a quota fault when Nova rechecks. Whether a
    // round produces such an ERROR depends on interleaving inside nova-api, so up to three
    // rounds are run; the invariants are checked in every round.
    let mut rounds_with_errors = 0;
    for round in 1..=3 {
        let (accepted, refused, quota_errors) = quota_race(&c, round).await;
        eprintln!(
            "race round {round}: accepted {accepted}, refused {refused}, quota errors {quota_errors}"
        );
        clean(&c).await;
        if quota_errors > 0 {
            rounds_with_errors += 1;
            break;
        }
    }
    assert_eq!(
        rounds_with_errors, 1,
        "three races produced no ERROR server"
    );
    set_instances_quota(10);
}

/// Six concurrent creates against a quota with two free slots; checks that every server
/// ends ACTIVE (at most two) or ERROR with a quota fault, and returns
/// (accepted, refused with 403, quota ERROR servers).
async fn quota_race(c: &OpenStack, round: u64) -> (usize, usize, usize) {
    let mut set = tokio::task::JoinSet::new();
    for i in 0..6 {
        let c = c.clone();
        set.spawn(async move {
            c.create_server(request(&format!("it-race-{round}-{i}"), i))
                .await
        });
    }
    let (mut accepted, mut refused) = (0, 0);
    while let Some(r) = set.join_next().await {
        match r.unwrap() {
            Ok(_) => accepted += 1,
            Err(e) if e.kind() == CloudErrorKind::Quota => refused += 1,
            Err(e) => panic!("unexpected create failure: {e}"),
        }
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let servers = loop {
        let s = c.list_owned_servers().await.unwrap();
        if s.iter().all(|s| s.status != CloudStatus::Building)
            || tokio::time::Instant::now() > deadline
        {
            break s;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let active = servers
        .iter()
        .filter(|s| s.status == CloudStatus::Active)
        .count();
    let quota_errors = servers.iter().filter(|s| s.status.is_quota_error()).count();
    assert_eq!(accepted + refused, 6);
    assert!(active <= 2, "{servers:?}");
    assert_eq!(
        active + quota_errors,
        servers.len(),
        "every server is ACTIVE or a quota ERROR: {servers:?}"
    );
    assert_eq!(servers.len(), accepted);
    (accepted, refused, quota_errors)
}

#[tokio::test]
#[ignore = "needs the loopback OpenStack: bash tests/openstack/run.sh"]
async fn error_servers_are_detected_with_their_fault() {
    let c = appcred_client(&unique("it-error"));
    let id = c.create_server(request("it-err-1", 1)).await.unwrap();
    wait_for(&c, &id, 60, |s| s.status == CloudStatus::Active).await;
    cli("admin", &["server", "set", "--state", "error", id.as_str()]);
    let listed = c.list_owned_servers().await.unwrap();
    assert!(
        matches!(listed[0].status, CloudStatus::Error { .. }),
        "{listed:?}"
    );

    // Flavor `huge` (2000 vCPUs) passes the quota check only with a large cores quota, and
    // then fails scheduling: "No valid host".
    cli("admin", &["quota", "set", "--cores", "5000", "demo"]);
    let mut huge = request("it-err-huge", 2);
    huge.template.flavor = "huge".into();
    let huge = c.create_server(huge).await.unwrap();
    let s = wait_for(&c, &huge, 60, |s| s.status != CloudStatus::Building).await;
    let CloudStatus::Error { fault: Some(fault) } = &s.status else {
        panic!("expected ERROR with a fault, got {:?}", s.status)
    };
    assert!(fault.contains("No valid host"), "{fault}");
    assert!(!s.status.is_quota_error());
    clean(&c).await;
    cli("admin", &["quota", "set", "--cores", "20", "demo"]);
}

#[tokio::test]
#[ignore = "needs the loopback OpenStack: bash tests/openstack/run.sh"]
async fn unknown_flavor_image_or_network_is_an_error_naming_it() {
    let c = appcred_client(&unique("it-names"));
    type Change = fn(&mut ServerTemplateSpec);
    let cases: [(&str, Change); 4] = [
        ("flavor \"m9.nope\" not found", |t| {
            t.flavor = "m9.nope".into()
        }),
        ("image \"no-such-image\" not found", |t| {
            t.image = "no-such-image".into()
        }),
        ("network \"no-such-net\" not found", |t| {
            t.networks = vec!["no-such-net".into()]
        }),
        ("security group \"no-such-sg\" not found", |t| {
            t.security_groups = vec!["no-such-sg".into()]
        }),
    ];
    for (expected, change) in cases {
        let mut req = request("it-names", 1);
        change(&mut req.template);
        let err = c.create_server(req).await.unwrap_err();
        assert_eq!(err.kind(), CloudErrorKind::Misconfigured, "{err}");
        assert!(err.message().contains(expected), "{err}");
    }
    // An unknown key pair is Nova's own 400, shown verbatim.
    let mut req = request("it-names", 1);
    req.template.key_name = Some("no-such-key".into());
    let err = c.create_server(req).await.unwrap_err();
    assert_eq!(err.kind(), CloudErrorKind::Rejected, "{err}");
    assert!(
        err.message().contains("no-such-key") || err.message().contains("key_name"),
        "{err}"
    );
    assert!(c.list_owned_servers().await.unwrap().is_empty());

    // Ids work as well as names.
    let env = appcred_env();
    let mut req = request("it-ids", 1);
    req.template.image = env["STACK_IMAGE_ID"].clone();
    req.template.networks = vec![env["STACK_NETWORK_ID"].clone()];
    let id = c.create_server(req).await.unwrap();
    wait_for(&c, &id, 60, |s| s.status == CloudStatus::Active).await;
    clean(&c).await;
}

#[tokio::test]
#[ignore = "needs the loopback OpenStack: bash tests/openstack/run.sh"]
async fn preflight_passes_for_the_seeded_template_and_lists_every_problem_otherwise() {
    let c = password_client(&unique("it-preflight"));
    let good = preflight(&c, &[("docker".into(), template())]).await;
    assert!(good.is_ok(), "{good}");
    let bad = ServerTemplateSpec {
        flavor: "m9.nope".into(),
        image: "no-such-image".into(),
        networks: vec!["no-such-net".into()],
        security_groups: vec!["runner-sg".into()],
        key_name: Some("no-such-key".into()),
        availability_zone: None,
        boot_volume_size: None,
    };
    let report = preflight(&c, &[("docker".into(), template()), ("broken".into(), bad)]).await;
    let problems: Vec<&str> = report.problems().map(|p| p.subject.as_str()).collect();
    assert_eq!(
        problems,
        [
            "flavor \"m9.nope\"",
            "image \"no-such-image\"",
            "network \"no-such-net\"",
            "key pair \"no-such-key\""
        ],
        "{report}"
    );
}

/// Runs last, after `tests/openstack/keystone-token-lifetime.sh` gave Keystone short tokens.
#[tokio::test]
#[ignore = "needs the loopback OpenStack with short tokens: bash tests/openstack/run.sh"]
async fn token_renewal_keeps_the_client_working() {
    let c = appcred_client(&unique("it-renew"));
    let first_expiry = c.authenticate().await.unwrap();
    let lifetime = first_expiry - chrono::Utc::now();
    assert!(
        lifetime <= chrono::Duration::seconds(120),
        "Keystone tokens live {lifetime}; this test needs short ones (keystone-token-lifetime.sh)"
    );
    let until = first_expiry + chrono::Duration::seconds(5);
    let mut calls = 0;
    while chrono::Utc::now() < until {
        let r: Result<_, Error> = c.limits().await;
        r.expect("calls keep working across token renewals");
        calls += 1;
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let stats = c.stats();
    let auths = stats.requests.get("auth").copied().unwrap_or(0);
    eprintln!(
        "renewal: {calls} calls, {auths} token requests, {} re-auths after 401",
        stats.reauth_after_401
    );
    assert!(auths >= 2, "the token was never renewed: {stats:?}");
    assert_eq!(
        stats.reauth_after_401, 0,
        "renewal happened before expiry, not after a 401"
    );
    assert!(c.authenticate().await.unwrap() > first_expiry);
}
