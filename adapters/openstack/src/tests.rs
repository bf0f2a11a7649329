//! HTTP-level tests of the adapter against the scripted server in `mock`: token caching and
//! renewal, 401 handling, retries, request shapes, paging, classification, redaction.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use chrono::Utc;
use secrecy::SecretString;
use serde_json::{Value, json};

use super::auth::{AuthMethod, Domain, Interface, NameOrId, ResolvedAuth};
use super::mock::{MockServer, Reply, Request};
use super::*;
use autoscaler_core::ports::{
    Cloud, CloudErrorKind, CloudStatus, ControllerId, CreateServer, ServerId, ServerTemplateSpec,
};

const PASSWORD: &str = "hunter2-password";
const USER_DATA: &str = "#cloud-config\nrunner_token: glrt-very-secret-runner-token-123456\n";

fn auth(url: &str) -> ResolvedAuth {
    ResolvedAuth {
        auth_url: format!("{url}/identity/v3").parse().unwrap(),
        method: AuthMethod::Password {
            user: NameOrId::Name {
                name: "demo".into(),
                domain: Domain::Name("Default".into()),
            },
            password: SecretString::from(PASSWORD),
            project: NameOrId::Id("p1".into()),
        },
        region: Some("RegionOne".into()),
        interface: Interface::Public,
        cacert: None,
        verify_tls: true,
        origin: "test".into(),
    }
}

fn client(server: &MockServer) -> OpenStack {
    let options = ClientOptions {
        request_timeout: Duration::from_millis(1500),
        retry_delay: Duration::from_millis(1),
        page_size: 2,
        ..ClientOptions::default()
    };
    client_with(server, options)
}

fn client_with(server: &MockServer, options: ClientOptions) -> OpenStack {
    OpenStack::new(
        auth(&server.url),
        ControllerId::new("ctl").unwrap(),
        options,
    )
    .unwrap()
}

/// A client with time to move tens of MiB on a busy machine (debug build).
fn patient_client(server: &MockServer) -> OpenStack {
    let options = ClientOptions {
        request_timeout: Duration::from_secs(60),
        retry_delay: Duration::from_millis(1),
        ..ClientOptions::default()
    };
    client_with(server, options)
}

/// A Keystone answer: token `value`, valid `lifetime` seconds, issued `age` seconds ago.
fn token(req: &Request, value: &str, lifetime: i64, age: i64) -> Reply {
    let base = format!("http://{}", req.header("host").unwrap());
    token_at(&base, value, lifetime, age)
}

/// Like [`token`], with every catalog endpoint below `base` instead of Keystone's own origin.
fn token_at(base: &str, value: &str, lifetime: i64, age: i64) -> Reply {
    let now = Utc::now();
    let ep = |path: &str| json!([{"interface": "public", "region_id": "RegionOne", "url": format!("{base}{path}")}]);
    Reply::Json(
        201,
        vec![("X-Subject-Token", value.to_string())],
        json!({"token": {
            "issued_at": (now - chrono::Duration::seconds(age)).to_rfc3339(),
            "expires_at": (now + chrono::Duration::seconds(lifetime - age)).to_rfc3339(),
            "project": {"id": "p1"},
            "catalog": [
                {"type": "compute", "endpoints": ep("/compute/v2.1")},
                {"type": "image", "endpoints": ep("/image")},
                {"type": "network", "endpoints": ep("/network")},
            ]
        }}),
    )
}

fn limits() -> Reply {
    Reply::Json(
        200,
        vec![],
        json!({"limits": {"rate": [], "absolute": {
            "maxTotalInstances": 10, "totalInstancesUsed": 3,
            "maxTotalCores": -1, "totalCoresUsed": 3,
            "maxTotalRAMSize": 51200, "totalRAMUsed": 768}}}),
    )
}

fn is_auth(r: &Request) -> bool {
    r.method == "POST" && r.path == "/identity/v3/auth/tokens"
}

fn server_json(id: &str, tags: &[&str], status: &str) -> Value {
    json!({"id": id, "name": format!("runner-{id}"), "status": status,
           "created": "2025-03-01T10:00:00Z", "tags": tags,
           "metadata": {"autoscaler-pool": "docker", "autoscaler-runner-id": "5"},
           "addresses": {}})
}

/// A cloud with one flavor, image, network and security group; records create bodies.
fn resources(req: &Request) -> Option<Reply> {
    let r = match (req.method.as_str(), req.path.as_str()) {
        ("GET", "/compute/v2.1/flavors/m1.small") => Reply::Json(
            404,
            vec![],
            json!({"itemNotFound": {"message": "Flavor m1.small could not be found."}}),
        ),
        ("GET", "/compute/v2.1/flavors/detail") => {
            // Two per page (the client's page size here), honouring the marker.
            let page = match req.param("marker") {
                None => json!([{"id": "f1", "name": "m1.tiny", "vcpus": 1, "ram": 256},
                               {"id": "f2", "name": "m1.small", "vcpus": 1, "ram": 512}]),
                Some("f2") => json!([{"id": "f3", "name": "m1.large", "vcpus": 4, "ram": 8192}]),
                Some(_) => json!([]),
            };
            Reply::Json(200, vec![], json!({"flavors": page}))
        }
        ("GET", p) if p.starts_with("/compute/v2.1/flavors/") => {
            Reply::Json(404, vec![], json!({}))
        }
        ("GET", "/image/v2/images") => {
            let name = req.param("name").unwrap_or_default();
            let images = match name {
                "debian-12" => json!([{"id": "img-1", "name": "debian-12"}]),
                "twice" => {
                    json!([{"id": "img-a", "name": "twice"}, {"id": "img-b", "name": "twice"}])
                }
                _ => json!([]),
            };
            Reply::Json(200, vec![], json!({"images": images}))
        }
        ("GET", "/network/v2.0/networks") => {
            let nets = if req.param("name") == Some("runner-net") {
                json!([{"id": "net-1", "name": "runner-net"}])
            } else {
                json!([])
            };
            Reply::Json(200, vec![], json!({"networks": nets}))
        }
        ("GET", "/network/v2.0/security-groups") => {
            let ok =
                req.param("name") == Some("runner-sg") && req.param("project_id") == Some("p1");
            let groups = if ok {
                json!([{"id": "sg-1", "name": "runner-sg"}])
            } else {
                json!([])
            };
            Reply::Json(200, vec![], json!({"security_groups": groups}))
        }
        ("GET", "/compute/v2.1/os-keypairs/k1") => {
            Reply::Json(200, vec![], json!({"keypair": {"name": "k1"}}))
        }
        ("GET", p) if p.starts_with("/compute/v2.1/os-keypairs/") => Reply::Json(
            404,
            vec![],
            json!({"itemNotFound": {"message": "Keypair not found"}}),
        ),
        ("GET", "/compute/v2.1/limits") => limits(),
        _ => return None,
    };
    Some(r)
}

fn create_request() -> CreateServer {
    CreateServer {
        name: "runner-docker-1".into(),
        pool: "docker".into(),
        runner_id: Some(99),
        template: ServerTemplateSpec {
            flavor: "m1.small".into(),
            image: "debian-12".into(),
            networks: vec!["runner-net".into()],
            security_groups: vec!["runner-sg".into()],
            key_name: Some("k1".into()),
            availability_zone: Some("nova".into()),
            boot_volume_size: None,
        },
        user_data: SecretString::from(USER_DATA),
        metadata: BTreeMap::from([("team".to_string(), "ci".to_string())]),
    }
}

#[tokio::test]
async fn token_is_cached_across_calls() {
    let server = MockServer::start(|r| {
        if is_auth(r) {
            token(r, "t1", 3600, 0)
        } else {
            limits()
        }
    });
    let c = client(&server);
    for _ in 0..3 {
        let q = c.limits().await.unwrap();
        assert_eq!(q.max_instances, Some(10));
        assert_eq!(q.max_cores, None, "-1 means unlimited");
        assert_eq!(q.used_ram_mb, 768);
    }
    assert_eq!(server.count("POST", "/identity"), 1);
    assert_eq!(c.stats().requests.get("limits"), Some(&3));
    let sent = server.requests();
    let nova = sent.iter().find(|r| r.path.ends_with("/limits")).unwrap();
    assert_eq!(nova.header("x-auth-token"), Some("t1"));
    assert_eq!(nova.header("openstack-api-version"), Some("compute 2.52"));
}

#[tokio::test]
async fn token_is_renewed_before_it_expires() {
    let auths = AtomicUsize::new(0);
    let server = MockServer::start(move |r| {
        if is_auth(r) {
            // First token: an hour long but five seconds from expiry, so due for renewal.
            match auths.fetch_add(1, Ordering::SeqCst) {
                0 => token(r, "old", 3600, 3595),
                _ => token(r, "new", 3600, 0),
            }
        } else {
            limits()
        }
    });
    let c = client(&server);
    c.limits().await.unwrap();
    c.limits().await.unwrap();
    c.limits().await.unwrap();
    assert_eq!(server.count("POST", "/identity"), 2);
    let tokens: Vec<String> = server
        .requests()
        .iter()
        .filter_map(|r| r.header("x-auth-token").map(str::to_string))
        .collect();
    assert_eq!(tokens, ["old", "new", "new"]);
    assert_eq!(c.stats().reauth_after_401, 0);
}

#[tokio::test]
async fn a_401_reauthenticates_once_and_resends() {
    let auths = AtomicUsize::new(0);
    let server = MockServer::start(move |r| {
        if is_auth(r) {
            let n = auths.fetch_add(1, Ordering::SeqCst);
            token(r, &format!("t{n}"), 3600, 0)
        } else if r.header("x-auth-token") == Some("t0") {
            Reply::Json(401, vec![], json!({"error": {"message": "revoked"}}))
        } else {
            limits()
        }
    });
    let c = client(&server);
    c.limits().await.unwrap();
    assert_eq!(server.count("POST", "/identity"), 2);
    assert_eq!(c.stats().reauth_after_401, 1);
}

#[tokio::test]
async fn a_second_401_is_an_auth_error() {
    let server = MockServer::start(|r| {
        if is_auth(r) {
            token(r, "t", 3600, 0)
        } else {
            Reply::Json(401, vec![], json!({"error": {"message": "nope"}}))
        }
    });
    let err = client(&server).quota().await.unwrap_err();
    assert_eq!(err.kind(), CloudErrorKind::Auth);
    assert_eq!(server.count("POST", "/identity"), 2);
    assert_eq!(server.count("GET", "/compute"), 2);
}

#[tokio::test]
async fn keystone_refusing_the_password_is_an_auth_error_without_secrets() {
    let server = MockServer::start(|_| {
        Reply::Json(
            401,
            vec![],
            json!({"error": {"code": 401, "message": "The request you have made requires authentication."}}),
        )
    });
    let c = client(&server);
    let err = c.authenticate().await.unwrap_err();
    assert!(err.is_auth());
    assert_eq!(err.label(), "auth");
    let shown = format!("{err} {err:?}");
    assert!(shown.contains("requires authentication"), "{shown}");
    assert!(!shown.contains(PASSWORD), "{shown}");
    assert_eq!(
        server.count("POST", "/identity"),
        1,
        "a refused password is not retried"
    );
}

#[tokio::test]
async fn get_is_retried_after_a_reset_connection_and_a_503() {
    let gets = AtomicUsize::new(0);
    let server = MockServer::start(move |r| {
        if is_auth(r) {
            return token(r, "t", 3600, 0);
        }
        match gets.fetch_add(1, Ordering::SeqCst) {
            0 => Reply::Reset,
            1 => Reply::Json(503, vec![], json!({"message": "busy"})),
            _ => limits(),
        }
    });
    let c = client(&server);
    c.limits().await.unwrap();
    assert_eq!(c.stats().retries, 2);
    assert_eq!(server.count("GET", "/compute"), 3);
}

#[tokio::test]
async fn token_request_is_retried_after_a_reset_connection() {
    let posts = AtomicUsize::new(0);
    let server = MockServer::start(move |r| {
        if is_auth(r) {
            if posts.fetch_add(1, Ordering::SeqCst) == 0 {
                return Reply::Reset;
            }
            return token(r, "t", 3600, 0);
        }
        limits()
    });
    client(&server).limits().await.unwrap();
    assert_eq!(server.count("POST", "/identity"), 2);
}

#[tokio::test]
async fn transient_errors_give_up_after_the_configured_attempts() {
    let server = MockServer::start(|r| {
        if is_auth(r) {
            token(r, "t", 3600, 0)
        } else {
            Reply::Json(500, vec![], json!({"computeFault": {"message": "boom"}}))
        }
    });
    let err = client(&server).limits().await.unwrap_err();
    assert!(err.is_transient());
    assert!(
        err.to_string().contains("500 Internal Server Error: boom"),
        "{err}"
    );
    assert_eq!(server.count("GET", "/compute"), 4);
}

#[tokio::test]
async fn a_slow_answer_times_out_as_a_transient_error() {
    let server = MockServer::start(|r| {
        if is_auth(r) {
            token(r, "t", 3600, 0)
        } else {
            Reply::Slow(Duration::from_secs(3), Box::new(limits()))
        }
    });
    let mut options = ClientOptions {
        request_timeout: Duration::from_millis(200),
        attempts: 1,
        ..ClientOptions::default()
    };
    options.retry_delay = Duration::from_millis(1);
    let c = OpenStack::new(auth(&server.url), ControllerId::new("c").unwrap(), options).unwrap();
    let err = c.limits().await.unwrap_err();
    assert!(err.is_transient(), "{err:?}");
    assert!(err.to_string().contains("no response"), "{err}");
}

#[tokio::test]
async fn create_is_never_retried() {
    let server = MockServer::start(|r| {
        if is_auth(r) {
            return token(r, "t", 3600, 0);
        }
        if let Some(reply) = resources(r) {
            return reply;
        }
        Reply::Json(503, vec![], json!({"message": "busy"}))
    });
    let c = client(&server);
    let err = c.create_server(create_request()).await.unwrap_err();
    assert_eq!(err.kind(), CloudErrorKind::Transient);
    assert_eq!(server.count("POST", "/compute/v2.1/servers"), 1);
}

#[tokio::test]
async fn create_sends_the_pinned_microversion_and_the_whole_server() {
    let server = MockServer::start(|r| {
        if is_auth(r) {
            return token(r, "t", 3600, 0);
        }
        if let Some(reply) = resources(r) {
            return reply;
        }
        Reply::Json(
            202,
            vec![],
            json!({"server": {"id": "new-1", "adminPass": "x"}}),
        )
    });
    let c = client(&server);
    let id = c.create_server(create_request()).await.unwrap();
    assert_eq!(id, ServerId("new-1".into()));
    let sent = server.requests();
    let post = sent
        .iter()
        .find(|r| r.method == "POST" && r.path == "/compute/v2.1/servers")
        .unwrap();
    assert_eq!(post.header("openstack-api-version"), Some("compute 2.52"));
    let s = &post.json()["server"];
    assert_eq!(s["name"], "runner-docker-1");
    assert_eq!(s["flavorRef"], "f2");
    assert_eq!(s["imageRef"], "img-1");
    assert_eq!(s["networks"], json!([{"uuid": "net-1"}]));
    assert_eq!(s["security_groups"], json!([{"name": "sg-1"}]));
    assert_eq!(s["key_name"], "k1");
    assert_eq!(s["availability_zone"], "nova");
    assert_eq!(s["tags"], json!(["autoscaler:ctl", "pool:docker"]));
    assert_eq!(
        s["metadata"],
        json!({"team": "ci", "autoscaler-controller": "ctl", "autoscaler-pool": "docker", "autoscaler-runner-id": "99"})
    );
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(s["user_data"].as_str().unwrap())
        .unwrap();
    assert_eq!(decoded, USER_DATA.as_bytes());

    // A second create resolves nothing again: lookups are cached.
    c.create_server(create_request()).await.unwrap();
    assert_eq!(server.count("GET", "/image"), 1);
    assert_eq!(server.count("GET", "/network/v2.0/networks"), 1);
    assert_eq!(
        server.count("GET", "/compute/v2.1/flavors/detail"),
        2,
        "two pages, once"
    );
    assert_eq!(c.stats().requests.get("create_server"), Some(&2));
}

#[tokio::test]
async fn concurrent_creates_share_one_lookup_per_name() {
    let server = MockServer::start(|r| {
        if is_auth(r) {
            return token(r, "t", 3600, 0);
        }
        if let Some(reply) = resources(r) {
            return reply;
        }
        Reply::Json(202, vec![], json!({"server": {"id": "s"}}))
    });
    let c = client(&server);
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let c = c.clone();
        set.spawn(async move { c.create_server(create_request()).await });
    }
    while let Some(r) = set.join_next().await {
        r.unwrap().unwrap();
    }
    assert_eq!(server.count("POST", "/identity"), 1);
    assert_eq!(server.count("GET", "/image"), 1);
    assert_eq!(server.count("GET", "/network/v2.0/networks"), 1);
    assert_eq!(server.count("POST", "/compute/v2.1/servers"), 8);
}

#[tokio::test]
async fn boot_from_volume_uses_a_block_device_mapping() {
    let body = Arc::new(Mutex::new(Value::Null));
    let seen = body.clone();
    let server = MockServer::start(move |r| {
        if is_auth(r) {
            return token(r, "t", 3600, 0);
        }
        if let Some(reply) = resources(r) {
            return reply;
        }
        *seen.lock().unwrap() = r.json();
        Reply::Json(202, vec![], json!({"server": {"id": "v1"}}))
    });
    let mut req = create_request();
    req.template.boot_volume_size = Some(20);
    client(&server).create_server(req).await.unwrap();
    let s = body.lock().unwrap()["server"].clone();
    assert!(s.get("imageRef").is_none());
    assert_eq!(
        s["block_device_mapping_v2"],
        json!([{"boot_index": 0, "uuid": "img-1", "source_type": "image", "destination_type": "volume", "volume_size": 20, "delete_on_termination": true}])
    );
}

#[tokio::test]
async fn quota_403_and_rejections_are_classified_and_never_show_user_data() {
    let echo = base64::engine::general_purpose::STANDARD.encode(USER_DATA);
    let calls = AtomicUsize::new(0);
    let echoed = echo.clone();
    let server = MockServer::start(move |r| {
        let echo = &echoed;
        if is_auth(r) {
            return token(r, "t", 3600, 0);
        }
        if let Some(reply) = resources(r) {
            return reply;
        }
        if calls.fetch_add(1, Ordering::SeqCst) == 0 {
            Reply::Json(
                403,
                vec![],
                json!({"forbidden": {"code": 403, "message": "Quota exceeded for instances: Requested 1, but already used 2 of 2 instances"}}),
            )
        } else {
            Reply::Json(
                400,
                vec![],
                json!({"badRequest": {"code": 400, "message": format!("Invalid input for field/attribute user_data. Value: {echo}. bad")}}),
            )
        }
    });
    let c = client(&server);
    let quota = c.create_server(create_request()).await.unwrap_err();
    assert_eq!(quota.kind(), CloudErrorKind::Quota);
    assert!(quota.message().contains("Quota exceeded for instances"));
    let rejected = c.create(&create_request()).await.unwrap_err();
    assert_eq!(rejected.label(), "rejected");
    for shown in [rejected.to_string(), format!("{rejected:?}")] {
        assert!(
            shown.contains("Invalid input for field/attribute user_data"),
            "{shown}"
        );
        assert!(!shown.contains(&echo), "{shown}");
        assert!(!shown.contains("glrt-"), "{shown}");
    }
}

#[tokio::test]
async fn unknown_or_ambiguous_names_are_errors_naming_kind_and_value() {
    let server = MockServer::start(|r| {
        if is_auth(r) {
            return token(r, "t", 3600, 0);
        }
        resources(r).unwrap_or(Reply::Json(500, vec![], json!({})))
    });
    let c = client(&server);
    let cases = [
        ("flavor", "m1.nope", "flavor \"m1.nope\" not found"),
        ("image", "nope-image", "image \"nope-image\" not found"),
        (
            "image",
            "twice",
            "image name \"twice\" is ambiguous: 2 matches (img-a, img-b); use the id",
        ),
        ("network", "nope-net", "network \"nope-net\" not found"),
        (
            "security group",
            "nope-sg",
            "security group \"nope-sg\" not found",
        ),
    ];
    for (kind, value, expected) in cases {
        let mut req = create_request();
        match kind {
            "flavor" => req.template.flavor = value.into(),
            "image" => req.template.image = value.into(),
            "network" => req.template.networks = vec![value.into()],
            _ => req.template.security_groups = vec![value.into()],
        }
        let err = c.create_server(req).await.unwrap_err();
        assert_eq!(err.kind(), CloudErrorKind::Misconfigured, "{err}");
        assert!(err.message().contains(expected), "{err}");
    }
    assert_eq!(server.count("POST", "/compute/v2.1/servers"), 0);
}

#[tokio::test]
async fn listing_follows_pages_and_keeps_only_owned_servers() {
    let server = MockServer::start(|r| {
        if is_auth(r) {
            return token(r, "t", 3600, 0);
        }
        assert_eq!(r.param("tags"), Some("autoscaler:ctl"));
        assert_eq!(r.param("limit"), Some("2"));
        let next = json!([{"rel": "next", "href": "x"}]);
        match r.param("marker") {
            None => Reply::Json(
                200,
                vec![],
                json!({"servers": [
                server_json("a", &["autoscaler:ctl", "pool:docker"], "ACTIVE"),
                server_json("b", &["autoscaler:other"], "ACTIVE")], "servers_links": next}),
            ),
            Some("b") => Reply::Json(
                200,
                vec![],
                json!({"servers": [
                server_json("c", &["autoscaler:ctl"], "BUILD")]}),
            ),
            Some(m) => panic!("unexpected marker {m}"),
        }
    });
    let c = client(&server);
    let servers = c.list_owned_servers().await.unwrap();
    let got: Vec<(&str, &CloudStatus)> =
        servers.iter().map(|s| (s.id.as_str(), &s.status)).collect();
    assert_eq!(
        got,
        [("a", &CloudStatus::Active), ("c", &CloudStatus::Building)]
    );
    assert_eq!(servers[0].runner_id, Some(5));
    assert_eq!(server.count("GET", "/compute/v2.1/servers/detail"), 2);
}

#[tokio::test]
async fn delete_of_a_missing_server_is_done() {
    let server = MockServer::start(|r| {
        if is_auth(r) {
            return token(r, "t", 3600, 0);
        }
        match r.path.as_str() {
            "/compute/v2.1/servers/gone" => Reply::Json(
                404,
                vec![],
                json!({"itemNotFound": {"message": "Instance gone could not be found."}}),
            ),
            "/compute/v2.1/servers/here" => Reply::Empty(204),
            _ => Reply::Json(409, vec![], json!({"conflict": {"message": "locked"}})),
        }
    });
    let c = client(&server);
    c.delete_server(&ServerId("gone".into())).await.unwrap();
    c.delete_server(&ServerId("here".into())).await.unwrap();
    let err = c
        .delete_server(&ServerId("locked".into()))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), CloudErrorKind::Rejected);
    let get = c.get_server(&ServerId("gone".into())).await.unwrap_err();
    assert!(get.is_not_found());
}

#[tokio::test]
async fn debug_of_client_and_errors_never_shows_secrets() {
    let server = MockServer::start(|r| {
        if is_auth(r) {
            token(r, "gAAAAAB-secret-token", 3600, 0)
        } else {
            Reply::Json(500, vec![], json!({"message": "boom"}))
        }
    });
    let c = client(&server);
    let err = c.limits().await.unwrap_err();
    let cloud_err = autoscaler_core::ports::CloudError::from(c.limits().await.unwrap_err());
    let shown = format!(
        "{c:?} {err} {err:?} {cloud_err} {cloud_err:?} {:?}",
        create_request()
    );
    for secret in [PASSWORD, "gAAAAAB-secret-token", "glrt-very-secret"] {
        assert!(!shown.contains(secret), "{secret} leaked: {shown}");
    }
}

#[tokio::test]
async fn preflight_reports_every_problem() {
    let server = MockServer::start(|r| {
        if is_auth(r) {
            return token(r, "t", 3600, 0);
        }
        resources(r).unwrap_or(Reply::Json(500, vec![], json!({})))
    });
    let c = client(&server);
    let good = create_request().template;
    let bad = ServerTemplateSpec {
        flavor: "m1.nope".into(),
        image: "twice".into(),
        networks: vec!["runner-net".into(), "nope-net".into()],
        security_groups: vec!["nope-sg".into()],
        key_name: Some("k9".into()),
        availability_zone: None,
        boot_volume_size: Some(10),
    };
    let report = preflight(&c, &[("good".into(), good), ("bad".into(), bad)]).await;
    let problems: Vec<String> = report
        .problems()
        .map(|p| format!("{}: {}", p.pool.as_deref().unwrap_or("-"), p.subject))
        .collect();
    assert_eq!(
        problems,
        [
            "bad: flavor \"m1.nope\"",
            "bad: image \"twice\"",
            "bad: network \"nope-net\"",
            "bad: security group \"nope-sg\"",
            "bad: key pair \"k9\"",
            "bad: boot volume"
        ]
    );
    assert_eq!(report.quota.and_then(|q| q.max_instances), Some(10));
    let text = report.to_string();
    assert!(
        text.contains("ok       pool good: flavor \"m1.small\": id f2"),
        "{text}"
    );
    assert!(text.ends_with("6 problem(s) found in 14 checks"), "{text}");
}

#[tokio::test]
async fn preflight_stops_after_a_failed_authentication() {
    let server = MockServer::start(|_| {
        Reply::Json(401, vec![], json!({"error": {"message": "bad password"}}))
    });
    let report = preflight(&client(&server), &[("p".into(), create_request().template)]).await;
    assert_eq!(report.checks.len(), 1);
    assert!(!report.is_ok());
    assert!(
        report.to_string().contains("PROBLEM  authentication"),
        "{report}"
    );
}

// === redirects and body limits (issue 11, items 8 and 9) ===

/// The default body limit (`ClientOptions::default().max_body`), spelled out.
const MAX_BODY: usize = 32 * 1024 * 1024;

/// A JSON object larger than `size` bytes, with an empty list under `key` and a padding
/// string that decoders ignore.
fn padded(key: &str, size: usize) -> Value {
    json!({key: [], "padding": "x".repeat(size)})
}

#[tokio::test]
async fn a_redirect_off_the_endpoint_origin_is_refused_and_the_token_stays() {
    let elsewhere = MockServer::start(|r| {
        if is_auth(r) {
            token(r, "t", 3600, 0)
        } else {
            limits()
        }
    });
    let target = format!("{}/compute/v2.1/limits?leak=1", elsewhere.url);
    let server = MockServer::start(move |r| {
        if is_auth(r) {
            token(r, "t-secret-token", 3600, 0)
        } else {
            Reply::Json(302, vec![("Location", target.clone())], json!({}))
        }
    });
    let c = client(&server);
    let result = c.limits().await;
    let leaked: Vec<_> = elsewhere
        .requests()
        .iter()
        .map(|r| (r.path.clone(), r.header("x-auth-token").map(str::to_string)))
        .collect();
    assert!(leaked.is_empty(), "sent to another origin: {leaked:?}");
    let err = result.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "GET compute /limits: redirected from {} to another origin {}; not followed, so credentials stay on {}",
            server.url, elsewhere.url, server.url
        )
    );
    assert_eq!(err.label(), "misconfigured");
    assert_eq!(
        server.count("GET", "/compute"),
        1,
        "a refused redirect is not retried"
    );
}

#[tokio::test]
async fn a_307_off_the_keystone_origin_is_refused_and_the_password_stays() {
    let elsewhere = MockServer::start(|r| token(r, "t", 3600, 0));
    let target = format!("{}/identity/v3/auth/tokens?leak=1", elsewhere.url);
    let server =
        MockServer::start(move |_| Reply::Json(307, vec![("Location", target.clone())], json!({})));
    let result = client(&server).authenticate().await;
    let leaked: Vec<_> = elsewhere
        .requests()
        .iter()
        .map(|r| r.body.clone())
        .collect();
    assert!(leaked.is_empty(), "sent to another origin: {leaked:?}");
    let err = result.unwrap_err();
    let shown = format!("{err} {err:?}");
    assert_eq!(
        err.to_string(),
        format!(
            "POST identity /v3/auth/tokens: redirected from {} to another origin {}; not followed, so credentials stay on {}",
            server.url, elsewhere.url, server.url
        )
    );
    assert!(
        !shown.contains(PASSWORD) && !shown.contains("leak"),
        "{shown}"
    );
    assert_eq!(err.label(), "misconfigured");
}

#[tokio::test]
async fn redirects_within_the_origin_of_each_request_are_followed() {
    // Nova on its own origin, as in a real cloud (Keystone :5000, Nova :8774): the
    // catalog endpoint's origin, not the auth URL's, bounds a compute request's redirects.
    let nova = MockServer::start(|r| match r.path.as_str() {
        "/compute/v2.1/limits" => Reply::Json(
            307,
            vec![("Location", "/moved/v2.1/limits".to_string())],
            json!({}),
        ),
        "/moved/v2.1/limits" => limits(),
        _ => Reply::Json(404, vec![], json!({})),
    });
    let nova_url = nova.url.clone();
    let keystone = MockServer::start(move |r| match r.path.as_str() {
        "/identity/v3/auth/tokens" => Reply::Json(
            307,
            vec![("Location", "/keystone/v3/auth/tokens".to_string())],
            json!({}),
        ),
        "/keystone/v3/auth/tokens" => token_at(&nova_url, "t", 3600, 0),
        _ => Reply::Json(404, vec![], json!({})),
    });
    let q = client(&keystone).limits().await.unwrap();
    assert_eq!(q.max_instances, Some(10));
    let moved = keystone
        .requests()
        .into_iter()
        .find(|r| r.path == "/keystone/v3/auth/tokens")
        .unwrap();
    assert!(moved.body.contains(PASSWORD), "a 307 keeps the body");
    let moved = nova
        .requests()
        .into_iter()
        .find(|r| r.path == "/moved/v2.1/limits")
        .unwrap();
    assert_eq!(moved.header("x-auth-token"), Some("t"));
}

#[tokio::test]
async fn a_body_over_the_limit_is_refused_naming_method_and_path() {
    let server = MockServer::start(|r| {
        if is_auth(r) {
            token(r, "t", 3600, 0)
        } else {
            Reply::Json(200, vec![], padded("servers", MAX_BODY + 1))
        }
    });
    let err = patient_client(&server).list_owned().await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "GET compute /servers/detail: response body larger than the limit of 33554432 bytes"
    );
    assert_eq!(err.label(), "unexpected");
    assert_eq!(
        server.count("GET", "/compute"),
        1,
        "an oversized body is not retried"
    );
}

#[tokio::test]
async fn a_token_response_over_the_limit_is_refused() {
    let server = MockServer::start(|r| {
        let Reply::Json(status, headers, mut body) = token(r, "t", 3600, 0) else {
            unreachable!("token() answers JSON")
        };
        let mut huge = padded("endpoints", MAX_BODY);
        huge["type"] = json!("padding");
        body["token"]["catalog"].as_array_mut().unwrap().push(huge);
        Reply::Json(status, headers, body)
    });
    let err = patient_client(&server).authenticate().await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "POST identity /v3/auth/tokens: response body larger than the limit of 33554432 bytes"
    );
    assert_eq!(server.count("POST", "/identity"), 1);
}

#[tokio::test]
async fn a_body_without_a_length_is_cut_at_the_limit() {
    let server = MockServer::start(|r| {
        if is_auth(r) {
            return token(r, "t", 3600, 0);
        }
        match r.path.as_str() {
            "/compute/v2.1/limits" => {
                let Reply::Json(_, _, body) = limits() else {
                    unreachable!("limits() answers JSON")
                };
                Reply::Unsized(200, body.to_string())
            }
            _ => Reply::Unsized(200, padded("servers", 1024 * 1024).to_string()),
        }
    });
    let options = ClientOptions {
        max_body: 64 * 1024,
        retry_delay: Duration::from_millis(1),
        ..ClientOptions::default()
    };
    let c = client_with(&server, options);
    let q = c.limits().await.unwrap();
    assert_eq!(
        q.max_instances,
        Some(10),
        "a small unsized body is read whole"
    );
    let err = c.list_owned().await.unwrap_err();
    assert!(
        matches!(err, Error::BodyTooLarge { limit: 65536, .. }),
        "{err:?}"
    );
}
