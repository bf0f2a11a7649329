//! Fake Nova (`/v2.1`): servers (create, list with filters and paging, get, delete),
//! flavors, key pairs and limits, with the microversion rules the real client relies on.
//!
//! * Every answer carries `OpenStack-API-Version: compute X.Y`; a version outside
//!   2.1..=2.93 is 406; a create below 2.52 (tags in the create body) is 406.
//! * Below 2.26 the `tags` filter is ignored and `tags` are not shown, as in Nova: a client
//!   that forgets the header sees every server.
//! * Lists are newest first; `limit` (at most 1000) and `marker` page them, and a full page
//!   carries a `next` link, even when nothing follows (as Nova does).
//! * A server being deleted keeps its status and shows task state `deleting`.
//! * At 2.3 and later a server shows `OS-EXT-SRV-ATTR:user_data` (the fake has no admin role:
//!   every token sees it).

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, State as AxState};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde_json::{Value, json};

use crate::api::{ApiError, Microversion, Params, Svc, authorize_project, microversion};
use crate::server::App;
use crate::state::{
    FakeStatus, Project, Record, ServerEventKind, State, TAGS_MICROVERSION, TokenInfo, nova_time,
};
use autoscaler_world::cloud::ServerRequest;
use autoscaler_world::ids::stable_id;
use autoscaler_world::options::FakeFlavor;

/// Most items Nova returns in one page (`osapi_max_limit`).
const MAX_LIMIT: usize = 1000;

/// Percent-encodes a query value (RFC 3986 unreserved characters pass).
pub(crate) fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn param<'a>(q: &'a Params, key: &str) -> Option<&'a str> {
    q.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// Adds the microversion headers Nova sends with every answer.
fn with_version(mv: Microversion, mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert("OpenStack-API-Version", mv.header_value());
    if let Ok(v) = HeaderValue::from_str(&format!("{}.{}", mv.0, mv.1)) {
        h.insert("X-OpenStack-Nova-API-Version", v);
    }
    h.insert(
        "Vary",
        HeaderValue::from_static("OpenStack-API-Version, X-OpenStack-Nova-API-Version"),
    );
    resp
}

/// Runs `f` under the state lock with the caller's token and microversion (auth first,
/// then the version, as keystonemiddleware sits in front of Nova).
fn compute<F>(app: &App, headers: &HeaderMap, f: F) -> Response
where
    F: FnOnce(&mut State, Microversion, &TokenInfo, &Project) -> Result<Response, ApiError>,
{
    let mut st = app.lock();
    let (token, project) = match authorize_project(&st, headers, Svc::Compute) {
        Ok(t) => t,
        Err(e) => return e.into_response(),
    };
    let mv = match microversion(headers) {
        Ok(v) => v,
        Err(e) => return e.into_response(),
    };
    let out = f(&mut st, mv, &token, &project);
    with_version(mv, out.unwrap_or_else(IntoResponse::into_response))
}

fn link(base: &str, path: &str) -> Value {
    json!([
        {"rel": "self", "href": format!("{base}/v2.1{path}")},
        {"rel": "bookmark", "href": format!("{base}{path}")},
    ])
}

fn flavor_json(f: &FakeFlavor, base: &str, detail: bool, mv: Microversion) -> Value {
    let mut v =
        json!({"id": f.id, "name": f.name, "links": link(base, &format!("/flavors/{}", f.id))});
    if detail {
        v["vcpus"] = json!(f.vcpus);
        v["ram"] = json!(f.ram_mb);
        v["disk"] = json!(f.disk_gb);
        v["OS-FLV-EXT-DATA:ephemeral"] = json!(0);
        v["OS-FLV-DISABLED:disabled"] = json!(false);
        v["swap"] = if mv.at_least(2, 75) {
            json!(0)
        } else {
            json!("")
        };
        v["rxtx_factor"] = json!(1.0);
        v["os-flavor-access:is_public"] = json!(true);
        if mv.at_least(2, 55) {
            v["description"] = Value::Null;
        }
        if mv.at_least(2, 61) {
            v["extra_specs"] = json!({});
        }
    }
    v
}

fn server_json(r: &Record, base: &str, mv: Microversion) -> Value {
    let s = &r.server;
    let mut addresses = serde_json::Map::new();
    if let Some(addr) = &s.address {
        for net in &s.networks {
            addresses.insert(
                net.clone(),
                json!([{"version": 4, "addr": addr, "OS-EXT-IPS:type": "fixed",
                        "OS-EXT-IPS-MAC:mac_addr": format!("fa:16:3e:00:{:02x}:{:02x}", r.seq / 256 % 256, r.seq % 256)}]),
            );
        }
    }
    let flavor = if mv.at_least(2, 47) {
        json!({"vcpus": r.flavor.vcpus, "ram": r.flavor.ram_mb, "disk": r.flavor.disk_gb,
               "ephemeral": 0, "swap": 0, "original_name": r.flavor.name, "extra_specs": {}})
    } else {
        json!({"id": r.flavor.id, "links": link(base, &format!("/flavors/{}", r.flavor.id))})
    };
    let image = match &s.image_id {
        Some(id) => {
            json!({"id": id, "links": [{"rel": "bookmark", "href": format!("{base}/images/{id}")}]})
        }
        None => json!(""),
    };
    let power_state = if s.status == FakeStatus::Active || (r.deleting && r.vm_status == "ACTIVE") {
        1
    } else {
        0
    };
    let task_state = if r.deleting {
        json!("deleting")
    } else if r.vm_status == "BUILD" {
        json!("spawning")
    } else {
        Value::Null
    };
    let mut v = json!({
        "id": s.id,
        "name": s.name,
        "status": r.vm_status,
        "tenant_id": s.project_id,
        "user_id": r.user_id,
        "metadata": s.metadata,
        "hostId": if s.address.is_some() { stable_id("host", &s.project_id).replace('-', "") } else { String::new() },
        "image": image,
        "flavor": flavor,
        "created": nova_time(s.created),
        "updated": nova_time(r.updated),
        "addresses": addresses,
        "accessIPv4": "",
        "accessIPv6": "",
        "links": link(base, &format!("/servers/{}", s.id)),
        "OS-DCF:diskConfig": "MANUAL",
        "progress": 0,
        "OS-EXT-AZ:availability_zone": r.availability_zone,
        "config_drive": "",
        "key_name": s.key_name,
        "OS-SRV-USG:launched_at": r.launched_at.map(|t| t.format("%Y-%m-%dT%H:%M:%S%.6f").to_string()),
        "OS-SRV-USG:terminated_at": null,
        "security_groups": r.security_groups.iter().map(|g| json!({"name": g})).collect::<Vec<_>>(),
        "OS-EXT-STS:task_state": task_state,
        "OS-EXT-STS:vm_state": r.vm_status.to_ascii_lowercase(),
        "OS-EXT-STS:power_state": power_state,
        "os-extended-volumes:volumes_attached": [],
    });
    if s.status == FakeStatus::Error || (r.deleting && r.vm_status == "ERROR") {
        v["fault"] = json!({"code": 500, "created": nova_time(r.updated),
                            "message": s.fault.clone().unwrap_or_default()});
    }
    if mv.at_least(2, 3) {
        v["OS-EXT-SRV-ATTR:user_data"] = json!(r.user_data);
        v["OS-EXT-SRV-ATTR:hostname"] = json!(s.name);
        v["OS-EXT-SRV-ATTR:host"] = json!("fake-compute");
        v["OS-EXT-SRV-ATTR:hypervisor_hostname"] = json!("fake-compute");
        v["OS-EXT-SRV-ATTR:instance_name"] = json!(format!("instance-{:08x}", r.seq));
    }
    if mv.at_least(2, 9) {
        v["locked"] = json!(false);
    }
    if mv.at_least(2, 19) {
        v["description"] = Value::Null;
    }
    if mv >= TAGS_MICROVERSION {
        v["tags"] = json!(s.tags);
    }
    v
}

/// Whether a server name matches Nova's `name` filter: `^x` is a prefix, `^x$` exact,
/// anything else a substring (Nova takes a regular expression; these are the forms
/// clients use).
fn name_matches(pattern: &str, name: &str) -> bool {
    match pattern.strip_prefix('^') {
        Some(rest) => match rest.strip_suffix('$') {
            Some(exact) => name == exact,
            None => name.starts_with(rest),
        },
        None => name.contains(pattern),
    }
}

fn filtered<'a>(st: &'a State, project: &Project, q: &Params, mv: Microversion) -> Vec<&'a Record> {
    let split = |key| -> Option<Vec<&str>> {
        param(q, key).map(|v| v.split(',').filter(|t| !t.is_empty()).collect())
    };
    let (tags, tags_any) = if mv >= TAGS_MICROVERSION {
        (split("tags"), split("tags-any"))
    } else {
        (None, None)
    };
    st.project_servers(&project.id)
        .into_iter()
        .filter(|r| {
            let t = &r.server.tags;
            tags.as_ref()
                .is_none_or(|all| all.iter().all(|x| t.iter().any(|y| y == x)))
                && tags_any
                    .as_ref()
                    .is_none_or(|any| any.iter().any(|x| t.iter().any(|y| y == x)))
                && param(q, "name").is_none_or(|p| name_matches(p, &r.server.name))
                && param(q, "status").is_none_or(|s| s.eq_ignore_ascii_case(r.vm_status))
        })
        .collect()
}

/// Applies `limit` and `marker` to `items` (ids by `id_of`); returns the page and whether
/// it is full (then Nova adds a `next` link).
fn page<T>(
    items: Vec<T>,
    q: &Params,
    id_of: impl Fn(&T) -> &str,
) -> Result<(Vec<T>, Option<usize>), ApiError> {
    let limit = match param(q, "limit") {
        None => MAX_LIMIT,
        Some(l) => {
            let n: i64 = l
                .parse()
                .map_err(|_| ApiError::bad_request("limit param must be an integer"))?;
            if n < 0 {
                return Err(ApiError::bad_request("limit param must be positive"));
            }
            usize::try_from(n).unwrap_or(MAX_LIMIT).min(MAX_LIMIT)
        }
    };
    let start = match param(q, "marker") {
        None => 0,
        Some(m) => {
            items
                .iter()
                .position(|i| id_of(i) == m)
                .ok_or_else(|| ApiError::bad_request(format!("marker [{m}] not found")))?
                + 1
        }
    };
    let page: Vec<T> = items.into_iter().skip(start).take(limit).collect();
    let full = (limit > 0 && page.len() == limit).then_some(limit);
    Ok((page, full))
}

/// The `next` link of a full page: the same query with `marker` set to the last id.
fn next_link(base: &str, path: &str, q: &Params, limit: usize, last: &str) -> Value {
    let mut parts: Vec<String> = q
        .iter()
        .filter(|(k, _)| k != "marker" && k != "limit")
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect();
    parts.push(format!("limit={limit}"));
    parts.push(format!("marker={}", encode(last)));
    json!([{"rel": "next", "href": format!("{base}/v2.1{path}?{}", parts.join("&"))}])
}

/// The create request in a `POST /servers` body: its JSON shape is checked here, its
/// values by the world ([`autoscaler_world::cloud::World::create_server`]).
fn server_request(body: &Value) -> Result<ServerRequest, ApiError> {
    fn bad(m: impl Into<String>) -> ApiError {
        ApiError::bad_request(m)
    }
    let s = body
        .get("server")
        .and_then(Value::as_object)
        .ok_or_else(|| {
            bad("Invalid input for field/attribute server. 'server' is a required property")
        })?;
    let required = |key: &str| {
        s.get(key).and_then(Value::as_str).ok_or_else(|| {
            bad(format!(
                "Invalid input for field/attribute {key}. '{key}' is a required property"
            ))
        })
    };
    let name = required("name")?.to_string();
    let flavor_ref = required("flavorRef")?.to_string();
    let bdm_image = s
        .get("block_device_mapping_v2")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|m| m.get("source_type").and_then(Value::as_str) == Some("image"))
        .and_then(|m| m.get("uuid").and_then(Value::as_str));
    let image_ref = match (s.get("imageRef").and_then(Value::as_str), bdm_image) {
        (Some(r), _) if !r.is_empty() => Some(r.to_string()),
        (_, r) => r.map(str::to_string),
    };
    let networks = match s.get("networks") {
        None => None,
        Some(list) if list.as_str() == Some("none") => Some(Vec::new()),
        Some(list) => {
            let items = list.as_array().ok_or_else(|| {
                bad("Invalid input for field/attribute networks. networks must be a list")
            })?;
            let mut ids = Vec::new();
            for n in items {
                let uuid = n.get("uuid").and_then(Value::as_str).ok_or_else(|| {
                    bad("Invalid input for field/attribute networks. 'uuid' is required (ports are not supported by the fake)")
                })?;
                ids.push(uuid.to_string());
            }
            Some(ids)
        }
    };
    let security_groups = s
        .get("security_groups")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|g| {
            g.get("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    let key_name = match s.get("key_name") {
        None | Some(Value::Null) => None,
        Some(k) => Some(k.as_str().unwrap_or_default().to_string()),
    };
    let mut metadata = BTreeMap::new();
    if let Some(m) = s.get("metadata") {
        let m = m.as_object().ok_or_else(|| {
            bad("Invalid input for field/attribute metadata. metadata must be an object")
        })?;
        for (k, v) in m {
            let v = v.as_str().ok_or_else(|| {
                bad(format!(
                    "Invalid input for field/attribute metadata. Value: {k}. metadata values must be strings"
                ))
            })?;
            metadata.insert(k.clone(), v.to_string());
        }
    }
    let mut tags = Vec::new();
    if let Some(t) = s.get("tags") {
        let items = t
            .as_array()
            .ok_or_else(|| bad("Invalid input for field/attribute tags. tags must be a list"))?;
        for item in items {
            let tag = item.as_str().ok_or_else(|| {
                bad("Invalid input for field/attribute tags. tags must be strings")
            })?;
            tags.push(tag.to_string());
        }
    }
    let user_data = match s.get("user_data") {
        None | Some(Value::Null) => None,
        Some(u) => Some(
            u.as_str()
                .ok_or_else(|| {
                    bad("Invalid input for field/attribute user_data. user_data must be a string")
                })?
                .to_string(),
        ),
    };
    Ok(ServerRequest {
        name,
        flavor_ref,
        image_ref,
        networks,
        security_groups,
        key_name,
        metadata,
        tags,
        user_data,
        availability_zone: s
            .get("availability_zone")
            .and_then(Value::as_str)
            .map(str::to_string),
    })
}

/// `POST /v2.1/servers`.
pub(crate) async fn create_server(
    AxState(app): AxState<App>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let app2 = app.clone();
    compute(&app, &headers, |st, mv, token, project| {
        if !mv.at_least(2, 52) {
            return Err(ApiError::new(
                Svc::Compute,
                406,
                format!(
                    "Creating servers needs microversion 2.52 or later (tags in the create body); the request asked for {}.{}.",
                    mv.0, mv.1
                ),
            ));
        }
        if let Some(f) = st.create_failures.pop_front() {
            return Err(ApiError::new(Svc::Compute, f.status, f.message));
        }
        let body: Value = serde_json::from_slice(&body)
            .map_err(|_| ApiError::bad_request("Malformed request body"))?;
        let req = server_request(&body)?;
        let (record, boot) = st.create_server(req, project, &token.user_id, Utc::now())?;
        let id = record.server.id.clone();
        app2.publish(st, ServerEventKind::Created, record.server.clone());
        app2.schedule_boot(id.clone(), boot);
        let location = format!("{}/v2.1/servers/{id}", app2.base_url);
        let groups: Vec<Value> = record
            .security_groups
            .iter()
            .map(|g| json!({"name": g}))
            .collect();
        let out = json!({"server": {
            "id": id,
            "links": link(&app2.base_url, &format!("/servers/{id}")),
            "OS-DCF:diskConfig": "MANUAL",
            "security_groups": groups,
            "adminPass": stable_id("admin-pass", &id).replace('-', "")[..12].to_string(),
        }});
        Ok((
            StatusCode::ACCEPTED,
            [("Location", location)],
            axum::Json(out),
        )
            .into_response())
    })
}

fn list(app: &App, headers: &HeaderMap, q: &Params, detail: bool) -> Response {
    let base = app.base_url.clone();
    compute(app, headers, |st, mv, _, project| {
        let all = filtered(st, project, q, mv);
        let (items, full) = page(all, q, |r| r.server.id.as_str())?;
        let servers: Vec<Value> = items
            .iter()
            .map(|r| {
                if detail {
                    server_json(r, &base, mv)
                } else {
                    json!({"id": r.server.id, "name": r.server.name,
                           "links": link(&base, &format!("/servers/{}", r.server.id))})
                }
            })
            .collect();
        let mut out = json!({ "servers": servers });
        if let (Some(limit), Some(last)) = (full, items.last()) {
            let path = if detail {
                "/servers/detail"
            } else {
                "/servers"
            };
            out["servers_links"] = next_link(&base, path, q, limit, &last.server.id);
        }
        Ok(axum::Json(out).into_response())
    })
}

/// `GET /v2.1/servers/detail`.
pub(crate) async fn list_detail(
    AxState(app): AxState<App>,
    headers: HeaderMap,
    Query(q): Query<Params>,
) -> Response {
    list(&app, &headers, &q, true)
}

/// `GET /v2.1/servers`.
pub(crate) async fn list_summary(
    AxState(app): AxState<App>,
    headers: HeaderMap,
    Query(q): Query<Params>,
) -> Response {
    list(&app, &headers, &q, false)
}

/// `GET /v2.1/servers/{id}`.
pub(crate) async fn get_server(
    AxState(app): AxState<App>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let base = app.base_url.clone();
    compute(&app, &headers, |st, mv, _, project| {
        let r = st
            .servers
            .get(&id)
            .filter(|r| r.server.project_id == project.id)
            .ok_or_else(|| crate::state::not_found(&id))?;
        Ok(axum::Json(json!({"server": server_json(r, &base, mv)})).into_response())
    })
}

/// `DELETE /v2.1/servers/{id}`: 204, then the server shows task state `deleting` for the
/// delete delay, then 404.
pub(crate) async fn delete_server(
    AxState(app): AxState<App>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let app2 = app.clone();
    compute(&app, &headers, |st, _, _, project| {
        if let Some(server) = st.start_delete(&id, &project.id)? {
            app2.publish(st, ServerEventKind::Deleting, server);
            if st.delete_delay.is_zero() {
                if let Some(gone) = st.finish_delete(&id) {
                    app2.publish(st, ServerEventKind::Deleted, gone);
                }
            } else {
                app2.schedule_delete(id.clone(), st.delete_delay);
            }
        }
        Ok(StatusCode::NO_CONTENT.into_response())
    })
}

fn flavors(app: &App, headers: &HeaderMap, q: &Params, detail: bool) -> Response {
    let base = app.base_url.clone();
    compute(app, headers, |st, mv, _, _| {
        let mut all: Vec<&FakeFlavor> = st.flavors.iter().collect();
        all.sort_by(|a, b| a.id.cmp(&b.id));
        let (items, full) = page(all, q, |f| f.id.as_str())?;
        let list: Vec<Value> = items
            .iter()
            .map(|f| flavor_json(f, &base, detail, mv))
            .collect();
        let mut out = json!({ "flavors": list });
        if let (Some(limit), Some(last)) = (full, items.last()) {
            let path = if detail {
                "/flavors/detail"
            } else {
                "/flavors"
            };
            out["flavors_links"] = next_link(&base, path, q, limit, &last.id);
        }
        Ok(axum::Json(out).into_response())
    })
}

/// `GET /v2.1/flavors/detail`.
pub(crate) async fn flavors_detail(
    AxState(app): AxState<App>,
    headers: HeaderMap,
    Query(q): Query<Params>,
) -> Response {
    flavors(&app, &headers, &q, true)
}

/// `GET /v2.1/flavors`.
pub(crate) async fn flavors_summary(
    AxState(app): AxState<App>,
    headers: HeaderMap,
    Query(q): Query<Params>,
) -> Response {
    flavors(&app, &headers, &q, false)
}

/// `GET /v2.1/flavors/{id}`.
pub(crate) async fn get_flavor(
    AxState(app): AxState<App>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let base = app.base_url.clone();
    compute(&app, &headers, |st, mv, _, _| {
        let f = st.flavors.iter().find(|f| f.id == id).ok_or_else(|| {
            ApiError::new(
                Svc::Compute,
                404,
                format!("Flavor {id} could not be found."),
            )
        })?;
        Ok(axum::Json(json!({"flavor": flavor_json(f, &base, true, mv)})).into_response())
    })
}

fn keypair_json(name: &str, user_id: &str, full: bool) -> Value {
    let fp = stable_id("keypair", name).replace('-', "");
    let fingerprint: Vec<&str> = (0..16).filter_map(|i| fp.get(i * 2..i * 2 + 2)).collect();
    let mut v = json!({
        "name": name,
        "public_key": format!("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI{fp} {name}@fake"),
        "fingerprint": fingerprint.join(":"),
        "type": "ssh",
    });
    if full {
        v["user_id"] = json!(user_id);
        v["created_at"] = json!("2025-01-01T00:00:00.000000");
        v["deleted"] = json!(false);
        v["deleted_at"] = Value::Null;
        v["updated_at"] = Value::Null;
        v["id"] = json!(1);
    }
    v
}

/// `GET /v2.1/os-keypairs`.
pub(crate) async fn keypairs(AxState(app): AxState<App>, headers: HeaderMap) -> Response {
    compute(&app, &headers, |st, _, token, _| {
        let list: Vec<Value> = st
            .key_pairs
            .iter()
            .map(|k| json!({"keypair": keypair_json(k, &token.user_id, false)}))
            .collect();
        Ok(axum::Json(json!({ "keypairs": list })).into_response())
    })
}

/// `GET /v2.1/os-keypairs/{name}`.
pub(crate) async fn get_keypair(
    AxState(app): AxState<App>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Response {
    compute(&app, &headers, |st, _, token, _| {
        if !st.key_pairs.contains(&name) {
            return Err(ApiError::new(
                Svc::Compute,
                404,
                format!("Keypair {name} not found for user {}", token.user_id),
            ));
        }
        Ok(
            axum::Json(json!({"keypair": keypair_json(&name, &token.user_id, true)}))
                .into_response(),
        )
    })
}

/// `GET /v2.1/limits`: absolute limits (`-1` is unlimited) and the project's use.
pub(crate) async fn limits(AxState(app): AxState<App>, headers: HeaderMap) -> Response {
    compute(&app, &headers, |st, _, _, project| {
        let (n, cores, ram) = st.usage(&project.id);
        let max = |v: Option<u64>| v.map_or(-1, |m| i64::try_from(m).unwrap_or(i64::MAX));
        let q = st.quota;
        Ok(axum::Json(json!({"limits": {"rate": [], "absolute": {
            "maxTotalInstances": max(q.instances), "totalInstancesUsed": n,
            "maxTotalCores": max(q.cores), "totalCoresUsed": cores,
            "maxTotalRAMSize": max(q.ram_mb), "totalRAMUsed": ram,
            "maxServerMeta": 128, "maxImageMeta": 128, "maxPersonality": 5,
            "maxPersonalitySize": 10240, "maxTotalKeypairs": 100,
            "maxSecurityGroups": 10, "maxSecurityGroupRules": 20,
            "maxServerGroups": 10, "maxServerGroupMembers": 10,
            "totalServerGroupsUsed": 0, "totalSecurityGroupsUsed": 0,
            "maxTotalFloatingIps": 10, "totalFloatingIpsUsed": 0,
        }}}))
        .into_response())
    })
}

/// `GET /v2.1`: version document (no token needed).
pub(crate) async fn version(AxState(app): AxState<App>) -> Response {
    axum::Json(json!({"version": {
        "id": "v2.1", "status": "CURRENT",
        "version": format!("{}.{}", Microversion::MAX.0, Microversion::MAX.1),
        "min_version": format!("{}.{}", Microversion::MIN.0, Microversion::MIN.1),
        "updated": "2013-07-23T11:33:21Z",
        "links": [{"rel": "self", "href": format!("{}/v2.1/", app.base_url)}],
    }}))
    .into_response()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::api::params as q;

    #[test]
    fn name_filter_understands_anchors() {
        assert!(name_matches("^runner-", "runner-docker-1"));
        assert!(!name_matches("^docker", "runner-docker-1"));
        assert!(name_matches("docker", "runner-docker-1"));
        assert!(name_matches("^runner-1$", "runner-1"));
        assert!(!name_matches("^runner-1$", "runner-10"));
    }

    #[test]
    fn paging_starts_after_the_marker_and_flags_full_pages() {
        let items = vec!["a", "b", "c", "d", "e"];
        let (p, full) = page(items.clone(), &q(&[("limit", "2")]), |s| s).unwrap();
        assert_eq!((p, full), (vec!["a", "b"], Some(2)));
        let (p, full) = page(items.clone(), &q(&[("limit", "2"), ("marker", "d")]), |s| s).unwrap();
        assert_eq!((p, full), (vec!["e"], None));
        let (p, full) = page(items.clone(), &q(&[]), |s| s).unwrap();
        assert_eq!((p.len(), full), (5, None));
        let e = page(items.clone(), &q(&[("marker", "zz")]), |s| s).unwrap_err();
        assert_eq!(e.message, "marker [zz] not found");
        let e = page(items, &q(&[("limit", "-1")]), |s| s).unwrap_err();
        assert_eq!(e.status.as_u16(), 400);
    }

    #[test]
    fn next_link_keeps_filters_and_encodes_them() {
        let link = next_link(
            "http://h",
            "/servers/detail",
            &q(&[("tags", "autoscaler:c 1"), ("limit", "2")]),
            2,
            "id-9",
        );
        assert_eq!(
            link[0]["href"],
            "http://h/v2.1/servers/detail?tags=autoscaler%3Ac%201&limit=2&marker=id-9"
        );
    }
}
