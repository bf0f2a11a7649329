//! Cross-crate scenario tests live in `tests/tests/`; this library holds shared helpers.
//!
//! The HTTP fakes live in `tests/fakes/` (crate `autoscaler-fakes`), because `autoscaler run
//! --dev` starts them too; the fake GitLab is re-exported here under its old path.
pub use autoscaler_fakes::gitlab as fake_gitlab;
