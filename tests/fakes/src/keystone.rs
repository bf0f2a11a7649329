//! Fake Keystone v3: `POST /v3/auth/tokens` with a password (project scoped or unscoped)
//! or an application credential, answering 201 with `X-Subject-Token` and a catalog that
//! points compute, image and network at this same server.
//!
//! Refusals are Keystone's 401 `{"error": {"code": 401, ...}}`, which never says which part
//! of the credentials was wrong. Secrets are compared, never logged.

use axum::body::Bytes;
use axum::extract::State as AxState;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::api::{ApiError, Svc};
use crate::options::FakeUser;
use crate::server::App;
use crate::state::{State, TokenInfo, World};
use autoscaler_world::ids::stable_id;

/// Keystone's timestamp format (microseconds, `Z`).
fn keystone_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

fn domain_is_default(d: Option<&Value>) -> bool {
    d.is_some_and(|d| {
        d.get("id").and_then(Value::as_str) == Some("default")
            || d.get("name").and_then(Value::as_str) == Some("Default")
    })
}

/// Finds the user a `{"id"}` or `{"name", "domain"}` object refers to.
fn find_user<'a>(st: &'a State, v: &Value) -> Option<&'a FakeUser> {
    if let Some(id) = v.get("id").and_then(Value::as_str) {
        return st.users.iter().find(|u| World::user_id(&u.name) == id);
    }
    let name = v.get("name").and_then(Value::as_str)?;
    if !domain_is_default(v.get("domain")) {
        return None;
    }
    st.users.iter().find(|u| u.name == name)
}

/// Who the request authenticates, whether the token is project scoped, and the methods.
fn authenticate(st: &State, body: &Value) -> Result<(FakeUser, bool, Vec<&'static str>), ApiError> {
    let refused = || ApiError::unauthorized(Svc::Identity);
    let auth = body.get("auth").ok_or_else(|| {
        ApiError::new(Svc::Identity, 400, "Expecting to find auth in request body. The server could not comply with the request since it is either malformed or otherwise incorrect. The client is assumed to be in error.")
    })?;
    let identity = auth.get("identity").ok_or_else(refused)?;
    let methods: Vec<&str> = identity
        .get("methods")
        .and_then(Value::as_array)
        .map(|m| m.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if methods.contains(&"password") {
        let u = identity.pointer("/password/user").ok_or_else(refused)?;
        let user = find_user(st, u).ok_or_else(refused)?;
        if u.get("password").and_then(Value::as_str) != Some(user.password.as_str()) {
            return Err(refused());
        }
        let scoped = match auth.get("scope") {
            None => false,
            Some(scope) => {
                let p = scope.get("project").ok_or_else(refused)?;
                let own = World::project(&user.project);
                let by_id = p.get("id").and_then(Value::as_str) == Some(own.id.as_str());
                let by_name = p.get("name").and_then(Value::as_str) == Some(own.name.as_str())
                    && domain_is_default(p.get("domain"));
                if !(by_id || by_name) {
                    return Err(refused());
                }
                true
            }
        };
        return Ok((user.clone(), scoped, vec!["password"]));
    }
    if methods.contains(&"application_credential") {
        if auth.get("scope").is_some() {
            return Err(refused());
        }
        let c = identity.get("application_credential").ok_or_else(refused)?;
        let secret = c
            .get("secret")
            .and_then(Value::as_str)
            .ok_or_else(refused)?;
        let cred = if let Some(id) = c.get("id").and_then(Value::as_str) {
            st.app_credentials.iter().find(|a| a.id == id)
        } else {
            let name = c.get("name").and_then(Value::as_str).ok_or_else(refused)?;
            let owner = find_user(st, c.get("user").ok_or_else(refused)?).ok_or_else(refused)?;
            st.app_credentials
                .iter()
                .find(|a| a.name == name && a.user == owner.name)
        };
        let cred = cred.filter(|a| a.secret == secret).ok_or_else(refused)?;
        let user = st
            .users
            .iter()
            .find(|u| u.name == cred.user)
            .ok_or_else(refused)?;
        return Ok((user.clone(), true, vec!["application_credential"]));
    }
    Err(refused())
}

/// The service catalog: compute at `/v2.1`, image and network at the root (clients append
/// `/v2` and `/v2.0`), identity at `/v3`; public and internal interfaces in `region`.
pub(crate) fn catalog(base: &str, region: &str) -> Value {
    let services = [
        ("compute", "nova", format!("{base}/v2.1")),
        ("image", "glance", base.to_string()),
        ("network", "neutron", base.to_string()),
        ("identity", "keystone", format!("{base}/v3")),
    ];
    Value::Array(
        services
            .iter()
            .map(|(ty, name, url)| {
                let endpoints: Vec<Value> = ["public", "internal"]
                    .iter()
                    .map(|i| {
                        json!({"id": stable_id("endpoint", &format!("{ty}/{i}")), "interface": i,
                               "region_id": region, "region": region, "url": url})
                    })
                    .collect();
                json!({"type": ty, "name": name, "id": stable_id("service", ty), "endpoints": endpoints})
            })
            .collect(),
    )
}

fn token_body(info: &TokenInfo, base: &str, region: &str) -> Value {
    let domain = json!({"id": "default", "name": "Default"});
    let mut token = json!({
        "methods": info.methods,
        "user": {"id": info.user_id, "name": info.user_name, "domain": domain, "password_expires_at": null},
        "audit_ids": [stable_id("audit", &keystone_time(info.issued_at))],
        "expires_at": keystone_time(info.expires_at),
        "issued_at": keystone_time(info.issued_at),
    });
    if let Some(p) = &info.project {
        token["project"] = json!({"id": p.id, "name": p.name, "domain": domain});
        token["is_domain"] = json!(false);
        token["roles"] = json!([
            {"id": stable_id("role", "member"), "name": "member"},
            {"id": stable_id("role", "reader"), "name": "reader"},
        ]);
        token["catalog"] = catalog(base, region);
    }
    json!({ "token": token })
}

/// `POST /v3/auth/tokens`.
pub(crate) async fn issue_token(AxState(app): AxState<App>, body: Bytes) -> Response {
    let Ok(parsed) = serde_json::from_slice::<Value>(&body) else {
        return ApiError::new(Svc::Identity, 400, "The request body is not valid JSON.")
            .into_response();
    };
    let now = Utc::now();
    let (value, info, region) = {
        let mut st = app.lock();
        let (user, scoped, methods) = match authenticate(&st, &parsed) {
            Ok(found) => found,
            Err(e) => return e.into_response(),
        };
        let (value, info) = st.issue_token(&user, scoped, methods, now);
        (value, info, st.region.clone())
    };
    let body = token_body(&info, &app.base_url, &region);
    (
        StatusCode::CREATED,
        [("X-Subject-Token", value)],
        axum::Json(body),
    )
        .into_response()
}

/// `GET /v3`: version discovery.
pub(crate) async fn version(AxState(app): AxState<App>) -> Response {
    axum::Json(json!({"version": {
        "id": "v3.14", "status": "stable", "updated": "2020-04-07T00:00:00Z",
        "links": [{"rel": "self", "href": format!("{}/v3/", app.base_url)}],
        "media-types": [{"base": "application/json", "type": "application/vnd.openstack.identity-v3+json"}],
    }}))
    .into_response()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::options::FakeOpenStackOptions;

    fn st() -> State {
        State::new(&FakeOpenStackOptions::default())
    }

    fn password(user: Value, pw: &str, scope: Option<Value>) -> Value {
        let mut u = user;
        u["password"] = json!(pw);
        let mut b =
            json!({"auth": {"identity": {"methods": ["password"], "password": {"user": u}}}});
        if let Some(s) = scope {
            b["auth"]["scope"] = s;
        }
        b
    }

    #[test]
    fn password_scoped_by_name_or_id_is_accepted() {
        let s = st();
        let user = json!({"name": "demo", "domain": {"name": "Default"}});
        let by_name = json!({"project": {"name": "demo", "domain": {"id": "default"}}});
        let (u, scoped, _) =
            authenticate(&s, &password(user.clone(), "demo", Some(by_name))).unwrap();
        assert_eq!((u.name.as_str(), scoped), ("demo", true));
        let by_id = json!({"project": {"id": World::project("demo").id}});
        assert!(authenticate(&s, &password(user.clone(), "demo", Some(by_id))).is_ok());
        let (_, scoped, _) = authenticate(&s, &password(user, "demo", None)).unwrap();
        assert!(!scoped);
    }

    #[test]
    fn wrong_password_domain_or_project_is_401() {
        let s = st();
        let user = json!({"name": "demo", "domain": {"name": "Default"}});
        let other_domain = json!({"name": "demo", "domain": {"name": "Other"}});
        let other_project = json!({"project": {"name": "admin", "domain": {"name": "Default"}}});
        for body in [
            password(user.clone(), "wrong", None),
            password(other_domain, "demo", None),
            password(user, "demo", Some(other_project)),
        ] {
            let e = authenticate(&s, &body).unwrap_err();
            assert_eq!(e.status.as_u16(), 401);
        }
    }

    #[test]
    fn application_credential_works_by_id_or_by_name_and_user_but_not_with_a_scope() {
        let s = st();
        let by_id = json!({"auth": {"identity": {"methods": ["application_credential"],
            "application_credential": {"id": "autoscaler", "secret": "autoscaler-secret"}}}});
        assert!(authenticate(&s, &by_id).unwrap().1);
        let by_name = json!({"auth": {"identity": {"methods": ["application_credential"],
            "application_credential": {"name": "autoscaler", "secret": "autoscaler-secret",
                "user": {"name": "demo", "domain": {"name": "Default"}}}}}});
        assert!(authenticate(&s, &by_name).is_ok());
        let mut wrong = by_id.clone();
        wrong["auth"]["identity"]["application_credential"]["secret"] = json!("nope");
        assert_eq!(authenticate(&s, &wrong).unwrap_err().status.as_u16(), 401);
        let mut scoped = by_id;
        scoped["auth"]["scope"] = json!({"project": {"name": "demo"}});
        assert_eq!(authenticate(&s, &scoped).unwrap_err().status.as_u16(), 401);
    }

    #[test]
    fn catalog_has_public_and_internal_endpoints_on_this_server() {
        let c = catalog("http://127.0.0.1:5", "RegionOne");
        let compute = c
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["type"] == "compute")
            .unwrap();
        let eps = compute["endpoints"].as_array().unwrap();
        assert_eq!(eps.len(), 2);
        assert!(
            eps.iter()
                .all(|e| e["url"] == "http://127.0.0.1:5/v2.1" && e["region_id"] == "RegionOne")
        );
    }

    #[test]
    fn unscoped_tokens_carry_no_catalog() {
        let mut s = st();
        let user = s.users[0].clone();
        let (_, info) = s.issue_token(&user, false, vec!["password"], Utc::now());
        let body = token_body(&info, "http://x", "RegionOne");
        assert!(body["token"].get("catalog").is_none());
        assert!(body["token"]["expires_at"].as_str().unwrap().ends_with('Z'));
    }
}
