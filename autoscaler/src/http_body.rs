//! Bounded response bodies, shared by every HTTP client of the controller and the check
//! plugin (GitLab and OpenStack): a body larger than the limit is refused, whatever the
//! server announces, so a broken or hostile endpoint cannot make a client buffer more.

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
