//! GitLab CI runner autoscaler for OpenStack: the application and the `autoscaler` binary.
//!
//! # What it owns
//!
//! * [`reconcile`]: the one tick path, observe → plan → apply, with the drain protocol; it
//!   joins what the adapters report into the core's `Observed`, learns into the core's
//!   `Memory`, calls the core's pure `plan`, applies the actions through the ports, and
//!   publishes one [`tick::TickReport`] per tick on a watch channel.
//! * [`tick`]: what a tick reports (summary, view, outage, failure kinds, totals); read by
//!   the endpoint and `run --dev`, which the reconciler does not know.
//! * [`endpoint`]: the HTTP endpoint (`/metrics`, `/healthz`, `/status`, the job webhook).
//! * [`settings`]: validated config to planner policy and simulator input.
//! * [`sim`]: the simulator: a job trace through the planner (and through a model of
//!   docker+machine) against a simulated cloud, learning with the controller's `Memory`.
//! * [`import`]: a docker+machine `config.toml` converted into this project's config.
//! * [`cli`]: the command line, thin: one function per subcommand over the above; `plan`,
//!   `status` and `run` build the same reconciler. `run --dev` (its HTTP fakes) only with
//!   cargo feature `dev`.
//! * `testing` (feature `testing`): the fault injector the seeded fault simulation drives
//!   the core's in-memory port fakes with.
//!
//! # What it must not do
//!
//! Decide anything outside `autoscaler_core::plan` (no second copy of a rule), or speak
//! GitLab's or OpenStack's wire formats (that is `autoscaler_gitlab` and
//! `autoscaler_openstack`, behind the core's ports). The release binary carries no fakes.
//!
//! Crates: `autoscaler_core` (model, ports, ownership, plan, memory, forecast, `/status`
//! schema), `autoscaler_gitlab` and `autoscaler_openstack` (adapters), `autoscaler_http`
//! (redirect guard, bounded bodies), `autoscaler_config`, `autoscaler_bootstrap`.

pub mod cli;
pub mod endpoint;
pub mod import;
pub mod reconcile;
pub mod settings;
pub mod sim;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod tick;
