//! The `[gitlab]` section: where GitLab is, the API and webhook token sources, and
//! `[gitlab.scope]`, the projects, groups or whole instance whose jobs we serve.

use toml_edit::Value;

use super::names::value_repr;
use super::reader::{Ctx, Node};
use crate::model::{GitLab, ProjectRef, Scope};

/// Reads `[gitlab]`; `None` when anything in it is wrong (reported).
pub(super) fn gitlab(ctx: &mut Ctx<'_>, n: &Node<'_>) -> Option<GitLab> {
    ctx.check_keys(
        n,
        &[
            "url",
            "token_file",
            "token_env",
            "webhook_token_file",
            "webhook_token_env",
            "scope",
        ],
        &["token", "webhook_token"],
    );
    let url = ctx.required(n, "url", Ctx::url);
    let token = ctx.secret(n, "token", true);
    let webhook_token = ctx.secret(n, "webhook_token", false);
    let scope = ctx
        .required_table(n, "scope", " (projects, groups or instance = true)")
        .and_then(|s| scope(ctx, &s));
    Some(GitLab {
        url: url?,
        token: token?,
        webhook_token,
        scope: scope?,
    })
}

/// `[gitlab.scope]`: `projects` and `groups`, or `instance = true` alone.
fn scope(ctx: &mut Ctx<'_>, n: &Node<'_>) -> Option<Scope> {
    ctx.check_keys(n, &["projects", "groups", "instance"], &[]);
    let (projects, projects_ok) = unique_refs(
        ctx,
        n,
        "projects",
        "project",
        project_ref,
        "a project path such as \"group/project\" or a numeric id",
    );
    let (groups, groups_ok) = unique_refs(
        ctx,
        n,
        "groups",
        "group",
        group_ref,
        "a group path or numeric id",
    );
    let mut ok = projects_ok && groups_ok;
    let instance = ctx.bool(n, "instance").unwrap_or(false);
    if instance && (!projects.is_empty() || !groups.is_empty()) {
        let key = if projects.is_empty() {
            "groups"
        } else {
            "projects"
        };
        ctx.err_at(
            n,
            key,
            "`instance = true` watches every project; remove `projects` and `groups`",
        );
        ok = false;
    }
    if !instance && projects.is_empty() && groups.is_empty() && ok {
        ctx.err(
            &n.span,
            &n.path,
            "scope is empty: list `projects` or `groups`, or set `instance = true`",
        );
        ok = false;
    }
    ok.then_some(Scope {
        projects,
        groups,
        instance,
    })
}

/// The entries of array `key` that `parse` accepts, each once, and whether every entry
/// was accepted; the others are reported as "duplicate {what} `x`" or "expected
/// {expected}, found x".
fn unique_refs<T: PartialEq + std::fmt::Display>(
    ctx: &mut Ctx<'_>,
    n: &Node<'_>,
    key: &str,
    what: &str,
    parse: fn(&Value) -> Option<T>,
    expected: &str,
) -> (Vec<T>, bool) {
    let mut out = Vec::new();
    let mut ok = true;
    for (path, span, v) in ctx.array(n, key).unwrap_or_default() {
        match parse(v) {
            Some(p) if out.contains(&p) => {
                ctx.err(&span, &path, format!("duplicate {what} `{p}`"));
                ok = false;
            }
            Some(p) => out.push(p),
            None => {
                ctx.err(
                    &span,
                    &path,
                    format!("expected {expected}, found {}", value_repr(v)),
                );
                ok = false;
            }
        }
    }
    (out, ok)
}

/// A project: `"group/project"`, or a positive id as integer or digit string.
fn project_ref(v: &Value) -> Option<ProjectRef> {
    match v {
        Value::Integer(i) => u64::try_from(*i.value())
            .ok()
            .filter(|x| *x > 0)
            .map(ProjectRef::Id),
        Value::String(s) => {
            let s = s.value().trim();
            if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
                s.parse().ok().filter(|x| *x > 0).map(ProjectRef::Id)
            } else if s.contains('/')
                && !s.starts_with('/')
                && !s.ends_with('/')
                && !s.contains("//")
            {
                Some(ProjectRef::Path(s.to_owned()))
            } else {
                None
            }
        }
        _ => None,
    }
}

/// A group: a path without leading or trailing `/`, or a positive id.
fn group_ref(v: &Value) -> Option<String> {
    match v {
        Value::Integer(i) if *i.value() > 0 => Some(i.value().to_string()),
        Value::String(s)
            if !s.value().trim().is_empty()
                && !s.value().starts_with('/')
                && !s.value().ends_with('/') =>
        {
            Some(s.value().trim().to_owned())
        }
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::testing::*;
    use crate::model::ProjectRef;
    use crate::secret::SecretSource;

    #[test]
    fn gitlab_url_must_be_http() {
        one_err(
            &BASE.replace("https://gitlab.example.com/", "ftp://gitlab.example.com/"),
            "gitlab.url",
            "not an http(s) URL",
        );
        one_err(
            &BASE.replace("url = \"https://gitlab.example.com/\"", ""),
            "gitlab.url",
            "missing",
        );
    }

    #[test]
    fn token_needs_exactly_one_source() {
        one_err(
            &with("[gitlab]", "token_env = \"TOKEN\""),
            "gitlab.token_env",
            "only one of",
        );
        one_err(
            &BASE.replace("token_file = \"/etc/token\"", ""),
            "gitlab.token_file",
            "missing `token_file` or `token_env`",
        );
        one_err(
            &BASE.replace("token_file = \"/etc/token\"", "token_env = \"1BAD\""),
            "gitlab.token_env",
            "not a valid environment variable name",
        );
        let c = ok(&BASE.replace(
            "token_file = \"/etc/token\"",
            "token_env = \"GITLAB_TOKEN\"\nwebhook_token_file = \"/etc/hook\"",
        ));
        assert_eq!(c.gitlab.token, SecretSource::Env("GITLAB_TOKEN".into()));
        assert_eq!(
            c.gitlab.webhook_token,
            Some(SecretSource::File("/etc/hook".into()))
        );
    }

    #[test]
    fn scope_must_not_be_empty() {
        one_err(
            &BASE.replace("projects = [\"group/project\"]", ""),
            "gitlab.scope",
            "scope is empty",
        );
    }

    #[test]
    fn instance_scope_is_exclusive() {
        one_err(
            &with("[gitlab.scope]", "instance = true"),
            "gitlab.scope.projects",
            "instance = true",
        );
        let c = ok(&BASE.replace("projects = [\"group/project\"]", "instance = true"));
        assert!(c.gitlab.scope.instance);
    }

    #[test]
    fn projects_accept_paths_numeric_strings_and_integers() {
        let c = ok(&BASE.replace(
            "[\"group/project\"]",
            "[\"icinga/icinga2\", \"42\", 7]\ngroups = [\"icinga\", 12]",
        ));
        assert_eq!(
            c.gitlab.scope.projects,
            [
                ProjectRef::Path("icinga/icinga2".into()),
                ProjectRef::Id(42),
                ProjectRef::Id(7)
            ]
        );
        assert_eq!(c.gitlab.scope.groups, ["icinga", "12"]);
    }

    #[test]
    fn bad_and_duplicate_projects_are_rejected() {
        one_err(
            &BASE.replace("[\"group/project\"]", "[\"noslash\"]"),
            "gitlab.scope.projects[0]",
            "\"noslash\"",
        );
        one_err(
            &BASE.replace("[\"group/project\"]", "[\"a/b\", \"a/b\"]"),
            "gitlab.scope.projects[1]",
            "duplicate",
        );
        one_err(
            &BASE.replace("[\"group/project\"]", "[0]"),
            "gitlab.scope.projects[0]",
            "numeric id",
        );
    }
}
