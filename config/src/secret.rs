//! Secrets named by the configuration (`*_file` / `*_env`) and their resolution.
//!
//! The configuration never holds a secret value, only where to find it. Values are read
//! on demand through [`Env`] (tests pass a map; nothing here sets environment variables)
//! and come back wrapped in [`SecretString`], whose `Debug` output is redacted. Errors
//! name the file or variable, never the value.

use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasher;
use std::path::PathBuf;

use secrecy::SecretString;

/// Read access to environment variables.
pub trait Env {
    /// The variable's value, or `None` when it is not set (or not valid UTF-8).
    fn var(&self, name: &str) -> Option<String>;
}

/// The process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

/// Where a secret is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// A file holding the secret; one trailing line break is removed.
    File(PathBuf),
    /// An environment variable holding the secret.
    Env(String),
}

/// Why a secret could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The secret file could not be read.
    #[error("cannot read secret file {}", path.display())]
    Read {
        /// The file that was named.
        path: PathBuf,
        /// The I/O failure.
        #[source]
        source: std::io::Error,
    },
    /// The secret file is empty (or only a line break).
    #[error("secret file {} is empty", path.display())]
    EmptyFile {
        /// The file that was named.
        path: PathBuf,
    },
    /// The environment variable is not set.
    #[error("environment variable {name} is not set")]
    EnvNotSet {
        /// The variable that was named.
        name: String,
    },
    /// The environment variable is set but empty.
    #[error("environment variable {name} is empty")]
    EnvEmpty {
        /// The variable that was named.
        name: String,
    },
}

// === impl Env ===

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl<S: BuildHasher> Env for HashMap<String, String, S> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}

impl Env for BTreeMap<String, String> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}

// === impl SecretSource ===

impl SecretSource {
    /// Reads the secret.
    ///
    /// # Errors
    ///
    /// [`SecretError`] when the file cannot be read or is empty, or the variable is unset
    /// or empty. The error names the file or variable, never its content.
    pub fn resolve(&self, env: &dyn Env) -> Result<SecretString, SecretError> {
        match self {
            SecretSource::File(path) => {
                let mut text =
                    std::fs::read_to_string(path).map_err(|source| SecretError::Read {
                        path: path.clone(),
                        source,
                    })?;
                if text.ends_with('\n') {
                    text.pop();
                    if text.ends_with('\r') {
                        text.pop();
                    }
                }
                if text.is_empty() {
                    return Err(SecretError::EmptyFile { path: path.clone() });
                }
                Ok(SecretString::from(text))
            }
            SecretSource::Env(name) => match env.var(name) {
                None => Err(SecretError::EnvNotSet { name: name.clone() }),
                Some(v) if v.is_empty() => Err(SecretError::EnvEmpty { name: name.clone() }),
                Some(v) => Ok(SecretString::from(v)),
            },
        }
    }
}

impl std::fmt::Display for SecretSource {
    /// `file /path` or `env NAME`: where, never what.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SecretSource::File(p) => write!(f, "file {}", p.display()),
            SecretSource::Env(n) => write!(f, "env {n}"),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    fn temp_file(name: &str, content: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("autoscaler-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(name);
        std::fs::write(&p, content).unwrap();
        p
    }

    #[test]
    fn env_secret_is_read_through_the_env_trait() {
        let env: HashMap<String, String> = [("TOKEN".to_owned(), "glpat-x".to_owned())].into();
        let s = SecretSource::Env("TOKEN".into()).resolve(&env).unwrap();
        assert_eq!(s.expose_secret(), "glpat-x");
    }

    #[test]
    fn unset_and_empty_env_secrets_are_errors_naming_the_variable() {
        let env: HashMap<String, String> = [("EMPTY".to_owned(), String::new())].into();
        let e = SecretSource::Env("MISSING".into())
            .resolve(&env)
            .unwrap_err();
        assert_eq!(e.to_string(), "environment variable MISSING is not set");
        let e = SecretSource::Env("EMPTY".into()).resolve(&env).unwrap_err();
        assert_eq!(e.to_string(), "environment variable EMPTY is empty");
    }

    #[test]
    fn file_secret_loses_one_trailing_newline() {
        let p = temp_file("token", "s3cr3t\n");
        let s = SecretSource::File(p)
            .resolve(&HashMap::<String, String>::new())
            .unwrap();
        assert_eq!(s.expose_secret(), "s3cr3t");
    }

    #[test]
    fn missing_and_empty_files_are_errors_naming_the_file() {
        let env = HashMap::<String, String>::new();
        let e = SecretSource::File("/nonexistent/token".into())
            .resolve(&env)
            .unwrap_err();
        assert_eq!(e.to_string(), "cannot read secret file /nonexistent/token");
        let p = temp_file("empty", "\n");
        let e = SecretSource::File(p.clone()).resolve(&env).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("secret file {} is empty", p.display())
        );
    }

    #[test]
    fn debug_of_resolved_secret_is_redacted() {
        let env: HashMap<String, String> = [("T".to_owned(), "hunter2".to_owned())].into();
        let s = SecretSource::Env("T".into()).resolve(&env).unwrap();
        assert!(!format!("{s:?}").contains("hunter2"));
    }
}
