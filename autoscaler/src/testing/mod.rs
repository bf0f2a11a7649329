//! Test support (feature `testing`): the fault injector the seeded fault simulation drives
//! the in-memory port fakes (`autoscaler_core::testing`) with.

pub mod faults;
