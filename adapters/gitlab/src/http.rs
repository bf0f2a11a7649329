//! The one place requests are sent: timeouts, status classification, `429` + `Retry-After`,
//! `Link` headers, redirects kept on the configured origin, bodies read up to a limit.
//!
//! Requests are described with the `gitlab` crate's typed endpoints (so query strings match
//! what the crate's own tests pin down) but sent with this module's own `reqwest` client:
//! the crate's client follows redirects to any host with the `PRIVATE-TOKEN` header and
//! reads bodies without a limit (see [`super::guard`]). The token only ever travels in the
//! `PRIVATE-TOKEN` header, marked sensitive, and only to the configured origin.

use std::sync::Mutex;
use std::time::Duration;

use gitlab::api::Endpoint;
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use tokio::time::Instant;
use url::Url;

use super::guard;
use autoscaler_core::ports::{GitLabError, GitLabResult};

/// Fallback wait when a 429 carries no readable `Retry-After`.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(60);
/// Longest GitLab message kept in an error.
const MAX_MESSAGE: usize = 200;

/// A successful answer.
#[derive(Debug)]
pub(crate) struct Reply {
    /// Response headers (pagination).
    pub headers: HeaderMap,
    /// Body bytes.
    pub body: Vec<u8>,
}

impl Reply {
    /// The body as `T`.
    pub fn json<T: serde::de::DeserializeOwned>(&self, what: &str) -> GitLabResult<T> {
        serde_json::from_slice(&self.body).map_err(|e| GitLabError::Unexpected {
            what: what.to_string(),
            message: format!("cannot parse body: {e}"),
        })
    }

    /// The `rel="next"` target of the `Link` header, if any.
    pub fn next_link(&self) -> Option<String> {
        self.headers
            .get_all(http::header::LINK)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|v| link_rel(v, "next"))
    }

    /// A numeric header such as `X-Total`: `None` when absent, `Some(None)` when present but
    /// empty (GitLab's "no next page"), `Some(Some(n))` otherwise.
    ///
    /// # Errors
    ///
    /// `Unexpected` when the value is present and not a number.
    pub fn number(&self, name: &str, what: &str) -> GitLabResult<Option<Option<u64>>> {
        let Some(v) = self.headers.get(name) else {
            return Ok(None);
        };
        let text = v.to_str().unwrap_or("?").trim();
        if text.is_empty() {
            return Ok(Some(None));
        }
        text.parse::<u64>()
            .map(|n| Some(Some(n)))
            .map_err(|_| GitLabError::Unexpected {
                what: what.to_string(),
                message: format!("header {name} is not a number: {text:?}"),
            })
    }
}

/// Sends requests to one GitLab instance.
pub(crate) struct Transport {
    http: reqwest::Client,
    /// `PRIVATE-TOKEN` value, marked sensitive.
    token: HeaderValue,
    /// `<instance>/` (the configured URL with a trailing slash).
    instance: Url,
    /// `<instance>/api/v4/`.
    rest: Url,
    timeout: Duration,
    /// Largest body read.
    max_body: usize,
    /// Set by a 429: nothing is sent before this instant.
    blocked_until: Mutex<Option<Instant>>,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field("instance", &self.instance.as_str())
            .field("timeout", &self.timeout)
            .field("max_body", &self.max_body)
            .finish_non_exhaustive()
    }
}

impl Transport {
    /// A client for the instance at `base` (`http` or `https`, optionally with a path
    /// prefix). Logs a warning for plain `http://` to a non-loopback host.
    ///
    /// # Errors
    ///
    /// `Misconfigured` for an unusable URL or token, or when the client cannot be built.
    pub fn new(
        base: &Url,
        token: &SecretString,
        timeout: Duration,
        max_body: usize,
    ) -> GitLabResult<Self> {
        let misconfigured = |message: String| GitLabError::Misconfigured { message };
        if !matches!(base.scheme(), "http" | "https") || base.host_str().is_none() {
            return Err(misconfigured(format!(
                "gitlab.url {} must be an http or https url with a host",
                base.origin().ascii_serialization()
            )));
        }
        if let Some(w) = guard::plain_http_warning(base) {
            tracing::warn!("{w}");
        }
        let mut instance = base.clone();
        instance.set_query(None);
        instance.set_fragment(None);
        let _ = instance.set_username("");
        let _ = instance.set_password(None);
        if !instance.path().ends_with('/') {
            let p = format!("{}/", instance.path());
            instance.set_path(&p);
        }
        let rest = instance
            .join("api/v4/")
            .map_err(|e| misconfigured(format!("gitlab.url: {e}")))?;
        let mut token = HeaderValue::from_str(token.expose_secret()).map_err(|_| {
            misconfigured("the gitlab token has characters not allowed in a header".into())
        })?;
        token.set_sensitive(true);
        let http = reqwest::Client::builder()
            .redirect(guard::redirect_policy())
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .user_agent(concat!(
                "gitlab-openstack-autoscaler/",
                env!("CARGO_PKG_VERSION")
            ))
            .build()
            .map_err(|e| {
                misconfigured(format!(
                    "cannot build the http client: {}",
                    guard::reason(&e)
                ))
            })?;
        Ok(Transport {
            http,
            token,
            instance,
            rest,
            timeout,
            max_body,
            blocked_until: Mutex::new(None),
        })
    }

    /// URL of a typed endpoint, query string included.
    pub fn url_of<E: Endpoint>(&self, ep: &E) -> GitLabResult<Url> {
        let mut url = self.rest_url(&ep.endpoint())?;
        ep.parameters().add_to_url(&mut url);
        Ok(url)
    }

    /// URL of a REST path such as `user` (below `api/v4/`).
    pub fn rest_url(&self, path: &str) -> GitLabResult<Url> {
        self.rest
            .join(path)
            .map_err(|e| GitLabError::Misconfigured {
                message: format!("cannot build url for {path}: {e}"),
            })
    }

    /// URL of an instance path such as `api/graphql`.
    pub fn instance_url(&self, path: &str) -> GitLabResult<Url> {
        self.instance
            .join(path)
            .map_err(|e| GitLabError::Misconfigured {
                message: format!("cannot build url for {path}: {e}"),
            })
    }

    /// Sends a typed endpoint (method, URL and body from the endpoint).
    pub async fn send_endpoint<E: Endpoint>(&self, what: &str, ep: &E) -> GitLabResult<Reply> {
        let url = self.url_of(ep)?;
        let body = ep.body().map_err(|e| GitLabError::Misconfigured {
            message: format!("cannot encode {what}: {e}"),
        })?;
        self.send(what, ep.method(), &url, body).await
    }

    /// Sends one request; classifies the answer.
    ///
    /// # Errors
    ///
    /// `RateLimited` while a `Retry-After` is running, `Unreachable` on timeouts and connection
    /// failures, `Misconfigured` for a redirect off the configured origin, `Unexpected` for a body over the
    /// limit, and the status classes of [`classify`].
    pub async fn send(
        &self,
        what: &str,
        method: Method,
        url: &Url,
        body: Option<(&'static str, Vec<u8>)>,
    ) -> GitLabResult<Reply> {
        let now = Instant::now();
        if let Some(until) = self.blocked() {
            if until > now {
                return Err(GitLabError::RateLimited {
                    what: what.to_string(),
                    retry_after: until - now,
                });
            }
        }
        let mut req = self
            .http
            .request(method.clone(), url.clone())
            .header("PRIVATE-TOKEN", self.token.clone());
        if let Some((content_type, bytes)) = body {
            req = req
                .header(http::header::CONTENT_TYPE, content_type)
                .body(bytes);
        }
        let shown = format!("{method} {}", url.path());
        let exchange = async {
            let rsp = req.send().await.map_err(|e| send_error(what, &shown, &e))?;
            let status = rsp.status();
            let headers = rsp.headers().clone();
            let body = guard::read_limited(rsp, self.max_body)
                .await
                .map_err(|e| match e {
                    guard::BodyError::TooLarge { limit } => GitLabError::Unexpected {
                        what: what.to_string(),
                        message: format!("{shown}: body larger than the limit of {limit} bytes"),
                    },
                    guard::BodyError::Read(e) => GitLabError::Unreachable {
                        message: format!(
                            "{what}: {shown}: reading the answer failed: {}",
                            guard::reason(&e)
                        ),
                    },
                })?;
            Ok::<_, GitLabError>((status, headers, body))
        };
        let (status, headers, body) = match tokio::time::timeout(self.timeout, exchange).await {
            Err(_) => {
                return Err(GitLabError::Unreachable {
                    message: format!("{what}: {shown}: no answer within {:?}", self.timeout),
                });
            }
            Ok(r) => r?,
        };
        if status == StatusCode::TOO_MANY_REQUESTS {
            let wait = retry_after(&headers).unwrap_or(DEFAULT_RETRY_AFTER);
            self.block_for(wait);
            tracing::warn!(request = what, retry_after = ?wait, "gitlab rate limit hit");
            return Err(GitLabError::RateLimited {
                what: what.to_string(),
                retry_after: wait,
            });
        }
        classify(what, status, &body)?;
        Ok(Reply { headers, body })
    }

    fn blocked(&self) -> Option<Instant> {
        *self
            .blocked_until
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn block_for(&self, wait: Duration) {
        let until = Instant::now() + wait;
        let mut guard = self
            .blocked_until
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *guard = Some(guard.map_or(until, |u| u.max(until)));
    }
}

/// A request that got no usable answer: a refused redirect says so plainly.
fn send_error(what: &str, shown: &str, e: &reqwest::Error) -> GitLabError {
    if let Some(r) = guard::off_origin(e) {
        // The configured URL is not where GitLab answers: a settings problem, not retried.
        return GitLabError::Misconfigured {
            message: format!(
                "{what}: {shown}: gitlab {r}; set gitlab.url to the address gitlab redirects to if it moved"
            ),
        };
    }
    GitLabError::Unreachable {
        message: format!("{what}: {shown}: {}", guard::reason(e)),
    }
}

/// Maps a non-2xx status to its error class; 2xx is `Ok`.
///
/// # Errors
///
/// `Server` for 5xx, `Auth` for 401/403, `NotFound` for 404, `Rejected` otherwise.
pub(crate) fn classify(what: &str, status: StatusCode, body: &[u8]) -> GitLabResult<()> {
    if status.is_success() {
        return Ok(());
    }
    let code = status.as_u16();
    let what = what.to_string();
    Err(match code {
        500..=599 => GitLabError::Server { status: code, what },
        401 | 403 => GitLabError::Auth { status: code, what },
        404 => GitLabError::NotFound { what },
        429 => GitLabError::RateLimited {
            what,
            retry_after: DEFAULT_RETRY_AFTER,
        },
        _ => GitLabError::Rejected {
            status: code,
            what,
            message: message_of(body),
        },
    })
}

/// GitLab's `message`/`error` field, shortened; the raw body start otherwise.
fn message_of(body: &[u8]) -> String {
    let text = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            let m = v.get("message").or_else(|| v.get("error"))?;
            Some(match m {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            })
        })
        .unwrap_or_else(|| String::from_utf8_lossy(body).into_owned());
    text.chars().take(MAX_MESSAGE).collect()
}

/// `Retry-After` in seconds (GitLab's form); an HTTP date is not honoured precisely.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers.get(http::header::RETRY_AFTER)?.to_str().ok()?;
    v.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// The target of `rel="<rel>"` in one `Link` header value.
pub(crate) fn link_rel(header: &str, rel: &str) -> Option<String> {
    let mut rest = header;
    while let Some(start) = rest.find('<') {
        let end = rest[start..].find('>')? + start;
        let target = &rest[start + 1..end];
        let after = &rest[end + 1..];
        let params_end = after.find('<').unwrap_or(after.len());
        let params = &after[..params_end];
        let matches = params.split(';').any(|p| {
            let p = p.trim().trim_end_matches(',').trim();
            p.strip_prefix("rel=")
                .map(|v| v.trim_matches('"').split_whitespace().any(|r| r == rel))
                .unwrap_or(false)
        });
        if matches {
            return Some(target.to_string());
        }
        rest = &after[params_end..];
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_rel_finds_next_among_several() {
        let h = "<https://g/api/v4/projects/1/jobs?cursor=eyJpZCI6IjQyIn0%3D&pagination=keyset>; rel=\"next\", <https://g/api/v4/projects/1/jobs?pagination=keyset>; rel=\"first\"";
        assert_eq!(
            link_rel(h, "next").as_deref(),
            Some("https://g/api/v4/projects/1/jobs?cursor=eyJpZCI6IjQyIn0%3D&pagination=keyset")
        );
        assert!(link_rel(h, "first").is_some());
        assert_eq!(link_rel(h, "last"), None);
        assert_eq!(link_rel("", "next"), None);
    }

    #[test]
    fn statuses_are_classified_for_retry() {
        let e = |s: u16| {
            classify(
                "x",
                StatusCode::from_u16(s).unwrap_or(StatusCode::OK),
                b"{}",
            )
        };
        assert!(matches!(
            e(502),
            Err(GitLabError::Server { status: 502, .. })
        ));
        assert!(matches!(e(401), Err(GitLabError::Auth { .. })));
        assert!(matches!(e(404), Err(GitLabError::NotFound { .. })));
        assert!(matches!(e(400), Err(GitLabError::Rejected { .. })));
        assert!(e(204).is_ok());
    }

    #[test]
    fn rejections_carry_gitlab_message() {
        let err = classify(
            "create runner",
            StatusCode::BAD_REQUEST,
            br#"{"message":"400 Bad request - runner_type is missing"}"#,
        );
        let Err(GitLabError::Rejected { message, .. }) = err else {
            panic!("expected a rejection, got {err:?}");
        };
        assert!(message.contains("runner_type is missing"));
    }

    #[test]
    fn retry_after_reads_seconds() {
        let mut h = HeaderMap::new();
        h.insert(
            http::header::RETRY_AFTER,
            http::HeaderValue::from_static("17"),
        );
        assert_eq!(retry_after(&h), Some(Duration::from_secs(17)));
        h.insert(
            http::header::RETRY_AFTER,
            http::HeaderValue::from_static("Wed, 21 Oct 2026 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&h), None);
    }
}
