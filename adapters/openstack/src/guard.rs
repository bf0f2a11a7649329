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

pub(crate) use autoscaler_http::{BodyError, off_origin, read_limited, redirect_policy};
