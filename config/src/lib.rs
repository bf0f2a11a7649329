//! Configuration of the autoscaler: one TOML file, parsed with positions and validated
//! into typed values, plus the cron schedules of policy periods.
//!
//! ```text
//! text ──parse──> toml_edit document (spans) ──walk + check──> Config
//!                                    every problem: file:line:col: key.path: message
//! ```
//!
//! # Layout
//!
//! * [`parse`] / [`load`]: entry points; [`ConfigErrors`] lists every problem found.
//! * `parse/`: the text-to-[`Config`] step. `parse/reader` is the positioned reader
//!   (typed values with spans, unknown keys, durations, bounds, secrets, errors with
//!   file:line:col); `controller`, `gitlab`, `openstack` and `pools/` (`server`,
//!   `runner`, `bootstrap`, `periods`) read one section each.
//! * `model`: [`Config`] and the section types other crates use.
//! * `policy`: [`Policy`], [`Period`], [`Pool::policy_at`], [`Pool::next_transition`].
//! * [`schedule`]: 5/7-field cron windows and the DST rule.
//! * `secret`: [`SecretSource`] (`*_file` / `*_env`) resolved through [`Env`].
//! * `fixture` (cargo feature `fixture`): configuration text for tests, benchmarks and
//!   `run --dev`, built from typed pool settings instead of a copied template.
//!
//! The file format and its semantics are documented in `docs/configuration.md`.
//! This crate reads the configuration file ([`load`]) and, on request, secret files
//! ([`SecretSource::resolve`]); it never logs and never holds a secret value in
//! [`Config`].

mod error;
#[cfg(any(test, feature = "fixture"))]
pub mod fixture;
mod model;
mod parse;
mod policy;
pub mod schedule;
mod secret;

use std::path::Path;

use chrono::{DateTime, Utc};

pub use crate::error::{ConfigError, ConfigErrors};
pub use crate::model::{
    AccessLevel, AppCredential, BootstrapOptions, Config, Controller, DockerInstall, GitLab,
    Interface, OpenStack, OpenStackAuth, Pool, ProjectRef, ProjectScope, RunnerInstall,
    RunnerSettings, RunnerType, S3Cache, Scope, ServerTemplate,
};
pub use crate::parse::{DEFAULT_RUNNER_REPOSITORY, binfmt_arches};
pub use crate::policy::{EffectivePolicy, Period, Policy, PolicyOverrides, TRANSITION_HORIZON};
pub use crate::schedule::{Schedule, ScheduleError};
pub use crate::secret::{Env, ProcessEnv, SecretError, SecretSource};

/// Reads and validates the configuration file at `path`.
///
/// # Errors
///
/// [`ConfigErrors`] with one entry when the file cannot be read, otherwise every problem
/// [`parse`] finds; each names the file.
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    let origin = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(text) => parse(&text, &origin),
        Err(e) => Err(ConfigErrors(vec![ConfigError {
            origin,
            position: None,
            key: String::new(),
            message: format!("cannot read file: {e}"),
        }])),
    }
}

/// Parses and validates configuration text; `origin` (usually the file name) prefixes
/// every message. A period schedule that can no longer match as of now (a year field in
/// the past) is not an error: it is never active, and [`Config::warnings`] names it, so
/// a file that loaded once keeps loading as time passes.
///
/// # Errors
///
/// [`ConfigErrors`] listing every problem, in file order.
pub fn parse(source: &str, origin: &str) -> Result<Config, ConfigErrors> {
    parse_at(source, origin, Utc::now())
}

/// Like [`parse`] with "now" given explicitly, for deterministic tests.
///
/// # Errors
///
/// As [`parse`].
pub fn parse_at(source: &str, origin: &str, now: DateTime<Utc>) -> Result<Config, ConfigErrors> {
    parse::parse_config(source, origin, now)
}
