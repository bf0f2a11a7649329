//! The `[openstack]` section: which cloud and how we authenticate. Either a named
//! `cloud` from clouds.yaml (read later, by the autoscaler's OpenStack adapter) or
//! explicit credentials: password with a project, or an application credential. The
//! two forms exclude each other key by key, so a half-converted file is named exactly.

use super::names::join;
use super::reader::{Ctx, Node};
use crate::model::{AppCredential, Interface, OpenStack, OpenStackAuth, ProjectScope};
use crate::secret::SecretSource;

/// Keys of explicit credentials, refused next to `cloud`.
const EXPLICIT: &[&str] = &[
    "auth_url",
    "username",
    "user_domain_name",
    "project_name",
    "project_id",
    "project_domain_name",
    "password_file",
    "password_env",
    "application_credential_id",
    "application_credential_name",
    "application_credential_secret_file",
    "application_credential_secret_env",
];

/// Keys that make explicit credentials an application credential.
const APP_CREDENTIAL: &[&str] = &[
    "application_credential_id",
    "application_credential_name",
    "application_credential_secret_file",
    "application_credential_secret_env",
];

/// Reads `[openstack]`; `None` when anything in it is wrong (reported).
pub(super) fn openstack(ctx: &mut Ctx<'_>, n: &Node<'_>) -> Option<OpenStack> {
    let mut known = vec!["cloud", "clouds_file", "region", "interface", "cacert"];
    known.extend_from_slice(EXPLICIT);
    ctx.check_keys(n, &known, &["password", "application_credential_secret"]);
    let mark = ctx.mark();
    let region = ctx.str(n, "region").map(|s| s.v);
    let interface = ctx.choice(
        n,
        "interface",
        &[
            ("public", Interface::Public),
            ("internal", Interface::Internal),
            ("admin", Interface::Admin),
        ],
    );
    let cacert = ctx.path(n, "cacert");
    let auth = if let Some(cloud) = ctx.str(n, "cloud") {
        for key in EXPLICIT {
            ctx.forbid(n, key, "cannot be combined with `cloud`; put explicit credentials in clouds.yaml or drop `cloud`");
        }
        Some(OpenStackAuth::Cloud {
            cloud: cloud.v,
            clouds_file: ctx.path(n, "clouds_file"),
        })
    } else if n.has("cloud") {
        None
    } else {
        ctx.forbid(n, "clouds_file", "only used together with `cloud`");
        explicit_auth(ctx, n)
    };
    let auth = auth?;
    ctx.clean_since(
        mark,
        OpenStack {
            auth,
            region,
            interface,
            cacert,
        },
    )
}

/// `auth_url` with a password and project, or with an application credential.
fn explicit_auth(ctx: &mut Ctx<'_>, n: &Node<'_>) -> Option<OpenStackAuth> {
    let auth_url = ctx.url(n, "auth_url");
    if ctx.missing_because(
        n,
        "auth_url",
        "set `cloud` (an entry in clouds.yaml) or `auth_url` with explicit credentials",
    ) {
        return None;
    }
    let username = ctx.str(n, "username").map(|s| s.v);
    let user_domain_name = ctx.str_or(n, "user_domain_name", "Default");
    if APP_CREDENTIAL.iter().any(|k| n.has(k)) {
        return app_credential(ctx, n, username, user_domain_name).and_then(
            |(credential, secret)| {
                Some(OpenStackAuth::ApplicationCredential {
                    auth_url: auth_url?,
                    credential,
                    secret,
                })
            },
        );
    }
    if username.is_none() {
        ctx.require(n, "username");
    }
    let password = ctx.secret(n, "password", true);
    let project_name = ctx.str(n, "project_name");
    let project_id = ctx.str(n, "project_id");
    let project = match (project_name, project_id) {
        (Some(name), None) => Some(ProjectScope::Name {
            name: name.v,
            domain_name: ctx.str_or(n, "project_domain_name", "Default"),
        }),
        (None, Some(id)) => {
            ctx.forbid(n, "project_domain_name", "only used with `project_name`");
            Some(ProjectScope::Id(id.v))
        }
        (Some(_), Some(id)) => {
            ctx.err(
                &id.span,
                &id.path,
                "set only one of `project_name` and `project_id`",
            );
            None
        }
        (None, None) => {
            if !n.has("project_id") {
                ctx.missing_because(n, "project_name", "missing `project_name` or `project_id`");
            }
            None
        }
    };
    Some(OpenStackAuth::Password {
        auth_url: auth_url?,
        username: username?,
        user_domain_name,
        project: project?,
        password: password?,
    })
}

/// The application credential (by id, or by name with its owner) and its secret;
/// password and project keys are refused, the credential is bound to a project.
fn app_credential(
    ctx: &mut Ctx<'_>,
    n: &Node<'_>,
    username: Option<String>,
    user_domain_name: String,
) -> Option<(AppCredential, SecretSource)> {
    for key in [
        "project_name",
        "project_id",
        "project_domain_name",
        "password_file",
        "password_env",
    ] {
        ctx.forbid(
            n,
            key,
            "not used with application credentials (they are bound to a project)",
        );
    }
    let id = ctx.str(n, "application_credential_id");
    let name = ctx.str(n, "application_credential_name");
    let secret = ctx.secret(n, "application_credential_secret", true);
    let credential = match (id, name, username) {
        (Some(id), None, _) => Some(AppCredential::Id(id.v)),
        (None, Some(name), Some(username)) => Some(AppCredential::Name {
            name: name.v,
            username,
            user_domain_name,
        }),
        (None, Some(name), None) => {
            ctx.err(
                &name.span,
                &name.path,
                "`application_credential_name` needs `username` (the credential's owner)",
            );
            None
        }
        (Some(_), Some(name), _) => {
            ctx.err(
                &name.span,
                &name.path,
                "set only one of `application_credential_id` and `application_credential_name`",
            );
            None
        }
        (None, None, _) => {
            ctx.err(
                &n.span,
                &join(&n.path, "application_credential_id"),
                "missing `application_credential_id` or `application_credential_name`",
            );
            None
        }
    };
    Some((credential?, secret?))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::testing::*;
    use crate::model::{AppCredential, Interface, OpenStackAuth, ProjectScope};

    #[test]
    fn openstack_cloud_excludes_explicit_auth() {
        let src =
            format!("{BASE}\n[openstack]\ncloud = \"netways\"\nauth_url = \"https://k/v3\"\n");
        one_err(
            &src,
            "openstack.auth_url",
            "cannot be combined with `cloud`",
        );
    }

    #[test]
    fn openstack_needs_cloud_or_auth_url() {
        let src = format!("{BASE}\n[openstack]\nregion = \"RegionOne\"\n");
        one_err(&src, "openstack.auth_url", "set `cloud`");
    }

    #[test]
    fn clouds_file_only_goes_with_cloud() {
        let src = format!(
            "{BASE}\n[openstack]\nclouds_file = \"/x\"\nauth_url = \"https://k/v3\"\nusername = \"u\"\nproject_id = \"p\"\npassword_env = \"OS_PASSWORD\"\n"
        );
        one_err(
            &src,
            "openstack.clouds_file",
            "only used together with `cloud`",
        );
    }

    #[test]
    fn openstack_password_auth_parses_with_default_domains() {
        let src = format!(
            "{BASE}\n[openstack]\nauth_url = \"https://cloud.netways.de:5000/v3/\"\nusername = \"customer-login\"\nproject_name = \"1234-openstack-customer\"\npassword_file = \"/etc/os-pass\"\ninterface = \"internal\"\n"
        );
        let c = ok(&src);
        let os = c.openstack.unwrap();
        assert_eq!(os.interface, Some(Interface::Internal));
        match os.auth {
            OpenStackAuth::Password {
                user_domain_name,
                project,
                ..
            } => {
                assert_eq!(user_domain_name, "Default");
                assert_eq!(
                    project,
                    ProjectScope::Name {
                        name: "1234-openstack-customer".into(),
                        domain_name: "Default".into()
                    }
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn openstack_password_auth_needs_a_project_and_password() {
        let src = format!("{BASE}\n[openstack]\nauth_url = \"https://k/v3\"\nusername = \"u\"\n");
        let e = errs(&src);
        let keys: Vec<&str> = e.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(
            keys,
            ["openstack.password_file", "openstack.project_name"],
            "{e:?}"
        );
    }

    #[test]
    fn application_credentials_parse_and_refuse_password_fields() {
        let app = format!(
            "{BASE}\n[openstack]\nauth_url = \"https://k/v3\"\napplication_credential_id = \"abc\"\napplication_credential_secret_env = \"OS_SECRET\"\n"
        );
        assert!(matches!(
            ok(&app).openstack.unwrap().auth,
            OpenStackAuth::ApplicationCredential {
                credential: AppCredential::Id(_),
                ..
            }
        ));
        one_err(
            &format!("{app}project_name = \"p\"\n"),
            "openstack.project_name",
            "not used with application credentials",
        );
        let by_name = app.replace("application_credential_id", "application_credential_name");
        one_err(
            &by_name,
            "openstack.application_credential_name",
            "needs `username`",
        );
    }

    #[test]
    fn openstack_interface_is_checked() {
        let src = format!("{BASE}\n[openstack]\ncloud = \"c\"\ninterface = \"private\"\n");
        one_err(
            &src,
            "openstack.interface",
            "expected one of `public`, `internal`, `admin`",
        );
    }
}
