//! Configuration errors: every problem found in a file, each with file, line, column and
//! key path, so one `validate` run reports everything at once.

use std::fmt;

/// One problem in a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file (or other origin) the text came from, as given to [`crate::parse`].
    pub origin: String,
    /// 1-based line and column (in characters) of the offending key or value; `None`
    /// when the problem has no position (the file could not be read).
    pub position: Option<(usize, usize)>,
    /// Dotted key path such as `pools[0].idle_time`; empty for file-level problems.
    pub key: String,
    /// What is wrong, lowercase, without a trailing period.
    pub message: String,
}

/// Every problem found in one configuration file, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

// === impl ConfigError ===

impl ConfigError {
    /// The 1-based line, or 0 without a position.
    pub fn line(&self) -> usize {
        self.position.map_or(0, |p| p.0)
    }

    /// The 1-based column, or 0 without a position.
    pub fn column(&self) -> usize {
        self.position.map_or(0, |p| p.1)
    }
}

impl fmt::Display for ConfigError {
    /// `<file>:<line>:<col>: <key path>: <message>`; parts that do not apply are left out.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.origin)?;
        if let Some((line, col)) = self.position {
            write!(f, ":{line}:{col}")?;
        }
        if !self.key.is_empty() {
            write!(f, ": {}", self.key)?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

// === impl ConfigErrors ===

impl ConfigErrors {
    /// Number of problems.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no problems (never true for a returned error).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Iterates over the problems.
    pub fn iter(&self) -> std::slice::Iter<'_, ConfigError> {
        self.0.iter()
    }
}

impl fmt::Display for ConfigErrors {
    /// One problem per line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl<'a> IntoIterator for &'a ConfigErrors {
    type Item = &'a ConfigError;
    type IntoIter = std::slice::Iter<'a, ConfigError>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_displays_file_position_key_and_message() {
        let e = ConfigError {
            origin: "cfg.toml".into(),
            position: Some((12, 1)),
            key: "pools[0].idle_tme".into(),
            message: "unknown key, did you mean `idle_time`?".into(),
        };
        assert_eq!(
            e.to_string(),
            "cfg.toml:12:1: pools[0].idle_tme: unknown key, did you mean `idle_time`?"
        );
    }

    #[test]
    fn errors_display_one_per_line() {
        let e = |line| ConfigError {
            origin: "a.toml".into(),
            position: Some((line, 3)),
            key: "k".into(),
            message: "bad".into(),
        };
        let all = ConfigErrors(vec![e(1), e(2)]);
        assert_eq!(all.to_string(), "a.toml:1:3: k: bad\na.toml:2:3: k: bad");
    }

    #[test]
    fn error_without_position_or_key_omits_them() {
        let e = ConfigError {
            origin: "/etc/x.toml".into(),
            position: None,
            key: String::new(),
            message: "cannot read file: not found".into(),
        };
        assert_eq!(e.to_string(), "/etc/x.toml: cannot read file: not found");
    }
}
