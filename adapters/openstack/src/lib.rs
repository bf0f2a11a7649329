//! The OpenStack adapter: a thin Keystone v3 / Nova / Glance / Neutron client over reqwest.
//!
//! It implements [`autoscaler_core::ports::Cloud`] for the servers of one controller id. Nova's and
//! Keystone's JSON never leaves this module: callers see the port types.
//!
//! * [`auth`]: where credentials come from (`[openstack]` section, clouds.yaml, `OS_*`).
//! * [`client`]: HTTP, token cache and renewal, retries, timeouts, request counters.
//! * `guard`: redirects only within the request's origin, bounded body reads (private).
//! * `keystone`: token request body, token and catalog (private).
//! * [`compute`]: Nova servers and limits; the `Cloud` impl.
//! * [`lookup`]: flavors, images, networks, security groups, key pairs by name or id.
//! * [`preflight`]: the operator's online check.
//! * [`error`]: the classified error type.
//!
//! It does not decide anything: when to create or delete is the planner's job in
//! `autoscaler_core`, and which servers are ours is the core's ownership rule.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use autoscaler_openstack::{AuthSettings, ClientOptions, OpenStack, ProcessEnv, resolve_auth};
//! use autoscaler_core::ports::{Cloud, ControllerId};
//! let auth = resolve_auth(&AuthSettings { cloud: Some("demo".into()), ..Default::default() }, &ProcessEnv)?;
//! let cloud = OpenStack::new(auth, ControllerId::new("ci-1")?, ClientOptions::default())?;
//! for server in cloud.list_owned_servers().await? {
//!     println!("{} {:?}", server.name, server.status);
//! }
//! # Ok(()) }
//! ```

pub mod auth;
pub mod client;
pub mod compute;
pub mod error;
mod guard;
mod keystone;
pub mod lookup;
pub mod preflight;

#[cfg(test)]
mod mock;
#[cfg(test)]
mod tests;

pub use auth::{
    AuthSettings, Env, ExplicitAuth, Interface, ProcessEnv, ResolvedAuth, SecretSource,
    resolve_auth,
};
pub use client::{ApiStats, COMPUTE_MICROVERSION, ClientOptions, OpenStack};
pub use error::{Error, Result};
pub use preflight::{PreflightReport, preflight};
