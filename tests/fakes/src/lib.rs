//! In-process HTTP fakes of the services the autoscaler talks to, for tests, benchmarks and
//! `autoscaler run --dev`: OpenStack ([`FakeOpenStack`]) and GitLab
//! ([`gitlab::FakeGitLabServer`], which follows the GitLab facts in `docs/gitlab.md`).
//!
//! This crate is the HTTP face of the one fake world (`autoscaler_world`): the world owns
//! the rules (jobs and runners, servers, quota, tokens), the same ones the in-memory port
//! fakes of `autoscaler_core::testing` use. What this crate owns: routes, paging, JSON
//! entities, error bodies and microversions; the timers that end boots and deletes; and the
//! HTTP-level scripting (failures by status, 429s, latency, request logs).
//!
//! [`FakeOpenStack::start`] serves, on `127.0.0.1`, the slice of Keystone v3, Nova (`/v2.1`),
//! Glance (`/v2`) and Neutron (`/v2.0`) that the real client in `autoscaler_openstack`
//! uses, with the same URLs, headers, bodies, paging, microversion rules and error shapes as
//! the real services (see `docs/fakes.md` for the list and the known differences). Servers
//! live in memory: BUILD for a boot delay, then ACTIVE (or ERROR with a scripted fault);
//! a delete shows task state `deleting` for a delete delay, then the server is gone.
//!
//! The handle lets the caller script failures ([`FakeOpenStack::fail_next_create`],
//! [`FakeOpenStack::boot_fault_next`], latency, quota, token expiry) and observe servers
//! ([`FakeOpenStack::servers`], [`FakeOpenStack::subscribe`],
//! [`FakeOpenStack::watch_servers`]) to start a runner when a server goes ACTIVE.
//!
//! This crate must not depend on the `autoscaler` crate: the autoscaler binary depends on it.
//!
//! ```no_run
//! # async fn demo() -> Result<(), autoscaler_fakes::Error> {
//! use autoscaler_fakes::{FakeOpenStack, FakeOpenStackOptions, ServerEventKind};
//! let cloud = FakeOpenStack::start(FakeOpenStackOptions::default()).await?;
//! println!("OS_AUTH_URL={}", cloud.auth_url());
//! let mut events = cloud.subscribe();
//! while let Ok(e) = events.recv().await {
//!     if e.kind == ServerEventKind::Active {
//!         println!("start a runner for {} with {:?}", e.server.name, cloud.user_data(&e.server.id));
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! # Layout
//!
//! * `state`: the cloud world ([`autoscaler_world::cloud::World`]: the rules, no HTTP, no
//!   timers) plus this face's scripting; [`FakeOpenStackOptions`] and the seed objects are
//!   the world's.
//! * `api`: error bodies, microversion header, token check.
//! * `keystone`, `nova`, `catalog` (Glance and Neutron): the HTTP handlers.
//! * `server`: the socket, routes, delayed transitions and the [`FakeOpenStack`] handle.

mod api;
mod catalog;
mod error;
pub mod gitlab;
mod keystone;
mod nova;
mod runners;
mod server;
mod site;
mod state;

pub use autoscaler_world::cloud::{FakeServer, FakeStatus, ServerEvent, ServerEventKind};
pub use autoscaler_world::options::{
    FakeAppCredential, FakeFlavor, FakeOpenStackOptions, FakeQuota, FakeUser,
};
pub use error::Error;
pub use runners::{play_runners, runner_tokens};
pub use server::FakeOpenStack;
pub use site::{FakeSite, free_loopback_addr};

/// The world's seed options, as `crate::options` inside this crate.
use autoscaler_world::options;
