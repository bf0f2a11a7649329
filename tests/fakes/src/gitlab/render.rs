//! GitLab's REST entities (`Job`, `JobBasicWithProject`, `Runner`, `RunnerDetails`) of the
//! world's jobs and runners: the HTTP face's rendering, no rule.

use autoscaler_world::gitlab::{Job, Runner, World};
use serde_json::{Value, json};

/// The REST entities of a world's objects.
pub(crate) trait Render {
    /// `Job` entity (JobBasic + `tag_list`, `runner`, `runner_manager`, `artifacts`...).
    fn job_json(&self, j: &Job) -> Value;
    /// `JobBasicWithProject` entity (no `tag_list`, `runner`, `runner_manager`).
    fn job_with_project_json(&self, j: &Job) -> Value;
    /// `JobBasic` entity.
    fn job_basic(&self, j: &Job) -> Value;
    /// `Runner` entity.
    fn runner_json(&self, r: &Runner) -> Value;
    /// `RunnerDetails` entity.
    fn runner_details_json(&self, r: &Runner) -> Value;
}

impl Render for World {
    /// `Job` entity (JobBasic + `tag_list`, `runner`, `runner_manager`, `artifacts`...).
    fn job_json(&self, j: &Job) -> Value {
        let mut v = self.job_basic(j);
        v["tag_list"] = json!(j.tags);
        v["runner"] = match j.runner.and_then(|r| self.runners.get(&r)) {
            Some(r) => self.runner_json(r),
            None => Value::Null,
        };
        v["runner_manager"] = Value::Null;
        v["artifacts"] = json!([]);
        v["artifacts_expire_at"] = Value::Null;
        v["archived"] = json!(false);
        v
    }

    /// `JobBasicWithProject` entity (no `tag_list`, `runner`, `runner_manager`).
    fn job_with_project_json(&self, j: &Job) -> Value {
        let mut v = self.job_basic(j);
        let p = self.projects.get(&j.project);
        v["project"] = json!({
            "id": j.project,
            "name": p.map(|p| p.path.rsplit('/').next().unwrap_or_default().to_string()),
            "name_with_namespace": p.map(|p| p.path.replace('/', " / ")),
            "path": p.map(|p| p.path.rsplit('/').next().unwrap_or_default().to_string()),
            "path_with_namespace": p.map(|p| p.path.clone()),
            "created_at": j.created_at,
        });
        v
    }

    fn job_basic(&self, j: &Job) -> Value {
        let duration = match (j.started_at, j.finished_at) {
            (Some(s), Some(f)) => json!((f - s).num_milliseconds() as f64 / 1000.0),
            _ => Value::Null,
        };
        // `Ci::Build#queued_duration`: from `queued_at` until started (or now).
        let queued_end = j.started_at.unwrap_or_else(|| self.now());
        json!({
            "id": j.id,
            "status": j.status,
            "stage": "test",
            "name": format!("job-{}", j.id),
            "ref": "main",
            "tag": false,
            "coverage": null,
            "allow_failure": false,
            "created_at": j.created_at,
            "started_at": j.started_at,
            "finished_at": j.finished_at,
            "erased_at": null,
            "duration": duration,
            "queued_duration": (queued_end - j.queued_at).num_milliseconds() as f64 / 1000.0,
            "user": {"id": 1, "username": "root"},
            "commit": {"id": "0ff3ae198f8601a285adcf5c0fff204ee6fba5fd"},
            "pipeline": {"id": j.id, "project_id": j.project, "ref": "main",
                         "sha": "0ff3ae198f8601a285adcf5c0fff204ee6fba5fd", "status": j.status},
            "web_url": format!("http://gitlab.fake/p/{}/-/jobs/{}", j.project, j.id),
            "project": {"ci_job_token_scope_enabled": false},
        })
    }

    /// `Runner` entity.
    fn runner_json(&self, r: &Runner) -> Value {
        let status = self.runner_status(r);
        let busy = self
            .jobs
            .values()
            .any(|j| j.status == "running" && j.runner == Some(r.id));
        json!({
            "id": r.id,
            "description": r.description,
            "ip_address": null,
            "active": !r.paused,
            "paused": r.paused,
            "is_shared": r.runner_type == "instance_type",
            "runner_type": r.runner_type,
            "name": "gitlab-runner",
            "online": status == "online",
            "created_at": r.created_at,
            "status": status,
            "job_execution_status": if busy { "active" } else { "idle" },
        })
    }

    /// `RunnerDetails` entity.
    fn runner_details_json(&self, r: &Runner) -> Value {
        let mut v = self.runner_json(r);
        v["tag_list"] = json!(r.tags);
        v["run_untagged"] = json!(r.run_untagged);
        v["locked"] = json!(r.locked);
        v["maximum_timeout"] = json!(r.maximum_timeout);
        v["access_level"] = json!(r.access_level);
        v["version"] = Value::Null;
        v["revision"] = Value::Null;
        v["platform"] = Value::Null;
        v["architecture"] = Value::Null;
        v["contacted_at"] = json!(r.contacted_at);
        v["maintenance_note"] = json!(r.maintenance_note);
        v["projects"] = json!([]);
        v["groups"] = json!([]);
        v
    }
}
