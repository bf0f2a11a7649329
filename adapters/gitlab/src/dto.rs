//! Private DTOs: the parts of GitLab's JSON the adapter reads. Field names follow GitLab's
//! entity classes (see `docs/gitlab.md`); unknown fields are ignored so newer
//! GitLab versions keep working. Nothing here leaves the adapter.

use chrono::{DateTime, Utc};
use serde::Deserialize;

/// An item of an offset-paged list, identified by its id (for the integrity checks).
pub(crate) trait Listed {
    /// The item's id.
    fn list_id(&self) -> u64;
}

macro_rules! listed {
    ($($t:ty),*) => {$(
        impl Listed for $t {
            fn list_id(&self) -> u64 {
                self.id
            }
        }
    )*};
}

listed!(Job, RunnerJob, Runner, Project);

/// `Job` entity of `GET /projects/:id/jobs` (what the planner and the check plugin need).
#[derive(Debug, Deserialize)]
pub(crate) struct Job {
    pub id: u64,
    #[serde(default)]
    pub tag_list: Vec<String>,
    pub created_at: DateTime<Utc>,
    /// Seconds since the job was queued (for a pending job: until the answer was made).
    #[serde(default)]
    pub queued_duration: Option<f64>,
    #[serde(default)]
    pub pipeline: Option<Pipeline>,
}

/// The `pipeline` of a [`Job`].
#[derive(Debug, Deserialize)]
pub(crate) struct Pipeline {
    #[serde(default)]
    pub project_id: Option<u64>,
}

/// `JobBasicWithProject` of `GET /runners/:id/jobs`.
#[derive(Debug, Deserialize)]
pub(crate) struct RunnerJob {
    pub id: u64,
    pub status: String,
    /// When the job was created (queued); absent in old or partial answers.
    #[serde(default)]
    pub created_at: Option<DateTime<Utc>>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// `Runner` entity of `GET /runners` and `GET /runners/all`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Runner {
    pub id: u64,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub paused: Option<bool>,
    #[serde(default)]
    pub active: Option<bool>,
    /// `online`, `offline`, `stale`, `never_contacted` or `paused`.
    #[serde(default)]
    pub status: Option<String>,
    /// `active` (running a job) or `idle`; absent on older GitLab versions.
    #[serde(default)]
    pub job_execution_status: Option<String>,
    #[serde(default)]
    pub created_at: Option<DateTime<Utc>>,
}

impl Runner {
    /// `paused`, or `!active` on GitLab versions that only send the deprecated field.
    pub fn is_paused(&self) -> Option<bool> {
        self.paused.or(self.active.map(|a| !a))
    }
}

/// `RunnerDetails` of `GET /runners/:id`.
#[derive(Debug, Deserialize)]
pub(crate) struct RunnerDetails {
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub maintenance_note: Option<String>,
    #[serde(default)]
    pub paused: Option<bool>,
    #[serde(default)]
    pub active: Option<bool>,
    pub created_at: DateTime<Utc>,
    #[serde(default)]
    pub contacted_at: Option<DateTime<Utc>>,
}

impl RunnerDetails {
    /// `paused`, or `!active` on GitLab versions that only send the deprecated field.
    pub fn is_paused(&self) -> bool {
        self.paused.or(self.active.map(|a| !a)).unwrap_or(false)
    }
}

/// `RunnerRegistrationDetails` of `POST /user/runners`. Deliberately no `Debug`: it holds
/// the token.
#[derive(Deserialize)]
pub(crate) struct CreatedRunner {
    pub id: u64,
    pub token: String,
}

/// A project of `GET /groups/:id/projects?simple=true`.
#[derive(Debug, Deserialize)]
pub(crate) struct Project {
    pub id: u64,
}

/// GraphQL answer to the `jobs(statuses: [PENDING])` query.
#[derive(Debug, Deserialize)]
pub(crate) struct GraphQlReply {
    pub data: Option<GraphQlData>,
    #[serde(default)]
    pub errors: Vec<GraphQlErrorMsg>,
}

/// One GraphQL error.
#[derive(Debug, Deserialize)]
pub(crate) struct GraphQlErrorMsg {
    pub message: String,
}

/// `data` of the reply.
#[derive(Debug, Deserialize)]
pub(crate) struct GraphQlData {
    pub jobs: Option<GraphQlJobs>,
}

/// `jobs` connection.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct GraphQlJobs {
    pub page_info: PageInfo,
    pub nodes: Vec<GraphQlJob>,
}

/// `pageInfo`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PageInfo {
    pub has_next_page: bool,
    pub end_cursor: Option<String>,
}

/// One `CiJob` node.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct GraphQlJob {
    /// Global id, `gid://gitlab/Ci::Build/123`.
    pub id: String,
    #[serde(default)]
    pub tags: Vec<String>,
    pub created_at: DateTime<Utc>,
    #[serde(default)]
    pub queued_at: Option<DateTime<Utc>>,
    /// `project { id }`, a global id.
    #[serde(default)]
    pub project: Option<GraphQlId>,
}

/// An object of which only the global id was asked for.
#[derive(Debug, Deserialize)]
pub(crate) struct GraphQlId {
    pub id: String,
}

/// Numeric id at the end of a GraphQL global id.
pub(crate) fn gid_number(gid: &str) -> Option<u64> {
    gid.rsplit('/').next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gid_number_takes_the_trailing_id() {
        assert_eq!(gid_number("gid://gitlab/Ci::Build/123"), Some(123));
        assert_eq!(gid_number("gid://gitlab/Ci::Build/x"), None);
    }

    #[test]
    fn paused_falls_back_to_inverted_active() -> Result<(), serde_json::Error> {
        let old: RunnerDetails =
            serde_json::from_str(r#"{"id":1,"active":false,"created_at":"2024-01-01T00:00:00Z"}"#)?;
        assert!(old.is_paused());
        let new: RunnerDetails = serde_json::from_str(
            r#"{"id":1,"active":false,"paused":false,"created_at":"2024-01-01T00:00:00Z"}"#,
        )?;
        assert!(!new.is_paused());
        Ok(())
    }
}
