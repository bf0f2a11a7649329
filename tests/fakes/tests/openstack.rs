//! The REAL OpenStack client of the autoscaler (`autoscaler_openstack::OpenStack`) against
//! [`FakeOpenStack`]: authentication from clouds.yaml and with an application credential,
//! template lookups by name, create → ACTIVE, owned-only listing across pages, delete → 404,
//! quota and fault classification, preflight; plus raw-HTTP checks of the microversion rules.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use autoscaler_core::ports::{
    Cloud, CloudErrorKind, CloudStatus, ControllerId, CreateServer, ServerId, ServerTemplateSpec,
};
use autoscaler_fakes::{
    FakeOpenStack, FakeOpenStackOptions, FakeQuota, FakeStatus, ServerEvent, ServerEventKind,
};
use autoscaler_openstack::auth::{AppCredential, AuthMethod};
use autoscaler_openstack::{
    AuthSettings, ClientOptions, Interface, OpenStack, ResolvedAuth, preflight, resolve_auth,
};
use secrecy::SecretString;
use serde_json::{Value, json};
use tokio::sync::broadcast;
use tokio::time::timeout;

const USER_DATA: &str = "#cloud-config\nrunner_token: glrt-fake-runner-token-0123456789\n";

/// Delays long enough that a check right after a create or delete still sees BUILD or
/// `deleting` on a loaded machine; tests wait for events, not for these delays.
fn slow() -> FakeOpenStackOptions {
    FakeOpenStackOptions {
        boot_delay: Duration::from_millis(1000),
        delete_delay: Duration::from_millis(1000),
        ..FakeOpenStackOptions::default()
    }
}

fn fast() -> FakeOpenStackOptions {
    FakeOpenStackOptions {
        boot_delay: Duration::from_millis(50),
        delete_delay: Duration::from_millis(50),
        ..FakeOpenStackOptions::default()
    }
}

fn options() -> ClientOptions {
    ClientOptions {
        request_timeout: Duration::from_secs(5),
        retry_delay: Duration::from_millis(5),
        page_size: 2,
        ..ClientOptions::default()
    }
}

/// A client that logs in with the default application credential, by id.
fn app_credential_client(fake: &FakeOpenStack, controller: &str) -> OpenStack {
    app_credential_client_with(fake, controller, options())
}

fn app_credential_client_with(
    fake: &FakeOpenStack,
    controller: &str,
    options: ClientOptions,
) -> OpenStack {
    let auth = ResolvedAuth {
        auth_url: fake.auth_url().parse().unwrap(),
        method: AuthMethod::ApplicationCredential {
            credential: AppCredential::Id("autoscaler".into()),
            secret: SecretString::from("autoscaler-secret"),
        },
        region: Some("RegionOne".into()),
        interface: Interface::Public,
        cacert: None,
        verify_tls: true,
        origin: "fake app credential".into(),
    };
    OpenStack::new(auth, ControllerId::new(controller).unwrap(), options).unwrap()
}

/// A client resolved from a clouds.yaml the fake wrote, as an operator would configure it.
fn clouds_yaml_client(fake: &FakeOpenStack, dir: &tempfile::TempDir) -> OpenStack {
    let path = dir.path().join("clouds.yaml");
    std::fs::write(&path, fake.clouds_yaml("fake").unwrap()).unwrap();
    let settings = AuthSettings {
        cloud: Some("fake".into()),
        clouds_file: Some(path),
        ..AuthSettings::default()
    };
    let auth = resolve_auth(&settings, &BTreeMap::<String, String>::new()).unwrap();
    OpenStack::new(auth, ControllerId::new("ci-1").unwrap(), options()).unwrap()
}

fn template() -> ServerTemplateSpec {
    ServerTemplateSpec {
        flavor: "m1.small".into(),
        image: "Debian 12".into(),
        networks: vec!["runner-net".into()],
        security_groups: vec!["runner-sg".into()],
        key_name: Some("k1".into()),
        availability_zone: None,
        boot_volume_size: None,
    }
}

fn request(name: &str) -> CreateServer {
    CreateServer {
        name: name.into(),
        pool: "docker".into(),
        runner_id: Some(7),
        template: template(),
        user_data: SecretString::from(USER_DATA),
        metadata: BTreeMap::from([("team".to_string(), "ci".to_string())]),
    }
}

/// Waits (at most 5 s) for `kind` about server `id`.
async fn wait_for(
    events: &mut broadcast::Receiver<ServerEvent>,
    id: &ServerId,
    kind: ServerEventKind,
) -> ServerEvent {
    timeout(Duration::from_secs(5), async {
        loop {
            let e = events.recv().await.unwrap();
            if e.server.id == id.as_str() && e.kind == kind {
                return e;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no {kind:?} event for {id} within 5 s"))
}

/// A slow fake in which controller `ci-1` has just asked for server `runner-docker-1`: the
/// fake, the client, the events since before the create, the server's id.
async fn one_server_created() -> (
    FakeOpenStack,
    OpenStack,
    broadcast::Receiver<ServerEvent>,
    ServerId,
) {
    let fake = FakeOpenStack::start(slow()).await.unwrap();
    let client = app_credential_client(&fake, "ci-1");
    let events = fake.subscribe();
    let id = client
        .create_server(request("runner-docker-1"))
        .await
        .unwrap();
    (fake, client, events, id)
}

#[tokio::test]
async fn clouds_yaml_password_login_resolves_the_template_and_preflight_passes() {
    let fake = FakeOpenStack::start(fast()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let client = clouds_yaml_client(&fake, &dir);
    let expires = client.authenticate().await.unwrap();
    assert!(expires > chrono::Utc::now() + chrono::Duration::minutes(50));
    let report = preflight(&client, &[("docker".to_string(), template())]).await;
    assert!(report.is_ok(), "{report}");
    let quota = report.quota.unwrap();
    assert_eq!((quota.max_instances, quota.used_instances), (Some(10), 0));
    assert_eq!(quota.max_ram_mb, Some(51200));
    let flavor = client.find_flavor("m1.small").await.unwrap();
    assert_eq!((flavor.vcpus, flavor.ram_mb), (Some(1), Some(2048)));
    let by_id = client.find_flavor(&flavor.id).await.unwrap();
    assert_eq!(by_id.id, flavor.id);
}

#[tokio::test]
async fn preflight_names_every_unknown_object() {
    let fake = FakeOpenStack::start(fast()).await.unwrap();
    let client = app_credential_client(&fake, "ci-1");
    let bad = ServerTemplateSpec {
        flavor: "m9.huge".into(),
        image: "Debian 99".into(),
        networks: vec!["nowhere".into()],
        security_groups: vec!["open-sg".into()],
        key_name: Some("k9".into()),
        ..template()
    };
    let report = preflight(&client, &[("docker".to_string(), bad)]).await;
    let problems: Vec<String> = report.problems().map(|c| c.subject.clone()).collect();
    assert_eq!(
        problems,
        [
            "flavor \"m9.huge\"",
            "image \"Debian 99\"",
            "network \"nowhere\"",
            "security group \"open-sg\"",
            "key pair \"k9\""
        ],
        "{report}"
    );
    assert!(
        report.to_string().contains("key pair \"k9\" not found"),
        "{report}"
    );
}

#[tokio::test]
async fn wrong_credentials_are_an_auth_error() {
    let fake = FakeOpenStack::start(fast()).await.unwrap();
    let mut auth = ResolvedAuth {
        auth_url: fake.auth_url().parse().unwrap(),
        method: AuthMethod::ApplicationCredential {
            credential: AppCredential::Id("autoscaler".into()),
            secret: SecretString::from("wrong-secret"),
        },
        region: None,
        interface: Interface::Internal,
        cacert: None,
        verify_tls: true,
        origin: "test".into(),
    };
    let auth_client =
        OpenStack::new(auth.clone(), ControllerId::new("ci-1").unwrap(), options()).unwrap();
    let e = auth_client.authenticate().await.unwrap_err();
    assert!(e.is_auth(), "{e}");
    assert!(!e.to_string().contains("wrong-secret"));
    auth.method = AuthMethod::ApplicationCredential {
        credential: AppCredential::Id("autoscaler".into()),
        secret: SecretString::from("autoscaler-secret"),
    };
    let ok = OpenStack::new(auth, ControllerId::new("ci-1").unwrap(), options()).unwrap();
    ok.authenticate().await.unwrap();
}

#[tokio::test]
async fn created_server_goes_active_with_user_data_metadata_and_tags() {
    let (fake, client, mut events, id) = one_server_created().await;
    let created = wait_for(&mut events, &id, ServerEventKind::Created).await;
    assert_eq!(created.server.status, FakeStatus::Build);
    assert_eq!(
        client.get_server(&id).await.unwrap().status,
        CloudStatus::Building
    );

    let active = wait_for(&mut events, &id, ServerEventKind::Active).await;
    assert_eq!(active.server.status, FakeStatus::Active);
    assert_eq!(fake.user_data(id.as_str()).as_deref(), Some(USER_DATA));
    let s = fake.server(id.as_str()).unwrap();
    assert_eq!(s.name, "runner-docker-1");
    assert_eq!(s.tags, ["autoscaler:ci-1", "pool:docker"]);
    assert_eq!(s.metadata["autoscaler-controller"], "ci-1");
    assert_eq!(s.metadata["autoscaler-pool"], "docker");
    assert_eq!(s.metadata["autoscaler-runner-id"], "7");
    assert_eq!(s.metadata["team"], "ci");
    assert_eq!(
        (s.flavor.as_str(), s.key_name.as_deref()),
        ("m1.small", Some("k1"))
    );
    assert_eq!(s.networks, ["runner-net"]);

    let seen = client.get_server(&id).await.unwrap();
    assert_eq!(seen.status, CloudStatus::Active);
    assert_eq!(seen.pool.as_deref(), Some("docker"));
    assert_eq!(seen.runner_id, Some(7));
    assert_eq!(seen.address, s.address);
    assert!(seen.address.is_some());
    let q = client.quota().await.unwrap();
    assert_eq!(
        (q.used_instances, q.used_cores, q.used_ram_mb),
        (1, 1, 2048)
    );
}

#[tokio::test]
async fn listing_pages_through_and_returns_only_owned_servers() {
    let fake = FakeOpenStack::start(FakeOpenStackOptions {
        quota: FakeQuota::instances(20),
        ..fast()
    })
    .await
    .unwrap();
    let mine = app_credential_client(&fake, "ci-1");
    let theirs = app_credential_client(&fake, "ci-2");
    let mut want = HashSet::new();
    for i in 0..5 {
        want.insert(
            mine.create_server(request(&format!("mine-{i}")))
                .await
                .unwrap(),
        );
    }
    for i in 0..3 {
        theirs
            .create_server(request(&format!("theirs-{i}")))
            .await
            .unwrap();
    }
    let listed = mine.list_owned_servers().await.unwrap();
    let got: HashSet<ServerId> = listed.iter().map(|s| s.id.clone()).collect();
    assert_eq!(got, want);
    assert_eq!(fake.servers().len(), 8);
    // page_size 2, five owned servers: pages of 2, 2, 1 (the last one not full).
    let pages = fake.request_counts()["GET /v2.1/servers/detail"];
    assert_eq!(pages, 3, "{:?}", fake.request_counts());
}

#[tokio::test]
async fn delete_shows_deleting_then_the_server_is_gone() {
    let (fake, client, mut events, id) = one_server_created().await;
    wait_for(&mut events, &id, ServerEventKind::Active).await;
    client.delete_server(&id).await.unwrap();
    assert_eq!(
        client.get_server(&id).await.unwrap().status,
        CloudStatus::Deleting
    );
    let owned = client.list_owned_servers().await.unwrap();
    assert_eq!(
        owned.iter().map(|s| &s.status).collect::<Vec<_>>(),
        [&CloudStatus::Deleting]
    );
    wait_for(&mut events, &id, ServerEventKind::Deleted).await;
    let e = client.get_server(&id).await.unwrap_err();
    assert!(e.is_not_found(), "{e}");
    assert!(client.list_owned_servers().await.unwrap().is_empty());
    assert!(fake.server(id.as_str()).is_none());
    // Deleting what is gone is done, not an error.
    client.delete_server(&id).await.unwrap();
}

#[tokio::test]
async fn quota_refusal_is_classified_as_quota() {
    let fake = FakeOpenStack::start(fast()).await.unwrap();
    fake.set_quota(FakeQuota::instances(1));
    let client = app_credential_client(&fake, "ci-1");
    client.create_server(request("runner-1")).await.unwrap();
    let e = client.create(&request("runner-2")).await.unwrap_err();
    assert!(e.is_quota(), "{e}");
    assert!(
        e.to_string()
            .ends_with("403 Forbidden: Quota exceeded for instances: Requested 1, but already used 1 of 1 instances"),
        "{e}"
    );
    let ce = client.create_server(request("runner-2")).await.unwrap_err();
    assert_eq!(ce.kind(), CloudErrorKind::Quota);
    assert_eq!(fake.servers().len(), 1);
}

#[tokio::test]
async fn boot_fault_shows_as_error_with_its_message() {
    let fake = FakeOpenStack::start(fast()).await.unwrap();
    let client = app_credential_client(&fake, "ci-1");
    let mut events = fake.subscribe();
    fake.boot_fault_next(
        "Quota exceeded for instances: Requested 1, but already used 2 of 2 instances",
    );
    let id = client.create_server(request("runner-1")).await.unwrap();
    wait_for(&mut events, &id, ServerEventKind::Error).await;
    let s = client.get_server(&id).await.unwrap();
    assert!(s.status.is_quota_error(), "{:?}", s.status);
    let listed = client.list_owned_servers().await.unwrap();
    assert_eq!(listed[0].status, s.status);
    // Only the next server was scripted to fail.
    let ok = client.create_server(request("runner-2")).await.unwrap();
    wait_for(&mut events, &ok, ServerEventKind::Active).await;
    // An ERROR server can be deleted.
    client.delete_server(&id).await.unwrap();
    wait_for(&mut events, &id, ServerEventKind::Deleted).await;
}

#[tokio::test]
async fn scripted_create_failure_is_returned_once_and_never_retried() {
    let fake = FakeOpenStack::start(fast()).await.unwrap();
    let client = app_credential_client(&fake, "ci-1");
    fake.fail_next_create(503, "Service Unavailable");
    fake.fail_next_create(400, "Invalid key_name provided.");
    let e = client.create_server(request("runner-1")).await.unwrap_err();
    assert_eq!(e.kind(), CloudErrorKind::Transient, "{}", e.message());
    let e = client.create_server(request("runner-1")).await.unwrap_err();
    assert_eq!(e.kind(), CloudErrorKind::Rejected, "{}", e.message());
    assert!(
        e.message().contains("Invalid key_name provided."),
        "{}",
        e.message()
    );
    client.create_server(request("runner-1")).await.unwrap();
    assert_eq!(fake.request_counts()["POST /v2.1/servers"], 3);
}

#[tokio::test]
async fn expired_tokens_make_the_client_authenticate_again() {
    let fake = FakeOpenStack::start(fast()).await.unwrap();
    let client = app_credential_client(&fake, "ci-1");
    client.quota().await.unwrap();
    fake.expire_tokens();
    client.quota().await.unwrap();
    assert_eq!(client.stats().reauth_after_401, 1);
    assert_eq!(fake.request_counts()["POST /v3/auth/tokens"], 2);
}

#[tokio::test]
async fn watch_follows_a_server_from_build_to_gone() {
    let fake = FakeOpenStack::start(fast()).await.unwrap();
    let client = app_credential_client(&fake, "ci-1");
    let mut watch = fake.watch_servers();
    assert!(watch.borrow_and_update().is_empty());
    let id = client.create_server(request("runner-1")).await.unwrap();
    let status = |w: &tokio::sync::watch::Receiver<Vec<autoscaler_fakes::FakeServer>>| {
        w.borrow()
            .iter()
            .find(|s| s.id == id.as_str())
            .map(|s| s.status)
    };
    timeout(
        Duration::from_secs(5),
        watch.wait_for(|v| v.iter().any(|s| s.status == FakeStatus::Active)),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(status(&watch), Some(FakeStatus::Active));
    client.delete_server(&id).await.unwrap();
    timeout(Duration::from_secs(5), watch.wait_for(Vec::is_empty))
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn latency_delays_every_answer() {
    let fake = FakeOpenStack::start(fast()).await.unwrap();
    let client = app_credential_client(&fake, "ci-1");
    client.authenticate().await.unwrap();
    fake.set_latency(Duration::from_millis(150));
    let started = tokio::time::Instant::now();
    client.quota().await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(150),
        "{:?}",
        started.elapsed()
    );
}

/// Raw HTTP: a token, then calls with chosen microversion headers.
struct Raw {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Raw {
    async fn login(fake: &FakeOpenStack) -> Raw {
        let http = reqwest::Client::new();
        let resp = http
            .post(format!("{}/auth/tokens", fake.auth_url()))
            .json(
                &json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {
                "name": "demo", "domain": {"name": "Default"}, "password": "demo"}}},
                "scope": {"project": {"name": "demo", "domain": {"name": "Default"}}}}}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 201);
        let token = resp.headers()["X-Subject-Token"]
            .to_str()
            .unwrap()
            .to_string();
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["token"]["project"]["name"], "demo");
        Raw {
            http,
            base: fake.url().to_string(),
            token,
        }
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        version: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("X-Auth-Token", &self.token);
        if let Some(v) = version {
            req = req.header("OpenStack-API-Version", format!("compute {v}"));
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }
}

#[tokio::test]
async fn microversion_rules_match_nova() {
    let fake = FakeOpenStack::start(fast()).await.unwrap();
    let client = app_credential_client(&fake, "ci-1");
    let id = client.create_server(request("runner-1")).await.unwrap();
    let raw = Raw::login(&fake).await;
    let body = json!({"server": {"name": "x", "flavorRef": "whatever"}});

    let (status, err) = raw
        .call(
            reqwest::Method::POST,
            "/v2.1/servers",
            None,
            Some(body.clone()),
        )
        .await;
    assert_eq!(status, 406, "{err}");
    let (status, err) = raw
        .call(
            reqwest::Method::POST,
            "/v2.1/servers",
            Some("2.94"),
            Some(body),
        )
        .await;
    assert_eq!(status, 406, "{err}");
    assert!(
        err["notAcceptable"]["message"]
            .as_str()
            .unwrap()
            .contains("maximum is 2.93")
    );

    // Below 2.26 the tags filter is ignored (a client without the header sees everything).
    let path = "/v2.1/servers/detail?tags=autoscaler:nobody";
    let (_, old) = raw.call(reqwest::Method::GET, path, None, None).await;
    assert_eq!(old["servers"].as_array().unwrap().len(), 1);
    assert!(old["servers"][0].get("tags").is_none());
    let (_, new) = raw
        .call(reqwest::Method::GET, path, Some("2.52"), None)
        .await;
    assert_eq!(new["servers"].as_array().unwrap().len(), 0);

    // user_data is shown from 2.3 on, base64 as sent.
    let one = format!("/v2.1/servers/{id}");
    let (_, v21) = raw
        .call(reqwest::Method::GET, &one, Some("2.1"), None)
        .await;
    assert!(v21["server"].get("OS-EXT-SRV-ATTR:user_data").is_none());
    let (_, v23) = raw
        .call(reqwest::Method::GET, &one, Some("2.3"), None)
        .await;
    use base64::Engine as _;
    let shown = v23["server"]["OS-EXT-SRV-ATTR:user_data"].as_str().unwrap();
    assert_eq!(
        base64::engine::general_purpose::STANDARD
            .decode(shown)
            .unwrap(),
        USER_DATA.as_bytes()
    );

    // No token: the auth middleware's 401, in every service.
    let resp = reqwest::get(format!("{}/v2.0/networks", fake.url()))
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
}

/// Throughput of the fake under the real client (run with `--ignored --nocapture` to see
/// the numbers): 200 concurrent creates, a paged listing, 200 concurrent deletes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement; prints timings"]
async fn two_hundred_servers_are_created_listed_and_deleted_within_seconds() {
    let fake = FakeOpenStack::start(FakeOpenStackOptions {
        boot_delay: Duration::from_millis(10),
        delete_delay: Duration::from_millis(10),
        quota: FakeQuota::UNLIMITED,
        ..FakeOpenStackOptions::default()
    })
    .await
    .unwrap();
    let client = app_credential_client_with(&fake, "ci-1", ClientOptions::default());
    client.authenticate().await.unwrap();
    let started = tokio::time::Instant::now();
    let creates = (0..200).map(|i| client.create_server(request(&format!("r-{i}"))));
    let ids: Vec<ServerId> = futures_util::future::join_all(creates)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let created = started.elapsed();
    let started = tokio::time::Instant::now();
    let listed = client.list_owned_servers().await.unwrap();
    let list_time = started.elapsed();
    assert_eq!(listed.len(), 200);
    let started = tokio::time::Instant::now();
    for r in futures_util::future::join_all(ids.iter().map(|id| client.delete_server(id))).await {
        r.unwrap();
    }
    let deleted = started.elapsed();
    eprintln!(
        "200 creates: {created:?}; listing 200 (page size 200: a full page and an empty one): {list_time:?}; 200 deletes: {deleted:?}"
    );
    eprintln!("requests: {:?}", fake.request_counts());
    assert!(created + deleted < Duration::from_secs(20));
}

#[tokio::test]
async fn shutdown_closes_the_port_and_cancels_pending_boots() {
    let fake = FakeOpenStack::start(slow()).await.unwrap();
    let client = app_credential_client(&fake, "ci-1");
    client.create_server(request("runner-1")).await.unwrap();
    let mut events = fake.subscribe();
    let url = format!("{}/v3", fake.url());
    timeout(Duration::from_secs(5), fake.shutdown())
        .await
        .unwrap();
    assert!(
        reqwest::get(&url).await.is_err(),
        "still answering after shutdown"
    );
    // The boot that was pending when the fake stopped never reports ACTIVE.
    if let Ok(Ok(e)) = timeout(Duration::from_millis(1500), events.recv()).await {
        panic!("event after shutdown: {e:?}");
    }
}

#[tokio::test]
async fn a_port_in_use_and_inconsistent_options_are_errors_naming_them() {
    let fake = FakeOpenStack::start(fast()).await.unwrap();
    let taken = fake.addr().port();
    let e = FakeOpenStack::start(FakeOpenStackOptions {
        port: taken,
        ..fast()
    })
    .await
    .unwrap_err();
    assert_eq!(e.to_string(), format!("cannot listen on 127.0.0.1:{taken}"));
    let mut opts = fast();
    opts.app_credentials[0].user = "ghost".into();
    let e = FakeOpenStack::start(opts).await.unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid fake openstack options: app_credentials[0] (\"autoscaler\"): user \"ghost\" is not one of the users"
    );
}

#[tokio::test(start_paused = true)]
async fn with_paused_time_a_server_is_build_until_the_boot_delay_and_active_after() {
    let fake = FakeOpenStack::start(FakeOpenStackOptions {
        boot_delay: Duration::from_secs(90),
        ..FakeOpenStackOptions::default()
    })
    .await
    .unwrap();
    let client = app_credential_client_with(
        &fake,
        "ci-1",
        ClientOptions {
            request_timeout: Duration::from_secs(3600),
            ..ClientOptions::default()
        },
    );
    let id = client.create_server(request("runner-1")).await.unwrap();
    let created = tokio::time::Instant::now();
    tokio::time::sleep(Duration::from_secs(89)).await;
    assert_eq!(fake.server(id.as_str()).unwrap().status, FakeStatus::Build);
    tokio::time::sleep(Duration::from_millis(1001)).await;
    assert_eq!(fake.server(id.as_str()).unwrap().status, FakeStatus::Active);
    assert!(created.elapsed() >= Duration::from_secs(90));
}
