//! The controller's durable memory: what must survive a restart for "one observation is
//! never proof" to hold across it.
//!
//! A create is recorded **before** it starts (write-ahead) and forgotten once its outcome is
//! known; a create whose outcome stays unknown (a timeout, a 5xx, a kill mid-way) keeps
//! counting against `limit` after a restart until its server is listed or the pool's
//! `boot_timeout` has passed. Runners of ours seen without a server are remembered too, so
//! that a runner listing that lacks one (a shifted page, an admin's edit) right after a
//! restart does not let the pool grow past `limit`.
//!
//! The memory is a small versioned JSON document. [`FileStore`] keeps it in
//! `[controller] state_dir` (written to a temporary file, synced, then renamed over the
//! old one); a missing file is an empty memory, a corrupt or newer one is reported and
//! ignored (the controller then knows only what it observes, as without a `state_dir`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

use crate::model::{RunnerId, Timestamp};

/// Version of the memory document this build writes and reads.
pub const MEMORY_VERSION: u32 = 1;

/// File name of the memory document inside `state_dir`.
pub const MEMORY_FILE: &str = "memory.json";

/// Where the durable memory lives.
pub trait StateStore: Send + Sync + std::fmt::Debug {
    /// The stored document, `None` when there is none yet.
    ///
    /// # Errors
    ///
    /// The store cannot be read.
    fn load(&self) -> anyhow::Result<Option<String>>;

    /// Replaces the stored document.
    ///
    /// # Errors
    ///
    /// The store cannot be written.
    fn save(&self, text: &str) -> anyhow::Result<()>;
}

/// The memory in a file, replaced atomically.
#[derive(Debug, Clone)]
pub struct FileStore {
    path: PathBuf,
}

impl FileStore {
    /// The memory file inside `state_dir`.
    pub fn in_dir(state_dir: &std::path::Path) -> Self {
        FileStore {
            path: state_dir.join(MEMORY_FILE),
        }
    }

    /// The file's path.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }
}

impl StateStore for FileStore {
    fn load(&self) -> anyhow::Result<Option<String>> {
        match std::fs::read_to_string(&self.path) {
            Ok(t) => Ok(Some(t)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading {}", self.path.display())),
        }
    }

    fn save(&self, text: &str) -> anyhow::Result<()> {
        use std::io::Write as _;
        let tmp = self.path.with_extension("json.tmp");
        let mut f =
            std::fs::File::create(&tmp).with_context(|| format!("writing {}", tmp.display()))?;
        f.write_all(text.as_bytes())
            .and_then(|()| f.sync_all())
            .with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, &self.path)
            .with_context(|| format!("replacing {}", self.path.display()))?;
        Ok(())
    }
}

/// The memory in memory (tests and the fault simulation: clones share it, so a "restarted"
/// controller given a clone finds what the killed one wrote).
#[derive(Debug, Clone, Default)]
pub struct MemoryStore(Arc<Mutex<Option<String>>>);

impl StateStore for MemoryStore {
    fn load(&self) -> anyhow::Result<Option<String>> {
        Ok(self
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone())
    }

    fn save(&self, text: &str) -> anyhow::Result<()> {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(text.to_string());
        Ok(())
    }
}

/// A create not known to have finished: started (write-ahead) or failed with an unknown
/// outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingCreate {
    /// The pool.
    pub pool: String,
    /// Its runner, once created.
    pub runner: Option<RunnerId>,
    /// When the create started or failed.
    pub since: Timestamp,
}

/// A runner of ours seen without a server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrphanMemo {
    /// When it was first seen without a server.
    pub since: Timestamp,
    /// Its pool, as known then.
    pub pool: Option<String>,
}

/// The durable part of the controller's memory.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Durable {
    /// Creates not known to have finished, by server name.
    #[serde(default)]
    pub creates: BTreeMap<String, PendingCreate>,
    /// Runners of ours seen without a server.
    #[serde(default)]
    pub orphans: BTreeMap<RunnerId, OrphanMemo>,
}

/// The stored form (no `flatten`: it would lose the runner ids' integer keys).
#[derive(Serialize, Deserialize)]
struct Document {
    version: u32,
    memory: Durable,
}

impl Durable {
    /// The document text.
    pub fn to_text(&self) -> String {
        serde_json::to_string_pretty(&Document {
            version: MEMORY_VERSION,
            memory: self.clone(),
        })
        .unwrap_or_default()
    }

    /// Parses a document.
    ///
    /// # Errors
    ///
    /// Not JSON of this shape, or written by a newer version.
    pub fn from_text(text: &str) -> anyhow::Result<Durable> {
        let doc: Document = serde_json::from_str(text).context("not a memory document")?;
        if doc.version > MEMORY_VERSION {
            anyhow::bail!(
                "written by a newer version (memory version {}, this build reads {MEMORY_VERSION})",
                doc.version
            );
        }
        Ok(doc.memory)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn sample() -> Durable {
        let at = chrono::DateTime::parse_from_rfc3339("2026-12-06T10:00:00Z")
            .unwrap()
            .to_utc();
        let mut d = Durable::default();
        d.creates.insert(
            "ci-docker-1-1".into(),
            PendingCreate {
                pool: "docker".into(),
                runner: Some(7),
                since: at,
            },
        );
        d.orphans.insert(
            9,
            OrphanMemo {
                since: at,
                pool: Some("docker".into()),
            },
        );
        d
    }

    #[test]
    fn a_file_store_round_trips_and_replaces_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::in_dir(dir.path());
        assert_eq!(store.load().unwrap(), None, "no file: empty memory");
        store.save(&sample().to_text()).unwrap();
        store.save(&sample().to_text()).unwrap();
        let back = Durable::from_text(&store.load().unwrap().unwrap()).unwrap();
        assert_eq!(back, sample());
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(
            names,
            vec![MEMORY_FILE.to_string()],
            "no temporary file left"
        );
    }

    #[test]
    fn corrupt_and_newer_documents_are_refused_with_a_reason() {
        let e = Durable::from_text("{not json").unwrap_err();
        assert!(format!("{e:#}").contains("not a memory document"), "{e:#}");
        let newer = sample()
            .to_text()
            .replace("\"version\": 1", "\"version\": 99");
        let e = Durable::from_text(&newer).unwrap_err();
        assert!(format!("{e:#}").contains("newer version"), "{e:#}");
    }
}
