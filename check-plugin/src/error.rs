//! Errors of the check plugin. Every one ends as a single UNKNOWN line; none holds a secret.

/// A threshold range that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid range {text:?}: {reason}")]
pub struct RangeError {
    /// The text as given.
    pub text: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

/// A bad command-line argument.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArgError {
    /// `-s` names no subcheck.
    #[error("unknown subcheck {0:?} (expected all, runners, vms, queue or controller)")]
    UnknownSubcheck(String),
    /// `-w`/`-c` names no metric.
    #[error("unknown metric {0:?} in a threshold (see --help for the list)")]
    UnknownMetric(String),
    /// `-w`/`-c` value malformed.
    #[error("invalid threshold {flag} {arg}: {reason}")]
    Threshold {
        /// `-w` or `-c`.
        flag: &'static str,
        /// The argument as given.
        arg: String,
        /// What is wrong.
        reason: String,
    },
    /// `-t` out of range.
    #[error("invalid timeout {0:?}: expected whole seconds between 1 and 3600")]
    Timeout(String),
    /// `--now` malformed.
    #[error("invalid --now {0:?}: expected an RFC 3339 time such as 2026-01-02T03:04:05Z")]
    Now(String),
}

/// Why a part of the snapshot could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// No HTTP answer (connection refused, reset, client timeout).
    #[error("{what}: no answer from {url} ({reason})")]
    Transport {
        /// The call, e.g. `gitlab runners`.
        what: String,
        /// The URL without query or credentials.
        url: String,
        /// The root cause in a few words (see [`transport_reason`]).
        reason: String,
    },
    /// An HTTP status other than success.
    #[error("{what}: {url} answered HTTP {status}{hint}")]
    Status {
        /// The call.
        what: String,
        /// The URL without query.
        url: String,
        /// The status code.
        status: u16,
        /// A hint such as " (token refused)".
        hint: &'static str,
    },
    /// A body that does not parse.
    #[error("{what}: unexpected answer from {url}")]
    Body {
        /// The call.
        what: String,
        /// The URL without query.
        url: String,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// A body larger than the limit (nothing of it is used).
    #[error("{what}: the answer from {url} is larger than the limit of {limit} bytes")]
    TooLarge {
        /// The call.
        what: String,
        /// The URL without query.
        url: String,
        /// The limit.
        limit: usize,
    },
    /// A redirect off the configured origin, refused so the token is not sent there.
    #[error(
        "{what}: {url}: {reason}; set gitlab.url to the address gitlab redirects to if it moved"
    )]
    Redirect {
        /// The call.
        what: String,
        /// The URL without query.
        url: String,
        /// From which origin to which.
        reason: String,
    },
    /// A read of the controller's GitLab adapter failed.
    #[error("{what}: {reason}")]
    GitLab {
        /// The read, e.g. `gitlab runner list`.
        what: &'static str,
        /// The request and what GitLab answered (never a token).
        reason: String,
    },
    /// Something the configuration or the environment lacks.
    #[error("{0}")]
    Setup(String),
    /// An OpenStack client error.
    #[error("openstack {what}")]
    OpenStack {
        /// The call.
        what: &'static str,
        /// The adapter's error.
        #[source]
        source: autoscaler_openstack::Error,
    },
}

/// The root cause of a reqwest failure in a few words: `timed out`, `connection refused`,
/// or the innermost error's message (reqwest's own message repeats the URL).
pub fn transport_reason(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        return "timed out".into();
    }
    let mut root: &dyn std::error::Error = e;
    while let Some(next) = root.source() {
        root = next;
    }
    let msg = root.to_string();
    let msg = msg
        .split(" (os error")
        .next()
        .unwrap_or(&msg)
        .to_lowercase();
    if e.is_connect() && !msg.contains("connect") && !msg.contains("refused") {
        format!("cannot connect: {msg}")
    } else {
        msg
    }
}
