//! Test support: in-memory fakes of the ports, for unit tests here and scenario tests in
//! other crates (feature `testing`).
//!
//! They are the port face of the one fake world (`autoscaler_world`): the world owns the
//! rules of the fake GitLab and the fake OpenStack, the same ones the HTTP fakes
//! (`autoscaler_fakes`) serve. What these fakes own: the port traits and their errors, the
//! ownership filter and the other checks the real adapters make, scripted failures and
//! latency, and the `tokio::time` deadlines of boots and deletes. Tests assert on the
//! fake's final state, not on call order. Time is `tokio::time`, so tests can run with
//! paused time.

pub mod cloud;
pub mod gitlab;
