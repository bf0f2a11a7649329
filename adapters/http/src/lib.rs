//! What every HTTP client of the controller and the check plugin does so that credentials
//! stay where they were sent (GitLab's `PRIVATE-TOKEN`, OpenStack's `X-Auth-Token`, a
//! Keystone password in a request body): follow a redirect only within the origin (scheme,
//! host, port) of the original request, and read bodies up to a size limit.
//!
//! Why: `reqwest` drops `Authorization` and cookies when a redirect changes host, but
//! forwards every other header, and a 307/308 resends the body. One client may serve
//! several origins (Keystone and Nova), so the origin is taken from the first URL of each
//! redirect chain. A body larger than the limit is refused whatever the server announces,
//! so a broken or hostile endpoint cannot make a client buffer more. No I/O besides reading
//! the given response; it knows nothing of GitLab, OpenStack or the controller.

/// Redirects followed at most within the origin.
const MAX_REDIRECTS: usize = 10;

/// A redirect that would have left the request's origin; nothing was sent there.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "redirected from {from} to another origin {to}; not followed, so credentials stay on {from}"
)]
pub struct OffOriginRedirect {
    /// Origin of the original request (`scheme://host[:port]`: no path, query or userinfo).
    pub from: String,
    /// Origin the redirect pointed to, in the same form.
    pub to: String,
}

/// Too many redirects within the origin.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("more than {MAX_REDIRECTS} redirects")]
pub struct TooManyRedirects;

/// A redirect policy that follows a redirect only when its target has the origin of the
/// chain's first URL (the request as the client addressed it), at most 10 times, and
/// otherwise fails with [`OffOriginRedirect`] before anything is sent to the target.
pub fn redirect_policy() -> reqwest::redirect::Policy {
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
pub fn off_origin(err: &reqwest::Error) -> Option<&OffOriginRedirect> {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(c) = cause {
        if let Some(found) = c.downcast_ref::<OffOriginRedirect>() {
            return Some(found);
        }
        cause = c.source();
    }
    None
}

/// Why a body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// Larger than the limit (announced by `Content-Length` or seen while reading).
    #[error("body larger than the limit of {limit} bytes")]
    TooLarge {
        /// The limit.
        limit: usize,
    },
    /// The connection failed while reading.
    #[error("reading the body failed")]
    Read(#[source] reqwest::Error),
}

/// Reads a response body, refusing more than `limit` bytes (checked before reading when the
/// server announces the length, and chunk by chunk otherwise).
///
/// # Errors
///
/// [`BodyError::TooLarge`] over the limit, [`BodyError::Read`] when the transfer fails.
pub async fn read_limited(mut rsp: reqwest::Response, limit: usize) -> Result<Vec<u8>, BodyError> {
    if rsp
        .content_length()
        .is_some_and(|n| n > u64::try_from(limit).unwrap_or(u64::MAX))
    {
        return Err(BodyError::TooLarge { limit });
    }
    let mut out = Vec::new();
    while let Some(chunk) = rsp
        .chunk()
        .await
        .map_err(|e| BodyError::Read(e.without_url()))?
    {
        if out.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge { limit });
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}
