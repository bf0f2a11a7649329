//! Where the OpenStack credentials come from: the `[openstack]` section, `clouds.yaml`,
//! `secure.yaml`, `OS_CLOUD` and the `OS_*` variables of an openrc file.
//!
//! [`resolve_auth`] turns [`AuthSettings`] (built by the config layer) and the environment
//! (read through [`Env`], never mutated) into one [`ResolvedAuth`]. Precedence:
//!
//! 1. explicit credentials in the `[openstack]` section ([`ExplicitAuth`]);
//! 2. a named cloud (`cloud` setting, else `OS_CLOUD`) from the first `clouds.yaml` found in
//!    `clouds_file`, `OS_CLIENT_CONFIG_FILE`, `./clouds.yaml`,
//!    `$XDG_CONFIG_HOME` or `~/.config/openstack/clouds.yaml`, `/etc/openstack/clouds.yaml`,
//!    with `secure.yaml` from the same folder (or `OS_CLIENT_SECURE_FILE`) merged over it;
//!    other `OS_*` variables are then ignored, as the `openstack` CLI does;
//! 3. the `OS_*` variables (`OS_AUTH_URL` must be set).
//!
//! `region`, `interface` and `cacert` from the settings override whatever the source says.
//! A user or project domain that is not given defaults to the domain named `Default`.
//! This module reads files but does no network I/O.

use std::path::{Path, PathBuf};

use secrecy::SecretString;
use serde::Deserialize;
use serde_yaml_ng::{Mapping, Value};

use super::error::{Error, Result};

pub use autoscaler_config::{Env, Interface, ProcessEnv, SecretSource};

/// A variable's value; empty counts as unset, as in the `openstack` CLI.
fn var(env: &dyn Env, name: &str) -> Option<String> {
    env.var(name).filter(|v| !v.is_empty())
}

/// The `[openstack]` section of the project's config file, as the config layer builds it.
#[derive(Debug, Clone, Default)]
pub struct AuthSettings {
    /// `cloud`: name of a cloud in clouds.yaml (else `OS_CLOUD`).
    pub cloud: Option<String>,
    /// `clouds_file`: a clouds.yaml to use instead of the search path.
    pub clouds_file: Option<PathBuf>,
    /// `region`: overrides the cloud's `region_name` / `OS_REGION_NAME`.
    pub region: Option<String>,
    /// `interface`: `public` (default), `internal` or `admin`.
    pub interface: Option<Interface>,
    /// `cacert`: PEM file with extra CA certificates to trust.
    pub cacert: Option<PathBuf>,
    /// Explicit credentials; when present, clouds.yaml and `OS_*` are not consulted.
    pub explicit: Option<ExplicitAuth>,
}

/// Explicit credentials of the `[openstack]` section (keys named as in the config file).
#[derive(Debug, Clone, Default)]
pub struct ExplicitAuth {
    /// `auth_url`: the Keystone URL (`/v3` is appended when missing).
    pub auth_url: String,
    /// `username` (password auth, or to qualify an application credential name).
    pub username: Option<String>,
    /// `user_domain_name` (default `Default`).
    pub user_domain_name: Option<String>,
    /// `project_name` (password auth; or `project_id`).
    pub project_name: Option<String>,
    /// `project_id`.
    pub project_id: Option<String>,
    /// `project_domain_name` (default `Default`).
    pub project_domain_name: Option<String>,
    /// `password_file` or `password_env`.
    pub password: Option<SecretSource>,
    /// `application_credential_id`.
    pub application_credential_id: Option<String>,
    /// `application_credential_name` (needs `username`).
    pub application_credential_name: Option<String>,
    /// `application_credential_secret_file` or `application_credential_secret_env`.
    pub application_credential_secret: Option<SecretSource>,
}

impl From<&autoscaler_config::OpenStack> for AuthSettings {
    /// The validated `[openstack]` section as settings (the config crate checked the
    /// combinations; [`resolve_auth`] reads the files and secrets).
    fn from(c: &autoscaler_config::OpenStack) -> Self {
        use autoscaler_config::{AppCredential as CfgCred, OpenStackAuth, ProjectScope};
        let mut s = AuthSettings {
            region: c.region.clone(),
            interface: c.interface,
            cacert: c.cacert.clone(),
            ..AuthSettings::default()
        };
        match &c.auth {
            OpenStackAuth::Cloud { cloud, clouds_file } => {
                s.cloud = Some(cloud.clone());
                s.clouds_file = clouds_file.clone();
            }
            OpenStackAuth::Password {
                auth_url,
                username,
                user_domain_name,
                project,
                password,
            } => {
                let (project_name, project_id, project_domain_name) = match project {
                    ProjectScope::Name { name, domain_name } => {
                        (Some(name.clone()), None, Some(domain_name.clone()))
                    }
                    ProjectScope::Id(id) => (None, Some(id.clone()), None),
                };
                s.explicit = Some(ExplicitAuth {
                    auth_url: auth_url.to_string(),
                    username: Some(username.clone()),
                    user_domain_name: Some(user_domain_name.clone()),
                    project_name,
                    project_id,
                    project_domain_name,
                    password: Some(password.clone()),
                    ..ExplicitAuth::default()
                });
            }
            OpenStackAuth::ApplicationCredential {
                auth_url,
                credential,
                secret,
            } => {
                let mut e = ExplicitAuth {
                    auth_url: auth_url.to_string(),
                    application_credential_secret: Some(secret.clone()),
                    ..ExplicitAuth::default()
                };
                match credential {
                    CfgCred::Id(id) => e.application_credential_id = Some(id.clone()),
                    CfgCred::Name {
                        name,
                        username,
                        user_domain_name,
                    } => {
                        e.application_credential_name = Some(name.clone());
                        e.username = Some(username.clone());
                        e.user_domain_name = Some(user_domain_name.clone());
                    }
                }
                s.explicit = Some(e);
            }
        }
        s
    }
}

/// A Keystone object referred to by id, or by name within a domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NameOrId {
    /// By id.
    Id(String),
    /// By name within a domain.
    Name {
        /// The object's name.
        name: String,
        /// Its domain.
        domain: Domain,
    },
}

/// A Keystone domain, by id or name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Domain {
    /// By id.
    Id(String),
    /// By name.
    Name(String),
}

/// How to authenticate to Keystone.
#[derive(Debug, Clone)]
pub enum AuthMethod {
    /// Password of a user, scoped to a project (unscoped tokens cannot reach Nova).
    Password {
        /// The user.
        user: NameOrId,
        /// The password (redacted in Debug).
        password: SecretString,
        /// The project to scope to.
        project: NameOrId,
    },
    /// An application credential: its scope is fixed when it is created.
    ApplicationCredential {
        /// By id, or by name of a user's credential.
        credential: AppCredential,
        /// The secret (redacted in Debug).
        secret: SecretString,
    },
}

/// An application credential reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppCredential {
    /// By id.
    Id(String),
    /// By name, which is only unique per user.
    Name {
        /// The credential's name.
        name: String,
        /// Its owner.
        user: NameOrId,
    },
}

/// Parses `public`, `internal`, `admin` (and the old `publicURL` spellings).
///
/// # Errors
///
/// [`Error::Config`] naming the value and where it came from.
pub fn parse_interface(value: &str, origin: &str) -> Result<Interface> {
    match value.trim_end_matches("URL") {
        "public" => Ok(Interface::Public),
        "internal" => Ok(Interface::Internal),
        "admin" => Ok(Interface::Admin),
        _ => Err(Error::config(format!(
            "{origin}: interface {value:?} is not one of public, internal, admin"
        ))),
    }
}

/// The catalog's spelling of an interface.
pub fn interface_name(i: Interface) -> &'static str {
    match i {
        Interface::Public => "public",
        Interface::Internal => "internal",
        Interface::Admin => "admin",
    }
}

/// Everything the client needs to authenticate and pick endpoints.
#[derive(Debug, Clone)]
pub struct ResolvedAuth {
    /// Keystone v3 base URL, ending in `/v3`.
    pub auth_url: url::Url,
    /// Credentials.
    pub method: AuthMethod,
    /// Region to pick endpoints from (`None`: the first endpoint of the interface).
    pub region: Option<String>,
    /// Endpoint interface.
    pub interface: Interface,
    /// Extra CA certificates to trust.
    pub cacert: Option<PathBuf>,
    /// `false` only when clouds.yaml says `verify: false` or `insecure: true`.
    pub verify_tls: bool,
    /// Where the credentials came from, for messages (`clouds.yaml /x cloud demo`, `OS_* variables`).
    pub origin: String,
}

/// Resolves the credentials from settings and environment (see the module docs for the order).
///
/// # Errors
///
/// [`Error::Config`], [`Error::ReadFile`] or [`Error::ParseFile`], naming the file, key,
/// variable or value that is missing or wrong.
pub fn resolve_auth(settings: &AuthSettings, env: &dyn Env) -> Result<ResolvedAuth> {
    let mut resolved = if let Some(explicit) = &settings.explicit {
        from_explicit(explicit, env)?
    } else if let Some(cloud) = settings.cloud.clone().or_else(|| var(env, "OS_CLOUD")) {
        from_cloud(&cloud, settings.clouds_file.as_deref(), env)?
    } else if var(env, "OS_AUTH_URL").is_some() {
        from_env(env)?
    } else {
        return Err(Error::config(
            "no credentials: set [openstack] cloud or auth_url, or the OS_CLOUD or OS_AUTH_URL variable",
        ));
    };
    if let Some(r) = &settings.region {
        resolved.region = Some(r.clone());
    }
    if let Some(i) = settings.interface {
        resolved.interface = i;
    }
    if let Some(c) = &settings.cacert {
        resolved.cacert = Some(c.clone());
    }
    Ok(resolved)
}

/// The clouds.yaml files looked at, in order, when no file is configured.
pub fn clouds_yaml_candidates(env: &dyn Env) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Some(f) = var(env, "OS_CLIENT_CONFIG_FILE") {
        out.push(PathBuf::from(f));
    }
    out.push(PathBuf::from("clouds.yaml"));
    if let Some(xdg) = var(env, "XDG_CONFIG_HOME") {
        out.push(Path::new(&xdg).join("openstack/clouds.yaml"));
    } else if let Some(home) = var(env, "HOME") {
        out.push(Path::new(&home).join(".config/openstack/clouds.yaml"));
    }
    out.push(PathBuf::from("/etc/openstack/clouds.yaml"));
    out
}

fn from_explicit(e: &ExplicitAuth, env: &dyn Env) -> Result<ResolvedAuth> {
    let origin = "[openstack] section";
    let fields = Fields {
        origin: origin.to_string(),
        auth_url: Some(e.auth_url.clone()),
        username: e.username.clone(),
        user_domain_name: e.user_domain_name.clone(),
        project_name: e.project_name.clone(),
        project_id: e.project_id.clone(),
        project_domain_name: e.project_domain_name.clone(),
        password: e
            .password
            .as_ref()
            .map(|s| read_secret(s, env, "password"))
            .transpose()?,
        application_credential_id: e.application_credential_id.clone(),
        application_credential_name: e.application_credential_name.clone(),
        application_credential_secret: e
            .application_credential_secret
            .as_ref()
            .map(|s| read_secret(s, env, "application_credential_secret"))
            .transpose()?,
        ..Fields::default()
    };
    fields.build()
}

fn from_env(env: &dyn Env) -> Result<ResolvedAuth> {
    let v = |k: &str| var(env, k);
    let fields = Fields {
        origin: "OS_* variables".into(),
        auth_url: v("OS_AUTH_URL"),
        auth_type: v("OS_AUTH_TYPE"),
        username: v("OS_USERNAME"),
        user_id: v("OS_USER_ID"),
        user_domain_name: v("OS_USER_DOMAIN_NAME"),
        user_domain_id: v("OS_USER_DOMAIN_ID"),
        project_name: v("OS_PROJECT_NAME").or_else(|| v("OS_TENANT_NAME")),
        project_id: v("OS_PROJECT_ID").or_else(|| v("OS_TENANT_ID")),
        project_domain_name: v("OS_PROJECT_DOMAIN_NAME"),
        project_domain_id: v("OS_PROJECT_DOMAIN_ID"),
        domain_name: v("OS_DOMAIN_NAME"),
        domain_id: v("OS_DOMAIN_ID"),
        password: v("OS_PASSWORD").map(SecretString::from),
        application_credential_id: v("OS_APPLICATION_CREDENTIAL_ID"),
        application_credential_name: v("OS_APPLICATION_CREDENTIAL_NAME"),
        application_credential_secret: v("OS_APPLICATION_CREDENTIAL_SECRET")
            .map(SecretString::from),
        region: v("OS_REGION_NAME"),
        interface: v("OS_INTERFACE").or_else(|| v("OS_ENDPOINT_TYPE")),
        cacert: v("OS_CACERT").map(PathBuf::from),
        insecure: v("OS_INSECURE").is_some_and(|s| matches!(s.as_str(), "1" | "true" | "True")),
    };
    fields.build()
}

fn from_cloud(cloud: &str, clouds_file: Option<&Path>, env: &dyn Env) -> Result<ResolvedAuth> {
    let path = match clouds_file {
        Some(p) => p.to_path_buf(),
        None => {
            let candidates = clouds_yaml_candidates(env);
            candidates
                .iter()
                .find(|p| p.is_file())
                .cloned()
                .ok_or_else(|| {
                    let list: Vec<String> =
                        candidates.iter().map(|p| p.display().to_string()).collect();
                    Error::config(format!(
                        "cloud {cloud:?} asked for, but no clouds.yaml found (looked at {})",
                        list.join(", ")
                    ))
                })?
        }
    };
    let doc = read_yaml(&path)?;
    let clouds = clouds_of(&doc).ok_or_else(|| {
        Error::config(format!("{}: no top-level `clouds` mapping", path.display()))
    })?;
    let mut entry = match clouds.get(cloud) {
        Some(Value::Mapping(m)) => m.clone(),
        Some(_) => {
            return Err(Error::config(format!(
                "{}: clouds.{cloud} is not a mapping",
                path.display()
            )));
        }
        None => {
            let known: Vec<&str> = clouds.keys().filter_map(Value::as_str).collect();
            return Err(Error::config(format!(
                "{}: cloud {cloud:?} not found (known: {})",
                path.display(),
                known.join(", ")
            )));
        }
    };
    let secure = env
        .var("OS_CLIENT_SECURE_FILE")
        .map(PathBuf::from)
        .or_else(|| {
            let beside = path.with_file_name("secure.yaml");
            beside.is_file().then_some(beside)
        });
    let mut origin = format!("{} cloud {cloud:?}", path.display());
    if let Some(secure) = secure.filter(|p| p.is_file()) {
        let sdoc = read_yaml(&secure)?;
        // OpenStack's rule: secure.yaml is merged over clouds.yaml key by key, at the YAML
        // level, before anything is interpreted.
        if let Some(Value::Mapping(s)) = clouds_of(&sdoc).and_then(|c| c.get(cloud)) {
            merge(&mut entry, s);
            origin.push_str(&format!(" + {}", secure.display()));
        }
    }
    let entry: CloudEntry =
        serde_path_to_error::deserialize(Value::Mapping(entry)).map_err(|e| {
            // The path names the key (`auth.username`, `regions[0]`); serde's message says
            // what was expected and what was found. Secrets take any string or number, so
            // their text is never quoted in an error.
            Error::config(format!("{origin}: {}: {}", e.path(), e.inner()))
        })?;
    if entry.profile.is_some() {
        return Err(Error::config(format!(
            "{origin}: `profile` (vendor profiles) is not supported; write auth_url into the cloud entry"
        )));
    }
    let auth = entry.auth;
    let fields = Fields {
        auth_url: Text::get(auth.auth_url),
        auth_type: Text::get(entry.auth_type),
        username: Text::get(auth.username),
        user_id: Text::get(auth.user_id),
        user_domain_name: Text::get(auth.user_domain_name),
        user_domain_id: Text::get(auth.user_domain_id),
        project_name: Text::get(auth.project_name).or_else(|| Text::get(auth.tenant_name)),
        project_id: Text::get(auth.project_id).or_else(|| Text::get(auth.tenant_id)),
        project_domain_name: Text::get(auth.project_domain_name),
        project_domain_id: Text::get(auth.project_domain_id),
        domain_name: Text::get(auth.domain_name),
        domain_id: Text::get(auth.domain_id),
        password: auth.password,
        application_credential_id: Text::get(auth.application_credential_id),
        application_credential_name: Text::get(auth.application_credential_name),
        application_credential_secret: auth.application_credential_secret,
        region: Text::get(entry.region_name)
            .or_else(|| entry.regions.into_iter().next().and_then(Region::name)),
        interface: Text::get(entry.interface).or_else(|| Text::get(entry.endpoint_type)),
        cacert: Text::get(entry.cacert).map(PathBuf::from),
        insecure: entry.insecure.is_some_and(|f| f.0) || entry.verify.is_some_and(|f| !f.0),
        origin,
    };
    fields.build()
}

/// The `clouds` mapping of a clouds.yaml or secure.yaml document.
fn clouds_of(doc: &Value) -> Option<&Mapping> {
    doc.get("clouds").and_then(Value::as_mapping)
}

/// One entry of `clouds:` in clouds.yaml, with secure.yaml merged over it.
///
/// Keys this client does not use are ignored (no `deny_unknown_fields`): clouds.yaml files
/// are shared with the `openstack` CLI and openstacksdk, which know many more. A key that is
/// present with the wrong type is an error naming it.
#[derive(Deserialize, Default)]
#[serde(default, expecting = "a mapping of cloud settings")]
struct CloudEntry {
    /// Credentials and scope.
    auth: CloudAuth,
    /// `password` / `v3password` or `v3applicationcredential`; unset: guessed from the secret.
    auth_type: Option<Text>,
    /// The region to use; wins over `regions`.
    region_name: Option<Text>,
    /// The cloud's regions; the first is used when `region_name` is not given.
    regions: Vec<Region>,
    /// Endpoint interface (`public`, `internal`, `admin`).
    interface: Option<Text>,
    /// The old name of `interface`.
    endpoint_type: Option<Text>,
    /// Extra CA certificates to trust.
    cacert: Option<Text>,
    /// `insecure: true` turns TLS verification off.
    insecure: Option<Flag>,
    /// `verify: false` turns TLS verification off.
    verify: Option<Flag>,
    /// Vendor profiles are not supported; read only to say so.
    profile: Option<Value>,
}

/// The `auth` mapping of a cloud entry (unknown keys ignored, as in [`CloudEntry`]).
#[derive(Deserialize, Default)]
#[serde(
    default,
    expecting = "a mapping of auth settings (auth_url, username, ...)"
)]
struct CloudAuth {
    auth_url: Option<Text>,
    username: Option<Text>,
    user_id: Option<Text>,
    user_domain_name: Option<Text>,
    user_domain_id: Option<Text>,
    project_name: Option<Text>,
    /// Keystone v2 name of `project_name`, still written by old openrc generators.
    tenant_name: Option<Text>,
    project_id: Option<Text>,
    /// Keystone v2 name of `project_id`.
    tenant_id: Option<Text>,
    project_domain_name: Option<Text>,
    project_domain_id: Option<Text>,
    /// Default domain of both user and project.
    domain_name: Option<Text>,
    domain_id: Option<Text>,
    /// Wrapped as soon as it is read (redacted in Debug, never in an error).
    #[serde(deserialize_with = "secret")]
    password: Option<SecretString>,
    application_credential_id: Option<Text>,
    application_credential_name: Option<Text>,
    /// Wrapped as soon as it is read.
    #[serde(deserialize_with = "secret")]
    application_credential_secret: Option<SecretString>,
}

/// An entry of `regions:`: a plain name, or a mapping with `name` (and per-region
/// `values`, which this client does not use).
#[derive(Deserialize)]
#[serde(untagged, expecting = "a region name, or a mapping with `name`")]
enum Region {
    /// `- RegionOne`.
    Name(Text),
    /// `- name: RegionOne`.
    Entry {
        #[serde(default)]
        name: Option<Text>,
    },
}

// === impl Region ===

impl Region {
    fn name(self) -> Option<String> {
        match self {
            Region::Name(t) => Text::get(Some(t)),
            Region::Entry { name } => Text::get(name),
        }
    }
}

/// A scalar setting read as text: a string, or a number written without quotes
/// (`project_id: 12345`), as the `openstack` CLI reads them.
struct Text(String);

// === impl Text ===

impl Text {
    /// The text, with an empty value counting as unset (as in the `openstack` CLI).
    fn get(t: Option<Text>) -> Option<String> {
        t.map(|t| t.0).filter(|s| !s.is_empty())
    }
}

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Text;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string or a number")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> std::result::Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> std::result::Result<Text, E> {
                Ok(Text(v))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> std::result::Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> std::result::Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> std::result::Result<Text, E> {
                Ok(Text(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

/// A yes/no setting: a YAML boolean, or the strings `true`/`false`, `yes`/`no`, `1`/`0` in
/// any case (clouds.yaml files written by hand quote them at times).
struct Flag(bool);

impl<'de> Deserialize<'de> for Flag {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Flag;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("true or false")
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> std::result::Result<Flag, E> {
                Ok(Flag(v))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> std::result::Result<Flag, E> {
                match v.to_ascii_lowercase().as_str() {
                    "true" | "yes" | "1" => Ok(Flag(true)),
                    "false" | "no" | "0" => Ok(Flag(false)),
                    _ => Err(E::invalid_value(serde::de::Unexpected::Str(v), &self)),
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// Reads a secret as [`Text`] and wraps it at once; empty counts as unset.
fn secret<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<SecretString>, D::Error> {
    Ok(Text::get(Option::<Text>::deserialize(d)?).map(SecretString::from))
}

/// Merges `over` into `base`, recursing into mappings (secure.yaml over clouds.yaml).
fn merge(base: &mut Mapping, over: &Mapping) {
    for (k, v) in over {
        match (base.get_mut(k), v) {
            (Some(Value::Mapping(b)), Value::Mapping(o)) => merge(b, o),
            _ => {
                base.insert(k.clone(), v.clone());
            }
        }
    }
}

fn read_yaml(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::ReadFile {
        path: path.to_path_buf(),
        source,
    })?;
    serde_yaml_ng::from_str(&text).map_err(|source| Error::ParseFile {
        path: path.to_path_buf(),
        source,
    })
}

fn read_secret(src: &SecretSource, env: &dyn Env, key: &'static str) -> Result<SecretString> {
    src.resolve(env)
        .map_err(|source| Error::Secret { key, source })
}

/// The union of what the three sources can say, before validation.
#[derive(Default)]
struct Fields {
    origin: String,
    auth_url: Option<String>,
    auth_type: Option<String>,
    username: Option<String>,
    user_id: Option<String>,
    user_domain_name: Option<String>,
    user_domain_id: Option<String>,
    project_name: Option<String>,
    project_id: Option<String>,
    project_domain_name: Option<String>,
    project_domain_id: Option<String>,
    domain_name: Option<String>,
    domain_id: Option<String>,
    password: Option<SecretString>,
    application_credential_id: Option<String>,
    application_credential_name: Option<String>,
    application_credential_secret: Option<SecretString>,
    region: Option<String>,
    interface: Option<String>,
    cacert: Option<PathBuf>,
    insecure: bool,
}

impl Fields {
    fn build(self) -> Result<ResolvedAuth> {
        let origin = self.origin.clone();
        let raw_url = self
            .auth_url
            .clone()
            .ok_or_else(|| Error::config(format!("{origin}: auth_url is missing")))?;
        let auth_url = v3_url(&raw_url)
            .map_err(|m| Error::config(format!("{origin}: auth_url {raw_url:?}: {m}")))?;
        let app_cred = match self.auth_type.as_deref() {
            None => self.application_credential_secret.is_some(),
            Some("password" | "v3password") => false,
            Some("v3applicationcredential" | "application_credential") => true,
            Some(other) => {
                return Err(Error::config(format!(
                    "{origin}: auth_type {other:?} is not supported (use password or v3applicationcredential)"
                )));
            }
        };
        let domain = |id: &Option<String>, name: &Option<String>| {
            id.clone()
                .or_else(|| self.domain_id.clone())
                .map(Domain::Id)
                .or_else(|| {
                    name.clone()
                        .or_else(|| self.domain_name.clone())
                        .map(Domain::Name)
                })
                .unwrap_or_else(|| Domain::Name("Default".into()))
        };
        let user = match (&self.user_id, &self.username) {
            (Some(id), _) => Some(NameOrId::Id(id.clone())),
            (None, Some(name)) => Some(NameOrId::Name {
                name: name.clone(),
                domain: domain(&self.user_domain_id, &self.user_domain_name),
            }),
            (None, None) => None,
        };
        let method = if app_cred {
            let secret = self.application_credential_secret.clone().ok_or_else(|| {
                Error::config(format!(
                    "{origin}: application_credential_secret is missing"
                ))
            })?;
            let credential = match (
                &self.application_credential_id,
                &self.application_credential_name,
            ) {
                (Some(id), _) => AppCredential::Id(id.clone()),
                (None, Some(name)) => AppCredential::Name {
                    name: name.clone(),
                    user: user.ok_or_else(|| {
                        Error::config(format!(
                            "{origin}: application_credential_name needs username or user_id"
                        ))
                    })?,
                },
                (None, None) => {
                    return Err(Error::config(format!(
                        "{origin}: application_credential_id or application_credential_name is missing"
                    )));
                }
            };
            AuthMethod::ApplicationCredential { credential, secret }
        } else {
            let user = user.ok_or_else(|| {
                Error::config(format!("{origin}: username or user_id is missing"))
            })?;
            let password = self
                .password
                .clone()
                .ok_or_else(|| Error::config(format!("{origin}: password is missing")))?;
            let project = match (&self.project_id, &self.project_name) {
                (Some(id), _) => NameOrId::Id(id.clone()),
                (None, Some(name)) => NameOrId::Name {
                    name: name.clone(),
                    domain: domain(&self.project_domain_id, &self.project_domain_name),
                },
                (None, None) => {
                    return Err(Error::config(format!(
                        "{origin}: project_name or project_id is missing (password auth needs a project scope)"
                    )));
                }
            };
            AuthMethod::Password {
                user,
                password,
                project,
            }
        };
        let interface = match &self.interface {
            Some(i) => parse_interface(i, &origin)?,
            None => Interface::Public,
        };
        Ok(ResolvedAuth {
            auth_url,
            method,
            region: self.region,
            interface,
            cacert: self.cacert,
            verify_tls: !self.insecure,
            origin,
        })
    }
}

/// Parses a Keystone URL and makes it end in `/v3`.
fn v3_url(raw: &str) -> std::result::Result<url::Url, String> {
    let mut url = url::Url::parse(raw).map_err(|e| e.to_string())?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("scheme must be http or https".into());
    }
    let path = url.path().trim_end_matches('/').to_string();
    if path.ends_with("/v3") {
        url.set_path(&path);
    } else if path.ends_with("/v2.0") {
        return Err("Keystone v2.0 is not supported; use the /v3 URL".into());
    } else {
        url.set_path(&format!("{path}/v3"));
    }
    Ok(url)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    const CLOUDS: &str = r#"
clouds:
  demo:
    auth:
      auth_url: http://127.0.0.1:5000
      username: demo
      password: demo-pass
      project_name: demo
      user_domain_name: Default
      project_domain_id: default
    region_name: RegionOne
  appcred:
    auth_type: v3applicationcredential
    auth:
      auth_url: https://keystone.example/v3/
      application_credential_id: abc123
    interface: internal
    verify: false
  partial:
    auth:
      auth_url: https://keystone.example/v3
      username: demo
      project_id: p-1
"#;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn named_cloud_from_os_client_config_file_gives_password_auth() {
        let dir = tempfile::tempdir().unwrap();
        let f = write(dir.path(), "clouds.yaml", CLOUDS);
        let f = f.to_str().unwrap().to_string();
        let e: HashMap<String, String> = [
            ("OS_CLOUD".to_string(), "demo".to_string()),
            ("OS_CLIENT_CONFIG_FILE".to_string(), f),
        ]
        .into();
        let r = resolve_auth(&AuthSettings::default(), &e).unwrap();
        assert_eq!(r.auth_url.as_str(), "http://127.0.0.1:5000/v3");
        assert_eq!(r.region.as_deref(), Some("RegionOne"));
        assert_eq!(r.interface, Interface::Public);
        assert!(r.verify_tls);
        let AuthMethod::Password {
            user,
            password,
            project,
        } = r.method
        else {
            panic!("expected password auth")
        };
        assert_eq!(
            user,
            NameOrId::Name {
                name: "demo".into(),
                domain: Domain::Name("Default".into())
            }
        );
        assert_eq!(password.expose_secret(), "demo-pass");
        assert_eq!(
            project,
            NameOrId::Name {
                name: "demo".into(),
                domain: Domain::Id("default".into())
            }
        );
    }

    #[test]
    fn secure_yaml_beside_clouds_yaml_supplies_the_secret() {
        let dir = tempfile::tempdir().unwrap();
        let f = write(dir.path(), "clouds.yaml", CLOUDS);
        write(
            dir.path(),
            "secure.yaml",
            "clouds:\n  appcred:\n    auth:\n      application_credential_secret: s3cr3t\n",
        );
        let settings = AuthSettings {
            cloud: Some("appcred".into()),
            clouds_file: Some(f),
            ..AuthSettings::default()
        };
        let r = resolve_auth(&settings, &env(&[])).unwrap();
        assert_eq!(r.interface, Interface::Internal);
        assert!(!r.verify_tls, "verify: false must be honoured");
        assert_eq!(r.auth_url.as_str(), "https://keystone.example/v3");
        let AuthMethod::ApplicationCredential { credential, secret } = r.method else {
            panic!("expected application credential auth")
        };
        assert_eq!(credential, AppCredential::Id("abc123".into()));
        assert_eq!(secret.expose_secret(), "s3cr3t");
        assert!(r.origin.contains("secure.yaml"));
    }

    #[test]
    fn settings_override_region_interface_and_cacert() {
        let dir = tempfile::tempdir().unwrap();
        let f = write(dir.path(), "clouds.yaml", CLOUDS);
        write(
            dir.path(),
            "secure.yaml",
            "clouds:\n  partial:\n    auth:\n      password: pw\n",
        );
        let settings = AuthSettings {
            cloud: Some("partial".into()),
            clouds_file: Some(f),
            region: Some("RegionTwo".into()),
            interface: Some(Interface::Admin),
            cacert: Some("/etc/ssl/private-ca.pem".into()),
            explicit: None,
        };
        let r = resolve_auth(&settings, &env(&[])).unwrap();
        assert_eq!(r.region.as_deref(), Some("RegionTwo"));
        assert_eq!(r.interface, Interface::Admin);
        assert_eq!(r.cacert, Some(PathBuf::from("/etc/ssl/private-ca.pem")));
        let AuthMethod::Password { project, .. } = r.method else {
            panic!("expected password auth")
        };
        assert_eq!(project, NameOrId::Id("p-1".into()));
    }

    #[test]
    fn unknown_cloud_names_the_file_and_known_clouds() {
        let dir = tempfile::tempdir().unwrap();
        let f = write(dir.path(), "clouds.yaml", CLOUDS);
        let settings = AuthSettings {
            cloud: Some("prod".into()),
            clouds_file: Some(f.clone()),
            ..AuthSettings::default()
        };
        let msg = resolve_auth(&settings, &env(&[])).unwrap_err().to_string();
        assert!(msg.contains(&f.display().to_string()), "{msg}");
        assert!(msg.contains("\"prod\" not found"), "{msg}");
        assert!(msg.contains("demo, appcred, partial"), "{msg}");
    }

    fn resolve_cloud(dir: &Path, cloud: &str, clouds: &str) -> Result<ResolvedAuth> {
        let f = write(dir, "clouds.yaml", clouds);
        let settings = AuthSettings {
            cloud: Some(cloud.into()),
            clouds_file: Some(f),
            ..AuthSettings::default()
        };
        resolve_auth(&settings, &env(&[]))
    }

    #[test]
    fn first_region_may_be_a_mapping_with_a_name() {
        let dir = tempfile::tempdir().unwrap();
        let r = resolve_cloud(
            dir.path(),
            "multi",
            r#"
clouds:
  multi:
    auth:
      auth_url: https://k.example/v3
      application_credential_id: ac
      application_credential_secret: s
    regions:
      - name: RegionTwo
        values:
          interface: internal
      - RegionThree
"#,
        )
        .unwrap();
        assert_eq!(r.region.as_deref(), Some("RegionTwo"));
    }

    #[test]
    fn unknown_keys_are_tolerated_as_the_openstack_cli_does() {
        let dir = tempfile::tempdir().unwrap();
        let r = resolve_cloud(
            dir.path(),
            "demo",
            r#"
clouds:
  demo:
    identity_api_version: 3
    image_format: raw
    block_storage_api_version: 3
    auth:
      auth_url: https://k.example:5000
      username: demo
      password: pw
      project_id: 12345
      system_scope: all
    regions: [RegionOne]
    verify: "False"
"#,
        )
        .unwrap();
        assert_eq!(r.region.as_deref(), Some("RegionOne"));
        assert!(!r.verify_tls, "a quoted False still turns verification off");
        let AuthMethod::Password { project, .. } = r.method else {
            panic!("expected password auth")
        };
        assert_eq!(
            project,
            NameOrId::Id("12345".into()),
            "numbers read as text"
        );
    }

    #[test]
    fn a_key_of_the_wrong_type_names_file_cloud_and_key() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("clouds.yaml");
        let msg = resolve_cloud(dir.path(), "demo", "clouds:\n  demo:\n    auth: 5\n")
            .unwrap_err()
            .to_string();
        let prefix = format!("{} cloud \"demo\": auth: ", f.display());
        assert!(msg.contains(&prefix), "{msg}");
        assert!(msg.contains("invalid type: integer `5`"), "{msg}");

        let msg = resolve_cloud(
            dir.path(),
            "demo",
            "clouds:\n  demo:\n    auth:\n      auth_url: https://k.example/v3\n      username: [a, b]\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            msg.contains(&format!("{} cloud \"demo\": auth.username: ", f.display())),
            "{msg}"
        );
        let msg = resolve_cloud(
            dir.path(),
            "demo",
            "clouds:\n  demo:\n    regions:\n      - [RegionOne]\n",
        )
        .unwrap_err()
        .to_string();
        assert!(msg.contains("cloud \"demo\": regions[0]: "), "{msg}");
    }

    #[test]
    fn a_secret_of_the_wrong_type_is_named_but_never_shown() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "secure.yaml",
            "clouds:\n  demo:\n    auth:\n      password:\n        - hunter2-password\n",
        );
        let err = resolve_cloud(dir.path(), "demo", CLOUDS).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("secure.yaml: auth.password: "), "{msg}");
        assert!(!msg.contains("hunter2"), "{msg}");
        assert!(!format!("{err:?}").contains("hunter2"));
    }

    #[test]
    fn invalid_yaml_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = write(dir.path(), "clouds.yaml", "clouds: [unclosed");
        let settings = AuthSettings {
            cloud: Some("demo".into()),
            clouds_file: Some(f.clone()),
            ..AuthSettings::default()
        };
        let err = resolve_auth(&settings, &env(&[])).unwrap_err();
        assert!(
            matches!(err, Error::ParseFile { ref path, .. } if *path == f),
            "{err:?}"
        );
    }

    #[test]
    fn openrc_variables_give_application_credential_auth() {
        let e = env(&[
            ("OS_AUTH_URL", "http://127.0.0.1:5000/v3"),
            ("OS_AUTH_TYPE", "v3applicationcredential"),
            ("OS_APPLICATION_CREDENTIAL_ID", "ac-1"),
            ("OS_APPLICATION_CREDENTIAL_SECRET", "sec"),
            ("OS_REGION_NAME", "RegionOne"),
        ]);
        let r = resolve_auth(&AuthSettings::default(), &e).unwrap();
        assert_eq!(r.origin, "OS_* variables");
        assert!(matches!(
            r.method,
            AuthMethod::ApplicationCredential { credential: AppCredential::Id(ref id), .. } if id == "ac-1"
        ));
    }

    #[test]
    fn openrc_password_without_project_is_refused_naming_the_key() {
        let e = env(&[
            ("OS_AUTH_URL", "http://127.0.0.1:5000/v3"),
            ("OS_USERNAME", "demo"),
            ("OS_PASSWORD", "pw"),
        ]);
        let msg = resolve_auth(&AuthSettings::default(), &e)
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("project_name or project_id is missing"),
            "{msg}"
        );
        assert!(!msg.contains("pw"), "{msg}");
    }

    #[test]
    fn explicit_section_reads_secrets_from_env_and_file() {
        let dir = tempfile::tempdir().unwrap();
        let pw = write(dir.path(), "pw", "from-file\n");
        let mut explicit = ExplicitAuth {
            auth_url: "https://keystone.example:5000/".into(),
            username: Some("ci".into()),
            project_name: Some("ci".into()),
            password: Some(SecretSource::File(pw)),
            ..ExplicitAuth::default()
        };
        let settings = AuthSettings {
            explicit: Some(explicit.clone()),
            ..AuthSettings::default()
        };
        let r = resolve_auth(&settings, &env(&[("OS_CLOUD", "ignored")])).unwrap();
        assert_eq!(r.auth_url.as_str(), "https://keystone.example:5000/v3");
        let AuthMethod::Password { password, .. } = &r.method else {
            panic!("expected password auth")
        };
        assert_eq!(password.expose_secret(), "from-file");

        explicit.password = None;
        explicit.application_credential_name = Some("scaler".into());
        explicit.application_credential_secret = Some(SecretSource::Env("AC_SECRET".into()));
        let settings = AuthSettings {
            explicit: Some(explicit),
            ..AuthSettings::default()
        };
        let err = resolve_auth(&settings, &env(&[])).unwrap_err();
        let chain = crate::error::render_chain(&err);
        assert_eq!(
            chain,
            "[openstack] application_credential_secret: cannot read the secret: environment variable AC_SECRET is not set"
        );
        let r = resolve_auth(&settings, &env(&[("AC_SECRET", "x")])).unwrap();
        assert!(matches!(
            r.method,
            AuthMethod::ApplicationCredential {
                credential: AppCredential::Name { .. },
                ..
            }
        ));
    }

    #[test]
    fn resolved_auth_debug_redacts_secrets() {
        let e = env(&[
            ("OS_AUTH_URL", "http://127.0.0.1:5000/v3"),
            ("OS_USERNAME", "demo"),
            ("OS_PASSWORD", "hunter2-password"),
            ("OS_PROJECT_NAME", "demo"),
        ]);
        let r = resolve_auth(&AuthSettings::default(), &e).unwrap();
        let shown = format!("{r:?}");
        assert!(!shown.contains("hunter2-password"), "{shown}");
    }

    #[test]
    fn search_path_follows_the_openstack_cli() {
        let c = clouds_yaml_candidates(&env(&[
            ("HOME", "/home/ci"),
            ("OS_CLIENT_CONFIG_FILE", "/x/c.yaml"),
        ]));
        let c: Vec<String> = c.iter().map(|p| p.display().to_string()).collect();
        assert_eq!(
            c,
            [
                "/x/c.yaml",
                "clouds.yaml",
                "/home/ci/.config/openstack/clouds.yaml",
                "/etc/openstack/clouds.yaml"
            ]
        );
    }

    #[test]
    fn interfaces_accept_the_old_url_spellings_and_name_bad_values() {
        assert_eq!(
            parse_interface("internalURL", "x").unwrap(),
            Interface::Internal
        );
        assert_eq!(parse_interface("public", "x").unwrap(), Interface::Public);
        let msg = parse_interface("private", "clouds.yaml cloud \"a\"")
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("clouds.yaml cloud \"a\": interface \"private\""),
            "{msg}"
        );
    }

    #[test]
    fn empty_variables_count_as_unset() {
        let e = env(&[("OS_CLOUD", ""), ("OS_AUTH_URL", "")]);
        let msg = resolve_auth(&AuthSettings::default(), &e)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("no credentials"), "{msg}");
    }

    #[test]
    fn config_section_converts_to_explicit_settings() {
        use autoscaler_config::{AppCredential as CfgCred, OpenStack as Cfg, OpenStackAuth};
        let cfg = Cfg {
            auth: OpenStackAuth::ApplicationCredential {
                auth_url: "https://k.example:5000/v3".parse().unwrap(),
                credential: CfgCred::Name {
                    name: "scaler".into(),
                    username: "ci".into(),
                    user_domain_name: "Default".into(),
                },
                secret: SecretSource::Env("AC_SECRET".into()),
            },
            region: Some("RegionTwo".into()),
            interface: Some(Interface::Internal),
            cacert: None,
        };
        let settings = AuthSettings::from(&cfg);
        let r = resolve_auth(&settings, &env(&[("AC_SECRET", "s")])).unwrap();
        assert_eq!(r.region.as_deref(), Some("RegionTwo"));
        assert_eq!(r.interface, Interface::Internal);
        let AuthMethod::ApplicationCredential { credential, .. } = r.method else {
            panic!("expected application credential auth")
        };
        assert_eq!(
            credential,
            AppCredential::Name {
                name: "scaler".into(),
                user: NameOrId::Name {
                    name: "ci".into(),
                    domain: Domain::Name("Default".into())
                }
            }
        );
    }

    #[test]
    fn nothing_configured_says_what_to_set() {
        let msg = resolve_auth(&AuthSettings::default(), &env(&[]))
            .unwrap_err()
            .to_string();
        assert!(msg.contains("OS_CLOUD"), "{msg}");
    }

    #[test]
    fn keystone_v2_urls_are_refused() {
        let e = env(&[
            ("OS_AUTH_URL", "http://k:5000/v2.0"),
            ("OS_APPLICATION_CREDENTIAL_ID", "a"),
            ("OS_APPLICATION_CREDENTIAL_SECRET", "b"),
        ]);
        let msg = resolve_auth(&AuthSettings::default(), &e)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("v2.0 is not supported"), "{msg}");
    }
}
