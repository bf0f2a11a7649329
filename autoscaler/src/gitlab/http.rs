//! The one place requests are sent: timeouts, status classification, `429` + `Retry-After`,
//! `Link` headers.
//!
//! Requests are described with the `gitlab` crate's typed endpoints (so query strings match
//! what the crate's own tests pin down) and sent through its authenticated client with
//! `AsyncClient::rest_async`, which hands back status and headers: the crate's `query_async`
//! would hide `Retry-After` and `Link`. Tokens only ever travel in the client's auth header.

use std::sync::Mutex;
use std::time::Duration;

use gitlab::AsyncGitlab;
use gitlab::api::{AsyncClient, Endpoint, RestClient};
use http::{HeaderMap, Method, StatusCode};
use tokio::time::Instant;
use url::Url;

use crate::ports::{GitLabError, GitLabResult};

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

    /// `X-Next-Page`, when present and non-empty.
    pub fn next_page(&self) -> Option<u32> {
        self.headers
            .get("x-next-page")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok())
    }
}

/// Sends requests through the `gitlab` crate's client.
pub(crate) struct Transport {
    client: AsyncGitlab,
    timeout: Duration,
    /// Set by a 429: nothing is sent before this instant.
    blocked_until: Mutex<Option<Instant>>,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field("client", &self.client)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Transport {
    /// Wraps a connected client.
    pub fn new(client: AsyncGitlab, timeout: Duration) -> Self {
        Transport {
            client,
            timeout,
            blocked_until: Mutex::new(None),
        }
    }

    /// URL of a typed endpoint, query string included.
    pub fn url_of<E: Endpoint>(&self, ep: &E) -> GitLabResult<Url> {
        let mut url =
            self.client
                .rest_endpoint(&ep.endpoint())
                .map_err(|e| GitLabError::Misconfigured {
                    message: format!("cannot build url for {}: {e}", ep.endpoint()),
                })?;
        ep.parameters().add_to_url(&mut url);
        Ok(url)
    }

    /// URL of an instance path such as `api/graphql`.
    pub fn instance_url(&self, path: &str) -> GitLabResult<Url> {
        self.client
            .instance_endpoint(path)
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
    /// `RateLimited` while a `Retry-After` is running, `Unreachable` on timeouts and
    /// connection failures, and the status classes of [`classify`].
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
        let mut req = http::Request::builder().method(method).uri(url.as_str());
        let body = match body {
            Some((content_type, bytes)) => {
                req = req.header(http::header::CONTENT_TYPE, content_type);
                bytes
            }
            None => Vec::new(),
        };
        let rsp = match tokio::time::timeout(self.timeout, self.client.rest_async(req, body)).await
        {
            Err(_) => {
                return Err(GitLabError::Unreachable {
                    message: format!("{what}: no answer within {:?}", self.timeout),
                });
            }
            Ok(Err(e)) => {
                return Err(GitLabError::Unreachable {
                    message: format!("{what}: {e}"),
                });
            }
            Ok(Ok(rsp)) => rsp,
        };
        let status = rsp.status();
        let (parts, body) = rsp.into_parts();
        if status == StatusCode::TOO_MANY_REQUESTS {
            let wait = retry_after(&parts.headers).unwrap_or(DEFAULT_RETRY_AFTER);
            self.block_for(wait);
            tracing::warn!(request = what, retry_after = ?wait, "gitlab rate limit hit");
            return Err(GitLabError::RateLimited {
                what: what.to_string(),
                retry_after: wait,
            });
        }
        classify(what, status, &body)?;
        Ok(Reply {
            headers: parts.headers,
            body: body.to_vec(),
        })
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
