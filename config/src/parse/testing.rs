//! Helpers for the section readers' unit tests: [`BASE`], a minimal valid file, ways
//! to vary it (`with`, `period`) and to read the outcome (`ok`, `errs`, `one_err`).

#![allow(clippy::unwrap_used)]

use std::fmt;
use std::ops::Deref;
use std::sync::LazyLock;

use chrono::{DateTime, Utc};

use super::parse_config;
use crate::fixture::{ConfigFixture, PoolFixture};
use crate::model::Config;

/// A minimal valid file: one pool with a server and a tagged runner. Tests edit its text
/// (`BASE.replace(..)`, [`with`]), so they rely on its lines: `id = "ci"`, `limit = 4`,
/// `[controller]` on line 2 (the header comment is line 1), one table after another.
pub(super) static BASE: Base = Base(LazyLock::new(|| {
    ConfigFixture::new()
        .header("A minimal valid file: one pool with a server and a tagged runner.")
        .pool(PoolFixture::new("default"))
        .render()
}));

/// The text of [`BASE`], rendered once; it reads as a `str` and formats as one.
pub(super) struct Base(LazyLock<String>);

impl Deref for Base {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Base {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self)
    }
}

/// The "today" of the tests: 2025-01-01.
pub(super) fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2025-01-01T00:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

/// An RFC 3339 instant.
pub(super) fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// The config `src` gives, which must be valid.
pub(super) fn ok(src: &str) -> Config {
    parse_config(src, "t.toml", now()).unwrap_or_else(|e| panic!("{e}"))
}

/// `(key, message)` of every error.
pub(super) fn errs(src: &str) -> Vec<(String, String)> {
    match parse_config(src, "t.toml", now()) {
        Ok(_) => panic!("expected errors for:\n{src}"),
        Err(e) => e.0.into_iter().map(|e| (e.key, e.message)).collect(),
    }
}

/// Exactly one error, for `key`, whose message contains `fragment`.
pub(super) fn one_err(src: &str, key: &str, fragment: &str) {
    let e = errs(src);
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(e[0].0, key, "{e:?}");
    assert!(e[0].1.contains(fragment), "{e:?}");
}

/// BASE with `line` added at the end of the table whose header is `header`.
pub(super) fn with(header: &str, line: &str) -> String {
    let start = BASE.find(header).unwrap_or_else(|| panic!("{header}")) + header.len();
    let end = BASE[start..].find("\n[").map_or(BASE.len(), |i| start + i);
    format!("{}\n{line}{}", &BASE[..end], &BASE[end..])
}

/// BASE with one `[[pools.periods]]` block made of `lines`.
pub(super) fn period(lines: &str) -> String {
    format!("{BASE}\n[[pools.periods]]\n{lines}\n")
}
