//! The OpenStack adapter's error type and its classification.
//!
//! Every failure of the client ends up here, classified so that callers can decide what to
//! do without looking at HTTP details: retry later ([`Error::is_transient`]), wait for quota,
//! show a rejection to the operator, re-authenticate, or treat a missing object as done.
//!
//! Messages never contain tokens, passwords, application credential secrets or user data:
//! the client never puts them into URLs, and bodies of error responses are reduced to the
//! `message` field OpenStack services send.

use std::path::PathBuf;

use reqwest::StatusCode;

use autoscaler_core::ports::{CloudError, CloudErrorKind, is_quota_message};

/// Result alias of the OpenStack adapter.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong talking to OpenStack or reading its configuration.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The authentication settings (clouds.yaml, `OS_*` variables, the `[openstack]`
    /// section) are incomplete or contradictory.
    #[error("openstack configuration: {message}")]
    Config {
        /// What is wrong, naming the file, key or variable.
        message: String,
    },

    /// A file named by the settings could not be read.
    #[error("cannot read {}", path.display())]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },

    /// A password or application credential secret named by `*_file` / `*_env` cannot be read.
    #[error("[openstack] {key}: cannot read the secret")]
    Secret {
        /// The key whose secret failed (`password`, `application_credential_secret`).
        key: &'static str,
        /// Which file or variable, and why (never the value).
        #[source]
        source: autoscaler_config::SecretError,
    },

    /// A clouds.yaml or secure.yaml file is not valid YAML of the expected shape.
    #[error("cannot parse {}", path.display())]
    ParseFile {
        /// The file.
        path: PathBuf,
        /// The parser's complaint (with line and column).
        #[source]
        source: serde_yaml_ng::Error,
    },

    /// The CA file could not be used, or the HTTP client could not be built.
    #[error("cannot set up the http client: {message}")]
    Tls {
        /// What went wrong.
        message: String,
    },

    /// The request never got an HTTP response: connect failure, reset connection, timeout.
    #[error("{method} {service} {path}: no response")]
    Transport {
        /// HTTP method.
        method: &'static str,
        /// Service type (`identity`, `compute`, ...).
        service: &'static str,
        /// Request path (no query string, no secrets).
        path: String,
        /// The transport error.
        #[source]
        source: reqwest::Error,
    },

    /// The service answered with a status the client does not treat as success.
    #[error("{method} {service} {path}: {status}: {message}")]
    Status {
        /// HTTP method.
        method: &'static str,
        /// Service type.
        service: &'static str,
        /// Request path (no query string, no secrets).
        path: String,
        /// The HTTP status.
        status: StatusCode,
        /// The service's own message (the `message` field of its error body), trimmed.
        message: String,
    },

    /// A redirect pointed off the origin (scheme, host, port) the request was addressed to:
    /// the Keystone auth URL's for a token request, the catalog endpoint's for a service
    /// request. It was not followed, so neither the token nor the password left that origin.
    #[error(
        "{method} {service} {path}: redirected from {from} to another origin {to}; not followed, so credentials stay on {from}"
    )]
    OffOriginRedirect {
        /// HTTP method.
        method: &'static str,
        /// Service type.
        service: &'static str,
        /// Request path (no query string, no secrets).
        path: String,
        /// Origin the request was addressed to (`scheme://host[:port]`, nothing else).
        from: String,
        /// Origin the redirect pointed to, in the same form.
        to: String,
    },

    /// A response body is larger than [`super::ClientOptions::max_body`]; it was not read
    /// further.
    #[error("{method} {service} {path}: response body larger than the limit of {limit} bytes")]
    BodyTooLarge {
        /// HTTP method.
        method: &'static str,
        /// Service type.
        service: &'static str,
        /// Request path (no query string, no secrets).
        path: String,
        /// The limit in bytes.
        limit: usize,
    },

    /// A success response could not be understood.
    #[error("{service} {path}: unexpected response: {message}")]
    Response {
        /// Service type.
        service: &'static str,
        /// Request path.
        path: String,
        /// What was unexpected.
        message: String,
    },

    /// The service catalog has no endpoint for a service this client needs.
    #[error(
        "the service catalog has no {interface} endpoint for {service_type}{}",
        region.as_deref().map(|r| format!(" in region {r}")).unwrap_or_default()
    )]
    NoEndpoint {
        /// Service type (`compute`, `image`, `network`).
        service_type: String,
        /// Interface asked for (`public`, `internal`, `admin`).
        interface: String,
        /// Region asked for, if any.
        region: Option<String>,
    },

    /// A flavor, image, network, security group or key pair given by name or id does not exist.
    #[error("{kind} {value:?} not found")]
    NotFound {
        /// What was looked up (`flavor`, `image`, ...).
        kind: &'static str,
        /// The name or id given.
        value: String,
    },

    /// A name matches several objects; the operator must use the id.
    #[error("{kind} name {value:?} is ambiguous: {count} matches ({ids}); use the id")]
    Ambiguous {
        /// What was looked up.
        kind: &'static str,
        /// The name given.
        value: String,
        /// How many matched.
        count: usize,
        /// The ids that matched, comma separated.
        ids: String,
    },

    /// The create request itself is invalid before it is sent (reserved metadata key,
    /// oversized user data, tag characters Nova refuses).
    #[error("invalid server request: {message}")]
    InvalidRequest {
        /// What is invalid.
        message: String,
    },
}

// === impl Error ===

impl Error {
    /// Whether retrying the same call later may succeed: no response at all, 5xx, 429.
    ///
    /// The client itself retries transient failures of idempotent calls (GET, DELETE,
    /// token requests); a create is never retried blindly.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Transport { source, .. } => !source.is_builder(),
            Error::Status { status, .. } => {
                status.is_server_error() || *status == StatusCode::TOO_MANY_REQUESTS
            }
            _ => false,
        }
    }

    /// Whether the failure is a quota refusal (403/413 "Quota exceeded", or an ERROR
    /// server whose fault says so).
    pub fn is_quota(&self) -> bool {
        matches!(self, Error::Status { status, message, .. }
            if (*status == StatusCode::FORBIDDEN || *status == StatusCode::PAYLOAD_TOO_LARGE)
                && is_quota_message(message))
    }

    /// Whether the failure is a 404 from the service, or a lookup that found nothing.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::NotFound { .. })
            || matches!(self, Error::Status { status, .. } if *status == StatusCode::NOT_FOUND)
    }

    /// Whether the credentials were refused (401 from Keystone or, after one re-authentication,
    /// from a service).
    pub fn is_auth(&self) -> bool {
        matches!(self, Error::Status { status, .. } if *status == StatusCode::UNAUTHORIZED)
    }

    /// A short, stable name of the error class, for metric labels and log fields.
    pub fn label(&self) -> &'static str {
        self.kind().label()
    }

    /// The port-level class of this error.
    pub fn kind(&self) -> CloudErrorKind {
        match self {
            _ if self.is_transient() => CloudErrorKind::Transient,
            _ if self.is_quota() => CloudErrorKind::Quota,
            _ if self.is_auth() => CloudErrorKind::Auth,
            Error::Status { status, .. } if *status == StatusCode::NOT_FOUND => {
                CloudErrorKind::NotFound
            }
            Error::Status { .. } | Error::InvalidRequest { .. } => CloudErrorKind::Rejected,
            Error::Transport { .. } | Error::Response { .. } | Error::BodyTooLarge { .. } => {
                CloudErrorKind::Unexpected
            }
            // Settings that are wrong: bad files or secrets, no endpoint, names that resolve
            // to nothing or to several objects (not a vanished server), and an auth URL or
            // catalog endpoint that redirects elsewhere.
            Error::Config { .. }
            | Error::Secret { .. }
            | Error::ReadFile { .. }
            | Error::ParseFile { .. }
            | Error::Tls { .. }
            | Error::NoEndpoint { .. }
            | Error::NotFound { .. }
            | Error::Ambiguous { .. }
            | Error::OffOriginRedirect { .. } => CloudErrorKind::Misconfigured,
        }
    }

    pub(crate) fn config(message: impl Into<String>) -> Self {
        Error::Config {
            message: message.into(),
        }
    }
}

impl From<Error> for CloudError {
    fn from(e: Error) -> Self {
        let kind = e.kind();
        CloudError::new(kind, render_chain(&e))
    }
}

/// Renders an error and its sources as `a: b: c`.
pub(crate) fn render_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        out.push_str(": ");
        out.push_str(&s.to_string());
        cur = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16, message: &str) -> Error {
        Error::Status {
            method: "POST",
            service: "compute",
            path: "/servers".into(),
            status: StatusCode::from_u16(code).expect("valid status code in test"),
            message: message.into(),
        }
    }

    #[test]
    fn server_errors_and_429_are_transient() {
        assert!(status(500, "boom").is_transient());
        assert!(status(503, "busy").is_transient());
        assert!(status(429, "slow down").is_transient());
        assert!(!status(400, "bad").is_transient());
        assert_eq!(status(502, "x").label(), "transient");
    }

    #[test]
    fn forbidden_with_quota_message_is_quota() {
        let e = status(
            403,
            "Quota exceeded for instances: Requested 1, but already used 2 of 2 instances",
        );
        assert!(e.is_quota());
        assert_eq!(e.label(), "quota");
        assert!(!status(403, "Policy doesn't allow").is_quota());
        assert_eq!(status(403, "Policy doesn't allow").label(), "rejected");
    }

    #[test]
    fn bad_request_is_rejected_and_names_the_message() {
        let e = status(400, "Invalid key_name provided.");
        assert_eq!(e.label(), "rejected");
        assert!(e.to_string().contains("Invalid key_name provided."));
    }

    #[test]
    fn unauthorized_is_auth_and_404_is_not_found() {
        assert_eq!(
            status(401, "The request you have made requires authentication.").label(),
            "auth"
        );
        assert_eq!(
            status(404, "Instance could not be found").label(),
            "not_found"
        );
    }

    #[test]
    fn lookups_that_find_nothing_are_misconfiguration() {
        let e = Error::NotFound {
            kind: "flavor",
            value: "m1.nope".into(),
        };
        assert_eq!(e.label(), "misconfigured");
        assert_eq!(e.to_string(), "flavor \"m1.nope\" not found");
    }

    #[test]
    fn conversion_to_cloud_error_keeps_class_and_chain() {
        let e = Error::ReadFile {
            path: "/etc/openstack/clouds.yaml".into(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
        };
        let c = CloudError::from(e);
        assert_eq!(c.kind(), CloudErrorKind::Misconfigured);
        assert_eq!(
            c.to_string(),
            "misconfigured: cannot read /etc/openstack/clouds.yaml: no such file"
        );
    }
}
