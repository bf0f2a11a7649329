//! Nova: create, list by tag, get, delete, limits; and the [`Cloud`] port over them.
//!
//! Nova's JSON shapes (DTOs) stay private to this module: callers get
//! [`CloudServer`] and [`ComputeQuota`].

use std::collections::BTreeMap;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use reqwest::Method;
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::{Value, json};
use tracing::{debug, info};

use super::client::{Call, OpenStack, Service, segment};
use super::error::{Error, Result};
use autoscaler_core::ports::{
    Cloud, CloudResult, CloudServer, CloudStatus, ComputeQuota, CreateServer, META_POOL,
    META_RUNNER_ID, POOL_TAG_PREFIX, ServerId, owner_tag, ownership_labels,
};

// Largest base64 `user_data` Nova accepts (the bootstrap renderer refuses larger output too).
use autoscaler_bootstrap::NOVA_USER_DATA_LIMIT as MAX_USER_DATA_BASE64;

#[derive(Deserialize)]
struct ServerDto {
    id: String,
    name: String,
    status: String,
    created: DateTime<Utc>,
    #[serde(default)]
    metadata: BTreeMap<String, String>,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    addresses: BTreeMap<String, Vec<AddressDto>>,
    fault: Option<FaultDto>,
    #[serde(rename = "OS-EXT-STS:task_state")]
    task_state: Option<String>,
}

#[derive(Deserialize)]
struct AddressDto {
    addr: String,
    version: Option<u8>,
    #[serde(rename = "OS-EXT-IPS:type")]
    kind: Option<String>,
}

#[derive(Deserialize)]
struct FaultDto {
    message: Option<String>,
}

#[derive(Deserialize)]
struct ServerList {
    servers: Vec<ServerDto>,
    #[serde(default)]
    servers_links: Vec<Link>,
}

#[derive(Deserialize)]
struct Link {
    rel: String,
}

#[derive(Deserialize)]
struct OneServer {
    server: ServerDto,
}

#[derive(Deserialize)]
struct Created {
    server: CreatedServer,
}

#[derive(Deserialize)]
struct CreatedServer {
    id: String,
}

#[derive(Deserialize)]
struct Limits {
    limits: LimitsBody,
}

#[derive(Deserialize)]
struct LimitsBody {
    absolute: BTreeMap<String, Value>,
}

fn map_server(s: ServerDto) -> CloudServer {
    let status = match (s.status.as_str(), s.task_state.as_deref()) {
        (_, Some("deleting")) | ("DELETED" | "SOFT_DELETED", _) => CloudStatus::Deleting,
        ("BUILD", _) => CloudStatus::Building,
        ("ACTIVE", _) => CloudStatus::Active,
        ("ERROR", _) => CloudStatus::Error {
            fault: s.fault.and_then(|f| f.message),
        },
        (other, _) => CloudStatus::Other(other.to_string()),
    };
    let pool = s.metadata.get(META_POOL).cloned().or_else(|| {
        s.tags
            .iter()
            .find_map(|t| t.strip_prefix(POOL_TAG_PREFIX))
            .map(str::to_string)
    });
    let runner_id = s.metadata.get(META_RUNNER_ID).and_then(|r| r.parse().ok());
    let all: Vec<&AddressDto> = s.addresses.values().flatten().collect();
    let address = all
        .iter()
        .find(|a| a.kind.as_deref() == Some("floating"))
        .or_else(|| all.iter().find(|a| a.version == Some(4)))
        .or_else(|| all.first())
        .map(|a| a.addr.clone());
    CloudServer {
        id: ServerId(s.id),
        name: s.name,
        status,
        created: s.created,
        pool,
        runner_id,
        tags: s.tags,
        address,
    }
}

/// Replaces the user data, and anything that looks like a long base64 run, in a message
/// Nova sent back (its validation errors quote the offending value).
fn redact_user_data(message: &str, encoded: &str) -> String {
    let mut out = if encoded.is_empty() {
        message.to_string()
    } else {
        message.replace(encoded, "[REDACTED]")
    };
    let is_b64 = |c: char| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=');
    let mut result = String::with_capacity(out.len());
    let mut run = String::new();
    for c in out.drain(..) {
        if is_b64(c) {
            run.push(c);
        } else {
            flush_run(&mut result, &mut run);
            result.push(c);
        }
    }
    flush_run(&mut result, &mut run);
    result
}

fn flush_run(out: &mut String, run: &mut String) {
    if run.len() >= 40 {
        out.push_str("[REDACTED]");
    } else {
        out.push_str(run);
    }
    run.clear();
}

// === impl OpenStack (Nova) ===

impl OpenStack {
    /// Creates a server for `req` (resolving names to ids first) and returns its id.
    /// Sent exactly once: never retried, except after a 401 (nothing was created then).
    ///
    /// # Errors
    ///
    /// Lookups ([`Error::NotFound`], [`Error::Ambiguous`]), [`Error::InvalidRequest`] for
    /// reserved metadata, bad pool names or oversized user data, or Nova's refusal
    /// ([`Error::Status`]: 403 quota, 400 rejected). Messages never contain the user data.
    pub async fn create(&self, req: &CreateServer) -> Result<ServerId> {
        let (tags, metadata) =
            ownership_labels(&self.inner.controller, req).map_err(|e| Error::InvalidRequest {
                message: e.message().to_string(),
            })?;
        let encoded = base64::engine::general_purpose::STANDARD
            .encode(req.user_data.expose_secret().as_bytes());
        if encoded.len() > MAX_USER_DATA_BASE64 {
            return Err(Error::InvalidRequest {
                message: format!(
                    "user data is {} bytes of base64; Nova accepts at most {MAX_USER_DATA_BASE64}",
                    encoded.len()
                ),
            });
        }
        let t = &req.template;
        if t.networks.is_empty() {
            return Err(Error::InvalidRequest {
                message: format!("pool {:?}: at least one network is needed", req.pool),
            });
        }
        let flavor = self.find_flavor(&t.flavor).await?;
        let image = self.find_image(&t.image).await?;
        let mut networks = Vec::new();
        for n in &t.networks {
            networks.push(json!({"uuid": self.find_network(n).await?.id}));
        }
        let mut groups = Vec::new();
        for g in &t.security_groups {
            groups.push(json!({"name": self.find_security_group(g).await?.id}));
        }
        let mut server = json!({
            "name": req.name,
            "flavorRef": flavor.id,
            "networks": networks,
            "metadata": metadata,
            "tags": tags,
            "user_data": encoded,
        });
        if !groups.is_empty() {
            server["security_groups"] = json!(groups);
        }
        if let Some(k) = &t.key_name {
            server["key_name"] = json!(k);
        }
        if let Some(z) = &t.availability_zone {
            server["availability_zone"] = json!(z);
        }
        match t.boot_volume_size {
            Some(size) => {
                server["block_device_mapping_v2"] = json!([{
                    "boot_index": 0,
                    "uuid": image.id,
                    "source_type": "image",
                    "destination_type": "volume",
                    "volume_size": size,
                    "delete_on_termination": true,
                }]);
            }
            None => server["imageRef"] = json!(image.id),
        }
        let call = Call {
            op: "create_server",
            service: Service::Compute,
            method: Method::POST,
            path: "/servers".into(),
            query: Vec::new(),
            body: Some(json!({ "server": server })),
        };
        let created: Created = self.json(call).await.map_err(|e| match e {
            Error::Status {
                method,
                service,
                path,
                status,
                message,
            } => Error::Status {
                method,
                service,
                path,
                status,
                message: redact_user_data(&message, &encoded),
            },
            other => other,
        })?;
        info!(server_id = %created.server.id, name = %req.name, pool = %req.pool, "server create accepted");
        Ok(ServerId(created.server.id))
    }

    /// Lists the servers carrying this controller's ownership tag, following Nova's paging.
    ///
    /// # Errors
    ///
    /// Transport or status errors of the list calls.
    pub async fn list_owned(&self) -> Result<Vec<CloudServer>> {
        let tag = owner_tag(&self.inner.controller);
        let limit = self.inner.options.page_size.to_string();
        let mut out = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let mut call = Call::get("list_servers", Service::Compute, "/servers/detail")
                .query("tags", tag.clone())
                .query("limit", limit.clone());
            if let Some(m) = &marker {
                call = call.query("marker", m.clone());
            }
            let page: ServerList = self.json(call).await?;
            let more = page.servers_links.iter().any(|l| l.rel == "next");
            let next = page.servers.last().map(|s| s.id.clone());
            // A cloud that ignores the marker would page forever: stop on a repeat.
            let repeated = next == marker;
            marker = next;
            // Defence in depth: a cloud that ignored the filter must not make us touch others.
            out.extend(
                page.servers
                    .into_iter()
                    .filter(|s| s.tags.contains(&tag))
                    .map(map_server),
            );
            if !more || marker.is_none() || repeated {
                break;
            }
        }
        debug!(count = out.len(), "listed owned servers");
        Ok(out)
    }

    /// Reads one server by id (owned or not).
    ///
    /// # Errors
    ///
    /// [`Error::Status`] 404 ([`Error::is_not_found`]) when it does not exist.
    pub async fn get_server(&self, id: &ServerId) -> Result<CloudServer> {
        let call = Call::get(
            "get_server",
            Service::Compute,
            format!("/servers/{}", segment(id.as_str())),
        );
        let one: OneServer = self.json(call).await?;
        Ok(map_server(one.server))
    }

    /// Deletes a server; a server that is already gone counts as deleted.
    ///
    /// # Errors
    ///
    /// Any status but 2xx and 404, or no answer after the retries.
    pub async fn delete(&self, id: &ServerId) -> Result<()> {
        let call = Call {
            op: "delete_server",
            service: Service::Compute,
            method: Method::DELETE,
            path: format!("/servers/{}", segment(id.as_str())),
            query: Vec::new(),
            body: None,
        };
        match self.send(call).await {
            Ok(_) => {
                info!(server_id = %id, "server delete accepted");
                Ok(())
            }
            Err(e) if e.is_not_found() => {
                debug!(server_id = %id, "server already gone");
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Reads the project's compute limits and their use (`GET /limits`).
    ///
    /// # Errors
    ///
    /// Transport or status errors, or a body without `limits.absolute`.
    pub async fn limits(&self) -> Result<ComputeQuota> {
        let l: Limits = self
            .json(Call::get("limits", Service::Compute, "/limits"))
            .await?;
        let a = &l.limits.absolute;
        let max = |k: &str| match a.get(k).and_then(Value::as_i64) {
            Some(v) if v >= 0 => Some(v.unsigned_abs()),
            _ => None,
        };
        let used = |k: &str| {
            a.get(k)
                .and_then(Value::as_i64)
                .map(i64::unsigned_abs)
                .unwrap_or(0)
        };
        Ok(ComputeQuota {
            max_instances: max("maxTotalInstances"),
            used_instances: used("totalInstancesUsed"),
            max_cores: max("maxTotalCores"),
            used_cores: used("totalCoresUsed"),
            max_ram_mb: max("maxTotalRAMSize"),
            used_ram_mb: used("totalRAMUsed"),
        })
    }
}

impl Cloud for OpenStack {
    async fn list_owned_servers(&self) -> CloudResult<Vec<CloudServer>> {
        Ok(self.list_owned().await?)
    }

    async fn create_server(&self, req: CreateServer) -> CloudResult<ServerId> {
        Ok(self.create(&req).await?)
    }

    async fn delete_server(&self, id: &ServerId) -> CloudResult<()> {
        Ok(self.delete(id).await?)
    }

    async fn quota(&self) -> CloudResult<ComputeQuota> {
        Ok(self.limits().await?)
    }

    async fn flavor_size(
        &self,
        flavor: &str,
    ) -> CloudResult<Option<autoscaler_core::model::FlavorSize>> {
        let found = self.find_flavor(flavor).await?;
        Ok(match (found.vcpus, found.ram_mb) {
            (Some(vcpus), Some(ram_mb)) => Some(autoscaler_core::model::FlavorSize {
                vcpus: u32::try_from(vcpus).unwrap_or(u32::MAX),
                ram_mb,
            }),
            _ => None,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn dto(v: Value) -> ServerDto {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn error_server_maps_with_its_fault_and_ownership_fields() {
        let s = map_server(dto(json!({
            "id": "s1", "name": "runner-1", "status": "ERROR", "created": "2025-01-02T03:04:05Z",
            "metadata": {"autoscaler-pool": "docker", "autoscaler-runner-id": "77"},
            "tags": ["autoscaler:c1", "pool:docker"],
            "addresses": {"runner-net": [{"addr": "fd00::5", "version": 6}, {"addr": "10.0.0.5", "version": 4, "OS-EXT-IPS:type": "fixed"}]},
            "fault": {"code": 500, "message": "Quota exceeded for instances: Requested 1, but already used 2 of 2 instances"}
        })));
        assert_eq!(
            s.status,
            CloudStatus::Error {
                fault: Some(
                    "Quota exceeded for instances: Requested 1, but already used 2 of 2 instances"
                        .into()
                )
            }
        );
        assert_eq!(s.pool.as_deref(), Some("docker"));
        assert_eq!(s.runner_id, Some(77));
        assert_eq!(s.address.as_deref(), Some("10.0.0.5"));
        assert_eq!(s.created.to_rfc3339(), "2025-01-02T03:04:05+00:00");
    }

    #[test]
    fn statuses_map_to_the_port_states() {
        let st = |status: &str, task: Value| {
            map_server(dto(json!({"id": "s", "name": "n", "status": status,
                "created": "2025-01-01T00:00:00Z", "OS-EXT-STS:task_state": task})))
            .status
        };
        assert_eq!(st("BUILD", Value::Null), CloudStatus::Building);
        assert_eq!(st("ACTIVE", Value::Null), CloudStatus::Active);
        assert_eq!(st("ACTIVE", json!("deleting")), CloudStatus::Deleting);
        assert_eq!(st("SOFT_DELETED", Value::Null), CloudStatus::Deleting);
        assert_eq!(
            st("SHUTOFF", Value::Null),
            CloudStatus::Other("SHUTOFF".into())
        );
    }

    #[test]
    fn pool_falls_back_to_the_pool_tag() {
        let s = map_server(dto(json!({"id": "s", "name": "n", "status": "ACTIVE",
            "created": "2025-01-01T00:00:00Z", "tags": ["autoscaler:c", "pool:arm"],
            "metadata": {"autoscaler-runner-id": "not-a-number"}})));
        assert_eq!(s.pool.as_deref(), Some("arm"));
        assert_eq!(s.runner_id, None);
    }

    #[test]
    fn user_data_echoed_by_nova_is_redacted() {
        let encoded = base64::engine::general_purpose::STANDARD
            .encode("#cloud-config\nrunner_token: glrt-abcdefghijklmnopqrstuvwxyz\n");
        let msg = format!("Invalid input for field/attribute user_data. Value: {encoded}. is bad");
        let out = redact_user_data(&msg, &encoded);
        assert!(!out.contains(&encoded), "{out}");
        assert!(out.contains("user_data. Value: [REDACTED]."), "{out}");
        let partial = &encoded[..48];
        assert_eq!(redact_user_data(partial, "other"), "[REDACTED]");
        assert_eq!(
            redact_user_data("Invalid key_name provided.", &encoded),
            "Invalid key_name provided."
        );
    }

    #[test]
    fn path_segments_are_percent_encoded() {
        assert_eq!(segment("a b/c?d"), "a%20b%2Fc%3Fd");
    }
}
