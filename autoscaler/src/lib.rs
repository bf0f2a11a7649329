//! GitLab CI runner autoscaler for OpenStack.
//!
//! # Layout
//!
//! * [`model`]: domain types (jobs, VMs, policy). No I/O.
//! * [`plan`]: the pure planner, `plan(&Observed, &Policy, now) -> Plan`.

pub mod model;
pub mod plan;
pub mod openstack;
pub mod ports;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
