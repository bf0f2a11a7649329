//! The autoscaler's core: what it knows and decides, with no I/O.
//!
//! # What it owns
//!
//! * [`model`]: domain types (pending jobs, VMs and their runners, policy, quota).
//! * [`ports`]: the narrow `GitLab` and `Cloud` traits the controller talks through, the
//!   ownership rule (which runners and servers are this controller's) and the port types.
//! * [`plan`]: the pure planner, `plan(&Observed, &Policy, now) -> Plan`.
//! * [`memory`]: the controller's memory between ticks (creates in flight, orphans,
//!   failures, learned arrivals), one type for `run`, `plan` and the simulator, with its
//!   file store.
//! * [`forecast`]: learned pre-warming for bursts that recur at the same time of day.
//! * [`status`]: the `/status` document, the contract with the check plugin.
//! * `testing` (feature `testing`): in-memory fakes of the two ports, the port face of the
//!   fake world (`autoscaler-world`) whose rules the HTTP fakes serve too.
//!
//! # What it must not do
//!
//! No network, no clock (time is passed in), no knowledge of GitLab's or OpenStack's
//! wire formats: adapters translate to and from the port types. The only file I/O is the
//! memory's [`memory::FileStore`].

pub mod forecast;
pub mod memory;
pub mod model;
pub mod plan;
pub mod ports;
pub mod reserve;
pub mod status;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
