//! Cross-crate scenario tests live in `tests/tests/`; this library holds shared helpers.
pub mod fake_gitlab;
