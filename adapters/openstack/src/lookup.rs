//! Name-or-id resolution of flavors, images, networks, security groups and key pairs.
//!
//! Each value is resolved once per client and cached (templates rarely change while the
//! controller runs; a restart clears the cache). "Not found" and "ambiguous" are errors that
//! name the kind and the value, so the operator can fix the config.

use serde::Deserialize;
use serde_json::Value;

use super::client::{Call, OpenStack, Service, segment};
use super::error::{Error, Result};

pub use crate::client::Found;

#[derive(Deserialize)]
struct Named {
    id: String,
    #[serde(default)]
    name: Option<String>,
    vcpus: Option<u64>,
    ram: Option<u64>,
}

impl From<Named> for Found {
    fn from(n: Named) -> Self {
        Found {
            id: n.id,
            vcpus: n.vcpus,
            ram_mb: n.ram,
        }
    }
}

fn looks_like_uuid(s: &str) -> bool {
    let hex: String = s.chars().filter(|c| *c != '-').collect();
    hex.len() == 32 && hex.chars().all(|c| c.is_ascii_hexdigit())
}

/// Picks the one match, or explains why there is not exactly one.
fn one(kind: &'static str, value: &str, mut matches: Vec<Named>) -> Result<Found> {
    if matches.len() > 1 {
        return Err(Error::Ambiguous {
            kind,
            value: value.to_string(),
            count: matches.len(),
            ids: matches
                .iter()
                .map(|m| m.id.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    matches
        .pop()
        .map(Found::from)
        .ok_or_else(|| Error::NotFound {
            kind,
            value: value.to_string(),
        })
}

fn list_of(v: Value, key: &str) -> Result<Vec<Named>> {
    let items = v.get(key).cloned().unwrap_or(Value::Array(Vec::new()));
    serde_json::from_value(items).map_err(|e| Error::Response {
        service: "lookup",
        path: key.to_string(),
        message: format!("cannot decode the {key} list: {e}"),
    })
}

// === impl OpenStack (lookups) ===

impl OpenStack {
    async fn cached<F>(&self, kind: &'static str, value: &str, resolve: F) -> Result<Found>
    where
        F: Future<Output = Result<Found>>,
    {
        let key = (kind, value.to_string());
        // Held while resolving: concurrent creates wait for one lookup instead of each
        // sending their own (lookups are rare, so serialising them costs nothing).
        let mut cache = self.inner.lookups.lock().await;
        if let Some(found) = cache.get(&key) {
            return Ok(found.clone());
        }
        let found = resolve.await?;
        cache.insert(key, found.clone());
        Ok(found)
    }

    /// Resolves a flavor by id, then by name.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] or [`Error::Ambiguous`] naming `flavor` and the value, or a failed call.
    pub async fn find_flavor(&self, value: &str) -> Result<Found> {
        self.cached("flavor", value, async {
            let by_id = Call::get(
                "lookup_flavor",
                Service::Compute,
                format!("/flavors/{}", segment(value)),
            );
            match self.json::<Value>(by_id).await {
                Ok(v) => return Ok(Found::from(one_of(v, "flavor")?)),
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e),
            }
            let mut matches = Vec::new();
            let mut marker: Option<String> = None;
            let limit = self.inner.options.page_size;
            loop {
                let mut call = Call::get("lookup_flavor", Service::Compute, "/flavors/detail")
                    .query("limit", limit.to_string());
                if let Some(m) = &marker {
                    call = call.query("marker", m.clone());
                }
                let page = list_of(self.json(call).await?, "flavors")?;
                let full = page.len() >= limit as usize;
                let next = page.last().map(|f| f.id.clone());
                // A cloud that ignores the marker would page forever: stop on a repeat.
                let repeated = next == marker;
                marker = next;
                matches.extend(
                    page.into_iter()
                        .filter(|f| f.name.as_deref() == Some(value)),
                );
                if !full || repeated {
                    break;
                }
            }
            one("flavor", value, matches)
        })
        .await
    }

    /// Resolves an active image by id, then by name.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] or [`Error::Ambiguous`] naming `image` and the value, or a failed call.
    pub async fn find_image(&self, value: &str) -> Result<Found> {
        self.cached("image", value, async {
            if looks_like_uuid(value) {
                let by_id = Call::get(
                    "lookup_image",
                    Service::Image,
                    format!("/images/{}", segment(value)),
                );
                match self.json::<Named>(by_id).await {
                    Ok(n) => return Ok(n.into()),
                    Err(e) if e.is_not_found() => {}
                    Err(e) => return Err(e),
                }
            }
            let call = Call::get("lookup_image", Service::Image, "/images")
                .query("name", value)
                .query("status", "active");
            one("image", value, list_of(self.json(call).await?, "images")?)
        })
        .await
    }

    /// Resolves a network by id, then by name.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] or [`Error::Ambiguous`] naming `network` and the value, or a failed call.
    pub async fn find_network(&self, value: &str) -> Result<Found> {
        self.cached(
            "network",
            value,
            self.neutron_lookup("network", "networks", value, false),
        )
        .await
    }

    /// Resolves a security group of the token's project by id, then by name.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] or [`Error::Ambiguous`] naming `security group` and the value, or a failed call.
    pub async fn find_security_group(&self, value: &str) -> Result<Found> {
        self.cached(
            "security group",
            value,
            self.neutron_lookup("security group", "security-groups", value, true),
        )
        .await
    }

    async fn neutron_lookup(
        &self,
        kind: &'static str,
        collection: &'static str,
        value: &str,
        own_project: bool,
    ) -> Result<Found> {
        let key = collection.replace('-', "_");
        let project = if own_project {
            self.project_id().await?
        } else {
            None
        };
        let op = if own_project {
            "lookup_security_group"
        } else {
            "lookup_network"
        };
        for field in ["id", "name"] {
            if field == "id" && !looks_like_uuid(value) {
                continue;
            }
            let mut call =
                Call::get(op, Service::Network, format!("/{collection}")).query(field, value);
            if let Some(p) = &project {
                call = call.query("project_id", p.clone());
            }
            let found = list_of(self.json(call).await?, &key)?;
            if !found.is_empty() {
                return one(kind, value, found);
            }
        }
        Err(Error::NotFound {
            kind,
            value: value.to_string(),
        })
    }

    /// Checks that a Nova key pair exists.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] naming `key pair` and the value, or a failed call.
    pub async fn find_key_pair(&self, name: &str) -> Result<()> {
        let call = Call::get(
            "lookup_key_pair",
            Service::Compute,
            format!("/os-keypairs/{}", segment(name)),
        );
        match self.send(call).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Err(Error::NotFound {
                kind: "key pair",
                value: name.to_string(),
            }),
            Err(e) => Err(e),
        }
    }
}

fn one_of(v: Value, key: &str) -> Result<Named> {
    let item = v.get(key).cloned().unwrap_or(Value::Null);
    serde_json::from_value(item).map_err(|e| Error::Response {
        service: "lookup",
        path: key.to_string(),
        message: format!("cannot decode the {key}: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_detection_accepts_dashed_and_plain_hex() {
        assert!(looks_like_uuid("f5593511-f3aa-4388-af96-c80734681787"));
        assert!(looks_like_uuid("9fc524b31e034bf89956189a60a77456"));
        assert!(!looks_like_uuid("runner-net"));
        assert!(!looks_like_uuid("m1.small"));
    }

    #[test]
    fn several_matches_are_ambiguous_and_list_the_ids() {
        let n = |id: &str| Named {
            id: id.into(),
            name: Some("debian".into()),
            vcpus: None,
            ram: None,
        };
        let e = one("image", "debian", vec![n("a"), n("b")]).expect_err("ambiguous");
        assert_eq!(
            e.to_string(),
            "image name \"debian\" is ambiguous: 2 matches (a, b); use the id"
        );
        let e = one("network", "nope", vec![]).expect_err("not found");
        assert_eq!(e.to_string(), "network \"nope\" not found");
    }
}
