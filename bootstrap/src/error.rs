//! Why rendering can fail. Messages name the offending key and value, except for
//! secrets, whose values never appear in an error.

use crate::NOVA_USER_DATA_LIMIT;

/// An error from [`render`](crate::render) and its siblings.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RenderError {
    /// The user-data would not fit into Nova's `user_data` field.
    #[error(
        "user-data is {base64_len} bytes as base64 ({raw_len} bytes raw), over nova's limit of {limit} bytes; shrink extra_cloud_config, shell_before or shell_after"
    )]
    TooLarge {
        /// Size of the base64 encoding Nova would receive.
        base64_len: usize,
        /// Size of the user-data before encoding.
        raw_len: usize,
        /// Nova's limit, [`NOVA_USER_DATA_LIMIT`].
        limit: usize,
    },
    /// A setting has a value the renderer cannot use.
    #[error("{key}: invalid value `{value}`: {reason}")]
    InvalidValue {
        /// The configuration key, e.g. `pools.bootstrap.docker_install_url`.
        key: &'static str,
        /// The offending value (never a secret).
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A secret has a value the renderer cannot use; the value is not shown.
    #[error("{key}: {reason}")]
    InvalidSecret {
        /// Which secret, e.g. `runner token`.
        key: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// `extra_cloud_config` is not valid YAML.
    #[error("pools.bootstrap.extra_cloud_config: not valid yaml")]
    ExtraCloudConfigSyntax(#[source] serde_yaml_ng::Error),
    /// `extra_cloud_config` is valid YAML but cannot be merged with the bootstrap's
    /// own cloud-config.
    #[error("pools.bootstrap.extra_cloud_config: {key}: {reason}")]
    ExtraCloudConfigMerge {
        /// The top-level key (or `key[index].field` path) that clashes.
        key: String,
        /// Why it cannot be merged.
        reason: String,
    },
    /// The YAML emitter failed; this indicates a bug in the renderer.
    #[error("could not serialise the cloud-config")]
    Emit(#[source] serde_yaml_ng::Error),
}

// === impl RenderError ===

impl RenderError {
    /// Whether retrying could help. Rendering is pure, so the same input fails the same
    /// way: never transient.
    #[must_use]
    pub fn is_transient(&self) -> bool {
        false
    }

    /// A short, stable name for metrics and logs.
    #[must_use]
    pub fn label(&self) -> &'static str {
        match self {
            Self::TooLarge { .. } => "user_data_too_large",
            Self::InvalidValue { .. } => "invalid_value",
            Self::InvalidSecret { .. } => "invalid_secret",
            Self::ExtraCloudConfigSyntax(_) => "extra_cloud_config_syntax",
            Self::ExtraCloudConfigMerge { .. } => "extra_cloud_config_merge",
            Self::Emit(_) => "emit",
        }
    }

    pub(crate) fn too_large(raw_len: usize, base64_len: usize) -> Self {
        Self::TooLarge {
            base64_len,
            raw_len,
            limit: NOVA_USER_DATA_LIMIT,
        }
    }

    pub(crate) fn merge(key: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::ExtraCloudConfigMerge {
            key: key.into(),
            reason: reason.into(),
        }
    }
}
