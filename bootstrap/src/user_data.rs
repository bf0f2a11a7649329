//! The rendered user-data. It holds the runner token and S3 keys, so it is kept as a
//! secret (zeroed on drop) and its `Debug` shows sizes only.

use base64::Engine as _;
use secrecy::{ExposeSecret, SecretString};

/// Rendered cloud-init user-data for one VM.
///
/// `Debug` prints the sizes and whether secrets were redacted, never the text.
#[derive(Clone)]
pub struct UserData {
    /// The document; may contain the runner token and S3 keys.
    text: SecretString,
    /// Whether secrets were replaced by [`REDACTED`](crate::REDACTED).
    redacted: bool,
}

// === impl UserData ===

impl UserData {
    pub(crate) fn new(text: String, redacted: bool) -> Self {
        Self {
            text: SecretString::from(text),
            redacted,
        }
    }

    /// The user-data text (a `#cloud-config` document). Unless
    /// [`is_redacted`](Self::is_redacted), it contains secrets: do not log it.
    #[must_use]
    pub fn as_str(&self) -> &str {
        self.text.expose_secret()
    }

    /// Length of the text in bytes.
    #[must_use]
    pub fn len(&self) -> usize {
        self.as_str().len()
    }

    /// Whether the text is empty (never true for rendered user-data).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.as_str().is_empty()
    }

    /// Length of the base64 encoding Nova receives, as checked against
    /// [`NOVA_USER_DATA_LIMIT`](crate::NOVA_USER_DATA_LIMIT).
    #[must_use]
    pub fn base64_len(&self) -> usize {
        base64_len(self.len())
    }

    /// The base64 encoding (standard alphabet, padded) for Nova's `user_data` field.
    /// It carries the same secrets as the text.
    #[must_use]
    pub fn to_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.as_str())
    }

    /// Whether secrets were replaced by a placeholder (a preview, not for Nova).
    #[must_use]
    pub fn is_redacted(&self) -> bool {
        self.redacted
    }
}

impl std::fmt::Debug for UserData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserData")
            .field("len", &self.len())
            .field("base64_len", &self.base64_len())
            .field("redacted", &self.redacted)
            .finish_non_exhaustive()
    }
}

/// Padded base64 length of `n` bytes.
pub(crate) fn base64_len(n: usize) -> usize {
    n.div_ceil(3) * 4
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_len_matches_the_encoder() {
        for n in 0..10 {
            let data = UserData::new("x".repeat(n), false);
            assert_eq!(data.base64_len(), data.to_base64().len(), "n = {n}");
        }
    }

    #[test]
    fn debug_shows_sizes_but_not_the_text() {
        let data = UserData::new("token = \"glrt-secret\"".to_owned(), false);
        let debug = format!("{data:?}");
        assert!(!debug.contains("glrt-secret"), "{debug}");
        assert!(debug.contains("len: 21"), "{debug}");
    }
}
