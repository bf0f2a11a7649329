//! `[pools.runner]`: how each VM's runner is registered (type and owner, tags, access
//! level, timeout) and runs jobs (docker image, privileged, volumes), and
//! `[pools.runner.cache]`, its S3 cache with key sources.

use std::collections::BTreeSet;

use crate::model::{AccessLevel, RunnerSettings, RunnerType, S3Cache};
use crate::parse::bounds;
use crate::parse::reader::{Ctx, Node};

/// `runner_type` as spelled, before its id is read.
#[derive(Clone, Copy, PartialEq, Eq)]
enum TypeName {
    Instance,
    Group,
    Project,
}

/// Reads `[pools.runner]`; `None` when anything in it is wrong (reported).
pub(super) fn runner(ctx: &mut Ctx<'_>, n: &Node<'_>) -> Option<RunnerSettings> {
    ctx.check_keys(
        n,
        &[
            "runner_type",
            "group_id",
            "project_id",
            "tags",
            "run_untagged",
            "access_level",
            "locked",
            "maximum_timeout",
            "docker_image",
            "privileged",
            "volumes",
            "cache",
        ],
        &[],
    );
    let mark = ctx.mark();
    let runner_type = runner_type(ctx, n);
    let mut tags = BTreeSet::new();
    for t in ctx.str_list(n, "tags").unwrap_or_default() {
        if t.v.contains(',') || t.v.trim() != t.v {
            ctx.err(
                &t.span,
                &t.path,
                format!(
                    "tag `{}` must not contain commas or surrounding spaces",
                    t.v
                ),
            );
        } else {
            tags.insert(t.v);
        }
    }
    let run_untagged = match ctx.bool(n, "run_untagged") {
        Some(false) if tags.is_empty() => {
            ctx.err_at(
                n,
                "run_untagged",
                "a runner without tags and with run_untagged = false would never take a job",
            );
            false
        }
        Some(b) => b,
        None => tags.is_empty(),
    };
    let access_level = ctx.choice_or_first(
        n,
        "access_level",
        &[
            ("not_protected", AccessLevel::NotProtected),
            ("ref_protected", AccessLevel::RefProtected),
        ],
    );
    let locked = ctx.bool(n, "locked").unwrap_or(false);
    let maximum_timeout = ctx
        .bounded_duration(n, "maximum_timeout", bounds::MAXIMUM_TIMEOUT)
        .map(|d| d.v);
    let docker_image = ctx.str_or(n, "docker_image", "alpine");
    let privileged = ctx.bool(n, "privileged").unwrap_or(false);
    let volumes = match ctx.str_list(n, "volumes") {
        Some(v) => v.into_iter().map(|s| s.v).collect(),
        None => vec!["/cache".to_owned()],
    };
    let cache = ctx.table(n, "cache").and_then(|c| cache(ctx, &c));
    let settings = RunnerSettings {
        runner_type: runner_type?,
        tags,
        run_untagged,
        access_level: access_level?,
        locked,
        maximum_timeout,
        docker_image,
        privileged,
        volumes,
        cache,
    };
    ctx.clean_since(mark, settings)
}

/// `runner_type` (instance when unset) with the `group_id` or `project_id` it needs,
/// and not the other one.
fn runner_type(ctx: &mut Ctx<'_>, n: &Node<'_>) -> Option<RunnerType> {
    const GROUP_ONLY: &str = "only used with runner_type = \"group_type\"";
    const PROJECT_ONLY: &str = "only used with runner_type = \"project_type\"";
    let kind = ctx.choice_or_first(
        n,
        "runner_type",
        &[
            ("instance_type", TypeName::Instance),
            ("group_type", TypeName::Group),
            ("project_type", TypeName::Project),
        ],
    );
    let group_id = ctx.positive_u64(n, "group_id");
    let project_id = ctx.positive_u64(n, "project_id");
    match kind? {
        TypeName::Instance => {
            ctx.forbid(n, "group_id", GROUP_ONLY);
            ctx.forbid(n, "project_id", PROJECT_ONLY);
            Some(RunnerType::Instance)
        }
        TypeName::Group => {
            ctx.forbid(n, "project_id", PROJECT_ONLY);
            ctx.missing_because(n, "group_id", "required when runner_type = \"group_type\"");
            group_id.map(|group_id| RunnerType::Group { group_id })
        }
        TypeName::Project => {
            ctx.forbid(n, "group_id", GROUP_ONLY);
            ctx.missing_because(
                n,
                "project_id",
                "required when runner_type = \"project_type\"",
            );
            project_id.map(|project_id| RunnerType::Project { project_id })
        }
    }
}

/// Reads `[pools.runner.cache]`: S3 only, both keys from a file or variable.
fn cache(ctx: &mut Ctx<'_>, n: &Node<'_>) -> Option<S3Cache> {
    ctx.check_keys(
        n,
        &[
            "type",
            "shared",
            "server_address",
            "bucket_name",
            "bucket_location",
            "insecure",
            "access_key_file",
            "access_key_env",
            "secret_key_file",
            "secret_key_env",
        ],
        &["access_key", "secret_key"],
    );
    ctx.choice_or_first(n, "type", &[("s3", ())])?;
    let shared = ctx.bool(n, "shared").unwrap_or(false);
    let server_address = ctx.required(n, "server_address", Ctx::str);
    let bucket_name = ctx.required(n, "bucket_name", Ctx::str);
    // An empty location is the reference setup's way of saying "none".
    let bucket_location = ctx
        .any_str(n, "bucket_location")
        .map(|s| s.v)
        .filter(|s| !s.is_empty());
    let insecure = ctx.bool(n, "insecure").unwrap_or(false);
    let access_key = ctx.secret(n, "access_key", true);
    let secret_key = ctx.secret(n, "secret_key", true);
    Some(S3Cache {
        shared,
        server_address: server_address?.v,
        bucket_name: bucket_name?.v,
        bucket_location,
        insecure,
        access_key: access_key?,
        secret_key: secret_key?,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use crate::model::RunnerType;
    use crate::parse::testing::*;
    use crate::secret::SecretSource;

    #[test]
    fn run_untagged_defaults_to_true_without_tags() {
        let c = ok(&BASE.replace("tags = [\"docker\"]", ""));
        assert!(c.pools[0].runner.run_untagged);
    }

    #[test]
    fn untagged_runner_refusing_untagged_jobs_is_rejected() {
        one_err(
            &BASE.replace("tags = [\"docker\"]", "run_untagged = false"),
            "pools[0].runner.run_untagged",
            "never take a job",
        );
    }

    #[test]
    fn group_id_goes_with_group_type_only() {
        one_err(
            &with("[pools.runner]", "runner_type = \"group_type\""),
            "pools[0].runner.group_id",
            "required when",
        );
        one_err(
            &with("[pools.runner]", "group_id = 12"),
            "pools[0].runner.group_id",
            "only used with runner_type = \"group_type\"",
        );
        let c = ok(&with(
            "[pools.runner]",
            "runner_type = \"group_type\"\ngroup_id = 12",
        ));
        assert_eq!(
            c.pools[0].runner.runner_type,
            RunnerType::Group { group_id: 12 }
        );
    }

    #[test]
    fn project_id_goes_with_project_type_only() {
        one_err(
            &with(
                "[pools.runner]",
                "runner_type = \"project_type\"\ngroup_id = 1\nproject_id = 2",
            ),
            "pools[0].runner.group_id",
            "only used with",
        );
        let c = ok(&with(
            "[pools.runner]",
            "runner_type = \"project_type\"\nproject_id = 34",
        ));
        assert_eq!(
            c.pools[0].runner.runner_type,
            RunnerType::Project { project_id: 34 }
        );
    }

    #[test]
    fn runner_enums_are_checked() {
        one_err(
            &with("[pools.runner]", "runner_type = \"shared\""),
            "pools[0].runner.runner_type",
            "unknown value `shared`",
        );
        one_err(
            &with("[pools.runner]", "access_level = \"all\""),
            "pools[0].runner.access_level",
            "unknown value `all`",
        );
    }

    #[test]
    fn tags_must_be_unique_and_plain() {
        one_err(
            &BASE.replace("[\"docker\"]", "[\"docker\", \"docker\"]"),
            "pools[0].runner.tags[1]",
            "duplicate",
        );
        one_err(
            &BASE.replace("[\"docker\"]", "[\"a,b\"]"),
            "pools[0].runner.tags[0]",
            "commas",
        );
    }

    #[test]
    fn maximum_timeout_respects_gitlab_minimum() {
        one_err(
            &with("[pools.runner]", "maximum_timeout = \"5m\""),
            "pools[0].runner.maximum_timeout",
            "`5m` is out of range: must be between 10m and 30days",
        );
    }

    #[test]
    fn cache_is_s3_with_key_sources() {
        let cache = "\n[pools.runner.cache]\nserver_address = \"s3\"\nbucket_name = \"b\"\naccess_key_env = \"A\"\nsecret_key_file = \"/s\"\n";
        let c = ok(&format!("{BASE}{cache}"));
        let s3 = c.pools[0].runner.cache.clone().unwrap();
        assert_eq!(s3.access_key, SecretSource::Env("A".into()));
        assert_eq!(s3.bucket_location, None);
        one_err(
            &format!("{BASE}{cache}type = \"gcs\"\n"),
            "pools[0].runner.cache.type",
            "unknown value `gcs`",
        );
        one_err(
            &format!("{BASE}{}", cache.replace("bucket_name = \"b\"\n", "")),
            "pools[0].runner.cache.bucket_name",
            "missing",
        );
        one_err(
            &format!("{BASE}{cache}secret_key = \"x\"\n"),
            "pools[0].runner.cache.secret_key",
            "inline secrets",
        );
    }
}
