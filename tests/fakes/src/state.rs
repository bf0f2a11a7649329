//! The HTTP face's state: the cloud world ([`autoscaler_world::cloud::World`], which owns
//! the rules) plus what only this face scripts and counts (create failures by HTTP status,
//! latency, requests per route). The handlers in [`crate::keystone`], [`crate::nova`] and
//! [`crate::catalog`] use it under one lock; [`crate::server`] schedules the delayed
//! transitions ([`World::finish_boot`], [`World::finish_delete`]).

use std::collections::{BTreeMap, VecDeque};
use std::ops::{Deref, DerefMut};
use std::time::Duration;

pub(crate) use autoscaler_world::cloud::{
    FakeServer, FakeStatus, Project, Record, ServerEvent, ServerEventKind, TokenInfo, World,
};
use chrono::{DateTime, Utc};

use crate::api::{ApiError, Microversion, Svc};
use crate::options::FakeOpenStackOptions;

/// A scripted answer to the next create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ScriptedFailure {
    pub status: u16,
    pub message: String,
}

/// The world and the HTTP face's own scripting (no `Debug`: the world holds secrets).
pub(crate) struct State {
    pub world: World,
    pub latency: Duration,
    pub create_failures: VecDeque<ScriptedFailure>,
    /// Requests served per route (`GET /v2.1/servers/detail`).
    pub requests: BTreeMap<String, u64>,
}

impl State {
    pub fn new(o: &FakeOpenStackOptions) -> Self {
        State {
            world: World::new(o),
            latency: o.latency,
            create_failures: VecDeque::new(),
            requests: BTreeMap::new(),
        }
    }
}

impl Deref for State {
    type Target = World;
    fn deref(&self) -> &World {
        &self.world
    }
}

impl DerefMut for State {
    fn deref_mut(&mut self) -> &mut World {
        &mut self.world
    }
}

impl From<autoscaler_world::cloud::Refusal> for ApiError {
    /// Nova's answer to a refused request.
    fn from(r: autoscaler_world::cloud::Refusal) -> Self {
        ApiError::new(Svc::Compute, r.status, r.message)
    }
}

/// Nova's 404 for a server.
pub(crate) fn not_found(id: &str) -> ApiError {
    autoscaler_world::cloud::not_found(id).into()
}

/// Nova's timestamp format (whole seconds, `Z`).
pub(crate) fn nova_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// The microversion below which Nova ignores the `tags` filter and omits `tags`.
pub(crate) const TAGS_MICROVERSION: Microversion = Microversion(2, 26);
