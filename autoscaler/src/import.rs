//! `autoscaler import`: a gitlab-runner `config.toml` with `docker+machine` OpenStack
//! runners, converted into this project's configuration.
//!
//! Pure: text in, text out. Every `[[runners]]` entry with `executor = "docker+machine"` and
//! `MachineDriver = "openstack"` becomes a pool. Secrets are never copied: passwords, S3
//! keys and tokens become `*_file` references with a note saying where to put them. The
//! removed `OffPeak*` keys and `[[runners.machine.autoscaling]]` blocks become
//! `[[pools.periods]]`; because docker+machine zeroed the fields a block left unset (where
//! this project inherits them), those fields are written out explicitly as 0. Comments of the
//! source are carried over above the keys they belonged to, with anything that looks like a
//! secret in them (the source's own secret values, the value after a key such as `token`,
//! `password`, `secret` or `AccessKey`, GitLab tokens by their prefix, `--token` flags)
//! replaced by `[REDACTED]`. The output ends with a list of everything that could not be
//! mapped. A key the importer reads that has the wrong type (`limit = "24"`) is an error
//! naming file, line, column and key: gitlab-runner refuses such a file too, and a guess
//! would silently change the setup.

use std::fmt::Write as _;

use toml_edit::{DocumentMut, Item, Table, Value};

/// A source that cannot be imported at all.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// Not TOML.
    #[error("{origin}: not valid TOML: {message}")]
    Syntax {
        /// File name.
        origin: String,
        /// The parser's message (with line and column).
        message: String,
    },
    /// Keys the importer reads have the wrong type; nothing was converted.
    #[error(
        "{}\n{origin}: {} key(s) with the wrong type (gitlab-runner refuses such a file too); fix them and import again",
        problems.join("\n"),
        problems.len()
    )]
    WrongTypes {
        /// File name.
        origin: String,
        /// One line per key: `file:line:col: key: expected ..., found ...`.
        problems: Vec<String>,
    },
    /// No docker+machine OpenStack runner in it.
    #[error(
        "{origin}: no [[runners]] entry with executor = \"docker+machine\" and MachineDriver = \"openstack\""
    )]
    NothingToImport {
        /// File name.
        origin: String,
    },
}

/// Converts `source` (named `origin` in messages and comments).
///
/// # Errors
///
/// The source is not TOML, or holds no docker+machine OpenStack runner.
pub fn import(source: &str, origin: &str) -> Result<String, ImportError> {
    let doc: DocumentMut =
        source
            .parse()
            .map_err(|e: toml_edit::TomlError| ImportError::Syntax {
                origin: origin.to_string(),
                message: e.to_string().trim().to_string(),
            })?;
    let problems = wrong_types(source, origin);
    if !problems.is_empty() {
        return Err(ImportError::WrongTypes {
            origin: origin.to_string(),
            problems,
        });
    }
    let mut out = Out {
        s: String::new(),
        secrets: secrets_of(&doc),
    };
    let mut notes: Vec<String> = Vec::new();

    let runners: Vec<&Table> = doc
        .get("runners")
        .and_then(Item::as_array_of_tables)
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    let ours: Vec<(usize, &Table)> = runners
        .iter()
        .enumerate()
        .filter(|(_, r)| {
            str_at(r, &["executor"]) == Some("docker+machine")
                && str_at(r, &["machine", "MachineDriver"])
                    .is_some_and(|d| d.eq_ignore_ascii_case("openstack"))
        })
        .map(|(i, r)| (i, *r))
        .collect();
    for (i, r) in runners.iter().enumerate() {
        if !ours.iter().any(|(j, _)| *j == i) {
            notes.push(format!(
                "runners[{i}] ({}): executor `{}` is not docker+machine on OpenStack; left out",
                str_at(r, &["name"]).unwrap_or("unnamed"),
                str_at(r, &["executor"]).unwrap_or("?")
            ));
        }
    }
    let Some((_, first)) = ours.first() else {
        return Err(ImportError::NothingToImport {
            origin: origin.to_string(),
        });
    };

    // Header and the source's leading comments.
    let _ = writeln!(
        out.s,
        "# Converted by `autoscaler import` from {origin}.\n\
         # Review every TODO, then run `autoscaler validate` and `autoscaler plan` on this file."
    );
    // Comments at the top of the file belong to the document or to its first key.
    let mut lead = comments(doc.as_table().decor().prefix());
    if let Some((k, _)) = doc.as_table().iter().next() {
        lead.extend(key_comments(doc.as_table(), k));
    }
    if !lead.is_empty() {
        let _ = writeln!(out.s, "#\n# From the source:");
        for c in &lead {
            let c = out.scrub(c);
            let _ = writeln!(out.s, "{c}");
        }
    }
    for key in [
        "concurrent",
        "check_interval",
        "listen_address",
        "log_level",
        "log_format",
    ] {
        if let Some(v) = doc.get(key).and_then(Item::as_value) {
            notes.push(format!(
                "{key} = {}: gitlab-runner global setting; the controller has no equivalent (each VM's runner gets `concurrent` = the pool's capacity)",
                v.to_string().trim()
            ));
        }
    }

    // [controller]
    out.section("controller", &[]);
    out.kv(
        "id",
        "\"autoscaler\"",
        &["# Ownership tag on every server and prefix of every runner this controller creates."],
    );
    out.kv("poll_interval", "\"15s\"", &[]);

    // [gitlab]
    let url = str_at(first, &["url"]).unwrap_or("https://gitlab.example.com/");
    out.section("gitlab", &[]);
    out.kv_owned("url", &q(url), &key_comments(first, "url"));
    out.kv(
        "token_file",
        "\"/etc/gitlab-autoscaler/gitlab-token\"",
        &[
            "# TODO: an access token with the create_runner and manage_runner scopes (api for",
            "# older GitLab), read_api for the jobs of the scope below. The runners' own",
            "# authentication tokens in the source were not copied: the controller creates one",
            "# runner per VM and gives each its own token.",
        ],
    );
    for (_, r) in ours.iter().skip(1) {
        if let Some(u) = str_at(r, &["url"]) {
            if u != url {
                notes.push(format!(
                    "runner `{}` uses GitLab {u}; one controller serves one GitLab ({url})",
                    str_at(r, &["name"]).unwrap_or("?")
                ));
            }
        }
    }
    out.section(
        "gitlab.scope",
        &[
            "# TODO: config.toml does not say which projects a runner serves. List the projects",
            "# or groups whose pending jobs the controller should read, or keep instance = true",
            "# with an administrator's token.",
        ],
    );
    out.kv("instance", "true", &[]);

    // [openstack] from the first runner's MachineOptions.
    let opts = machine_options(first);
    out.section("openstack", &[]);
    let mut os_keys = 0;
    for (flag, key) in [
        ("openstack-auth-url", "auth_url"),
        ("openstack-username", "username"),
        ("openstack-user-id", "username"),
        ("openstack-tenant-name", "project_name"),
        ("openstack-tenant-id", "project_id"),
        ("openstack-region", "region"),
        ("openstack-endpoint-type", "interface"),
        ("openstack-cacert", "cacert"),
        (
            "openstack-application-credential-id",
            "application_credential_id",
        ),
        (
            "openstack-application-credential-name",
            "application_credential_name",
        ),
    ] {
        if let Some(v) = opt(&opts, flag) {
            let v = if key == "interface" {
                v.trim_end_matches("URL").to_ascii_lowercase()
            } else {
                v.to_string()
            };
            out.kv(key, &q(&v), &[]);
            os_keys += 1;
        }
    }
    if let Some(d) = opt(&opts, "openstack-domain-name").or(opt(&opts, "openstack-domain-id")) {
        out.kv("user_domain_name", &q(d), &[]);
        out.kv("project_domain_name", &q(d), &[]);
    }
    if opt(&opts, "openstack-password").is_some() {
        out.kv(
            "password_file",
            "\"/etc/gitlab-autoscaler/openstack-password\"",
            &["# TODO: put the password from the source's MachineOptions in this file (mode 0600)."],
        );
    }
    if opt(&opts, "openstack-application-credential-secret").is_some() {
        out.kv(
            "application_credential_secret_file",
            "\"/etc/gitlab-autoscaler/openstack-appcred-secret\"",
            &["# TODO: put the application credential secret in this file (mode 0600)."],
        );
    }
    if os_keys == 0 {
        out.kv(
            "cloud",
            "\"openstack\"",
            &["# TODO: no auth options in the source; name a cloud of clouds.yaml instead."],
        );
    }

    // Pools.
    let mut names: Vec<String> = Vec::new();
    for (index, r) in &ours {
        pool(r, *index, &mut out, &mut names, &mut notes);
    }

    let _ = writeln!(
        out.s,
        "\n# ---------------------------------------------------------------"
    );
    if notes.is_empty() {
        let _ = writeln!(out.s, "# Everything in {origin} was mapped.");
    } else {
        let _ = writeln!(out.s, "# Not mapped from {origin}:");
        for n in &notes {
            let _ = writeln!(out.s, "#  - {n}");
        }
    }
    Ok(out.s)
}

/// Output under construction.
struct Out {
    s: String,
    /// Secret values found in the source: redacted from every copied comment.
    secrets: Vec<String>,
}

impl Out {
    /// A comment with every secret of the source, the argument of any `--token` or
    /// `--registration-token` flag, the value after a secret-looking key and every
    /// GitLab token (by prefix) replaced by `[REDACTED]`: comments often keep an old,
    /// commented-out value that the source's live keys no longer hold.
    fn scrub(&self, comment: &str) -> String {
        let mut c = comment.to_string();
        for s in &self.secrets {
            c = c.replace(s.as_str(), "[REDACTED]");
        }
        c = redact_assigned_secrets(&c);
        c = redact_token_prefixes(&c);
        for flag in ["--registration-token", "--token", "-r", "-t"] {
            let mut out = Vec::new();
            let mut redact_next = false;
            for word in c.split(' ') {
                if redact_next && !word.is_empty() {
                    out.push("[REDACTED]".to_string());
                    redact_next = false;
                    continue;
                }
                if word == flag {
                    redact_next = true;
                } else if let Some(v) = word.strip_prefix(&format!("{flag}=")) {
                    if !v.is_empty() {
                        out.push(format!("{flag}=[REDACTED]"));
                        continue;
                    }
                }
                out.push(word.to_string());
            }
            c = out.join(" ");
        }
        c
    }
    fn section(&mut self, name: &str, comments: &[&str]) {
        let _ = writeln!(self.s);
        for c in comments {
            let c = self.scrub(c);
            let _ = writeln!(self.s, "{c}");
        }
        let _ = writeln!(self.s, "[{name}]");
    }
    fn array_section(&mut self, name: &str, comments: &[String]) {
        let _ = writeln!(self.s);
        for c in comments {
            let c = self.scrub(c);
            let _ = writeln!(self.s, "{c}");
        }
        let _ = writeln!(self.s, "[[{name}]]");
    }
    fn kv(&mut self, key: &str, value: &str, comments: &[&str]) {
        for c in comments {
            let c = self.scrub(c);
            let _ = writeln!(self.s, "{c}");
        }
        let _ = writeln!(self.s, "{key} = {value}");
    }
    fn kv_owned(&mut self, key: &str, value: &str, comments: &[String]) {
        let refs: Vec<&str> = comments.iter().map(String::as_str).collect();
        self.kv(key, value, &refs);
    }
}

fn pool(r: &Table, index: usize, out: &mut Out, names: &mut Vec<String>, notes: &mut Vec<String>) {
    let runner_name = str_at(r, &["name"]).unwrap_or("pool");
    let privileged = bool_at(r, &["docker", "privileged"]).unwrap_or(false);
    let mut name = slug(runner_name);
    if names.contains(&name) {
        name = format!("{name}-{index}");
    }
    names.push(name.clone());
    let machine = r.get("machine").and_then(Item::as_table);
    let opts = machine_options(r);

    let mut head = vec![format!(
        "# From [[runners]] \"{runner_name}\" (runners[{index}])."
    )];
    head.extend(comments(r.decor().prefix()));
    out.array_section("pools", &head);
    out.kv("name", &q(&name), &[]);
    out.kv("capacity", "1", &["# docker+machine ran one job per VM."]);
    let limit = int_at(r, &["limit"]).unwrap_or(0);
    if limit > 0 {
        out.kv_owned("limit", &limit.to_string(), &key_comments(r, "limit"));
    } else {
        out.kv(
            "limit",
            "10",
            &["# TODO: the source had limit = 0 (unlimited); this project needs a hard cap."],
        );
        notes.push(format!(
            "runners[{index}].limit = 0 (unlimited): set to 10, review it"
        ));
    }
    let m = |k: &str| machine.and_then(|t| t.get(k));
    let mcomments = |k: &str| machine.map(|t| key_comments(t, k)).unwrap_or_default();
    if let Some(v) = m("IdleCount").and_then(Item::as_integer) {
        out.kv_owned("idle_count", &v.to_string(), &mcomments("IdleCount"));
    }
    if let Some(v) = m("IdleTime").and_then(Item::as_integer) {
        out.kv_owned("idle_time", &q(&secs(v)), &mcomments("IdleTime"));
    }
    if let Some(v) = m("MaxBuilds").and_then(Item::as_integer) {
        out.kv_owned("max_builds", &v.to_string(), &mcomments("MaxBuilds"));
    }
    match m("MaxGrowthRate").and_then(Item::as_integer) {
        Some(v) => out.kv_owned("max_growth", &v.to_string(), &mcomments("MaxGrowthRate")),
        None => out.kv(
            "max_growth",
            "0",
            &["# MaxGrowthRate was unset: unlimited, as in docker+machine."],
        ),
    }
    if let Some(v) = opt(&opts, "openstack-active-timeout") {
        out.kv(
            "boot_timeout",
            &q(&format!("{v}s")),
            &["# openstack-active-timeout."],
        );
    }
    for k in ["IdleCountMin", "IdleScaleFactor"] {
        if let Some(v) = m(k) {
            notes.push(format!(
                "runners[{index}].machine.{k} = {}: no equivalent (the queue-driven planner sizes the pool from pending jobs)",
                v.to_string().trim()
            ));
        }
    }
    if let Some(v) = m("MachineName") {
        notes.push(format!(
            "runners[{index}].machine.MachineName = {}: server names are <controller id>-<pool>-<time>-<n>",
            v.to_string().trim()
        ));
    }

    // [pools.server]
    out.section("pools.server", &[]);
    let flavor = opt(&opts, "openstack-flavor-name").or(opt(&opts, "openstack-flavor-id"));
    out.kv("flavor", &q(flavor.unwrap_or("TODO-flavor")), &[]);
    let image = opt(&opts, "openstack-image-name").or(opt(&opts, "openstack-image-id"));
    out.kv("image", &q(image.unwrap_or("TODO-image")), &[]);
    let nets: Vec<&str> = opt(&opts, "openstack-net-name")
        .or(opt(&opts, "openstack-net-id"))
        .map(|n| vec![n])
        .unwrap_or_else(|| vec!["TODO-network"]);
    out.kv("networks", &list(&nets), &[]);
    if let Some(sg) = opt(&opts, "openstack-sec-groups") {
        let groups: Vec<&str> = sg
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        out.kv("security_groups", &list(&groups), &[]);
    }
    if let Some(k) = opt(&opts, "openstack-keypair-name") {
        out.kv("key_name", &q(k), &[]);
    }
    if let Some(z) = opt(&opts, "openstack-availability-zone") {
        out.kv("availability_zone", &q(z), &[]);
    }
    for (flag, why) in [
        (
            "openstack-ssh-user",
            "the controller never logs in to VMs (cloud-init bootstraps them)",
        ),
        (
            "openstack-private-key-file",
            "the controller never logs in to VMs",
        ),
        ("openstack-ssh-port", "the controller never logs in to VMs"),
        ("openstack-floatingip-pool", "floating IPs are not attached"),
        (
            "openstack-insecure",
            "TLS verification stays on; use cacert for a private CA",
        ),
        (
            "openstack-user-data-file",
            "replaced by the built-in bootstrap (Docker, QEMU binfmt, gitlab-runner); move custom steps into [pools.bootstrap] shell_before/shell_after or extra_cloud_config_file",
        ),
    ] {
        if let Some(v) = opt(&opts, flag) {
            notes.push(format!("runners[{index}] MachineOptions {flag}={v}: {why}"));
        }
    }
    for o in &opts {
        let flag = o.split('=').next().unwrap_or(o);
        if !KNOWN_FLAGS.contains(&flag) {
            notes.push(format!(
                "runners[{index}] MachineOptions {flag}: not understood"
            ));
        }
    }

    // [pools.runner]
    out.section(
        "pools.runner",
        &[
            "# TODO: config.toml does not record the runner's tags (they were given at",
            "# registration). Set the tags of the jobs this pool should run; with none,",
            "# run_untagged defaults to true.",
        ],
    );
    out.kv("tags", "[]", &[]);
    if let Some(img) = str_at(r, &["docker", "image"]) {
        out.kv("docker_image", &q(img), &[]);
    }
    out.kv("privileged", if privileged { "true" } else { "false" }, &[]);
    if let Some(vols) = r
        .get("docker")
        .and_then(Item::as_table)
        .and_then(|d| d.get("volumes"))
        .and_then(Item::as_array)
    {
        let v: Vec<&str> = vols.iter().filter_map(Value::as_str).collect();
        out.kv("volumes", &list(&v), &[]);
    }
    if let Some(cache) = r.get("cache").and_then(Item::as_table) {
        let kind = cache.get("Type").and_then(Item::as_str).unwrap_or("");
        if kind.eq_ignore_ascii_case("s3") {
            let s3 = cache.get("s3").and_then(Item::as_table);
            let g = |k: &str| s3.and_then(|t| t.get(k)).and_then(Item::as_str);
            out.section("pools.runner.cache", &[]);
            out.kv("type", "\"s3\"", &[]);
            out.kv(
                "shared",
                if cache.get("Shared").and_then(Item::as_bool).unwrap_or(false) {
                    "true"
                } else {
                    "false"
                },
                &[],
            );
            out.kv(
                "server_address",
                &q(g("ServerAddress").unwrap_or("TODO")),
                &[],
            );
            out.kv("bucket_name", &q(g("BucketName").unwrap_or("TODO")), &[]);
            if let Some(l) = g("BucketLocation").filter(|l| !l.is_empty()) {
                out.kv("bucket_location", &q(l), &[]);
            }
            if s3.and_then(|t| t.get("Insecure")).and_then(Item::as_bool) == Some(true) {
                out.kv("insecure", "true", &[]);
            }
            out.kv(
                "access_key_file",
                &q(&format!("/etc/gitlab-autoscaler/{name}-s3-access-key")),
                &["# TODO: put the S3 AccessKey of the source in this file (mode 0600)."],
            );
            out.kv(
                "secret_key_file",
                &q(&format!("/etc/gitlab-autoscaler/{name}-s3-secret-key")),
                &["# TODO: put the S3 SecretKey of the source in this file (mode 0600)."],
            );
        } else if !kind.is_empty() {
            notes.push(format!(
                "runners[{index}].cache Type = {kind}: only s3 caches are supported"
            ));
        }
    }

    // Periods: the removed OffPeak* keys, then the autoscaling blocks (last match wins).
    if let Some(periods) = m("OffPeakPeriods").and_then(Item::as_array) {
        let schedules: Vec<&str> = periods.iter().filter_map(Value::as_str).collect();
        let mut head = vec![
            "# From the removed OffPeak* keys. gitlab-runner 14 and later ignored them (only a"
                .to_string(),
            "# deprecation warning), so this window had stopped working; here it works again."
                .to_string(),
        ];
        head.extend(mcomments("OffPeakPeriods"));
        out.array_section("pools.periods", &head);
        out.kv("schedules", &list(&schedules), &[]);
        let tz = m("OffPeakTimezone").and_then(Item::as_str).unwrap_or("");
        timezone(out, tz, notes, index);
        // OffPeak* replaced both values; unset ones were 0.
        let ic = m("OffPeakIdleCount")
            .and_then(Item::as_integer)
            .unwrap_or(0);
        let it = m("OffPeakIdleTime").and_then(Item::as_integer).unwrap_or(0);
        out.kv("idle_count", &ic.to_string(), &[]);
        out.kv("idle_time", &q(&secs(it)), &[]);
    }
    if let Some(blocks) = m("autoscaling").and_then(Item::as_array_of_tables) {
        for (b, block) in blocks.iter().enumerate() {
            let mut head = vec![format!(
                "# From [[runners.machine.autoscaling]] #{}.",
                b + 1
            )];
            head.extend(comments(block.decor().prefix()));
            out.array_section("pools.periods", &head);
            let schedules: Vec<&str> = block
                .get("Periods")
                .and_then(Item::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            out.kv("schedules", &list(&schedules), &[]);
            timezone(
                out,
                block.get("Timezone").and_then(Item::as_str).unwrap_or(""),
                notes,
                index,
            );
            let zeroed =
                "# docker+machine set fields a block leaves unset to 0; written out to keep that.";
            match block.get("IdleCount").and_then(Item::as_integer) {
                Some(v) => out.kv("idle_count", &v.to_string(), &[]),
                None => out.kv("idle_count", "0", &[zeroed]),
            }
            match block.get("IdleTime").and_then(Item::as_integer) {
                Some(v) => out.kv("idle_time", &q(&secs(v)), &[]),
                None => out.kv("idle_time", "\"0s\"", &[zeroed]),
            }
            for k in ["IdleCountMin", "IdleScaleFactor"] {
                if block.get(k).is_some() {
                    notes.push(format!(
                        "runners[{index}].machine.autoscaling[{b}].{k}: no equivalent"
                    ));
                }
            }
        }
    }
}

fn timezone(out: &mut Out, tz: &str, notes: &mut Vec<String>, index: usize) {
    if tz.is_empty() {
        out.kv(
            "timezone",
            "\"UTC\"",
            &["# TODO: the source left the time zone empty (the runner host's local zone)."],
        );
        notes.push(format!(
            "runners[{index}]: an empty period time zone meant the host's local zone; set to UTC, review it"
        ));
    } else {
        out.kv("timezone", &q(tz), &[]);
    }
}

/// Every secret value in the source: runner tokens, OpenStack passwords and application
/// credential secrets, S3 keys.
fn secrets_of(doc: &DocumentMut) -> Vec<String> {
    let mut out = Vec::new();
    let runners = doc.get("runners").and_then(Item::as_array_of_tables);
    for r in runners.iter().flat_map(|a| a.iter()) {
        if let Some(t) = str_at(r, &["token"]) {
            out.push(t.to_string());
        }
        for k in ["AccessKey", "SecretKey", "SessionToken"] {
            if let Some(v) = str_at(r, &["cache", "s3", k]) {
                out.push(v.to_string());
            }
        }
        let opts = machine_options(r);
        for flag in [
            "openstack-password",
            "openstack-application-credential-secret",
        ] {
            if let Some(v) = opt(&opts, flag) {
                out.push(v.to_string());
            }
        }
    }
    out.retain(|s| s.len() >= 4);
    out
}

const KNOWN_FLAGS: &[&str] = &[
    "openstack-auth-url",
    "openstack-username",
    "openstack-user-id",
    "openstack-password",
    "openstack-tenant-name",
    "openstack-tenant-id",
    "openstack-domain-name",
    "openstack-domain-id",
    "openstack-region",
    "openstack-endpoint-type",
    "openstack-cacert",
    "openstack-application-credential-id",
    "openstack-application-credential-name",
    "openstack-application-credential-secret",
    "openstack-flavor-name",
    "openstack-flavor-id",
    "openstack-image-name",
    "openstack-image-id",
    "openstack-net-name",
    "openstack-net-id",
    "openstack-sec-groups",
    "openstack-keypair-name",
    "openstack-availability-zone",
    "openstack-active-timeout",
    "openstack-ssh-user",
    "openstack-private-key-file",
    "openstack-ssh-port",
    "openstack-floatingip-pool",
    "openstack-insecure",
    "openstack-user-data-file",
];

fn machine_options(r: &Table) -> Vec<String> {
    r.get("machine")
        .and_then(Item::as_table)
        .and_then(|m| m.get("MachineOptions"))
        .and_then(Item::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

fn opt<'a>(opts: &'a [String], flag: &str) -> Option<&'a str> {
    opts.iter().find_map(|o| {
        let (k, v) = o.split_once('=')?;
        (k.trim() == flag).then(|| v.trim().trim_matches('"'))
    })
}

fn str_at<'a>(t: &'a Table, path: &[&str]) -> Option<&'a str> {
    item_at(t, path).and_then(Item::as_str)
}

fn bool_at(t: &Table, path: &[&str]) -> Option<bool> {
    item_at(t, path).and_then(Item::as_bool)
}

fn int_at(t: &Table, path: &[&str]) -> Option<i64> {
    item_at(t, path).and_then(Item::as_integer)
}

fn item_at<'a>(t: &'a Table, path: &[&str]) -> Option<&'a Item> {
    let (last, head) = path.split_last()?;
    let mut cur = t;
    for k in head {
        cur = cur.get(k)?.as_table()?;
    }
    cur.get(last)
}

/// Comment lines (`# ...`) in a decor prefix, trimmed.
fn comments(prefix: Option<&toml_edit::RawString>) -> Vec<String> {
    prefix
        .and_then(|p| p.as_str())
        .map(|s| {
            s.lines()
                .map(str::trim)
                .filter(|l| l.starts_with('#'))
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

/// Comments written above `key` in table `t`, and one trailing it on the same line.
fn key_comments(t: &Table, key: &str) -> Vec<String> {
    let Some((k, item)) = t.get_key_value(key) else {
        return Vec::new();
    };
    let mut out = comments(k.leaf_decor().prefix());
    if let Some(v) = item.as_value() {
        out.extend(comments(v.decor().suffix()));
    }
    out
}

fn q(s: &str) -> String {
    Value::from(s).to_string().trim().to_string()
}

fn list(items: &[&str]) -> String {
    let inner: Vec<String> = items.iter().map(|s| q(s)).collect();
    format!("[{}]", inner.join(", "))
}

/// gitlab-runner's integer seconds as a humantime duration.
fn secs(s: i64) -> String {
    match s {
        s if s > 0 && s % 3600 == 0 => format!("{}h", s / 3600),
        s if s > 0 && s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{}s", s.max(0)),
    }
}

/// A pool name from a runner name: lowercase, `[a-z0-9-]`, no leading/trailing dash.
fn slug(name: &str) -> String {
    let mut s = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            s.push(c.to_ascii_lowercase());
        } else if !s.ends_with('-') {
            s.push('-');
        }
    }
    let s = s.trim_matches('-').to_string();
    if s.is_empty() { "pool".to_string() } else { s }
}

/// Words in a key name that mark its value as a secret (compared in lowercase).
const SECRET_KEY_WORDS: &[&str] = &[
    "token",
    "password",
    "passwd",
    "secret",
    "accesskey",
    "access_key",
    "access-key",
    "privatekey",
    "private_key",
];

/// Prefixes of GitLab tokens (runner, personal, registration, deploy, ...).
const TOKEN_PREFIXES: &[&str] = &[
    "glrt-",
    "glrtr-",
    "glpat-",
    "gldt-",
    "glptt-",
    "glcbt-",
    "glsoat-",
    "glft-",
    "glimt-",
    "glagent-",
    "gloas-",
    "glffct-",
    "GR1348941",
];

/// Whether `c` can be part of a key name or an unquoted token.
fn word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')
}

/// Rewrites `line` word by word (runs of [`word_char`]): other characters are copied as
/// they are; `word` gets the line, the word's span `start..end` and the output, writes
/// what the word becomes, and returns where scanning resumes (at the earliest `end`).
fn rewrite_words(
    line: &str,
    mut word: impl FnMut(&[char], usize, usize, &mut String) -> usize,
) -> String {
    let chars: Vec<char> = line.chars().collect();
    let mut out = String::with_capacity(line.len());
    let mut i = 0;
    while i < chars.len() {
        if !word_char(chars[i]) {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        let start = i;
        while i < chars.len() && word_char(chars[i]) {
            i += 1;
        }
        i = word(&chars, start, i, &mut out).max(i);
    }
    out
}

/// In `line`, the value after `key = `, `key: ` or `key=` where `key` contains a
/// [`SECRET_KEY_WORDS`] entry becomes `[REDACTED]` (inside its quotes, if quoted).
fn redact_assigned_secrets(line: &str) -> String {
    rewrite_words(line, |chars, start, i, out| {
        let word: String = chars[start..i].iter().collect();
        out.push_str(&word);
        let lower = word.to_ascii_lowercase();
        if !SECRET_KEY_WORDS.iter().any(|w| lower.contains(w)) {
            return i;
        }
        // `key` `"`? spaces `=` or `:` spaces, then the value.
        let mut j = i;
        while j < chars.len() && matches!(chars[j], '"' | '\'' | ' ' | '\t') {
            j += 1;
        }
        if j >= chars.len() || !matches!(chars[j], '=' | ':') {
            return i;
        }
        j += 1;
        while j < chars.len() && matches!(chars[j], ' ' | '\t') {
            j += 1;
        }
        let (value_start, quote) = match chars.get(j) {
            Some(q @ ('"' | '\'')) => (j + 1, Some(*q)),
            _ => (j, None),
        };
        let mut end = value_start;
        while end < chars.len() {
            let c = chars[end];
            let stop = match quote {
                Some(q) => c == q,
                None => c.is_whitespace() || matches!(c, ',' | '"' | '\'' | ']' | ')'),
            };
            if stop {
                break;
            }
            end += 1;
        }
        let value: String = chars[value_start..end].iter().collect();
        if value.is_empty() || value == "[REDACTED]" {
            return i;
        }
        out.extend(&chars[i..value_start]);
        out.push_str("[REDACTED]");
        end
    })
}

/// Every word starting with a [`TOKEN_PREFIXES`] entry becomes `[REDACTED]`.
fn redact_token_prefixes(line: &str) -> String {
    rewrite_words(line, |chars, start, end, out| {
        let word: String = chars[start..end].iter().collect();
        let token = TOKEN_PREFIXES
            .iter()
            .any(|p| word.starts_with(p) && word.len() > p.len());
        out.push_str(if token { "[REDACTED]" } else { &word });
        end
    })
}

/// The type a key the importer reads must have.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Str,
    Int,
    Bool,
    Table,
    StrList,
    Tables,
}

// === impl Kind ===

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Str => "a string",
            Kind::Int => "an integer",
            Kind::Bool => "true or false",
            Kind::Table => "a [section] table (the importer does not read inline tables)",
            Kind::StrList => "an array of strings",
            Kind::Tables => "an array of tables ([[...]])",
        }
    }

    fn accepts(self, item: &Item) -> bool {
        match self {
            Kind::Str => item.is_str(),
            Kind::Int => item.is_integer(),
            Kind::Bool => item.is_bool(),
            Kind::Table => item.is_table(),
            Kind::StrList => item
                .as_array()
                .is_some_and(|a| a.iter().all(|v| v.is_str())),
            Kind::Tables => item.is_array_of_tables(),
        }
    }
}

/// The keys of a `[[runners]]` entry the importer reads, with their types; the secret
/// ones are never echoed.
const RUNNER_KEYS: &[(&str, Kind)] = &[
    ("name", Kind::Str),
    ("url", Kind::Str),
    ("token", Kind::Str),
    ("executor", Kind::Str),
    ("limit", Kind::Int),
    ("docker", Kind::Table),
    ("docker.image", Kind::Str),
    ("docker.privileged", Kind::Bool),
    ("docker.volumes", Kind::StrList),
    ("cache", Kind::Table),
    ("cache.Type", Kind::Str),
    ("cache.Shared", Kind::Bool),
    ("cache.s3", Kind::Table),
    ("cache.s3.ServerAddress", Kind::Str),
    ("cache.s3.AccessKey", Kind::Str),
    ("cache.s3.SecretKey", Kind::Str),
    ("cache.s3.SessionToken", Kind::Str),
    ("cache.s3.BucketName", Kind::Str),
    ("cache.s3.BucketLocation", Kind::Str),
    ("cache.s3.Insecure", Kind::Bool),
    ("machine", Kind::Table),
    ("machine.IdleCount", Kind::Int),
    ("machine.IdleTime", Kind::Int),
    ("machine.MaxBuilds", Kind::Int),
    ("machine.MaxGrowthRate", Kind::Int),
    ("machine.MachineDriver", Kind::Str),
    ("machine.MachineName", Kind::Str),
    ("machine.MachineOptions", Kind::StrList),
    ("machine.OffPeakPeriods", Kind::StrList),
    ("machine.OffPeakTimezone", Kind::Str),
    ("machine.OffPeakIdleCount", Kind::Int),
    ("machine.OffPeakIdleTime", Kind::Int),
    ("machine.autoscaling", Kind::Tables),
];

/// The keys of a `[[runners.machine.autoscaling]]` block the importer reads.
const BLOCK_KEYS: &[(&str, Kind)] = &[
    ("Periods", Kind::StrList),
    ("Timezone", Kind::Str),
    ("IdleCount", Kind::Int),
    ("IdleTime", Kind::Int),
];

/// Every key the importer reads whose value has the wrong type, as
/// `file:line:col: key: expected ..., found ...`, in file order. Values of secret keys
/// are not shown.
fn wrong_types(source: &str, origin: &str) -> Vec<String> {
    let Ok(doc) = toml_edit::Document::parse(source) else {
        return Vec::new();
    };
    let mut found: Vec<(usize, String)> = Vec::new();
    let mut report = |path: String, item: &Item, kind: Kind| {
        let at = item.span().map_or(0, |r| r.start);
        let (line, col) = line_col(source, at);
        let lower = path.to_ascii_lowercase();
        let secret = SECRET_KEY_WORDS.iter().any(|w| lower.contains(w));
        let shown = match item.as_value() {
            Some(v) if !secret && !v.is_array() && !v.is_inline_table() => {
                format!(" (`{}`)", v.to_string().trim().replace('\n', "\\n"))
            }
            _ => String::new(),
        };
        found.push((
            at,
            format!(
                "{origin}:{line}:{col}: {path}: expected {}, found {}{shown}",
                kind.name(),
                item_kind(item)
            ),
        ));
    };
    let Some(runners) = doc.get("runners") else {
        return Vec::new();
    };
    let Some(runners) = runners.as_array_of_tables() else {
        report("runners".into(), runners, Kind::Tables);
        return found.into_iter().map(|(_, m)| m).collect();
    };
    for (i, r) in runners.iter().enumerate() {
        for (key, kind) in RUNNER_KEYS {
            let path: Vec<&str> = key.split('.').collect();
            if let Some(item) = item_at(r, &path) {
                if !kind.accepts(item) {
                    report(format!("runners[{i}].{key}"), item, *kind);
                }
            }
        }
        if let Some(blocks) =
            item_at(r, &["machine", "autoscaling"]).and_then(Item::as_array_of_tables)
        {
            for (b, block) in blocks.iter().enumerate() {
                for (key, kind) in BLOCK_KEYS {
                    if let Some(item) = block.get(key) {
                        if !kind.accepts(item) {
                            report(
                                format!("runners[{i}].machine.autoscaling[{b}].{key}"),
                                item,
                                *kind,
                            );
                        }
                    }
                }
            }
        }
    }
    found.sort_by_key(|(at, _)| *at);
    found.into_iter().map(|(_, m)| m).collect()
}

/// 1-based line and column (in characters) of byte offset `at`.
fn line_col(source: &str, at: usize) -> (usize, usize) {
    let before = source.get(..at.min(source.len())).unwrap_or("");
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

fn item_kind(item: &Item) -> &'static str {
    match item {
        Item::None => "nothing",
        Item::Table(_) => "a table",
        Item::ArrayOfTables(_) => "an array of tables",
        Item::Value(v) => match v {
            Value::String(_) => "a string",
            Value::Integer(_) => "an integer",
            Value::Float(_) => "a float",
            Value::Boolean(_) => "a boolean",
            Value::Datetime(_) => "a datetime",
            Value::Array(a) if a.iter().all(Value::is_str) => "an array",
            Value::Array(_) => "an array with a non-string entry",
            Value::InlineTable(_) => "an inline table",
        },
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Arc;

    use crate::reconcile::{Reconciler, TokioClock};
    use autoscaler_core::plan::{Action, plan};
    use autoscaler_core::ports::ControllerId;
    use autoscaler_core::testing::cloud::FakeCloud;
    use autoscaler_core::testing::gitlab::FakeGitLab;

    fn imported_config() -> autoscaler_config::Config {
        let src = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../docs/examples/docker-machine-config.toml"
        ))
        .unwrap();
        let out = super::import(&src, "config.toml").unwrap();
        autoscaler_config::parse(&out, "imported.toml").unwrap()
    }

    fn at(s: &str) -> autoscaler_core::model::Timestamp {
        chrono::DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    /// `plan` on the imported reference setup with an empty cloud: the warm pool it orders.
    async fn creates_at(when: &str, jobs: usize) -> usize {
        let config = Arc::new(imported_config());
        let id = ControllerId::new(config.controller.id.clone()).unwrap();
        let gitlab = FakeGitLab::new(id.clone());
        for _ in 0..jobs {
            gitlab.add_job(&[], std::time::Duration::from_secs(600));
        }
        let mut r = Reconciler::read_only(
            gitlab,
            FakeCloud::new(id),
            Arc::clone(&config),
            Arc::new(TokioClock::new(at(when))),
        )
        .unwrap();
        let (obs, now) = r.observe().await.unwrap();
        let p = plan(&obs, &crate::settings::policy_at(&config, now), now);
        p.actions
            .iter()
            .filter(|a| matches!(a, Action::Create { .. }))
            .count()
    }

    #[tokio::test(start_paused = true)]
    async fn imported_reference_keeps_4_warm_in_working_hours_2_off_peak_at_most_24() {
        // Monday 2026-11-09 12:00 Berlin (11:00 UTC): working hours.
        assert_eq!(creates_at("2026-11-09T11:00:00Z", 0).await, 4);
        // Monday 23:00 Berlin and Saturday noon: off-peak.
        assert_eq!(creates_at("2026-11-09T22:00:00Z", 0).await, 2);
        assert_eq!(creates_at("2026-11-07T11:00:00Z", 0).await, 2);
        // A 40-job burst is capped at limit = 24.
        assert_eq!(creates_at("2026-11-09T11:00:00Z", 40).await, 24);
    }
}
