//! What the client does so credentials stay where they were sent: follow redirects only
//! within the origin of the original request, and read bodies up to a size limit.
//!
//! Why: every service request carries `X-Auth-Token`, and a Keystone token request carries
//! the password or application credential secret in its body. `reqwest` drops
//! `Authorization` and cookies when a redirect changes host, but forwards every other header,
//! `X-Auth-Token` included, and a 307/308 resends the body. A request may only ever reach the
//! origin (scheme, host, port) it was addressed to: the Keystone auth URL's for token
//! requests, the catalog endpoint's for service requests. One client serves both, so the
//! origin is taken from the first URL of each redirect chain, not from the settings.
//!
//! No I/O besides reading the given response.

/// Default limit of one response body. A token with its catalog, or a page of 200 servers,
/// is well under 1 MiB; a body this large is a broken or hostile endpoint.
pub(crate) const DEFAULT_MAX_BODY: usize = 32 * 1024 * 1024;

/// Redirects followed at most within the origin.
const MAX_REDIRECTS: usize = 10;

/// A redirect that would have left the request's origin; nothing was sent there.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("redirected from {from} to another origin {to}")]
pub(crate) struct OffOriginRedirect {
    /// Origin of the original request (`scheme://host[:port]`: no path, query or userinfo).
    pub from: String,
    /// Origin the redirect pointed to, in the same form.
    pub to: String,
}

/// Too many redirects within the origin.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("more than {MAX_REDIRECTS} redirects")]
pub(crate) struct TooManyRedirects;

/// A redirect policy that follows a redirect only when its target has the origin of the
/// chain's first URL (the request as the client addressed it), at most 10 times, and
/// otherwise fails with [`OffOriginRedirect`] before anything is sent to the target.
pub(crate) fn redirect_policy() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        // `previous()` starts with the original request's URL; it is never empty when a
        // redirect is checked, but an empty chain is refused rather than trusted.
        let Some(first) = attempt.previous().first() else {
            let to = attempt.url().origin().ascii_serialization();
            return attempt.error(OffOriginRedirect {
                from: "(unknown)".into(),
                to,
            });
        };
        let (origin, target) = (first.origin(), attempt.url().origin());
        if target != origin {
            let err = OffOriginRedirect {
                from: origin.ascii_serialization(),
                to: target.ascii_serialization(),
            };
            attempt.error(err)
        } else if attempt.previous().len() > MAX_REDIRECTS {
            attempt.error(TooManyRedirects)
        } else {
            attempt.follow()
        }
    })
}

/// The refused redirect behind a `reqwest` error, if that is what failed.
pub(crate) fn off_origin(err: &reqwest::Error) -> Option<&OffOriginRedirect> {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(c) = cause {
        if let Some(found) = c.downcast_ref::<OffOriginRedirect>() {
            return Some(found);
        }
        cause = c.source();
    }
    None
}

pub(crate) use crate::http_body::{BodyError, read_limited};
