//! The error type of the fakes crate: starting a fake can fail; serving never returns errors
//! to the caller (bad requests get the service's own HTTP error instead).

use std::net::SocketAddr;

/// Why a fake could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The listening socket could not be opened (port in use, no loopback).
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },

    /// The options contradict each other.
    #[error("invalid fake openstack options: {message}")]
    Options {
        /// What is wrong, naming the field.
        message: String,
    },
}
