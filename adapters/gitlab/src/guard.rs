//! What every HTTP client that carries the GitLab token must do (the adapter's, which the
//! check plugin uses too; the check's `/status` reader also reads bodies with
//! [`read_limited`]): follow redirects only within the configured origin, read bodies up to
//! a size limit, and warn about plain `http://` to another machine.
//!
//! Why: `reqwest` drops `Authorization` and cookies when a redirect changes host, but
//! forwards every other header, `PRIVATE-TOKEN` included; and GitLab answers redirects for
//! some paths (e.g. a changed instance URL). A token must never leave the origin
//! (scheme, host, port) the operator configured. No I/O besides reading the given response.

use std::net::IpAddr;

use url::Url;

/// Default limit of one response body (a page of 100 runners is a few hundred KiB).
pub const DEFAULT_MAX_BODY: usize = 32 * 1024 * 1024;

pub use autoscaler_http::{
    BodyError, OffOriginRedirect, TooManyRedirects, off_origin, read_limited, redirect_policy,
};

/// A warning when `url` is plain `http://` to a host that is not loopback: the token then
/// crosses the network unencrypted.
pub fn plain_http_warning(url: &Url) -> Option<String> {
    if url.scheme() != "http" {
        return None;
    }
    let loopback = match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    };
    if loopback {
        return None;
    }
    Some(format!(
        "gitlab url {} is plain http to a non-loopback host: the token crosses the network unencrypted; use https",
        url.origin().ascii_serialization()
    ))
}

/// The causes of a `reqwest` error in one line, without its URL (which may carry a query).
pub fn reason(err: &reqwest::Error) -> String {
    let mut parts = Vec::new();
    let mut cause: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(err);
    while let Some(c) = cause {
        let text = c.to_string();
        if !parts.contains(&text) {
            parts.push(text);
        }
        cause = c.source();
    }
    if parts.is_empty() {
        if err.is_timeout() {
            return "timed out".into();
        }
        return "request failed".into();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_warns_only_off_loopback() -> Result<(), url::ParseError> {
        assert!(plain_http_warning(&Url::parse("http://127.0.0.1:8080/")?).is_none());
        assert!(plain_http_warning(&Url::parse("http://[::1]:8080/")?).is_none());
        assert!(plain_http_warning(&Url::parse("http://localhost/")?).is_none());
        assert!(plain_http_warning(&Url::parse("https://gitlab.example/")?).is_none());
        let w = plain_http_warning(&Url::parse("http://gitlab.example/gitlab?x=1")?);
        assert_eq!(
            w.as_deref(),
            Some(
                "gitlab url http://gitlab.example is plain http to a non-loopback host: the token crosses the network unencrypted; use https"
            )
        );
        Ok(())
    }
}
