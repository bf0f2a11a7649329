//! From TOML text to a validated [`Config`], reporting every problem at once.
//!
//! The raw step walks the `toml_edit` document (which keeps spans) instead of using
//! serde, because serde stops at the first error; see `docs/adr/0001-config-format.md`.
//! Each table declares its known keys, so unknown keys are reported with a
//! "did you mean" hint, and inline secrets are refused. The second step checks
//! cross-field rules. No I/O here: [`crate::load`] reads the file.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::ops::Range;
use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use toml_edit::{Item, TableLike, Value};
use url::Url;

use crate::error::{ConfigError, ConfigErrors};
use crate::model::{
    AccessLevel, AppCredential, BootstrapOptions, Config, Controller, DockerInstall, GitLab,
    Interface, OpenStack, OpenStackAuth, Pool, ProjectRef, ProjectScope, RunnerInstall,
    RunnerSettings, RunnerType, S3Cache, Scope, ServerTemplate,
};
use crate::policy::{Period, Policy, PolicyOverrides};
use crate::schedule::Schedule;
use crate::secret::SecretSource;

/// Docker platform names accepted in `binfmt_arches`.
pub use autoscaler_bootstrap::binfmt_arch_names as binfmt_arches;

/// Default `runner_repository`.
pub const DEFAULT_RUNNER_REPOSITORY: &str = "https://packages.gitlab.com/runner/gitlab-runner";

type Span = Option<Range<usize>>;

/// Bounds of every duration and count the file sets: values outside them are refused
/// (docs/configuration.md, "Bounds"). They keep time arithmetic and counters far from
/// overflow and refuse settings no operator means (a poll every nanosecond).
pub(crate) mod bounds {
    use std::time::Duration;

    /// `poll_interval`: 1 s .. 1 h.
    pub const POLL_INTERVAL: (Duration, Duration) =
        (Duration::from_secs(1), Duration::from_secs(3600));
    /// `idle_time` (pool and period): 0 s .. 30 days.
    pub const IDLE_TIME: (Duration, Duration) =
        (Duration::ZERO, Duration::from_secs(30 * 24 * 3600));
    /// `offline_after`: 1 min .. 24 h (gitlab-runner contacts GitLab every few seconds;
    /// GitLab's `contacted_at` is only meaningful at minute granularity).
    pub const OFFLINE_AFTER: (Duration, Duration) =
        (Duration::from_secs(60), Duration::from_secs(24 * 3600));
    /// `boot_timeout`: 10 s .. 24 h (a VM boots in tens of seconds at best; short values
    /// are for test clouds whose fake VMs are ACTIVE at once).
    pub const BOOT_TIMEOUT: (Duration, Duration) =
        (Duration::from_secs(10), Duration::from_secs(24 * 3600));
    /// `maximum_timeout`: GitLab's minimum of 10 min .. its job timeout cap of 30 days.
    pub const MAXIMUM_TIMEOUT: (Duration, Duration) = (
        Duration::from_secs(600),
        Duration::from_secs(30 * 24 * 3600),
    );
    /// `limit` (pool and period): 1 .. 10,000 VMs.
    pub const LIMIT: (u32, u32) = (1, 10_000);
    /// `capacity`: 1 .. 1,000 jobs per VM.
    pub const CAPACITY: (u32, u32) = (1, 1_000);
    /// `max_builds` (pool and period): 0 (unlimited) .. 1,000,000 jobs per VM.
    pub const MAX_BUILDS: (u32, u32) = (0, 1_000_000);
    /// `forecast_days`: 0 (off) .. 30 days of history.
    pub const FORECAST_DAYS: (u32, u32) = (0, 30);
}

/// Collects errors with positions.
struct Ctx<'s> {
    /// Name of the file for messages.
    origin: &'s str,
    /// The text, to turn byte offsets into line and column.
    src: &'s str,
    /// "Today" for schedules that can no longer match.
    now: DateTime<Utc>,
    /// Problems found so far.
    errors: Vec<ConfigError>,
    /// Findings that do not stop the file from loading.
    warnings: Vec<ConfigError>,
}

/// A table (or inline table) being read.
#[derive(Clone)]
struct Node<'a> {
    /// Its entries.
    table: &'a dyn TableLike,
    /// Its key path (`pools[0].server`), empty for the root.
    path: String,
    /// Where it is (header or inline table), if known.
    span: Span,
}

/// A value with where it came from.
#[derive(Debug, Clone)]
struct Sp<T> {
    /// The value.
    v: T,
    /// Its span.
    span: Span,
    /// Its key path.
    path: String,
}

impl<'s> Ctx<'s> {
    fn position(&self, span: &Span) -> Option<(usize, usize)> {
        let start = span.as_ref().map_or(0, |r| r.start).min(self.src.len());
        let before = self.src.get(..start)?;
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let col = before.get(line_start..).map_or(0, |s| s.chars().count()) + 1;
        Some((line, col))
    }

    fn err(&mut self, span: &Span, key: &str, message: impl Into<String>) {
        let position = self.position(span);
        self.errors.push(ConfigError {
            origin: self.origin.to_owned(),
            position,
            key: key.to_owned(),
            message: message.into(),
        });
    }

    /// Like [`Self::err`], for something that does not stop the file from loading.
    fn warn(&mut self, span: &Span, key: &str, message: impl Into<String>) {
        let position = self.position(span);
        self.warnings.push(ConfigError {
            origin: self.origin.to_owned(),
            position,
            key: key.to_owned(),
            message: message.into(),
        });
    }

    /// The span of the part of string value `text` (at `span`) that starts at byte
    /// `offset`, when the file spells the string without escapes; else the value's span.
    fn inner_span(&self, span: &Span, text: &str, offset: usize) -> Span {
        let r = span.clone()?;
        let raw = self.src.get(r.clone())?;
        let quote = raw.chars().next().filter(|c| *c == '"' || *c == '\'')?;
        let body = raw.get(1..)?;
        if raw.starts_with(&format!("{quote}{quote}{quote}")) || !body.starts_with(text) {
            return Some(r);
        }
        let start = r.start + 1 + offset;
        Some(start..r.end)
    }

    /// A required key is absent from `node`.
    fn missing(&mut self, node: &Node<'_>, key: &str) {
        let path = join(&node.path, key);
        self.err(&node.span, &path, "missing required key");
    }

    // --- entries ---

    /// The entry `key` of `node`: (key path, span of the value or key, item).
    fn entry<'a>(&self, node: &Node<'a>, key: &str) -> Option<(String, Span, &'a Item)> {
        let (k, item) = node.table.get_key_value(key)?;
        let span = item.span().or_else(|| k.span());
        Some((join(&node.path, key), span, item))
    }

    fn str(&mut self, node: &Node<'_>, key: &str) -> Option<Sp<String>> {
        let (path, span, item) = self.entry(node, key)?;
        match item.as_str() {
            Some(s) if s.trim().is_empty() => {
                self.err(&span, &path, "must not be empty");
                None
            }
            Some(s) => Some(Sp {
                v: s.to_owned(),
                span,
                path,
            }),
            None => {
                self.err(
                    &span,
                    &path,
                    format!("expected a string, found {}", type_name(item)),
                );
                None
            }
        }
    }

    fn bool(&mut self, node: &Node<'_>, key: &str) -> Option<bool> {
        let (path, span, item) = self.entry(node, key)?;
        let b = item.as_bool();
        if b.is_none() {
            self.err(
                &span,
                &path,
                format!("expected true or false, found {}", type_name(item)),
            );
        }
        b
    }

    fn int(&mut self, node: &Node<'_>, key: &str) -> Option<Sp<i64>> {
        let (path, span, item) = self.entry(node, key)?;
        match item.as_integer() {
            Some(i) => Some(Sp { v: i, span, path }),
            None => {
                self.err(
                    &span,
                    &path,
                    format!("expected an integer, found {}", type_name(item)),
                );
                None
            }
        }
    }

    fn u32(&mut self, node: &Node<'_>, key: &str) -> Option<Sp<u32>> {
        let i = self.int(node, key)?;
        match u32::try_from(i.v) {
            Ok(v) => Some(Sp {
                v,
                span: i.span,
                path: i.path,
            }),
            Err(_) if i.v < 0 => {
                self.err(
                    &i.span,
                    &i.path,
                    format!("must not be negative, found {}", i.v),
                );
                None
            }
            Err(_) => {
                self.err(&i.span, &i.path, format!("{} is too large", i.v));
                None
            }
        }
    }

    fn positive_u64(&mut self, node: &Node<'_>, key: &str) -> Option<u64> {
        let i = self.int(node, key)?;
        match u64::try_from(i.v) {
            Ok(v) if v > 0 => Some(v),
            _ => {
                self.err(
                    &i.span,
                    &i.path,
                    format!("must be a positive id, found {}", i.v),
                );
                None
            }
        }
    }

    /// A humantime string (`"30m"`, `"1h 30m"`) or integer seconds.
    fn duration(&mut self, node: &Node<'_>, key: &str) -> Option<Sp<Duration>> {
        let (path, span, item) = self.entry(node, key)?;
        let parsed = match item.as_value() {
            Some(Value::String(s)) => humantime::parse_duration(s.value().trim())
                .map_err(|e| format!("invalid duration `{}`: {e}; use e.g. \"90s\", \"30m\", \"1h\" or integer seconds", s.value())),
            Some(Value::Integer(i)) => u64::try_from(*i.value())
                .map(Duration::from_secs)
                .map_err(|_| format!("invalid duration {}: seconds must not be negative", i.value())),
            _ => Err(format!(
                "expected a duration such as \"30m\" or integer seconds, found {}",
                type_name(item)
            )),
        };
        match parsed {
            Ok(v) => Some(Sp { v, span, path }),
            Err(msg) => {
                self.err(&span, &path, msg);
                None
            }
        }
    }

    /// A [`Self::duration`] within `min..=max`; outside, an error naming the value as
    /// written and the bounds.
    fn bounded_duration(
        &mut self,
        node: &Node<'_>,
        key: &str,
        (min, max): (Duration, Duration),
    ) -> Option<Sp<Duration>> {
        let d = self.duration(node, key)?;
        if d.v < min || d.v > max {
            let raw = self.raw(node, key);
            self.err(
                &d.span,
                &d.path,
                format!(
                    "{raw} is out of range: must be between {} and {}",
                    humantime::format_duration(min),
                    humantime::format_duration(max)
                ),
            );
            return None;
        }
        Some(d)
    }

    /// A [`Self::u32`] within `min..=max`; outside, an error naming the value and the
    /// bounds.
    fn bounded_u32(
        &mut self,
        node: &Node<'_>,
        key: &str,
        (min, max): (u32, u32),
    ) -> Option<Sp<u32>> {
        let i = self.int(node, key)?;
        match u32::try_from(i.v) {
            Ok(v) if (min..=max).contains(&v) => Some(Sp {
                v,
                span: i.span,
                path: i.path,
            }),
            _ => {
                self.err(
                    &i.span,
                    &i.path,
                    format!("{} is out of range: must be between {min} and {max}", i.v),
                );
                None
            }
        }
    }

    /// The value of `key` as written in the file, for messages (never used for secrets).
    fn raw(&self, node: &Node<'_>, key: &str) -> String {
        match node.table.get(key).and_then(Item::as_value) {
            Some(Value::String(s)) => format!("`{}`", s.value().escape_debug()),
            Some(v) => format!("`{}`", v.to_string().trim()),
            None => "the value".to_owned(),
        }
    }

    /// An array of values, each with its path `key[i]` and span.
    fn array<'a>(&mut self, node: &Node<'a>, key: &str) -> Option<Vec<(String, Span, &'a Value)>> {
        let (path, span, item) = self.entry(node, key)?;
        match item.as_array() {
            Some(arr) => Some(
                arr.iter()
                    .enumerate()
                    .map(|(i, v)| (format!("{path}[{i}]"), v.span().or_else(|| span.clone()), v))
                    .collect(),
            ),
            None => {
                self.err(
                    &span,
                    &path,
                    format!("expected an array, found {}", type_name(item)),
                );
                None
            }
        }
    }

    /// An array of non-empty strings; duplicates are errors.
    fn str_list(&mut self, node: &Node<'_>, key: &str) -> Option<Vec<Sp<String>>> {
        let items = self.array(node, key)?;
        let mut out: Vec<Sp<String>> = Vec::new();
        for (path, span, v) in items {
            match v.as_str() {
                Some(s) if s.trim().is_empty() => self.err(&span, &path, "must not be empty"),
                Some(s) if out.iter().any(|o| o.v == s) => {
                    self.err(&span, &path, format!("duplicate entry `{s}`"));
                }
                Some(s) => out.push(Sp {
                    v: s.to_owned(),
                    span,
                    path,
                }),
                None => self.err(
                    &span,
                    &path,
                    format!("expected a string, found {}", value_type_name(v)),
                ),
            }
        }
        Some(out)
    }

    fn table<'a>(&mut self, node: &Node<'a>, key: &str) -> Option<Node<'a>> {
        let (path, span, item) = self.entry(node, key)?;
        match item.as_table_like() {
            Some(table) => Some(Node {
                table,
                path,
                span: span.or_else(|| node.span.clone()),
            }),
            None => {
                self.err(
                    &span,
                    &path,
                    format!("expected a table, found {}", type_name(item)),
                );
                None
            }
        }
    }

    /// `[[key]]` blocks (or an array of inline tables).
    fn tables<'a>(&mut self, node: &Node<'a>, key: &str) -> Option<Vec<Node<'a>>> {
        let (path, span, item) = self.entry(node, key)?;
        if let Some(aot) = item.as_array_of_tables() {
            return Some(
                aot.iter()
                    .enumerate()
                    .map(|(i, t)| Node {
                        table: t as &dyn TableLike,
                        path: format!("{path}[{i}]"),
                        span: t.span().or_else(|| span.clone()),
                    })
                    .collect(),
            );
        }
        if let Some(arr) = item.as_array() {
            let mut out = Vec::new();
            for (i, v) in arr.iter().enumerate() {
                let p = format!("{path}[{i}]");
                match v.as_inline_table() {
                    Some(t) => out.push(Node {
                        table: t,
                        path: p,
                        span: v.span(),
                    }),
                    None => self.err(
                        &v.span(),
                        &p,
                        format!("expected a table, found {}", value_type_name(v)),
                    ),
                }
            }
            return Some(out);
        }
        self.err(
            &span,
            &path,
            format!(
                "expected an array of tables ([[{key}]]), found {}",
                type_name(item)
            ),
        );
        None
    }

    /// Reports keys of `node` that are not in `known`, and inline secrets.
    fn check_keys(&mut self, node: &Node<'_>, known: &[&str], secrets: &[&str]) {
        for (key, _) in node.table.iter() {
            if known.contains(&key) {
                continue;
            }
            let span = node.table.key(key).and_then(|k| k.span());
            let path = join(&node.path, key);
            if secrets.contains(&key) {
                self.err(
                    &span,
                    &path,
                    format!(
                        "inline secrets are not accepted; put the value in a file and set `{key}_file`, or name a variable with `{key}_env`"
                    ),
                );
                continue;
            }
            let msg = match suggest(key, known) {
                Some(s) => format!("unknown key, did you mean `{s}`?"),
                None => format!("unknown key (known keys: {})", known.join(", ")),
            };
            self.err(&span, &path, msg);
        }
    }

    /// `<base>_file` or `<base>_env`, exactly one when `required`, at most one otherwise.
    fn secret(&mut self, node: &Node<'_>, base: &str, required: bool) -> Option<SecretSource> {
        let file_key = format!("{base}_file");
        let env_key = format!("{base}_env");
        let file = self.str(node, &file_key);
        let env = self.str(node, &env_key);
        match (file, env) {
            (Some(_), Some(e)) => {
                self.err(
                    &e.span,
                    &e.path,
                    format!("set only one of `{file_key}` and `{env_key}`"),
                );
                None
            }
            (Some(f), None) => Some(SecretSource::File(PathBuf::from(f.v))),
            (None, Some(e)) => {
                let valid =
                    e.v.chars()
                        .next()
                        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                        && e.v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                if valid {
                    Some(SecretSource::Env(e.v))
                } else {
                    self.err(
                        &e.span,
                        &e.path,
                        format!("`{}` is not a valid environment variable name", e.v),
                    );
                    None
                }
            }
            (None, None) => {
                // An inline value is reported by `check_keys` already.
                if required
                    && !node.table.contains_key(&file_key)
                    && !node.table.contains_key(&env_key)
                    && !node.table.contains_key(base)
                {
                    let path = join(&node.path, &file_key);
                    self.err(
                        &node.span,
                        &path,
                        format!("missing `{file_key}` or `{env_key}`"),
                    );
                }
                None
            }
        }
    }

    fn url(&mut self, node: &Node<'_>, key: &str) -> Option<Url> {
        let s = self.str(node, key)?;
        match Url::parse(&s.v) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Some(u),
            Ok(_) => {
                self.err(&s.span, &s.path, format!("`{}` is not an http(s) URL", s.v));
                None
            }
            Err(e) => {
                self.err(&s.span, &s.path, format!("invalid URL `{}`: {e}", s.v));
                None
            }
        }
    }

    /// One of `choices` (TOML spelling → value).
    fn choice<T: Copy>(&mut self, node: &Node<'_>, key: &str, choices: &[(&str, T)]) -> Option<T> {
        let s = self.str(node, key)?;
        match choices.iter().find(|(name, _)| *name == s.v) {
            Some((_, v)) => Some(*v),
            None => {
                let names: Vec<String> = choices.iter().map(|(n, _)| format!("`{n}`")).collect();
                self.err(
                    &s.span,
                    &s.path,
                    format!(
                        "unknown value `{}`, expected one of {}",
                        s.v,
                        names.join(", ")
                    ),
                );
                None
            }
        }
    }

    /// A key that must not be set in this situation.
    fn forbid(&mut self, node: &Node<'_>, key: &str, why: &str) {
        if let Some((k, _)) = node.table.get_key_value(key) {
            let path = join(&node.path, key);
            self.err(&k.span(), &path, why.to_owned());
        }
    }
}

// === sections ===

/// Parses and validates `source`; `now` decides which schedules can still match.
pub(crate) fn parse_config(
    source: &str,
    origin: &str,
    now: DateTime<Utc>,
) -> Result<Config, ConfigErrors> {
    let mut ctx = Ctx {
        origin,
        src: source,
        now,
        errors: Vec::new(),
        warnings: Vec::new(),
    };
    let doc = match toml_edit::Document::parse(source) {
        Ok(doc) => doc,
        Err(e) => {
            let msg = e.message().trim().trim_end_matches('.').to_owned();
            ctx.err(&e.span(), "", format!("invalid TOML: {msg}"));
            return Err(ConfigErrors(ctx.errors));
        }
    };
    let root = Node {
        table: doc.as_table(),
        path: String::new(),
        span: Some(0..0),
    };
    ctx.check_keys(&root, &["controller", "gitlab", "openstack", "pools"], &[]);

    let controller = match ctx.table(&root, "controller") {
        Some(n) => controller(&mut ctx, &n),
        None => {
            if !root.table.contains_key("controller") {
                ctx.err(
                    &Some(0..0),
                    "controller",
                    "missing required table [controller]",
                );
            }
            None
        }
    };
    let gitlab = match ctx.table(&root, "gitlab") {
        Some(n) => gitlab(&mut ctx, &n),
        None => {
            if !root.table.contains_key("gitlab") {
                ctx.err(&Some(0..0), "gitlab", "missing required table [gitlab]");
            }
            None
        }
    };
    let openstack = ctx
        .table(&root, "openstack")
        .and_then(|n| openstack(&mut ctx, &n));
    let openstack_ok = !root.table.contains_key("openstack") || openstack.is_some();
    let pools = match ctx.tables(&root, "pools") {
        Some(nodes) if !nodes.is_empty() => pools(&mut ctx, &nodes),
        Some(_) => {
            ctx.err(
                &Some(0..0),
                "pools",
                "at least one [[pools]] entry is required",
            );
            None
        }
        None => {
            if !root.table.contains_key("pools") {
                ctx.err(
                    &Some(0..0),
                    "pools",
                    "at least one [[pools]] entry is required",
                );
            }
            None
        }
    };

    match (controller, gitlab, pools) {
        (Some(controller), Some(gitlab), Some(pools)) if ctx.errors.is_empty() && openstack_ok => {
            let mut warnings = ctx.warnings;
            warnings.sort_by_key(|e| e.position);
            Ok(Config {
                controller,
                gitlab,
                openstack,
                pools,
                warnings,
            })
        }
        _ => {
            let mut errors = ctx.errors;
            errors.sort_by_key(|e| e.position);
            Err(ConfigErrors(errors))
        }
    }
}

fn controller(ctx: &mut Ctx<'_>, n: &Node<'_>) -> Option<Controller> {
    ctx.check_keys(
        n,
        &[
            "id",
            "poll_interval",
            "offline_after",
            "listen",
            "state_dir",
        ],
        &[],
    );
    let id = match ctx.str(n, "id") {
        Some(id) => {
            if valid_name(&id.v, 31) {
                Some(id.v)
            } else {
                ctx.err(&id.span, &id.path, format!(
                    "`{}` must match ^[a-z0-9][a-z0-9-]{{0,30}}$ (lowercase letters, digits, dashes; at most 31)",
                    id.v
                ));
                None
            }
        }
        None => {
            if !n.table.contains_key("id") {
                ctx.missing(n, "id");
            }
            None
        }
    };
    let poll_interval = match ctx.bounded_duration(n, "poll_interval", bounds::POLL_INTERVAL) {
        Some(d) => Some(d.v),
        None if n.table.contains_key("poll_interval") => None,
        None => Some(Duration::from_secs(15)),
    };
    let offline_after = match ctx.bounded_duration(n, "offline_after", bounds::OFFLINE_AFTER) {
        Some(d) => Some(d.v),
        None if n.table.contains_key("offline_after") => None,
        None => Some(Controller::DEFAULT_OFFLINE_AFTER),
    };
    let listen = match ctx.str(n, "listen") {
        Some(s) => match s.v.parse::<SocketAddr>() {
            Ok(a) => Some(a),
            Err(_) => {
                ctx.err(
                    &s.span,
                    &s.path,
                    format!("`{}` is not an address such as 127.0.0.1:9252", s.v),
                );
                None
            }
        },
        None if n.table.contains_key("listen") => None,
        None => Some(SocketAddr::from(([127, 0, 0, 1], 9252))),
    };
    let state_dir = ctx.str(n, "state_dir").map(|s| PathBuf::from(s.v));
    Some(Controller {
        id: id?,
        poll_interval: poll_interval?,
        offline_after: offline_after?,
        listen: listen?,
        state_dir,
    })
}

fn gitlab(ctx: &mut Ctx<'_>, n: &Node<'_>) -> Option<GitLab> {
    ctx.check_keys(
        n,
        &[
            "url",
            "token_file",
            "token_env",
            "webhook_token_file",
            "webhook_token_env",
            "scope",
        ],
        &["token", "webhook_token"],
    );
    let url = ctx.url(n, "url");
    if !n.table.contains_key("url") {
        ctx.missing(n, "url");
    }
    let token = ctx.secret(n, "token", true);
    let webhook_token = ctx.secret(n, "webhook_token", false);
    let scope = match ctx.table(n, "scope") {
        Some(s) => scope(ctx, &s),
        None => {
            if !n.table.contains_key("scope") {
                let path = join(&n.path, "scope");
                ctx.err(
                    &n.span,
                    &path,
                    "missing required table [gitlab.scope] (projects, groups or instance = true)",
                );
            }
            None
        }
    };
    Some(GitLab {
        url: url?,
        token: token?,
        webhook_token,
        scope: scope?,
    })
}

fn scope(ctx: &mut Ctx<'_>, n: &Node<'_>) -> Option<Scope> {
    ctx.check_keys(n, &["projects", "groups", "instance"], &[]);
    let mut ok = true;
    let mut projects = Vec::new();
    for (path, span, v) in ctx.array(n, "projects").unwrap_or_default() {
        let parsed = match v {
            Value::Integer(i) => u64::try_from(*i.value())
                .ok()
                .filter(|x| *x > 0)
                .map(ProjectRef::Id),
            Value::String(s) => {
                let s = s.value().trim();
                if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
                    s.parse().ok().filter(|x| *x > 0).map(ProjectRef::Id)
                } else if s.contains('/')
                    && !s.starts_with('/')
                    && !s.ends_with('/')
                    && !s.contains("//")
                {
                    Some(ProjectRef::Path(s.to_owned()))
                } else {
                    None
                }
            }
            _ => None,
        };
        match parsed {
            Some(p) if projects.contains(&p) => {
                ctx.err(&span, &path, format!("duplicate project `{p}`"));
                ok = false;
            }
            Some(p) => projects.push(p),
            None => {
                ctx.err(&span, &path, format!(
                    "expected a project path such as \"group/project\" or a numeric id, found {}",
                    value_repr(v)
                ));
                ok = false;
            }
        }
    }
    let mut groups: Vec<String> = Vec::new();
    for (path, span, v) in ctx.array(n, "groups").unwrap_or_default() {
        let parsed = match v {
            Value::Integer(i) if *i.value() > 0 => Some(i.value().to_string()),
            Value::String(s)
                if !s.value().trim().is_empty()
                    && !s.value().starts_with('/')
                    && !s.value().ends_with('/') =>
            {
                Some(s.value().trim().to_owned())
            }
            _ => None,
        };
        match parsed {
            Some(g) if groups.contains(&g) => {
                ctx.err(&span, &path, format!("duplicate group `{g}`"));
                ok = false;
            }
            Some(g) => groups.push(g),
            None => {
                ctx.err(
                    &span,
                    &path,
                    format!(
                        "expected a group path or numeric id, found {}",
                        value_repr(v)
                    ),
                );
                ok = false;
            }
        }
    }
    let instance = ctx.bool(n, "instance").unwrap_or(false);
    if instance && (!projects.is_empty() || !groups.is_empty()) {
        let key = if !projects.is_empty() {
            "projects"
        } else {
            "groups"
        };
        let span = ctx.entry(n, key).and_then(|e| e.1);
        ctx.err(
            &span,
            &join(&n.path, key),
            "`instance = true` watches every project; remove `projects` and `groups`",
        );
        ok = false;
    }
    if !instance && projects.is_empty() && groups.is_empty() && ok {
        ctx.err(
            &n.span,
            &n.path,
            "scope is empty: list `projects` or `groups`, or set `instance = true`",
        );
        ok = false;
    }
    ok.then_some(Scope {
        projects,
        groups,
        instance,
    })
}

fn openstack(ctx: &mut Ctx<'_>, n: &Node<'_>) -> Option<OpenStack> {
    const EXPLICIT: &[&str] = &[
        "auth_url",
        "username",
        "user_domain_name",
        "project_name",
        "project_id",
        "project_domain_name",
        "password_file",
        "password_env",
        "application_credential_id",
        "application_credential_name",
        "application_credential_secret_file",
        "application_credential_secret_env",
    ];
    let mut known = vec!["cloud", "clouds_file", "region", "interface", "cacert"];
    known.extend_from_slice(EXPLICIT);
    ctx.check_keys(n, &known, &["password", "application_credential_secret"]);
    let before = ctx.errors.len();
    let region = ctx.str(n, "region").map(|s| s.v);
    let interface = ctx.choice(
        n,
        "interface",
        &[
            ("public", Interface::Public),
            ("internal", Interface::Internal),
            ("admin", Interface::Admin),
        ],
    );
    let cacert = ctx.str(n, "cacert").map(|s| PathBuf::from(s.v));
    let auth = if let Some(cloud) = ctx.str(n, "cloud") {
        for key in EXPLICIT {
            ctx.forbid(n, key, "cannot be combined with `cloud`; put explicit credentials in clouds.yaml or drop `cloud`");
        }
        let clouds_file = ctx.str(n, "clouds_file").map(|s| PathBuf::from(s.v));
        Some(OpenStackAuth::Cloud {
            cloud: cloud.v,
            clouds_file,
        })
    } else if n.table.contains_key("cloud") {
        None
    } else {
        ctx.forbid(n, "clouds_file", "only used together with `cloud`");
        explicit_auth(ctx, n)
    };
    let auth = auth?;
    (ctx.errors.len() == before).then_some(OpenStack {
        auth,
        region,
        interface,
        cacert,
    })
}

fn explicit_auth(ctx: &mut Ctx<'_>, n: &Node<'_>) -> Option<OpenStackAuth> {
    let auth_url = ctx.url(n, "auth_url");
    if !n.table.contains_key("auth_url") {
        let path = join(&n.path, "auth_url");
        ctx.err(
            &n.span,
            &path,
            "set `cloud` (an entry in clouds.yaml) or `auth_url` with explicit credentials",
        );
        return None;
    }
    let username = ctx.str(n, "username").map(|s| s.v);
    let user_domain_name = ctx
        .str(n, "user_domain_name")
        .map_or_else(|| "Default".to_owned(), |s| s.v);
    let app = [
        "application_credential_id",
        "application_credential_name",
        "application_credential_secret_file",
        "application_credential_secret_env",
    ]
    .iter()
    .any(|k| n.table.contains_key(k));
    if app {
        for key in [
            "project_name",
            "project_id",
            "project_domain_name",
            "password_file",
            "password_env",
        ] {
            ctx.forbid(
                n,
                key,
                "not used with application credentials (they are bound to a project)",
            );
        }
        let id = ctx.str(n, "application_credential_id");
        let name = ctx.str(n, "application_credential_name");
        let secret = ctx.secret(n, "application_credential_secret", true);
        let credential = match (id, name) {
            (Some(id), None) => Some(AppCredential::Id(id.v)),
            (None, Some(name)) => {
                match username {
                    Some(username) => Some(AppCredential::Name {
                        name: name.v,
                        username,
                        user_domain_name,
                    }),
                    None => {
                        ctx.err(&name.span, &name.path, "`application_credential_name` needs `username` (the credential's owner)");
                        None
                    }
                }
            }
            (Some(_), Some(name)) => {
                ctx.err(
                    &name.span,
                    &name.path,
                    "set only one of `application_credential_id` and `application_credential_name`",
                );
                None
            }
            (None, None) => {
                let path = join(&n.path, "application_credential_id");
                ctx.err(
                    &n.span,
                    &path,
                    "missing `application_credential_id` or `application_credential_name`",
                );
                None
            }
        };
        return Some(OpenStackAuth::ApplicationCredential {
            auth_url: auth_url?,
            credential: credential?,
            secret: secret?,
        });
    }
    if username.is_none() && !n.table.contains_key("username") {
        ctx.missing(n, "username");
    }
    let password = ctx.secret(n, "password", true);
    let project_name = ctx.str(n, "project_name");
    let project_id = ctx.str(n, "project_id");
    let project = match (project_name, project_id) {
        (Some(name), None) => Some(ProjectScope::Name {
            name: name.v,
            domain_name: ctx
                .str(n, "project_domain_name")
                .map_or_else(|| "Default".to_owned(), |s| s.v),
        }),
        (None, Some(id)) => {
            ctx.forbid(n, "project_domain_name", "only used with `project_name`");
            Some(ProjectScope::Id(id.v))
        }
        (Some(_), Some(id)) => {
            ctx.err(
                &id.span,
                &id.path,
                "set only one of `project_name` and `project_id`",
            );
            None
        }
        (None, None) => {
            if !n.table.contains_key("project_name") && !n.table.contains_key("project_id") {
                let path = join(&n.path, "project_name");
                ctx.err(&n.span, &path, "missing `project_name` or `project_id`");
            }
            None
        }
    };
    Some(OpenStackAuth::Password {
        auth_url: auth_url?,
        username: username?,
        user_domain_name,
        project: project?,
        password: password?,
    })
}

fn pools(ctx: &mut Ctx<'_>, nodes: &[Node<'_>]) -> Option<Vec<Pool>> {
    let mut out = Vec::new();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut ok = true;
    for n in nodes {
        if let Some(name) = ctx
            .entry(n, "name")
            .and_then(|(_, span, item)| item.as_str().map(|s| (s.to_owned(), span)))
        {
            if let Some(first) = seen.get(&name.0) {
                let path = join(&n.path, "name");
                ctx.err(
                    &name.1,
                    &path,
                    format!(
                        "duplicate pool name `{}` (first used by pools[{first}])",
                        name.0
                    ),
                );
                ok = false;
            } else {
                seen.insert(name.0, out.len());
            }
        }
        match pool(ctx, n) {
            Some(p) => out.push(p),
            None => ok = false,
        }
    }
    ok.then_some(out)
}

fn pool(ctx: &mut Ctx<'_>, n: &Node<'_>) -> Option<Pool> {
    ctx.check_keys(
        n,
        &[
            "name",
            "capacity",
            "idle_count",
            "idle_time",
            "max_builds",
            "limit",
            "max_growth",
            "boot_timeout",
            "park_surplus",
            "forecast_days",
            "forecast_lookahead",
            "server",
            "runner",
            "bootstrap",
            "periods",
        ],
        &[],
    );
    let before = ctx.errors.len();
    let name = match ctx.str(n, "name") {
        Some(s) if valid_name(&s.v, usize::MAX) => Some(s.v),
        Some(s) => {
            ctx.err(
                &s.span,
                &s.path,
                format!("`{}` must match ^[a-z0-9][a-z0-9-]*$", s.v),
            );
            None
        }
        None => {
            if !n.table.contains_key("name") {
                ctx.missing(n, "name");
            }
            None
        }
    };
    let capacity = match ctx.bounded_u32(n, "capacity", bounds::CAPACITY) {
        Some(c) => NonZeroU32::new(c.v),
        None if n.table.contains_key("capacity") => None,
        None => Some(NonZeroU32::MIN),
    };
    let idle_count = ctx.u32(n, "idle_count");
    let limit = match ctx.bounded_u32(n, "limit", bounds::LIMIT) {
        Some(l) => Some(l),
        None => {
            if !n.table.contains_key("limit") {
                ctx.missing(n, "limit");
            }
            None
        }
    };
    let max_growth = ctx.u32(n, "max_growth");
    let policy = Policy {
        idle_count: idle_count.as_ref().map_or(0, |s| s.v),
        idle_time: ctx
            .bounded_duration(n, "idle_time", bounds::IDLE_TIME)
            .map_or(Duration::from_secs(30 * 60), |d| d.v),
        max_builds: ctx
            .bounded_u32(n, "max_builds", bounds::MAX_BUILDS)
            .map_or(0, |s| s.v),
        limit: limit.as_ref().map_or(1, |s| s.v),
        max_growth: max_growth.as_ref().map_or(0, |s| s.v),
        boot_timeout: ctx
            .bounded_duration(n, "boot_timeout", bounds::BOOT_TIMEOUT)
            .map_or(Duration::from_secs(10 * 60), |d| d.v),
    };
    if let (Some(cap), Some(l)) = (capacity, &limit) {
        if let Some(ic) = &idle_count {
            let slots = u64::from(l.v) * u64::from(cap.get());
            if u64::from(ic.v) > slots {
                ctx.err(
                    &ic.span,
                    &ic.path,
                    format!(
                        "idle_count {} exceeds limit {} x capacity {} = {slots} job slots",
                        ic.v, l.v, cap
                    ),
                );
            }
        }
        if let Some(g) = &max_growth {
            if g.v > l.v {
                ctx.err(
                    &g.span,
                    &g.path,
                    format!("max_growth {} exceeds limit {}", g.v, l.v),
                );
            }
        }
    }
    let park_surplus = ctx.bool(n, "park_surplus").unwrap_or(true);
    let forecast_days = ctx
        .bounded_u32(n, "forecast_days", bounds::FORECAST_DAYS)
        .map_or(2, |s| s.v);
    let forecast_lookahead = match ctx.duration(n, "forecast_lookahead") {
        Some(d) if d.v < Duration::from_secs(60) || d.v > Duration::from_secs(3600) => {
            ctx.err(&d.span, &d.path, "must be between 1m and 1h");
            Duration::from_secs(300)
        }
        Some(d) => d.v,
        None => Duration::from_secs(300),
    };
    let server = required_table(ctx, n, "server").and_then(|s| server(ctx, &s));
    let runner = required_table(ctx, n, "runner").and_then(|r| runner(ctx, &r));
    let bootstrap = match ctx.table(n, "bootstrap") {
        Some(b) => bootstrap(ctx, &b),
        None if n.table.contains_key("bootstrap") => None,
        None => Some(default_bootstrap()),
    };
    let mut periods = Vec::new();
    if let Some(nodes) = ctx.tables(n, "periods") {
        for p in &nodes {
            if let Some(p) = period(ctx, p, capacity, &policy) {
                periods.push(p);
            }
        }
    }
    let pool = Pool {
        name: name?,
        capacity: capacity?,
        policy,
        park_surplus,
        forecast_days,
        forecast_lookahead,
        server: server?,
        runner: runner?,
        bootstrap: bootstrap?,
        periods,
    };
    (ctx.errors.len() == before).then_some(pool)
}

fn required_table<'a>(ctx: &mut Ctx<'_>, n: &Node<'a>, key: &str) -> Option<Node<'a>> {
    let t = ctx.table(n, key);
    if t.is_none() && !n.table.contains_key(key) {
        let path = join(&n.path, key);
        ctx.err(
            &n.span,
            &path,
            format!("missing required table [{}]", path_without_index(&path)),
        );
    }
    t
}

fn server(ctx: &mut Ctx<'_>, n: &Node<'_>) -> Option<ServerTemplate> {
    ctx.check_keys(
        n,
        &[
            "flavor",
            "image",
            "networks",
            "security_groups",
            "key_name",
            "availability_zone",
            "boot_volume_size",
            "metadata",
        ],
        &[],
    );
    let before = ctx.errors.len();
    let flavor = ctx.str(n, "flavor");
    if !n.table.contains_key("flavor") {
        ctx.missing(n, "flavor");
    }
    let image = ctx.str(n, "image");
    if !n.table.contains_key("image") {
        ctx.missing(n, "image");
    }
    let networks = ctx.str_list(n, "networks");
    match &networks {
        Some(v) if v.is_empty() => {
            let span = ctx.entry(n, "networks").and_then(|e| e.1);
            ctx.err(
                &span,
                &join(&n.path, "networks"),
                "at least one network is required",
            );
        }
        None if !n.table.contains_key("networks") => ctx.missing(n, "networks"),
        _ => {}
    }
    let security_groups = ctx.str_list(n, "security_groups").unwrap_or_default();
    let key_name = ctx.str(n, "key_name").map(|s| s.v);
    let availability_zone = ctx.str(n, "availability_zone").map(|s| s.v);
    let boot_volume_size = ctx.u32(n, "boot_volume_size").and_then(|s| {
        NonZeroU32::new(s.v).or_else(|| {
            ctx.err(
                &s.span,
                &s.path,
                "must be at least 1 (GB); leave it out to boot from the image",
            );
            None
        })
    });
    let mut metadata = BTreeMap::new();
    if let Some(m) = ctx.table(n, "metadata") {
        for (key, item) in m.table.iter() {
            let path = join(&m.path, key);
            match item.as_str() {
                Some(v) => {
                    metadata.insert(key.to_owned(), v.to_owned());
                }
                None => {
                    let span = item.span();
                    ctx.err(
                        &span,
                        &path,
                        format!("metadata values must be strings, found {}", type_name(item)),
                    );
                }
            }
        }
    }
    let t = ServerTemplate {
        flavor: flavor?.v,
        image: image?.v,
        networks: networks?.into_iter().map(|s| s.v).collect(),
        security_groups: security_groups.into_iter().map(|s| s.v).collect(),
        key_name,
        availability_zone,
        boot_volume_size,
        metadata,
    };
    (ctx.errors.len() == before).then_some(t)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum TypeName {
    Instance,
    Group,
    Project,
}

fn runner(ctx: &mut Ctx<'_>, n: &Node<'_>) -> Option<RunnerSettings> {
    ctx.check_keys(
        n,
        &[
            "runner_type",
            "group_id",
            "project_id",
            "tags",
            "run_untagged",
            "access_level",
            "locked",
            "maximum_timeout",
            "docker_image",
            "privileged",
            "volumes",
            "cache",
        ],
        &[],
    );
    let before = ctx.errors.len();
    let kind = if n.table.contains_key("runner_type") {
        ctx.choice(
            n,
            "runner_type",
            &[
                ("instance_type", TypeName::Instance),
                ("group_type", TypeName::Group),
                ("project_type", TypeName::Project),
            ],
        )
    } else {
        Some(TypeName::Instance)
    };
    let group_id = ctx.positive_u64(n, "group_id");
    let project_id = ctx.positive_u64(n, "project_id");
    let runner_type = match kind {
        Some(TypeName::Instance) => {
            ctx.forbid(n, "group_id", "only used with runner_type = \"group_type\"");
            ctx.forbid(
                n,
                "project_id",
                "only used with runner_type = \"project_type\"",
            );
            Some(RunnerType::Instance)
        }
        Some(TypeName::Group) => {
            ctx.forbid(
                n,
                "project_id",
                "only used with runner_type = \"project_type\"",
            );
            if !n.table.contains_key("group_id") {
                ctx.err(
                    &n.span,
                    &join(&n.path, "group_id"),
                    "required when runner_type = \"group_type\"",
                );
            }
            group_id.map(|group_id| RunnerType::Group { group_id })
        }
        Some(TypeName::Project) => {
            ctx.forbid(n, "group_id", "only used with runner_type = \"group_type\"");
            if !n.table.contains_key("project_id") {
                ctx.err(
                    &n.span,
                    &join(&n.path, "project_id"),
                    "required when runner_type = \"project_type\"",
                );
            }
            project_id.map(|project_id| RunnerType::Project { project_id })
        }
        None => None,
    };
    let mut tags = BTreeSet::new();
    for t in ctx.str_list(n, "tags").unwrap_or_default() {
        if t.v.contains(',') || t.v.trim() != t.v {
            ctx.err(
                &t.span,
                &t.path,
                format!(
                    "tag `{}` must not contain commas or surrounding spaces",
                    t.v
                ),
            );
        } else {
            tags.insert(t.v);
        }
    }
    let run_untagged = match ctx.bool(n, "run_untagged") {
        Some(false) if tags.is_empty() => {
            let span = ctx.entry(n, "run_untagged").and_then(|e| e.1);
            ctx.err(
                &span,
                &join(&n.path, "run_untagged"),
                "a runner without tags and with run_untagged = false would never take a job",
            );
            false
        }
        Some(b) => b,
        None => tags.is_empty(),
    };
    let access_level = if n.table.contains_key("access_level") {
        ctx.choice(
            n,
            "access_level",
            &[
                ("not_protected", AccessLevel::NotProtected),
                ("ref_protected", AccessLevel::RefProtected),
            ],
        )
    } else {
        Some(AccessLevel::NotProtected)
    };
    let locked = ctx.bool(n, "locked").unwrap_or(false);
    let maximum_timeout = ctx
        .bounded_duration(n, "maximum_timeout", bounds::MAXIMUM_TIMEOUT)
        .map(|d| d.v);
    let docker_image = ctx
        .str(n, "docker_image")
        .map_or_else(|| "alpine".to_owned(), |s| s.v);
    let privileged = ctx.bool(n, "privileged").unwrap_or(false);
    let volumes = match ctx.str_list(n, "volumes") {
        Some(v) => v.into_iter().map(|s| s.v).collect(),
        None => vec!["/cache".to_owned()],
    };
    let cache = ctx.table(n, "cache").and_then(|c| cache(ctx, &c));
    let settings = RunnerSettings {
        runner_type: runner_type?,
        tags,
        run_untagged,
        access_level: access_level?,
        locked,
        maximum_timeout,
        docker_image,
        privileged,
        volumes,
        cache,
    };
    (ctx.errors.len() == before).then_some(settings)
}

fn cache(ctx: &mut Ctx<'_>, n: &Node<'_>) -> Option<S3Cache> {
    ctx.check_keys(
        n,
        &[
            "type",
            "shared",
            "server_address",
            "bucket_name",
            "bucket_location",
            "insecure",
            "access_key_file",
            "access_key_env",
            "secret_key_file",
            "secret_key_env",
        ],
        &["access_key", "secret_key"],
    );
    if n.table.contains_key("type") {
        ctx.choice(n, "type", &[("s3", ())])?;
    }
    let shared = ctx.bool(n, "shared").unwrap_or(false);
    let server_address = ctx.str(n, "server_address");
    if !n.table.contains_key("server_address") {
        ctx.missing(n, "server_address");
    }
    let bucket_name = ctx.str(n, "bucket_name");
    if !n.table.contains_key("bucket_name") {
        ctx.missing(n, "bucket_name");
    }
    // An empty location is the reference setup's way of saying "none".
    let bucket_location = ctx
        .entry(n, "bucket_location")
        .and_then(|(_, _, item)| item.as_str().map(str::to_owned))
        .filter(|s| !s.is_empty());
    if let Some((path, span, item)) = ctx.entry(n, "bucket_location") {
        if item.as_str().is_none() {
            ctx.err(
                &span,
                &path,
                format!("expected a string, found {}", type_name(item)),
            );
        }
    }
    let insecure = ctx.bool(n, "insecure").unwrap_or(false);
    let access_key = ctx.secret(n, "access_key", true);
    let secret_key = ctx.secret(n, "secret_key", true);
    Some(S3Cache {
        shared,
        server_address: server_address?.v,
        bucket_name: bucket_name?.v,
        bucket_location,
        insecure,
        access_key: access_key?,
        secret_key: secret_key?,
    })
}

fn default_bootstrap() -> BootstrapOptions {
    BootstrapOptions {
        docker_install: DockerInstall::Distro,
        qemu_binfmt: true,
        binfmt_arches: vec!["arm64".to_owned(), "arm".to_owned()],
        runner_install: RunnerInstall::Repository(default_repository()),
        extra_cloud_config_file: None,
        shell_before: None,
        shell_after: None,
        block_metadata_in_jobs: true,
    }
}

fn default_repository() -> Url {
    // The constant is a valid URL; a failure here is a programming error caught by the
    // `default_runner_repository_is_a_url` test.
    Url::parse(DEFAULT_RUNNER_REPOSITORY).unwrap_or_else(|_| unreachable!("constant URL parses"))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum DockerKind {
    Distro,
    Convenience,
    Script,
    Image,
}

fn bootstrap(ctx: &mut Ctx<'_>, n: &Node<'_>) -> Option<BootstrapOptions> {
    ctx.check_keys(
        n,
        &[
            "docker_install",
            "docker_install_url",
            "qemu_binfmt",
            "binfmt_arches",
            "runner_install",
            "runner_repository",
            "extra_cloud_config_file",
            "shell_before",
            "shell_after",
            "block_metadata_in_jobs",
        ],
        &[],
    );
    let before = ctx.errors.len();
    let kind = if n.table.contains_key("docker_install") {
        ctx.choice(
            n,
            "docker_install",
            &[
                ("distro", DockerKind::Distro),
                ("convenience-script", DockerKind::Convenience),
                ("script-url", DockerKind::Script),
                ("image", DockerKind::Image),
            ],
        )
    } else {
        Some(DockerKind::Distro)
    };
    let docker_install = match kind {
        Some(DockerKind::Script) => {
            let url = ctx.url(n, "docker_install_url");
            if !n.table.contains_key("docker_install_url") {
                ctx.err(
                    &n.span,
                    &join(&n.path, "docker_install_url"),
                    "required when docker_install = \"script-url\"",
                );
            }
            url.map(DockerInstall::ScriptUrl)
        }
        Some(other) => {
            ctx.forbid(
                n,
                "docker_install_url",
                "only used with docker_install = \"script-url\"",
            );
            Some(match other {
                DockerKind::Convenience => DockerInstall::ConvenienceScript,
                DockerKind::Image => DockerInstall::Image,
                _ => DockerInstall::Distro,
            })
        }
        None => None,
    };
    let qemu_binfmt = ctx.bool(n, "qemu_binfmt").unwrap_or(true);
    let binfmt_arches = match ctx.str_list(n, "binfmt_arches") {
        Some(list) => {
            for a in &list {
                if !binfmt_arches().any(|known| known == a.v) {
                    ctx.err(
                        &a.span,
                        &a.path,
                        format!(
                            "unknown architecture `{}`, expected one of {}",
                            a.v,
                            binfmt_arches().collect::<Vec<_>>().join(", ")
                        ),
                    );
                }
            }
            list.into_iter().map(|s| s.v).collect()
        }
        None => vec!["arm64".to_owned(), "arm".to_owned()],
    };
    let image = if n.table.contains_key("runner_install") {
        ctx.choice(
            n,
            "runner_install",
            &[("repository", false), ("image", true)],
        )
    } else {
        Some(false)
    };
    let runner_install = match image {
        Some(true) => {
            ctx.forbid(
                n,
                "runner_repository",
                "only used with runner_install = \"repository\"",
            );
            Some(RunnerInstall::Image)
        }
        Some(false) => {
            if n.table.contains_key("runner_repository") {
                ctx.url(n, "runner_repository")
                    .map(RunnerInstall::Repository)
            } else {
                Some(RunnerInstall::Repository(default_repository()))
            }
        }
        None => None,
    };
    let options = BootstrapOptions {
        docker_install: docker_install?,
        qemu_binfmt,
        binfmt_arches,
        runner_install: runner_install?,
        extra_cloud_config_file: ctx
            .str(n, "extra_cloud_config_file")
            .map(|s| PathBuf::from(s.v)),
        shell_before: ctx.str(n, "shell_before").map(|s| s.v),
        shell_after: ctx.str(n, "shell_after").map(|s| s.v),
        block_metadata_in_jobs: ctx.bool(n, "block_metadata_in_jobs").unwrap_or(true),
    };
    (ctx.errors.len() == before).then_some(options)
}

fn period(
    ctx: &mut Ctx<'_>,
    n: &Node<'_>,
    capacity: Option<NonZeroU32>,
    base: &Policy,
) -> Option<Period> {
    ctx.check_keys(
        n,
        &[
            "schedules",
            "timezone",
            "idle_count",
            "idle_time",
            "max_builds",
            "limit",
            "max_growth",
        ],
        &[],
    );
    let before = ctx.errors.len();
    let mut schedules = Vec::new();
    match ctx.str_list(n, "schedules") {
        Some(list) if list.is_empty() => {
            let span = ctx.entry(n, "schedules").and_then(|e| e.1);
            ctx.err(
                &span,
                &join(&n.path, "schedules"),
                "at least one schedule is required",
            );
        }
        Some(list) => {
            for s in list {
                let shown = s.v.escape_debug().to_string();
                match Schedule::parse(&s.v) {
                    Ok(sched) => {
                        if !sched.can_match_from(ctx.now) {
                            ctx.warn(
                                &s.span,
                                &s.path,
                                format!(
                                    "schedule `{shown}` can no longer match (no date from today on satisfies its date fields, e.g. a year in the past); it is never active again, remove it"
                                ),
                            );
                        }
                        schedules.push(sched);
                    }
                    Err(e) => {
                        let span = match e.offset() {
                            Some(offset) => ctx.inner_span(&s.span, &s.v, offset),
                            None => s.span.clone(),
                        };
                        ctx.err(&span, &s.path, format!("schedule `{shown}`: {e}"));
                    }
                }
            }
        }
        None => {
            if !n.table.contains_key("schedules") {
                ctx.missing(n, "schedules");
            }
        }
    }
    let timezone = match ctx.str(n, "timezone") {
        Some(s) => match s.v.parse::<Tz>() {
            Ok(tz) => Some(tz),
            Err(_) => {
                let hint = chrono_tz::TZ_VARIANTS
                    .iter()
                    .find(|tz| tz.name().eq_ignore_ascii_case(&s.v))
                    .map(|tz| format!(", did you mean `{}`?", tz.name()))
                    .unwrap_or_else(|| " (use an IANA name such as \"Europe/Berlin\")".to_owned());
                ctx.err(
                    &s.span,
                    &s.path,
                    format!("unknown timezone `{}`{hint}", s.v),
                );
                None
            }
        },
        None if n.table.contains_key("timezone") => None,
        None => Some(Tz::UTC),
    };
    let idle_count = ctx.u32(n, "idle_count");
    let limit = ctx.bounded_u32(n, "limit", bounds::LIMIT);
    let max_growth = ctx.u32(n, "max_growth");
    let overrides = PolicyOverrides {
        idle_count: idle_count.as_ref().map(|s| s.v),
        idle_time: ctx
            .bounded_duration(n, "idle_time", bounds::IDLE_TIME)
            .map(|d| d.v),
        max_builds: ctx
            .bounded_u32(n, "max_builds", bounds::MAX_BUILDS)
            .map(|s| s.v),
        limit: limit.as_ref().map(|s| s.v),
        max_growth: max_growth.as_ref().map(|s| s.v),
    };
    let eff = overrides.apply(*base);
    if let Some(cap) = capacity {
        let slots = u64::from(eff.limit) * u64::from(cap.get());
        if u64::from(eff.idle_count) > slots && eff.limit > 0 {
            let (span, path) = match (&idle_count, &limit) {
                (Some(ic), _) => (ic.span.clone(), ic.path.clone()),
                (None, Some(l)) => (l.span.clone(), l.path.clone()),
                (None, None) => (n.span.clone(), n.path.clone()),
            };
            let src = |set: bool| {
                if set {
                    ""
                } else {
                    " (inherited from the pool)"
                }
            };
            ctx.err(
                &span,
                &path,
                format!(
                    "idle_count {}{} exceeds limit {}{} x capacity {cap} = {slots} job slots",
                    eff.idle_count,
                    src(idle_count.is_some()),
                    eff.limit,
                    src(limit.is_some()),
                ),
            );
        }
    }
    if eff.max_growth > eff.limit && eff.limit > 0 {
        let (span, path) = match (&max_growth, &limit) {
            (Some(g), _) => (g.span.clone(), g.path.clone()),
            (None, Some(l)) => (l.span.clone(), l.path.clone()),
            (None, None) => (n.span.clone(), n.path.clone()),
        };
        ctx.err(
            &span,
            &path,
            format!("max_growth {} exceeds limit {}", eff.max_growth, eff.limit),
        );
    }
    let period = Period {
        schedules,
        timezone: timezone?,
        overrides,
    };
    (ctx.errors.len() == before).then_some(period)
}

// === helpers ===

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

fn path_without_index(path: &str) -> String {
    let mut out = String::new();
    let mut skip = false;
    for c in path.chars() {
        match c {
            '[' => skip = true,
            ']' => skip = false,
            _ if !skip => out.push(c),
            _ => {}
        }
    }
    out
}

/// `^[a-z0-9][a-z0-9-]*$` with at most `max` characters.
fn valid_name(s: &str, max: usize) -> bool {
    s.len() <= max
        && s.bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

fn type_name(item: &Item) -> &'static str {
    match item {
        Item::None => "nothing",
        Item::Value(v) => value_type_name(v),
        Item::Table(_) => "a table",
        Item::ArrayOfTables(_) => "an array of tables",
    }
}

fn value_type_name(v: &Value) -> &'static str {
    match v {
        Value::String(_) => "a string",
        Value::Integer(_) => "an integer",
        Value::Float(_) => "a float",
        Value::Boolean(_) => "a boolean",
        Value::Datetime(_) => "a datetime",
        Value::Array(_) => "an array",
        Value::InlineTable(_) => "an inline table",
    }
}

fn value_repr(v: &Value) -> String {
    match v {
        Value::String(s) => format!("\"{}\"", s.value()),
        Value::Integer(i) => i.value().to_string(),
        other => value_type_name(other).to_owned(),
    }
}

/// The known key closest to `key`: equal ignoring case and `_`/`-` (docker+machine's
/// `IdleCount`), or within a small edit distance.
fn suggest<'k>(key: &str, known: &[&'k str]) -> Option<&'k str> {
    let norm = |s: &str| s.to_ascii_lowercase().replace(['_', '-'], "");
    if let Some(k) = known.iter().find(|k| norm(k) == norm(key)) {
        return Some(k);
    }
    let lower = key.to_ascii_lowercase();
    let max = (key.chars().count() / 3).clamp(1, 3);
    known
        .iter()
        .map(|k| (levenshtein(&lower, k), *k))
        .filter(|(d, _)| *d <= max)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const BASE: &str = r#"
[controller]
id = "ci"

[gitlab]
url = "https://gitlab.example.com/"
token_file = "/etc/token"

[gitlab.scope]
projects = ["group/project"]

[[pools]]
name = "default"
limit = 4

[pools.server]
flavor = "s1.large"
image = "Debian 12"
networks = ["net"]

[pools.runner]
tags = ["docker"]
"#;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2025-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn ok(src: &str) -> Config {
        parse_config(src, "t.toml", now()).unwrap_or_else(|e| panic!("{e}"))
    }

    /// `(key, message)` of every error.
    fn errs(src: &str) -> Vec<(String, String)> {
        match parse_config(src, "t.toml", now()) {
            Ok(_) => panic!("expected errors for:\n{src}"),
            Err(e) => e.0.into_iter().map(|e| (e.key, e.message)).collect(),
        }
    }

    /// Exactly one error, for `key`, whose message contains `fragment`.
    fn one_err(src: &str, key: &str, fragment: &str) {
        let e = errs(src);
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(e[0].0, key, "{e:?}");
        assert!(e[0].1.contains(fragment), "{e:?}");
    }

    /// BASE with `line` added at the end of the table whose header is `header`.
    fn with(header: &str, line: &str) -> String {
        let start = BASE.find(header).unwrap_or_else(|| panic!("{header}")) + header.len();
        let end = BASE[start..].find("\n[").map_or(BASE.len(), |i| start + i);
        format!("{}\n{line}{}", &BASE[..end], &BASE[end..])
    }

    #[test]
    fn forecast_defaults_to_two_days_and_five_minutes() {
        let p = &ok(BASE).pools[0];
        assert_eq!(p.forecast_days, 2);
        assert_eq!(p.forecast_lookahead, Duration::from_secs(300));
        let off = ok(&with("[[pools]]", "forecast_days = 0"));
        assert_eq!(off.pools[0].forecast_days, 0);
    }

    #[test]
    fn forecast_lookahead_outside_one_minute_to_one_hour_is_rejected() {
        one_err(
            &with("[[pools]]", "forecast_lookahead = \"30s\""),
            "pools[0].forecast_lookahead",
            "between 1m and 1h",
        );
    }

    #[test]
    fn minimal_config_gets_the_documented_defaults() {
        let c = ok(BASE);
        assert_eq!(c.controller.poll_interval, Duration::from_secs(15));
        assert_eq!(
            c.controller.listen,
            SocketAddr::from(([127, 0, 0, 1], 9252))
        );
        assert!(c.openstack.is_none());
        let p = &c.pools[0];
        assert_eq!(p.capacity.get(), 1);
        assert_eq!(
            p.policy,
            Policy {
                idle_count: 0,
                idle_time: Duration::from_secs(1800),
                max_builds: 0,
                limit: 4,
                max_growth: 0,
                boot_timeout: Duration::from_secs(600),
            }
        );
        assert!(p.park_surplus);
        assert_eq!(p.runner.runner_type, RunnerType::Instance);
        assert!(
            !p.runner.run_untagged,
            "tags given: run_untagged defaults to false"
        );
        assert_eq!(p.runner.access_level, AccessLevel::NotProtected);
        assert_eq!(p.runner.docker_image, "alpine");
        assert_eq!(p.runner.volumes, ["/cache"]);
        assert_eq!(p.bootstrap.docker_install, DockerInstall::Distro);
        assert!(p.bootstrap.qemu_binfmt);
        assert!(p.bootstrap.block_metadata_in_jobs);
        assert_eq!(p.bootstrap.binfmt_arches, ["arm64", "arm"]);
        assert_eq!(
            p.bootstrap.runner_install,
            RunnerInstall::Repository(Url::parse(DEFAULT_RUNNER_REPOSITORY).unwrap())
        );
    }

    #[test]
    fn default_runner_repository_is_a_url() {
        assert_eq!(default_repository().as_str(), DEFAULT_RUNNER_REPOSITORY);
    }

    #[test]
    fn run_untagged_defaults_to_true_without_tags() {
        let c = ok(&BASE.replace("tags = [\"docker\"]", ""));
        assert!(c.pools[0].runner.run_untagged);
    }

    #[test]
    fn untagged_runner_refusing_untagged_jobs_is_rejected() {
        one_err(
            &BASE.replace("tags = [\"docker\"]", "run_untagged = false"),
            "pools[0].runner.run_untagged",
            "never take a job",
        );
    }

    #[test]
    fn unknown_key_gets_a_did_you_mean_hint() {
        one_err(
            &with("[[pools]]", "idle_tme = \"1h\""),
            "pools[0].idle_tme",
            "did you mean `idle_time`?",
        );
    }

    #[test]
    fn docker_machine_spelling_gets_a_hint() {
        one_err(
            &with("[[pools]]", "IdleCount = 2"),
            "pools[0].IdleCount",
            "did you mean `idle_count`?",
        );
    }

    #[test]
    fn unknown_key_without_close_match_lists_known_keys() {
        one_err(
            &with("[controller]", "frobnicate = 1"),
            "controller.frobnicate",
            "known keys: id,",
        );
    }

    #[test]
    fn every_problem_is_reported_at_once_in_file_order() {
        let src =
            with("[controller]", "poll_interval = \"soon\"").replace("limit = 4", "limit = 0");
        let e = errs(&src);
        let keys: Vec<&str> = e.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(keys, ["controller.poll_interval", "pools[0].limit"]);
    }

    #[test]
    fn syntax_error_has_a_position() {
        let e = parse_config("[controller\nid = 1", "t.toml", now()).unwrap_err();
        assert_eq!(e.len(), 1);
        assert_eq!(e.0[0].line(), 1);
        assert!(e.0[0].message.starts_with("invalid TOML"), "{e}");
    }

    #[test]
    fn error_position_is_line_and_column_of_the_value() {
        let e =
            parse_config(&BASE.replace("limit = 4", "limit = -4"), "t.toml", now()).unwrap_err();
        assert_eq!(e.0[0].position, Some((14, 9)));
        assert_eq!(
            e.0[0].message,
            "-4 is out of range: must be between 1 and 10000"
        );
    }

    #[test]
    fn missing_sections_are_reported() {
        let e = errs("");
        let keys: Vec<&str> = e.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(keys, ["controller", "gitlab", "pools"]);
    }

    #[test]
    fn controller_id_must_be_a_short_lowercase_name() {
        one_err(
            &BASE.replace("id = \"ci\"", "id = \"CI\""),
            "controller.id",
            "must match",
        );
        one_err(
            &BASE.replace("id = \"ci\"", &format!("id = \"{}\"", "a".repeat(32))),
            "controller.id",
            "at most 31",
        );
        one_err(
            &BASE.replace("id = \"ci\"", ""),
            "controller.id",
            "missing required key",
        );
    }

    #[test]
    fn durations_accept_humantime_and_integer_seconds() {
        let c = ok(&with(
            "[[pools]]",
            "idle_time = 90\nboot_timeout = \"1h 30m\"",
        ));
        assert_eq!(c.pools[0].policy.idle_time, Duration::from_secs(90));
        assert_eq!(c.pools[0].policy.boot_timeout, Duration::from_secs(5400));
    }

    #[test]
    fn negative_and_garbage_durations_name_key_and_value() {
        one_err(
            &with("[[pools]]", "idle_time = -5"),
            "pools[0].idle_time",
            "invalid duration -5",
        );
        one_err(
            &with("[[pools]]", "idle_time = \"5 parsecs\""),
            "pools[0].idle_time",
            "`5 parsecs`",
        );
        one_err(
            &with("[[pools]]", "idle_time = 1.5"),
            "pools[0].idle_time",
            "found a float",
        );
    }

    #[test]
    fn offline_after_defaults_to_five_minutes_and_is_bounded() {
        assert_eq!(
            ok(&with("[controller]", "")).controller.offline_after,
            Duration::from_secs(300)
        );
        assert_eq!(
            ok(&with("[controller]", "offline_after = \"10m\""))
                .controller
                .offline_after,
            Duration::from_secs(600)
        );
        one_err(
            &with("[controller]", "offline_after = \"5s\""),
            "controller.offline_after",
            "`5s` is out of range: must be between 1m and 1day",
        );
    }

    #[test]
    fn zero_poll_interval_is_rejected() {
        one_err(
            &with("[controller]", "poll_interval = 0"),
            "controller.poll_interval",
            "`0` is out of range: must be between 1s and 1h",
        );
    }

    // Regression, issue 11 item 9: "1000000000y" passed validation and panicked the
    // process (exit 101) at the first timer; "1ns" made the loop spin.
    #[test]
    fn absurd_poll_intervals_are_refused_naming_file_line_key_and_value() {
        for (value, shown) in [
            ("\"1000000000y\"", "`1000000000y`"),
            ("\"1ns\"", "`1ns`"),
            ("\"2h\"", "`2h`"),
            ("99999999999", "`99999999999`"),
        ] {
            let src = with("[controller]", &format!("poll_interval = {value}"));
            let e = parse_config(&src, "t.toml", now()).unwrap_err();
            assert_eq!(e.len(), 1, "{e}");
            assert_eq!(
                e.to_string(),
                format!(
                    "t.toml:5:17: controller.poll_interval: {shown} is out of range: must be between 1s and 1h"
                )
            );
        }
        assert_eq!(
            ok(&with("[controller]", "poll_interval = \"1h\""))
                .controller
                .poll_interval,
            Duration::from_secs(3600)
        );
    }

    #[test]
    fn absurd_pool_durations_are_refused() {
        one_err(
            &with("[[pools]]", "idle_time = \"1000000000y\""),
            "pools[0].idle_time",
            "`1000000000y` is out of range: must be between 0s and 30days",
        );
        one_err(
            &with("[[pools]]", "boot_timeout = \"1s\""),
            "pools[0].boot_timeout",
            "`1s` is out of range: must be between 10s and 1day",
        );
        one_err(
            &with("[pools.runner]", "maximum_timeout = \"100y\""),
            "pools[0].runner.maximum_timeout",
            "must be between 10m and 30days",
        );
        one_err(
            &period("schedules = [\"* * * * *\"]\nidle_time = \"1000000000y\""),
            "pools[0].periods[0].idle_time",
            "must be between 0s and 30days",
        );
        assert_eq!(
            ok(&with("[[pools]]", "idle_time = 0")).pools[0]
                .policy
                .idle_time,
            Duration::ZERO
        );
    }

    // Regression, issue 11 item 9: counts near u32::MAX passed validation and
    // overflowed downstream.
    #[test]
    fn counts_near_u32_max_are_refused_with_their_bound() {
        let max = u32::MAX;
        one_err(
            &BASE.replace("limit = 4", &format!("limit = {max}")),
            "pools[0].limit",
            &format!("{max} is out of range: must be between 1 and 10000"),
        );
        one_err(
            &with("[[pools]]", &format!("capacity = {max}")),
            "pools[0].capacity",
            "must be between 1 and 1000",
        );
        one_err(
            &with("[[pools]]", &format!("idle_count = {max}")),
            "pools[0].idle_count",
            &format!("idle_count {max} exceeds limit 4 x capacity 1"),
        );
        one_err(
            &with("[[pools]]", &format!("max_growth = {max}")),
            "pools[0].max_growth",
            "exceeds limit 4",
        );
        one_err(
            &with("[[pools]]", &format!("max_builds = {max}")),
            "pools[0].max_builds",
            "must be between 0 and 1000000",
        );
        one_err(
            &with("[[pools]]", &format!("forecast_days = {max}")),
            "pools[0].forecast_days",
            "must be between 0 and 30",
        );
        one_err(
            &period(&format!("schedules = [\"* * * * *\"]\nlimit = {max}")),
            "pools[0].periods[0].limit",
            "must be between 1 and 10000",
        );
        one_err(
            &period(&format!("schedules = [\"* * * * *\"]\nmax_builds = {max}")),
            "pools[0].periods[0].max_builds",
            "must be between 0 and 1000000",
        );
        let big = ok(&BASE.replace(
            "limit = 4",
            "limit = 10000\ncapacity = 1000\nidle_count = 10000000",
        ));
        assert_eq!(big.pools[0].policy.idle_count, 10_000_000);
    }

    #[test]
    fn listen_must_be_a_socket_address() {
        one_err(
            &with("[controller]", "listen = \"localhost\""),
            "controller.listen",
            "`localhost`",
        );
    }

    #[test]
    fn gitlab_url_must_be_http() {
        one_err(
            &BASE.replace("https://gitlab.example.com/", "ftp://gitlab.example.com/"),
            "gitlab.url",
            "not an http(s) URL",
        );
        one_err(
            &BASE.replace("url = \"https://gitlab.example.com/\"", ""),
            "gitlab.url",
            "missing",
        );
    }

    #[test]
    fn token_needs_exactly_one_source() {
        one_err(
            &with("[gitlab]", "token_env = \"TOKEN\""),
            "gitlab.token_env",
            "only one of",
        );
        one_err(
            &BASE.replace("token_file = \"/etc/token\"", ""),
            "gitlab.token_file",
            "missing `token_file` or `token_env`",
        );
        one_err(
            &BASE.replace("token_file = \"/etc/token\"", "token_env = \"1BAD\""),
            "gitlab.token_env",
            "not a valid environment variable name",
        );
        let c = ok(&BASE.replace(
            "token_file = \"/etc/token\"",
            "token_env = \"GITLAB_TOKEN\"\nwebhook_token_file = \"/etc/hook\"",
        ));
        assert_eq!(c.gitlab.token, SecretSource::Env("GITLAB_TOKEN".into()));
        assert_eq!(
            c.gitlab.webhook_token,
            Some(SecretSource::File("/etc/hook".into()))
        );
    }

    #[test]
    fn every_inline_secret_is_refused_without_echoing_it() {
        let cases = [
            (
                with("[gitlab]", "webhook_token = \"hunter2\""),
                "gitlab.webhook_token",
            ),
            (
                format!(
                    "{BASE}\n[openstack]\nauth_url = \"https://k/v3\"\nusername = \"u\"\nproject_name = \"p\"\npassword = \"hunter2\"\n"
                ),
                "openstack.password",
            ),
        ];
        for (src, key) in cases {
            let e = errs(&src);
            assert!(
                e.iter()
                    .any(|(k, m)| k == key && m.contains("inline secrets")),
                "{e:?}"
            );
            assert!(!format!("{e:?}").contains("hunter2"));
        }
    }

    #[test]
    fn scope_must_not_be_empty() {
        one_err(
            &BASE.replace("projects = [\"group/project\"]", ""),
            "gitlab.scope",
            "scope is empty",
        );
    }

    #[test]
    fn instance_scope_is_exclusive() {
        one_err(
            &with("[gitlab.scope]", "instance = true"),
            "gitlab.scope.projects",
            "instance = true",
        );
        let c = ok(&BASE.replace("projects = [\"group/project\"]", "instance = true"));
        assert!(c.gitlab.scope.instance);
    }

    #[test]
    fn projects_accept_paths_numeric_strings_and_integers() {
        let c = ok(&BASE.replace(
            "[\"group/project\"]",
            "[\"icinga/icinga2\", \"42\", 7]\ngroups = [\"icinga\", 12]",
        ));
        assert_eq!(
            c.gitlab.scope.projects,
            [
                ProjectRef::Path("icinga/icinga2".into()),
                ProjectRef::Id(42),
                ProjectRef::Id(7)
            ]
        );
        assert_eq!(c.gitlab.scope.groups, ["icinga", "12"]);
    }

    #[test]
    fn bad_and_duplicate_projects_are_rejected() {
        one_err(
            &BASE.replace("[\"group/project\"]", "[\"noslash\"]"),
            "gitlab.scope.projects[0]",
            "\"noslash\"",
        );
        one_err(
            &BASE.replace("[\"group/project\"]", "[\"a/b\", \"a/b\"]"),
            "gitlab.scope.projects[1]",
            "duplicate",
        );
        one_err(
            &BASE.replace("[\"group/project\"]", "[0]"),
            "gitlab.scope.projects[0]",
            "numeric id",
        );
    }

    #[test]
    fn openstack_cloud_excludes_explicit_auth() {
        let src =
            format!("{BASE}\n[openstack]\ncloud = \"netways\"\nauth_url = \"https://k/v3\"\n");
        one_err(
            &src,
            "openstack.auth_url",
            "cannot be combined with `cloud`",
        );
    }

    #[test]
    fn openstack_needs_cloud_or_auth_url() {
        let src = format!("{BASE}\n[openstack]\nregion = \"RegionOne\"\n");
        one_err(&src, "openstack.auth_url", "set `cloud`");
    }

    #[test]
    fn clouds_file_only_goes_with_cloud() {
        let src = format!(
            "{BASE}\n[openstack]\nclouds_file = \"/x\"\nauth_url = \"https://k/v3\"\nusername = \"u\"\nproject_id = \"p\"\npassword_env = \"OS_PASSWORD\"\n"
        );
        one_err(
            &src,
            "openstack.clouds_file",
            "only used together with `cloud`",
        );
    }

    #[test]
    fn openstack_password_auth_parses_with_default_domains() {
        let src = format!(
            "{BASE}\n[openstack]\nauth_url = \"https://cloud.netways.de:5000/v3/\"\nusername = \"customer-login\"\nproject_name = \"1234-openstack-customer\"\npassword_file = \"/etc/os-pass\"\ninterface = \"internal\"\n"
        );
        let c = ok(&src);
        let os = c.openstack.unwrap();
        assert_eq!(os.interface, Some(Interface::Internal));
        match os.auth {
            OpenStackAuth::Password {
                user_domain_name,
                project,
                ..
            } => {
                assert_eq!(user_domain_name, "Default");
                assert_eq!(
                    project,
                    ProjectScope::Name {
                        name: "1234-openstack-customer".into(),
                        domain_name: "Default".into()
                    }
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn openstack_password_auth_needs_a_project_and_password() {
        let src = format!("{BASE}\n[openstack]\nauth_url = \"https://k/v3\"\nusername = \"u\"\n");
        let e = errs(&src);
        let keys: Vec<&str> = e.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(
            keys,
            ["openstack.password_file", "openstack.project_name"],
            "{e:?}"
        );
    }

    #[test]
    fn application_credentials_parse_and_refuse_password_fields() {
        let app = format!(
            "{BASE}\n[openstack]\nauth_url = \"https://k/v3\"\napplication_credential_id = \"abc\"\napplication_credential_secret_env = \"OS_SECRET\"\n"
        );
        assert!(matches!(
            ok(&app).openstack.unwrap().auth,
            OpenStackAuth::ApplicationCredential {
                credential: AppCredential::Id(_),
                ..
            }
        ));
        one_err(
            &format!("{app}project_name = \"p\"\n"),
            "openstack.project_name",
            "not used with application credentials",
        );
        let by_name = app.replace("application_credential_id", "application_credential_name");
        one_err(
            &by_name,
            "openstack.application_credential_name",
            "needs `username`",
        );
    }

    #[test]
    fn openstack_interface_is_checked() {
        let src = format!("{BASE}\n[openstack]\ncloud = \"c\"\ninterface = \"private\"\n");
        one_err(
            &src,
            "openstack.interface",
            "expected one of `public`, `internal`, `admin`",
        );
    }

    #[test]
    fn pool_names_must_be_valid_and_unique() {
        one_err(
            &BASE.replace("name = \"default\"", "name = \"Default\""),
            "pools[0].name",
            "must match",
        );
        let second = BASE[BASE.find("[[pools]]").unwrap()..].to_owned();
        let e = errs(&format!("{BASE}{second}"));
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(e[0].0, "pools[1].name");
        assert!(
            e[0].1
                .contains("duplicate pool name `default` (first used by pools[0])")
        );
    }

    #[test]
    fn limit_is_required_and_at_least_one() {
        one_err(
            &BASE.replace("limit = 4", ""),
            "pools[0].limit",
            "missing required key",
        );
        one_err(
            &BASE.replace("limit = 4", "limit = 0"),
            "pools[0].limit",
            "0 is out of range: must be between 1 and 10000",
        );
    }

    #[test]
    fn capacity_must_be_at_least_one() {
        one_err(
            &with("[[pools]]", "capacity = 0"),
            "pools[0].capacity",
            "0 is out of range: must be between 1 and 1000",
        );
    }

    #[test]
    fn idle_count_must_fit_in_limit_times_capacity() {
        one_err(
            &with("[[pools]]", "idle_count = 5"),
            "pools[0].idle_count",
            "idle_count 5 exceeds limit 4 x capacity 1 = 4",
        );
        let c = ok(&with("[[pools]]", "idle_count = 8\ncapacity = 2"));
        assert_eq!(c.pools[0].policy.idle_count, 8);
    }

    #[test]
    fn max_growth_must_not_exceed_limit() {
        one_err(
            &with("[[pools]]", "max_growth = 5"),
            "pools[0].max_growth",
            "max_growth 5 exceeds limit 4",
        );
    }

    #[test]
    fn server_needs_flavor_image_and_a_network() {
        one_err(
            &BASE.replace("flavor = \"s1.large\"", ""),
            "pools[0].server.flavor",
            "missing required key",
        );
        one_err(
            &BASE.replace("networks = [\"net\"]", "networks = []"),
            "pools[0].server.networks",
            "at least one network",
        );
        one_err(
            &BASE.replace("networks = [\"net\"]", ""),
            "pools[0].server.networks",
            "missing required key",
        );
    }

    #[test]
    fn server_optional_fields_are_checked() {
        one_err(
            &with("[pools.server]", "boot_volume_size = 0"),
            "pools[0].server.boot_volume_size",
            "at least 1",
        );
        one_err(
            &with("[pools.server]", "metadata = { team = 1 }"),
            "pools[0].server.metadata.team",
            "must be strings",
        );
        let c = ok(&with(
            "[pools.server]",
            "metadata = { team = \"ci\" }\nboot_volume_size = 40",
        ));
        assert_eq!(
            c.pools[0].server.metadata.get("team").map(String::as_str),
            Some("ci")
        );
        assert_eq!(
            c.pools[0].server.boot_volume_size.map(NonZeroU32::get),
            Some(40)
        );
    }

    #[test]
    fn missing_server_table_is_reported() {
        let src = BASE.replace(
            "[pools.server]\nflavor = \"s1.large\"\nimage = \"Debian 12\"\nnetworks = [\"net\"]\n",
            "",
        );
        one_err(
            &src,
            "pools[0].server",
            "missing required table [pools.server]",
        );
    }

    #[test]
    fn group_id_goes_with_group_type_only() {
        one_err(
            &with("[pools.runner]", "runner_type = \"group_type\""),
            "pools[0].runner.group_id",
            "required when",
        );
        one_err(
            &with("[pools.runner]", "group_id = 12"),
            "pools[0].runner.group_id",
            "only used with runner_type = \"group_type\"",
        );
        let c = ok(&with(
            "[pools.runner]",
            "runner_type = \"group_type\"\ngroup_id = 12",
        ));
        assert_eq!(
            c.pools[0].runner.runner_type,
            RunnerType::Group { group_id: 12 }
        );
    }

    #[test]
    fn project_id_goes_with_project_type_only() {
        one_err(
            &with(
                "[pools.runner]",
                "runner_type = \"project_type\"\ngroup_id = 1\nproject_id = 2",
            ),
            "pools[0].runner.group_id",
            "only used with",
        );
        let c = ok(&with(
            "[pools.runner]",
            "runner_type = \"project_type\"\nproject_id = 34",
        ));
        assert_eq!(
            c.pools[0].runner.runner_type,
            RunnerType::Project { project_id: 34 }
        );
    }

    #[test]
    fn runner_enums_are_checked() {
        one_err(
            &with("[pools.runner]", "runner_type = \"shared\""),
            "pools[0].runner.runner_type",
            "unknown value `shared`",
        );
        one_err(
            &with("[pools.runner]", "access_level = \"all\""),
            "pools[0].runner.access_level",
            "unknown value `all`",
        );
    }

    #[test]
    fn tags_must_be_unique_and_plain() {
        one_err(
            &BASE.replace("[\"docker\"]", "[\"docker\", \"docker\"]"),
            "pools[0].runner.tags[1]",
            "duplicate",
        );
        one_err(
            &BASE.replace("[\"docker\"]", "[\"a,b\"]"),
            "pools[0].runner.tags[0]",
            "commas",
        );
    }

    #[test]
    fn maximum_timeout_respects_gitlab_minimum() {
        one_err(
            &with("[pools.runner]", "maximum_timeout = \"5m\""),
            "pools[0].runner.maximum_timeout",
            "`5m` is out of range: must be between 10m and 30days",
        );
    }

    #[test]
    fn cache_is_s3_with_key_sources() {
        let cache = "\n[pools.runner.cache]\nserver_address = \"s3\"\nbucket_name = \"b\"\naccess_key_env = \"A\"\nsecret_key_file = \"/s\"\n";
        let c = ok(&format!("{BASE}{cache}"));
        let s3 = c.pools[0].runner.cache.clone().unwrap();
        assert_eq!(s3.access_key, SecretSource::Env("A".into()));
        assert_eq!(s3.bucket_location, None);
        one_err(
            &format!("{BASE}{cache}type = \"gcs\"\n"),
            "pools[0].runner.cache.type",
            "unknown value `gcs`",
        );
        one_err(
            &format!("{BASE}{}", cache.replace("bucket_name = \"b\"\n", "")),
            "pools[0].runner.cache.bucket_name",
            "missing",
        );
        one_err(
            &format!("{BASE}{cache}secret_key = \"x\"\n"),
            "pools[0].runner.cache.secret_key",
            "inline secrets",
        );
    }

    #[test]
    fn docker_install_url_iff_script_url() {
        let b = |lines: &str| format!("{BASE}\n[pools.bootstrap]\n{lines}\n");
        one_err(
            &b("docker_install = \"script-url\""),
            "pools[0].bootstrap.docker_install_url",
            "required when",
        );
        one_err(
            &b("docker_install_url = \"https://x/i.sh\""),
            "pools[0].bootstrap.docker_install_url",
            "only used with",
        );
        let c = ok(&b(
            "docker_install = \"script-url\"\ndocker_install_url = \"https://x/i.sh\"",
        ));
        assert!(matches!(
            c.pools[0].bootstrap.docker_install,
            DockerInstall::ScriptUrl(_)
        ));
    }

    #[test]
    fn block_metadata_in_jobs_can_be_turned_off_and_must_be_a_boolean() {
        let cfg = ok(&format!(
            "{BASE}\n[pools.bootstrap]\nblock_metadata_in_jobs = false\n"
        ));
        assert!(!cfg.pools[0].bootstrap.block_metadata_in_jobs);
        one_err(
            &format!("{BASE}\n[pools.bootstrap]\nblock_metadata_in_jobs = \"no\"\n"),
            "pools[0].bootstrap.block_metadata_in_jobs",
            "expected true or false",
        );
    }

    #[test]
    fn binfmt_arches_are_validated() {
        let src = format!("{BASE}\n[pools.bootstrap]\nbinfmt_arches = [\"arm64\", \"vax\"]\n");
        one_err(
            &src,
            "pools[0].bootstrap.binfmt_arches[1]",
            "unknown architecture `vax`",
        );
    }

    #[test]
    fn runner_repository_only_with_repository_install() {
        let src = format!(
            "{BASE}\n[pools.bootstrap]\nrunner_install = \"image\"\nrunner_repository = \"https://x\"\n"
        );
        one_err(
            &src,
            "pools[0].bootstrap.runner_repository",
            "only used with",
        );
    }

    fn period(lines: &str) -> String {
        format!("{BASE}\n[[pools.periods]]\n{lines}\n")
    }

    #[test]
    fn period_parses_schedules_timezone_and_overrides() {
        let c = ok(&period(
            "schedules = [\"* * 0-8 * * mon-fri *\", \"0 22 * * *\"]\ntimezone = \"Europe/Berlin\"\nidle_count = 1\nidle_time = \"30m\"",
        ));
        let p = &c.pools[0].periods[0];
        assert_eq!(p.schedules.len(), 2);
        assert_eq!(p.timezone, chrono_tz::Europe::Berlin);
        assert_eq!(
            p.overrides,
            PolicyOverrides {
                idle_count: Some(1),
                idle_time: Some(Duration::from_secs(1800)),
                ..Default::default()
            }
        );
    }

    #[test]
    fn period_timezone_defaults_to_utc() {
        let c = ok(&period("schedules = [\"* * * * * * *\"]"));
        assert_eq!(c.pools[0].periods[0].timezone, Tz::UTC);
    }

    #[test]
    fn period_needs_schedules() {
        one_err(
            &period("idle_count = 1"),
            "pools[0].periods[0].schedules",
            "missing required key",
        );
        one_err(
            &period("schedules = []"),
            "pools[0].periods[0].schedules",
            "at least one schedule",
        );
    }

    #[test]
    fn bad_schedules_name_the_expression() {
        one_err(
            &period("schedules = [\"* * * * * *\"]"),
            "pools[0].periods[0].schedules[0]",
            "`* * * * * *`: 6 fields are ambiguous",
        );
        one_err(
            &period("schedules = [\"* * * 31 2 * *\"]"),
            "pools[0].periods[0].schedules[0]",
            "`* * * 31 2 * *`: can never match",
        );
    }

    // Regression, issue 11 item 9: a schedule restricted to a year validated during that
    // year and then refused to load, so the service failed to restart in a loop. Now it
    // loads, is never active, and the warning names file, line, column and key; `run`
    // and `validate` read the same result.
    #[test]
    fn schedule_restricted_to_a_past_year_loads_inactive_with_a_warning() {
        let src = period("schedules = [\"* * * * * * 2025\"]\nidle_count = 0");
        let line = src.lines().count() - 1;
        let during = parse_config(&src, "t.toml", at("2025-06-01T12:00:00Z")).unwrap();
        assert!(during.warnings.is_empty(), "{:?}", during.warnings);
        assert_eq!(
            during.pools[0].policy_at(at("2025-06-01T12:00:00Z")).period,
            Some(0)
        );

        let after = at("2026-01-02T00:00:00Z");
        let cfg = parse_config(&src, "t.toml", after).unwrap_or_else(|e| panic!("{e}"));
        let warnings: Vec<String> = cfg.warnings.iter().map(ToString::to_string).collect();
        assert_eq!(
            warnings,
            [format!(
                "t.toml:{line}:14: pools[0].periods[0].schedules[0]: schedule `* * * * * * 2025` can no longer match (no date from today on satisfies its date fields, e.g. a year in the past); it is never active again, remove it"
            )]
        );
        let pool = &cfg.pools[0];
        assert_eq!(pool.policy_at(after).period, None);
        assert_eq!(pool.policy_at(after).policy, pool.policy);
        assert_eq!(pool.next_transition(after), None);
    }

    // Regression, issue 11 item 9: cron errors spanned three lines and repeated the cron
    // crate's "Hours must be less than 23".
    #[test]
    fn cron_errors_are_one_line_naming_file_line_column_and_field() {
        let src = period("schedules = [\"* * 25 * * * *\", \"0 8 * * mon-fry\"]");
        let line = src.lines().count();
        let e = parse_config(&src, "t.toml", now()).unwrap_err();
        let shown: Vec<String> = e.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                format!(
                    "t.toml:{line}:19: pools[0].periods[0].schedules[0]: schedule `* * 25 * * * *`: hour field `25`: 25 is out of range 0-23 (both included)"
                ),
                format!(
                    "t.toml:{line}:41: pools[0].periods[0].schedules[1]: schedule `0 8 * * mon-fry`: day-of-week field `mon-fry`: `fry` is not a day (use 0-7 or sun..sat)"
                ),
            ]
        );
        assert!(!e.to_string().contains("less than"));
    }

    #[test]
    fn unknown_timezone_is_named_with_a_case_hint() {
        one_err(
            &period("schedules = [\"* * * * *\"]\ntimezone = \"europe/berlin\""),
            "pools[0].periods[0].timezone",
            "did you mean `Europe/Berlin`?",
        );
        one_err(
            &period("schedules = [\"* * * * *\"]\ntimezone = \"Mars/Olympus\""),
            "pools[0].periods[0].timezone",
            "unknown timezone `Mars/Olympus`",
        );
    }

    #[test]
    fn period_limit_is_checked_against_inherited_idle_count() {
        let src = with("[[pools]]", "idle_count = 3")
            + "\n[[pools.periods]]\nschedules = [\"* * * * *\"]\nlimit = 2\n";
        one_err(
            &src,
            "pools[0].periods[0].limit",
            "idle_count 3 (inherited from the pool) exceeds limit 2",
        );
    }

    #[test]
    fn period_idle_count_is_checked_against_inherited_limit() {
        one_err(
            &period("schedules = [\"* * * * *\"]\nidle_count = 5"),
            "pools[0].periods[0].idle_count",
            "exceeds limit 4 (inherited from the pool)",
        );
    }

    #[test]
    fn period_limit_must_be_at_least_one_and_cover_max_growth() {
        one_err(
            &period("schedules = [\"* * * * *\"]\nlimit = 0"),
            "pools[0].periods[0].limit",
            "must be between 1 and 10000",
        );
        let src = with("[[pools]]", "max_growth = 3")
            + "\n[[pools.periods]]\nschedules = [\"* * * * *\"]\nlimit = 2\n";
        one_err(
            &src,
            "pools[0].periods[0].limit",
            "max_growth 3 exceeds limit 2",
        );
    }

    #[test]
    fn period_unknown_key_gets_a_hint() {
        one_err(
            &period("schedules = [\"* * * * *\"]\nidle_cout = 1"),
            "pools[0].periods[0].idle_cout",
            "did you mean `idle_count`?",
        );
    }

    #[test]
    fn suggestions_use_edit_distance() {
        assert_eq!(
            suggest("idle_tme", &["idle_time", "limit"]),
            Some("idle_time")
        );
        assert_eq!(suggest("zzz", &["idle_time", "limit"]), None);
        assert_eq!(levenshtein("kitten", "sitting"), 3);
    }
}
