//! Quoting of values substituted into shell and TOML. Every value that comes from the
//! configuration goes through one of these; nothing is pasted raw.

/// Quotes `value` as one POSIX shell word: single quotes around it, and each `'` inside
/// written as `'\''`. Nothing inside single quotes is special to the shell (`$`, `` ` ``,
/// `\`, spaces, newlines stay literal).
pub(crate) fn shell_quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    for c in value.chars() {
        if c == '\'' {
            out.push_str("'\\''");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    out
}

/// Writes `value` as a TOML basic string (double quotes) with the escapes of the TOML
/// 1.0 spec: `\"`, `\\`, the short forms for common control characters and `\uXXXX`
/// for the others.
pub(crate) fn toml_string(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\u{c}' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() && (c <= '\u{1f}' || c == '\u{7f}') => {
                out.push_str(&format!("\\u{:04X}", u32::from(c)));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const NASTY: &str = "it's $HOME `id` \\ \"q\" two  spaces\ttab\nnewline \u{1} ctl \u{7f} é";

    #[test]
    fn shell_quote_survives_a_round_trip_through_sh() {
        let script = format!("printf '%s' {}", shell_quote(NASTY));
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(script)
            .output()
            .unwrap();
        assert!(out.status.success());
        assert_eq!(String::from_utf8(out.stdout).unwrap(), NASTY);
    }

    #[test]
    fn shell_quote_of_empty_string_is_an_empty_word() {
        assert_eq!(shell_quote(""), "''");
    }

    #[test]
    fn toml_string_survives_a_round_trip_through_a_toml_parser() {
        let doc: toml_edit::DocumentMut = format!("k = {}\n", toml_string(NASTY)).parse().unwrap();
        assert_eq!(doc["k"].as_str().unwrap(), NASTY);
    }

    #[test]
    fn toml_string_escapes_quotes_and_backslashes() {
        assert_eq!(toml_string(r#"a"b\c"#), r#""a\"b\\c""#);
    }
}
