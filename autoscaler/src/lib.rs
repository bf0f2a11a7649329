//! GitLab CI runner autoscaler for OpenStack.
//!
//! # Layout
//!
//! * [`model`]: domain types (jobs, VMs, policy). No I/O.
//! * [`plan`]: the pure planner, `plan(&Observed, &Policy, now) -> Plan`.

pub mod model;
pub mod plan;
