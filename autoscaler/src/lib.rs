//! GitLab CI runner autoscaler for OpenStack.
//!
//! # Layout
//!
//! * [`cli`]: the command line; one function per subcommand.
//! * [`settings`]: validated config to planner policy and simulator input.
//! * [`forecast`]: learned pre-warming for bursts that recur at the same time of day.
//! * [`import`]: a docker+machine `config.toml` converted into this project's config.
//! * [`ports`]: the narrow `GitLab` and `Cloud` traits the reconciler talks through.
//! * [`gitlab`]: the GitLab adapter (REST + GraphQL, keyset paging for jobs, checked offset paging
//!   for runners, rate-limit budget).
//! * [`openstack`]: the OpenStack adapter (Keystone, Nova, Glance, Neutron).
//! * [`http_guard`]: what every HTTP client does so credentials stay on their origin and
//!   bodies stay bounded.
//! * [`memory`]: the controller's durable memory (`state_dir/memory.json`): creates not
//!   known to have finished, runners of ours seen without a server.
//! * `testing` (feature `testing`): in-memory `FakeCloud` and `FakeGitLab`, and the
//!   fault injector the seeded fault simulation drives them with.
//! * [`model`]: domain types (jobs, VMs, policy). No I/O.
//! * [`plan`]: the pure planner, `plan(&Observed, &Policy, now) -> Plan`.
//! * [`reconcile`]: the loop: observe → plan → apply, with the drain protocol.
//! * [`server`]: `/metrics`, `/healthz`, `/status` and the GitLab job webhook.
//! * [`sim`]: the simulator: a job trace through the planner (and through a model of
//!   docker+machine) against a simulated cloud.

pub mod cli;
pub mod import;
pub mod reconcile;
pub mod server;
pub mod settings;
pub mod sim;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
