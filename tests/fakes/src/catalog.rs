//! Fake Glance (`/v2/images`) and Neutron (`/v2.0/networks`, `/v2.0/security-groups`):
//! read-only lists of the seed objects with the filters the real client sends.
//!
//! * Glance filters by `name`, `status`, `visibility` and `id`; it does not page (the seed
//!   is small). An unknown image id is Glance's plain-text 404.
//! * Neutron filters by equality on `id`, `name`, `project_id`, `tenant_id` and `shared`;
//!   other filters are ignored. Networks are shared and owned by the `admin` project;
//!   security groups belong to the caller's project.

use axum::extract::{Path, Query, State as AxState};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::api::{ApiError, Params, Svc, authorize_project};
use crate::server::App;
use crate::state::World;
use autoscaler_world::cloud::Named;
use autoscaler_world::ids::stable_id;

const SEED_TIME: &str = "2025-01-01T00:00:00Z";

fn image_json(i: &Named) -> Value {
    json!({
        "id": i.id, "name": i.name, "status": "active", "visibility": "public",
        "disk_format": "qcow2", "container_format": "bare", "size": 356_515_840u64,
        "min_disk": 0, "min_ram": 0, "protected": false, "os_hidden": false, "tags": [],
        "owner": World::project("admin").id, "created_at": SEED_TIME, "updated_at": SEED_TIME,
        "self": format!("/v2/images/{}", i.id), "file": format!("/v2/images/{}/file", i.id),
        "schema": "/v2/schemas/image",
    })
}

/// Whether every filter of `q` among `keys` equals the object's field.
fn matches(obj: &Value, q: &Params, keys: &[&str]) -> bool {
    q.iter()
        .filter(|(k, _)| keys.contains(&k.as_str()))
        .all(|(k, v)| match obj.get(k) {
            Some(Value::String(s)) => s == v,
            Some(Value::Bool(b)) => b.to_string() == v.to_ascii_lowercase(),
            _ => false,
        })
}

/// `GET /v2/images`.
pub(crate) async fn images(
    AxState(app): AxState<App>,
    headers: HeaderMap,
    Query(q): Query<Params>,
) -> Response {
    let st = app.lock();
    if let Err(e) = authorize_project(&st, &headers, Svc::Image) {
        return e.into_response();
    }
    let list: Vec<Value> = st
        .images
        .iter()
        .map(image_json)
        .filter(|i| matches(i, &q, &["name", "status", "visibility", "id"]))
        .collect();
    axum::Json(json!({"images": list, "schema": "/v2/schemas/images", "first": "/v2/images"}))
        .into_response()
}

/// `GET /v2/images/{id}`.
pub(crate) async fn get_image(
    AxState(app): AxState<App>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let st = app.lock();
    if let Err(e) = authorize_project(&st, &headers, Svc::Image) {
        return e.into_response();
    }
    match st.images.iter().find(|i| i.id == id) {
        Some(i) => axum::Json(image_json(i)).into_response(),
        None => {
            ApiError::new(Svc::Image, 404, format!("No image found with ID {id}")).into_response()
        }
    }
}

fn network_json(n: &Named) -> Value {
    let owner = World::project("admin").id;
    json!({
        "id": n.id, "name": n.name, "status": "ACTIVE", "admin_state_up": true,
        "subnets": [stable_id("subnet", &n.name)], "shared": true,
        "project_id": owner, "tenant_id": owner, "router:external": false, "mtu": 1450,
        "port_security_enabled": true, "availability_zones": ["nova"], "tags": [],
        "description": "", "created_at": SEED_TIME, "updated_at": SEED_TIME, "revision_number": 1,
    })
}

fn security_group_json(g: &Named, project_id: &str) -> Value {
    json!({
        "id": g.id, "name": g.name, "description": "", "stateful": true,
        "project_id": project_id, "tenant_id": project_id, "tags": [],
        "security_group_rules": [], "created_at": SEED_TIME, "updated_at": SEED_TIME,
        "revision_number": 1,
    })
}

const NEUTRON_FILTERS: &[&str] = &["id", "name", "project_id", "tenant_id", "shared"];

/// `GET /v2.0/networks`.
pub(crate) async fn networks(
    AxState(app): AxState<App>,
    headers: HeaderMap,
    Query(q): Query<Params>,
) -> Response {
    let st = app.lock();
    if let Err(e) = authorize_project(&st, &headers, Svc::Network) {
        return e.into_response();
    }
    let list: Vec<Value> = st
        .networks
        .iter()
        .map(network_json)
        .filter(|n| matches(n, &q, NEUTRON_FILTERS))
        .collect();
    axum::Json(json!({ "networks": list })).into_response()
}

/// `GET /v2.0/security-groups`.
pub(crate) async fn security_groups(
    AxState(app): AxState<App>,
    headers: HeaderMap,
    Query(q): Query<Params>,
) -> Response {
    let st = app.lock();
    let project = match authorize_project(&st, &headers, Svc::Network) {
        Ok((_, p)) => p,
        Err(e) => return e.into_response(),
    };
    let list: Vec<Value> = st
        .security_groups
        .iter()
        .map(|g| security_group_json(g, &project.id))
        .filter(|g| matches(g, &q, NEUTRON_FILTERS))
        .collect();
    axum::Json(json!({ "security_groups": list })).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::params as q;

    #[test]
    fn filters_compare_whole_values_and_ignore_unknown_keys() {
        let net = network_json(&Named {
            id: "n1".into(),
            name: "runner-net".into(),
        });
        assert!(matches(
            &net,
            &q(&[("name", "runner-net")]),
            NEUTRON_FILTERS
        ));
        assert!(!matches(&net, &q(&[("name", "runner")]), NEUTRON_FILTERS));
        assert!(matches(&net, &q(&[("shared", "True")]), NEUTRON_FILTERS));
        assert!(matches(&net, &q(&[("fields", "id")]), NEUTRON_FILTERS));
        assert!(!matches(
            &net,
            &q(&[("id", "n2"), ("name", "runner-net")]),
            NEUTRON_FILTERS
        ));
    }
}
