//! The controller's heartbeat: `GET http://<controller.listen>/status`, parsed as
//! [`ControllerStatus`]. A wildcard listen address (`0.0.0.0`, `::`) is reached on loopback.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use super::Progress;
use crate::error::SourceError;
use crate::model::ControllerStatus;

/// The URL the status is read from.
pub fn status_url(listen: SocketAddr) -> String {
    let ip = match listen.ip() {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!("http://{}/status", SocketAddr::new(ip, listen.port()))
}

/// Reads the controller's status.
///
/// # Errors
///
/// [`SourceError`] when the controller does not answer, answers an error status or a body
/// that is not a [`ControllerStatus`].
pub async fn fetch(
    listen: SocketAddr,
    timeout: Duration,
    progress: &Progress,
) -> Result<ControllerStatus, SourceError> {
    const PART: &str = "controller";
    let url = status_url(listen);
    progress.stage(PART, format!("reading {url}"));
    let http = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .no_proxy()
        .build()
        .map_err(|e| SourceError::Setup(format!("cannot build the http client: {e}")))?;
    let (parsed, _) = super::send_json("controller status", &url, http.get(&url), |_| "").await?;
    progress.done(PART);
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_listen_addresses_are_reached_on_loopback() {
        let u = |s: &str| {
            status_url(
                s.parse()
                    .unwrap_or_else(|_| SocketAddr::from(([1, 2, 3, 4], 1))),
            )
        };
        assert_eq!(u("0.0.0.0:9252"), "http://127.0.0.1:9252/status");
        assert_eq!(u("[::]:9252"), "http://[::1]:9252/status");
        assert_eq!(u("10.1.2.3:80"), "http://10.1.2.3:80/status");
    }
}
