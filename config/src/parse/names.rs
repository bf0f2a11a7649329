//! How the reader names things in messages: key paths (`pools[0].server`), TOML types
//! ("an inline table"), values as written, and the known key closest to an unknown one.
//! Also the one rule for names the file gives (controller id, pool name). Pure text.

use toml_edit::{Item, Value};

/// `key` under `path` (the root's path is empty).
pub(super) fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// `path` without array indices, as a table header spells it (`pools.server`).
pub(super) fn path_without_index(path: &str) -> String {
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
pub(super) fn valid_name(s: &str, max: usize) -> bool {
    s.len() <= max
        && s.bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// "a table", "an integer", ... for "expected X, found Y".
pub(super) fn type_name(item: &Item) -> &'static str {
    match item {
        Item::None => "nothing",
        Item::Value(v) => value_type_name(v),
        Item::Table(_) => "a table",
        Item::ArrayOfTables(_) => "an array of tables",
    }
}

/// [`type_name`] of a value.
pub(super) fn value_type_name(v: &Value) -> &'static str {
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

/// A string or integer as written; other values by their type.
pub(super) fn value_repr(v: &Value) -> String {
    match v {
        Value::String(s) => format!("\"{}\"", s.value()),
        Value::Integer(i) => i.value().to_string(),
        other => value_type_name(other).to_owned(),
    }
}

/// The known key closest to `key`: equal ignoring case and `_`/`-` (docker+machine's
/// `IdleCount`), or within a small edit distance.
pub(super) fn suggest<'k>(key: &str, known: &[&'k str]) -> Option<&'k str> {
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
mod tests {
    use super::*;

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
