//! Test support: in-memory fakes of the ports, for unit tests here and scenario tests in
//! other crates (feature `testing`).
//!
//! Fakes hold state and implement the port traits; failures and latency are scripted. Tests
//! assert on the fake's final state, not on call order. Time is `tokio::time`, so tests can
//! run with paused time.

pub mod cloud;
pub mod gitlab;
