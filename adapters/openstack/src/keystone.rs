//! Keystone v3: the token request body, the token and its service catalog.
//!
//! Pure data and mapping; the request itself is sent by [`super::client`]. The token value is
//! held in a [`SecretString`] and never printed.

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::{AppCredential, AuthMethod, Domain, Interface, NameOrId, interface_name};
use super::error::{Error, Result};

/// Longest time before `expires_at` at which a token is renewed.
const MAX_RENEW_MARGIN_SECS: i64 = 120;

/// The JSON body of `POST /v3/auth/tokens` for `method` (holds secrets: never log it).
pub(crate) fn token_request_body(method: &AuthMethod) -> Value {
    match method {
        AuthMethod::Password {
            user,
            password,
            project,
        } => {
            let mut user = name_or_id(user);
            user["password"] = json!(password.expose_secret());
            json!({"auth": {
                "identity": {"methods": ["password"], "password": {"user": user}},
                "scope": {"project": name_or_id(project)},
            }})
        }
        AuthMethod::ApplicationCredential { credential, secret } => {
            let mut cred = match credential {
                AppCredential::Id(id) => json!({"id": id}),
                AppCredential::Name { name, user } => {
                    json!({"name": name, "user": name_or_id(user)})
                }
            };
            cred["secret"] = json!(secret.expose_secret());
            json!({"auth": {"identity": {
                "methods": ["application_credential"],
                "application_credential": cred,
            }}})
        }
    }
}

fn name_or_id(r: &NameOrId) -> Value {
    match r {
        NameOrId::Id(id) => json!({"id": id}),
        NameOrId::Name { name, domain } => {
            let domain = match domain {
                Domain::Id(id) => json!({"id": id}),
                Domain::Name(n) => json!({"name": n}),
            };
            json!({"name": name, "domain": domain})
        }
    }
}

#[derive(Deserialize)]
pub(crate) struct TokenResponse {
    token: TokenBody,
}

#[derive(Deserialize)]
struct TokenBody {
    expires_at: DateTime<Utc>,
    issued_at: Option<DateTime<Utc>>,
    #[serde(default)]
    catalog: Vec<CatalogService>,
    project: Option<ProjectRef>,
}

#[derive(Deserialize)]
struct ProjectRef {
    id: String,
}

#[derive(Deserialize, Debug, Clone)]
struct CatalogService {
    #[serde(rename = "type")]
    service_type: String,
    #[serde(default)]
    endpoints: Vec<CatalogEndpoint>,
}

#[derive(Deserialize, Debug, Clone)]
struct CatalogEndpoint {
    interface: String,
    url: String,
    region_id: Option<String>,
    region: Option<String>,
}

/// A scoped token with its catalog.
pub(crate) struct Token {
    /// The `X-Subject-Token` value.
    pub value: SecretString,
    /// When Keystone stops accepting it.
    pub expires_at: DateTime<Utc>,
    /// When the client asks for a new one.
    pub renew_at: DateTime<Utc>,
    /// Project the token is scoped to (filters security groups).
    pub project_id: Option<String>,
    catalog: Vec<CatalogService>,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("value", &"[REDACTED]")
            .field("expires_at", &self.expires_at)
            .field("project_id", &self.project_id)
            .finish_non_exhaustive()
    }
}

impl Token {
    /// Builds the token from the header value and the response body.
    pub fn new(value: SecretString, body: TokenResponse) -> Self {
        let t = body.token;
        let lifetime = t
            .issued_at
            .map(|i| t.expires_at - i)
            .unwrap_or_else(|| ChronoDuration::seconds(3600));
        let margin = (lifetime / 4).min(ChronoDuration::seconds(MAX_RENEW_MARGIN_SECS));
        Token {
            value,
            renew_at: t.expires_at - margin,
            expires_at: t.expires_at,
            project_id: t.project.map(|p| p.id),
            catalog: t.catalog,
        }
    }

    /// Whether the token should be replaced before use at `now`.
    pub fn needs_renewal(&self, now: DateTime<Utc>) -> bool {
        now >= self.renew_at
    }

    /// Whether the catalog lists a service of this type at all (e.g. `volumev3`).
    pub fn has_service(&self, types: &[&str]) -> bool {
        self.catalog
            .iter()
            .any(|s| types.contains(&s.service_type.as_str()) && !s.endpoints.is_empty())
    }

    /// The endpoint URL of the first service of one of `types` with `interface` in `region`.
    ///
    /// # Errors
    ///
    /// [`Error::NoEndpoint`] when the catalog has none.
    pub fn endpoint(
        &self,
        types: &[&str],
        interface: Interface,
        region: Option<&str>,
    ) -> Result<url::Url> {
        let found = types.iter().find_map(|ty| {
            self.catalog
                .iter()
                .filter(|s| s.service_type == *ty)
                .flat_map(|s| s.endpoints.iter())
                .find(|e| {
                    e.interface == interface_name(interface)
                        && region.is_none_or(|r| {
                            e.region_id.as_deref() == Some(r) || e.region.as_deref() == Some(r)
                        })
                })
        });
        let no_endpoint = || Error::NoEndpoint {
            service_type: types.first().copied().unwrap_or_default().to_string(),
            interface: interface_name(interface).to_string(),
            region: region.map(str::to_string),
        };
        let e = found.ok_or_else(no_endpoint)?;
        url::Url::parse(&e.url).map_err(|err| Error::Response {
            service: "identity",
            path: "/auth/tokens".into(),
            message: format!("catalog endpoint {:?} is not a URL: {err}", e.url),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn token(json: Value) -> Token {
        Token::new(
            SecretString::from("tok"),
            serde_json::from_value(json).unwrap(),
        )
    }

    fn catalog() -> Value {
        json!({"token": {
            "expires_at": "2030-01-01T12:00:00.000000Z",
            "issued_at": "2030-01-01T11:00:00.000000Z",
            "project": {"id": "p1", "name": "demo"},
            "catalog": [
                {"type": "compute", "endpoints": [
                    {"interface": "internal", "region_id": "RegionOne", "url": "http://internal:8774/v2.1"},
                    {"interface": "public", "region_id": "RegionTwo", "url": "http://two:8774/v2.1"},
                    {"interface": "public", "region_id": "RegionOne", "region": "RegionOne", "url": "http://one:8774/v2.1"}
                ]},
                {"type": "network", "endpoints": [
                    {"interface": "public", "region_id": "RegionOne", "url": "http://one:9696"}
                ]}
            ]
        }})
    }

    #[test]
    fn endpoint_is_chosen_by_interface_and_region() {
        let t = token(catalog());
        let url = |i, r| t.endpoint(&["compute"], i, r).map(|u| u.to_string());
        assert_eq!(
            url(Interface::Public, Some("RegionOne")).unwrap(),
            "http://one:8774/v2.1"
        );
        assert_eq!(
            url(Interface::Public, Some("RegionTwo")).unwrap(),
            "http://two:8774/v2.1"
        );
        assert_eq!(
            url(Interface::Internal, None).unwrap(),
            "http://internal:8774/v2.1"
        );
        let err = url(Interface::Admin, Some("RegionOne"))
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "the service catalog has no admin endpoint for compute in region RegionOne"
        );
        assert_eq!(t.project_id.as_deref(), Some("p1"));
    }

    #[test]
    fn renewal_is_due_a_quarter_lifetime_but_at_most_two_minutes_before_expiry() {
        let t = token(catalog());
        assert_eq!(t.renew_at.to_rfc3339(), "2030-01-01T11:58:00+00:00");
        let mut short = catalog();
        short["token"]["issued_at"] = json!("2030-01-01T11:59:20Z");
        let t = token(short);
        assert_eq!(t.renew_at.to_rfc3339(), "2030-01-01T11:59:50+00:00");
        assert!(!t.needs_renewal("2030-01-01T11:59:49Z".parse().unwrap()));
        assert!(t.needs_renewal("2030-01-01T11:59:50Z".parse().unwrap()));
    }

    #[test]
    fn password_body_is_scoped_and_application_credential_body_is_not() {
        let pw = AuthMethod::Password {
            user: NameOrId::Name {
                name: "demo".into(),
                domain: Domain::Name("Default".into()),
            },
            password: SecretString::from("pw"),
            project: NameOrId::Id("p1".into()),
        };
        assert_eq!(
            token_request_body(&pw),
            json!({"auth": {
                "identity": {"methods": ["password"], "password": {"user": {
                    "name": "demo", "domain": {"name": "Default"}, "password": "pw"}}},
                "scope": {"project": {"id": "p1"}}
            }})
        );
        let ac = AuthMethod::ApplicationCredential {
            credential: AppCredential::Name {
                name: "scaler".into(),
                user: NameOrId::Id("u1".into()),
            },
            secret: SecretString::from("s"),
        };
        assert_eq!(
            token_request_body(&ac),
            json!({"auth": {"identity": {"methods": ["application_credential"],
                "application_credential": {"name": "scaler", "user": {"id": "u1"}, "secret": "s"}}}})
        );
    }

    #[test]
    fn token_debug_hides_the_value() {
        let t = Token::new(
            SecretString::from("gAAAAA-secret-token"),
            serde_json::from_value(catalog()).unwrap(),
        );
        assert!(!format!("{t:?}").contains("gAAAAA"));
    }
}
