//! The positioned reader: typed values out of a `toml_edit` document, each with the
//! span and key path it came from, and every problem recorded as a [`ConfigError`] that
//! names file, line, column and key.
//!
//! Generic over sections: it knows TOML types, durations, bounded counts, URLs, choices,
//! `*_file` / `*_env` secrets, required and forbidden keys and unknown-key detection,
//! never what a key means. The section readers (`controller`, `gitlab`, ...) decide that.
//!
//! This file holds the reader itself, errors and their positions, which keys are there
//! (required, defaulted, forbidden, unknown) and tables and arrays; `values` reads the
//! scalars and secrets.

mod values;

use std::ops::Range;

use chrono::{DateTime, Utc};
use toml_edit::{Item, TableLike, Value};

use super::names::{join, path_without_index, suggest, type_name, value_type_name};
use crate::error::{ConfigError, ConfigErrors};

/// Byte range of a value, key or table header in the source text, if known.
pub(super) type Span = Option<Range<usize>>;

/// Collects errors and warnings with positions while the sections are read.
pub(super) struct Ctx<'s> {
    /// Name of the file for messages.
    origin: &'s str,
    /// The text, to turn byte offsets into line and column.
    src: &'s str,
    /// "Today" for schedules that can no longer match.
    pub(super) now: DateTime<Utc>,
    /// Problems found so far.
    errors: Vec<ConfigError>,
    /// Findings that do not stop the file from loading.
    warnings: Vec<ConfigError>,
}

/// A table (or inline table) being read.
#[derive(Clone)]
pub(super) struct Node<'a> {
    /// Its entries.
    pub(super) table: &'a dyn TableLike,
    /// Its key path (`pools[0].server`), empty for the root.
    pub(super) path: String,
    /// Where it is (header or inline table), if known.
    pub(super) span: Span,
}

/// A value with where it came from.
#[derive(Debug, Clone)]
pub(super) struct Sp<T> {
    /// The value.
    pub(super) v: T,
    /// Its span.
    pub(super) span: Span,
    /// Its key path.
    pub(super) path: String,
}

// === impl Node ===

impl Node<'_> {
    /// Whether the table sets `key` at all (valid or not).
    pub(super) fn has(&self, key: &str) -> bool {
        self.table.contains_key(key)
    }
}

// === impl Ctx ===

impl<'s> Ctx<'s> {
    /// A reader of `src`, whose messages name `origin`.
    pub(super) fn new(origin: &'s str, src: &'s str, now: DateTime<Utc>) -> Self {
        Ctx {
            origin,
            src,
            now,
            errors: Vec::new(),
            warnings: Vec::new(),
        }
    }

    // --- errors ---

    fn position(&self, span: &Span) -> Option<(usize, usize)> {
        let start = span.as_ref().map_or(0, |r| r.start).min(self.src.len());
        let before = self.src.get(..start)?;
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let col = before.get(line_start..).map_or(0, |s| s.chars().count()) + 1;
        Some((line, col))
    }

    fn finding(&self, span: &Span, key: &str, message: impl Into<String>) -> ConfigError {
        ConfigError {
            origin: self.origin.to_owned(),
            position: self.position(span),
            key: key.to_owned(),
            message: message.into(),
        }
    }

    /// Records an error for `key` at `span`.
    pub(super) fn err(&mut self, span: &Span, key: &str, message: impl Into<String>) {
        let e = self.finding(span, key, message);
        self.errors.push(e);
    }

    /// Like [`Self::err`], for something that does not stop the file from loading.
    pub(super) fn warn(&mut self, span: &Span, key: &str, message: impl Into<String>) {
        let w = self.finding(span, key, message);
        self.warnings.push(w);
    }

    /// An error for `key` of `node`, at the key's value.
    pub(super) fn err_at(&mut self, node: &Node<'_>, key: &str, message: &str) {
        let span = self.entry(node, key).and_then(|e| e.1);
        self.err(&span, &join(&node.path, key), message);
    }

    /// How many errors so far, to tell later whether a section added any.
    pub(super) fn mark(&self) -> usize {
        self.errors.len()
    }

    /// `value` when no error was recorded since `mark`.
    pub(super) fn clean_since<T>(&self, mark: usize, value: T) -> Option<T> {
        (self.errors.len() == mark).then_some(value)
    }

    /// `value` with the warnings when it is there and nothing was wrong, else every
    /// error; both in file order.
    pub(super) fn finish<T>(self, value: Option<T>) -> Result<(T, Vec<ConfigError>), ConfigErrors> {
        match value {
            Some(v) if self.errors.is_empty() => {
                let mut warnings = self.warnings;
                warnings.sort_by_key(|e| e.position);
                Ok((v, warnings))
            }
            _ => Err(self.into_errors()),
        }
    }

    /// Every error, in file order.
    pub(super) fn into_errors(self) -> ConfigErrors {
        let mut errors = self.errors;
        errors.sort_by_key(|e| e.position);
        ConfigErrors(errors)
    }

    /// The span of the part of string value `text` (at `span`) that starts at byte
    /// `offset`, when the file spells the string without escapes; else the value's span.
    pub(super) fn inner_span(&self, span: &Span, text: &str, offset: usize) -> Span {
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

    // --- required, defaulted and forbidden keys ---

    /// When `node` does not set `key`: an error `message` for it, at the table; `true`
    /// if reported.
    pub(super) fn missing_because(&mut self, node: &Node<'_>, key: &str, message: &str) -> bool {
        if node.has(key) {
            return false;
        }
        let path = join(&node.path, key);
        self.err(&node.span, &path, message);
        true
    }

    /// When `node` does not set `key`: "missing required key".
    pub(super) fn require(&mut self, node: &Node<'_>, key: &str) {
        self.missing_because(node, key, "missing required key");
    }

    /// `read` of a key that must be set.
    pub(super) fn required<'a, T>(
        &mut self,
        node: &Node<'a>,
        key: &str,
        read: impl FnOnce(&mut Self, &Node<'a>, &str) -> Option<T>,
    ) -> Option<T> {
        let v = read(self, node, key);
        if v.is_none() {
            self.require(node, key);
        }
        v
    }

    /// `read` of an optional key, `default()` when the table does not set it; `None`
    /// when it is set but wrong (already reported).
    pub(super) fn defaulted<'a, T>(
        &mut self,
        node: &Node<'a>,
        key: &str,
        read: impl FnOnce(&mut Self, &Node<'a>, &str) -> Option<T>,
        default: impl FnOnce() -> T,
    ) -> Option<T> {
        match read(self, node, key) {
            Some(v) => Some(v),
            None if node.has(key) => None,
            None => Some(default()),
        }
    }

    /// A key that must not be set in this situation.
    pub(super) fn forbid(&mut self, node: &Node<'_>, key: &str, why: &str) {
        if let Some((k, _)) = node.table.get_key_value(key) {
            let path = join(&node.path, key);
            self.err(&k.span(), &path, why.to_owned());
        }
    }

    /// Reports keys of `node` that are not in `known`, and inline secrets.
    pub(super) fn check_keys(&mut self, node: &Node<'_>, known: &[&str], secrets: &[&str]) {
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

    // --- entries ---

    /// The entry `key` of `node`: (key path, span of the value or key, item).
    pub(super) fn entry<'a>(&self, node: &Node<'a>, key: &str) -> Option<(String, Span, &'a Item)> {
        let (k, item) = node.table.get_key_value(key)?;
        let span = item.span().or_else(|| k.span());
        Some((join(&node.path, key), span, item))
    }

    // --- arrays and tables ---

    /// An array of values, each with its path `key[i]` and span.
    pub(super) fn array<'a>(
        &mut self,
        node: &Node<'a>,
        key: &str,
    ) -> Option<Vec<(String, Span, &'a Value)>> {
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
    pub(super) fn str_list(&mut self, node: &Node<'_>, key: &str) -> Option<Vec<Sp<String>>> {
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

    /// A table or inline table.
    pub(super) fn table<'a>(&mut self, node: &Node<'a>, key: &str) -> Option<Node<'a>> {
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

    /// A [`Self::table`] that must be there; `hint` follows "missing required table
    /// [path]".
    pub(super) fn required_table<'a>(
        &mut self,
        node: &Node<'a>,
        key: &str,
        hint: &str,
    ) -> Option<Node<'a>> {
        let t = self.table(node, key);
        if t.is_none() {
            let path = path_without_index(&join(&node.path, key));
            self.missing_because(node, key, &format!("missing required table [{path}]{hint}"));
        }
        t
    }

    /// `[[key]]` blocks (or an array of inline tables).
    pub(super) fn tables<'a>(&mut self, node: &Node<'a>, key: &str) -> Option<Vec<Node<'a>>> {
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
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use crate::parse::parse_config;
    use crate::parse::testing::*;

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
    fn error_position_is_line_and_column_of_the_value() {
        let e =
            parse_config(&BASE.replace("limit = 4", "limit = -4"), "t.toml", now()).unwrap_err();
        assert_eq!(e.0[0].position, Some((14, 9)));
        assert_eq!(
            e.0[0].message,
            "-4 is out of range: must be between 1 and 10000"
        );
    }
}
