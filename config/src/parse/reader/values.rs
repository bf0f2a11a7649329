//! Scalar values of the positioned reader: strings, paths, booleans, integers and
//! bounded counts, durations (humantime or seconds) and bounded ones, http(s) URLs,
//! choices from a fixed list, and `*_file` / `*_env` secret sources. Each getter
//! returns `None` for an absent key without a word and reports a wrong one.

use std::path::PathBuf;
use std::time::Duration;

use toml_edit::{Item, Value};
use url::Url;

use super::{Ctx, Node, Sp};
use crate::parse::names::{join, type_name};
use crate::secret::SecretSource;

impl Ctx<'_> {
    /// A string, possibly empty.
    pub(in crate::parse) fn any_str(&mut self, node: &Node<'_>, key: &str) -> Option<Sp<String>> {
        self.convert(node, key, |item| {
            item.as_str()
                .map(str::to_owned)
                .ok_or_else(|| format!("expected a string, found {}", type_name(item)))
        })
    }

    /// A string that is not blank.
    pub(in crate::parse) fn str(&mut self, node: &Node<'_>, key: &str) -> Option<Sp<String>> {
        let s = self.any_str(node, key)?;
        if s.v.trim().is_empty() {
            self.err(&s.span, &s.path, "must not be empty");
            return None;
        }
        Some(s)
    }

    /// [`Self::str`], or `default` when unset (or wrong, which is reported).
    pub(in crate::parse) fn str_or(&mut self, node: &Node<'_>, key: &str, default: &str) -> String {
        self.str(node, key)
            .map_or_else(|| default.to_owned(), |s| s.v)
    }

    /// A file path.
    pub(in crate::parse) fn path(&mut self, node: &Node<'_>, key: &str) -> Option<PathBuf> {
        self.str(node, key).map(|s| PathBuf::from(s.v))
    }

    pub(in crate::parse) fn bool(&mut self, node: &Node<'_>, key: &str) -> Option<bool> {
        self.convert(node, key, |item| {
            item.as_bool()
                .ok_or_else(|| format!("expected true or false, found {}", type_name(item)))
        })
        .map(|s| s.v)
    }

    /// The entry `key` turned into a `T` by `convert`, or refused with its message.
    fn convert<T>(
        &mut self,
        node: &Node<'_>,
        key: &str,
        convert: impl FnOnce(&Item) -> Result<T, String>,
    ) -> Option<Sp<T>> {
        let (path, span, item) = self.entry(node, key)?;
        match convert(item) {
            Ok(v) => Some(Sp { v, span, path }),
            Err(msg) => {
                self.err(&span, &path, msg);
                None
            }
        }
    }

    /// An integer, turned into a `T` by `convert` or refused with its message.
    fn int<T>(
        &mut self,
        node: &Node<'_>,
        key: &str,
        convert: impl FnOnce(i64) -> Result<T, String>,
    ) -> Option<Sp<T>> {
        self.convert(node, key, |item| match item.as_integer() {
            Some(i) => convert(i),
            None => Err(format!("expected an integer, found {}", type_name(item))),
        })
    }

    /// A count that fits in a `u32`.
    pub(in crate::parse) fn u32(&mut self, node: &Node<'_>, key: &str) -> Option<Sp<u32>> {
        self.int(node, key, |i| {
            u32::try_from(i).map_err(|_| {
                if i < 0 {
                    format!("must not be negative, found {i}")
                } else {
                    format!("{i} is too large")
                }
            })
        })
    }

    /// An id as GitLab counts them: 1 and up.
    pub(in crate::parse) fn positive_u64(&mut self, node: &Node<'_>, key: &str) -> Option<u64> {
        self.int(node, key, |i| {
            u64::try_from(i)
                .ok()
                .filter(|v| *v > 0)
                .ok_or_else(|| format!("must be a positive id, found {i}"))
        })
        .map(|s| s.v)
    }

    /// A count within `min..=max`; outside, an error naming the value and the bounds.
    pub(in crate::parse) fn bounded_u32(
        &mut self,
        node: &Node<'_>,
        key: &str,
        (min, max): (u32, u32),
    ) -> Option<Sp<u32>> {
        self.int(node, key, |i| {
            u32::try_from(i)
                .ok()
                .filter(|v| (min..=max).contains(v))
                .ok_or_else(|| format!("{i} is out of range: must be between {min} and {max}"))
        })
    }

    /// A humantime string (`"30m"`, `"1h 30m"`) or integer seconds.
    pub(in crate::parse) fn duration(
        &mut self,
        node: &Node<'_>,
        key: &str,
    ) -> Option<Sp<Duration>> {
        self.convert(node, key, |item| match item.as_value() {
            Some(Value::String(s)) => humantime::parse_duration(s.value().trim())
                .map_err(|e| format!("invalid duration `{}`: {e}; use e.g. \"90s\", \"30m\", \"1h\" or integer seconds", s.value())),
            Some(Value::Integer(i)) => u64::try_from(*i.value())
                .map(Duration::from_secs)
                .map_err(|_| format!("invalid duration {}: seconds must not be negative", i.value())),
            _ => Err(format!(
                "expected a duration such as \"30m\" or integer seconds, found {}",
                type_name(item)
            )),
        })
    }

    /// A [`Self::duration`] within `min..=max`; outside, an error naming the value as
    /// written and the bounds.
    pub(in crate::parse) fn bounded_duration(
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

    /// The value of `key` as written in the file, for messages (never used for secrets).
    fn raw(&self, node: &Node<'_>, key: &str) -> String {
        match node.table.get(key).and_then(Item::as_value) {
            Some(Value::String(s)) => format!("`{}`", s.value().escape_debug()),
            Some(v) => format!("`{}`", v.to_string().trim()),
            None => "the value".to_owned(),
        }
    }

    /// A [`Self::str`] turned into a `T` by `parse`, or refused with its message.
    pub(in crate::parse) fn str_as<T>(
        &mut self,
        node: &Node<'_>,
        key: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        let s = self.str(node, key)?;
        match parse(&s.v) {
            Ok(v) => Some(v),
            Err(msg) => {
                self.err(&s.span, &s.path, msg);
                None
            }
        }
    }

    /// An http(s) URL with a host.
    pub(in crate::parse) fn url(&mut self, node: &Node<'_>, key: &str) -> Option<Url> {
        self.str_as(node, key, |s| match Url::parse(s) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(u),
            Ok(_) => Err(format!("`{s}` is not an http(s) URL")),
            Err(e) => Err(format!("invalid URL `{s}`: {e}")),
        })
    }

    /// One of `choices` (TOML spelling → value).
    pub(in crate::parse) fn choice<T: Copy>(
        &mut self,
        node: &Node<'_>,
        key: &str,
        choices: &[(&str, T)],
    ) -> Option<T> {
        self.str_as(node, key, |s| {
            match choices.iter().find(|(name, _)| *name == s) {
                Some((_, v)) => Ok(*v),
                None => {
                    let names: Vec<String> =
                        choices.iter().map(|(n, _)| format!("`{n}`")).collect();
                    Err(format!(
                        "unknown value `{s}`, expected one of {}",
                        names.join(", ")
                    ))
                }
            }
        })
    }

    /// [`Self::choice`], the first choice when unset; `None` when set but wrong.
    pub(in crate::parse) fn choice_or_first<T: Copy>(
        &mut self,
        node: &Node<'_>,
        key: &str,
        choices: &[(&str, T)],
    ) -> Option<T> {
        let first = choices.first().map(|c| c.1);
        if node.has(key) {
            self.choice(node, key, choices)
        } else {
            first
        }
    }

    /// `<base>_file` or `<base>_env`, exactly one when `required`, at most one otherwise.
    pub(in crate::parse) fn secret(
        &mut self,
        node: &Node<'_>,
        base: &str,
        required: bool,
    ) -> Option<SecretSource> {
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
            (None, Some(e)) if is_env_name(&e.v) => Some(SecretSource::Env(e.v)),
            (None, Some(e)) => {
                self.err(
                    &e.span,
                    &e.path,
                    format!("`{}` is not a valid environment variable name", e.v),
                );
                None
            }
            (None, None) => {
                // An inline value is reported by `check_keys` already.
                if required && !node.has(&file_key) && !node.has(&env_key) && !node.has(base) {
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
}

/// `[A-Za-z_][A-Za-z0-9_]*`.
fn is_env_name(s: &str) -> bool {
    s.chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::Duration;

    use crate::parse::testing::*;

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
}
