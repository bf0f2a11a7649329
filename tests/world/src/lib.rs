//! The one fake world behind the test fakes: the rules of the fake OpenStack ([`cloud`])
//! and of the fake GitLab ([`gitlab`]), with no HTTP, no port traits and no timers.
//!
//! It has two faces, and both use these rules, so a rule changes in one place:
//!
//! * the HTTP fakes (`autoscaler_fakes`: Keystone, Nova, Glance, Neutron and GitLab on a
//!   loopback socket) for adapter and scenario tests and `autoscaler run --dev`;
//! * the in-memory port fakes (`autoscaler_core::testing`, feature `testing`) for fast
//!   reconciler tests, the seeded fault simulation and benchmarks.
//!
//! What this crate owns: which job a runner picks (tags a subset of the runner's, untagged
//! jobs need `run_untagged`, paused runners and runners whose VM has not booted take
//! none, capacity), job durations and ends, jobs killed when their runner is deleted,
//! runner registration, pausing, deletion, `contacted_at` and REST status (online,
//! offline, stale, never contacted); and a server's life (BUILD → ACTIVE or ERROR, delete
//! → deleting → gone), quota on instances, cores and RAM, the user-data size limit, name,
//! tag and metadata rules, servers the controller did not create, and Keystone tokens.
//! What the faces own: the transport (HTTP routes, paging, JSON entities, error bodies;
//! or the port traits and their errors), scripted failures and latency, and the clock
//! that drives the delayed transitions.
//!
//! It depends on neither `autoscaler-core` nor the adapters, and nothing in the release
//! `autoscaler` binary depends on it.

pub mod cloud;
pub mod gitlab;
pub mod ids;
pub mod options;

pub use options::{FakeAppCredential, FakeFlavor, FakeOpenStackOptions, FakeQuota, FakeUser};
