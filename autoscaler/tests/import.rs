//! `autoscaler import` on the reference docker+machine setup: golden output, validity,
//! mapped values, and no secret copied.
#![allow(clippy::unwrap_used, missing_docs)]

use std::path::Path;

fn repo(p: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(p)
}

fn imported() -> String {
    let src = std::fs::read_to_string(repo("docs/examples/docker-machine-config.toml")).unwrap();
    autoscaler::import::import(&src, "docker-machine-config.toml").unwrap()
}

#[test]
fn reference_setup_imports_to_the_golden_file() {
    let out = imported();
    let golden = repo("docs/examples/imported-reference-setup.toml");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&golden, &out).unwrap();
    }
    assert_eq!(
        out,
        std::fs::read_to_string(&golden).unwrap(),
        "run with UPDATE_GOLDEN=1 to accept"
    );
}

#[test]
fn imported_reference_validates_and_keeps_the_policy() {
    let config =
        autoscaler_config::parse(&imported(), "imported.toml").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.pools.len(), 1);
    let p = &config.pools[0];
    assert_eq!(p.policy.idle_count, 4);
    assert_eq!(p.policy.idle_time, std::time::Duration::from_secs(3600));
    assert_eq!(p.policy.max_builds, 100);
    assert_eq!(p.policy.limit, 24);
    assert_eq!(p.server.flavor, "s1.large");
    assert_eq!(p.server.image, "Debian 10.1");
    assert_eq!(p.server.networks, ["customer-network"]);
    assert_eq!(p.server.security_groups, ["mine"]);
    assert_eq!(p.server.key_name.as_deref(), Some("GitLab Runner"));
    assert_eq!(p.periods.len(), 1);
    let off = &p.periods[0];
    assert_eq!(off.timezone, chrono_tz::Europe::Berlin);
    assert_eq!(off.overrides.idle_count, Some(2));
    assert_eq!(
        off.overrides.idle_time,
        Some(std::time::Duration::from_secs(1800))
    );
    // Off-peak on a Saturday, working hours on a Monday.
    let sat = chrono::DateTime::parse_from_rfc3339("2026-11-07T12:00:00Z")
        .unwrap()
        .to_utc();
    let mon = chrono::DateTime::parse_from_rfc3339("2026-11-09T12:00:00Z")
        .unwrap()
        .to_utc();
    assert_eq!(p.policy_at(sat).policy.idle_count, 2);
    assert_eq!(p.policy_at(mon).policy.idle_count, 4);
}

#[test]
fn no_secret_of_the_source_reaches_the_output() {
    let out = imported();
    for secret in [
        "sup3rS3cr3t4ndsup3rl0ng",
        "supersecretaccesskey",
        "supersecretsecretkey",
        "supersecrettoken",
        "SUPERSECRETKEKSI",
    ] {
        assert!(!out.contains(secret), "{secret} leaked into:\n{out}");
    }
    assert!(out.contains("password_file"));
    assert!(
        out.contains("[REDACTED]"),
        "the registration token in the source's comment is redacted"
    );
}

#[test]
fn autoscaling_blocks_become_periods_with_zeroed_unset_fields() {
    let src = r#"
concurrent = 4
[[runners]]
  name = "dm"
  url = "https://gitlab.example.com/"
  token = "glrt-abcdefgh"
  executor = "docker+machine"
  limit = 8
  [runners.docker]
    image = "debian"
    privileged = true
  [runners.machine]
    IdleCount = 3
    IdleTime = 600
    MachineDriver = "openstack"
    MachineOptions = ["openstack-flavor-name=m1", "openstack-image-name=deb", "openstack-net-name=n", "openstack-weird=1"]
    [[runners.machine.autoscaling]]
      Periods = ["* * 9-17 * * mon-fri *"]
      Timezone = "Europe/Berlin"
      IdleCount = 6
    [[runners.machine.autoscaling]]
      Periods = ["* * * * * sat,sun *"]
      IdleTime = 120
      IdleScaleFactor = 1.5
[[runners]]
  name = "shell"
  executor = "shell"
"#;
    let out = autoscaler::import::import(src, "c.toml").unwrap();
    let config =
        autoscaler_config::parse(&out, "out.toml").unwrap_or_else(|e| panic!("{e}\n{out}"));
    let p = &config.pools[0];
    assert!(p.runner.privileged);
    assert_eq!(p.periods.len(), 2);
    // Block 1 left IdleTime unset: docker+machine used 0, so 0 is written out.
    assert_eq!(p.periods[0].overrides.idle_count, Some(6));
    assert_eq!(
        p.periods[0].overrides.idle_time,
        Some(std::time::Duration::ZERO)
    );
    // Block 2 left IdleCount unset and had an empty time zone.
    assert_eq!(p.periods[1].overrides.idle_count, Some(0));
    assert_eq!(p.periods[1].timezone, chrono_tz::UTC);
    assert!(!out.contains("glrt-abcdefgh"));
    for unmapped in [
        "IdleScaleFactor",
        "openstack-weird",
        "executor `shell`",
        "concurrent = 4",
    ] {
        assert!(
            out.contains(unmapped),
            "`{unmapped}` missing from the not-mapped list:\n{out}"
        );
    }
}

#[test]
fn a_file_without_docker_machine_openstack_runners_is_an_error() {
    let e = autoscaler::import::import(
        "concurrent = 1\n[[runners]]\nexecutor = \"shell\"\n",
        "c.toml",
    )
    .unwrap_err();
    assert!(e.to_string().contains("no [[runners]] entry"), "{e}");
    let e = autoscaler::import::import("concurrent = ", "c.toml").unwrap_err();
    assert!(e.to_string().starts_with("c.toml: not valid TOML"), "{e}");
}

/// The reference source with `old` replaced by `new` (exactly once).
fn reference_with(old: &str, new: &str) -> String {
    let src = std::fs::read_to_string(repo("docs/examples/docker-machine-config.toml")).unwrap();
    assert_eq!(src.matches(old).count(), 1, "{old}");
    src.replacen(old, new, 1)
}

// Regression, issue 11 item 9: old secrets kept in comments (a rotated token, a
// commented-out password) were copied into the output verbatim.
#[test]
fn old_secrets_in_comments_are_not_copied() {
    let src = reference_with(
        "concurrent = 24",
        "# previous runner: token = \"oldplaintoken20chars\" (rotated 2023)\n\
         # registered with glrt-0ld-Runner-Token_123 and GR1348941oldRegistrationTok\n\
         concurrent = 24",
    );
    let src = src.replacen(
        "  limit = 24",
        "  # \"openstack-password=0ldPassw0rd!\", before the move\n\
         \x20 # AccessKey: AKIAOLDACCESSKEY42, SecretKey = 'old/secret+key'\n\
         \x20 # password:hunter2-old\n\
         \x20 limit = 24",
        1,
    );
    let out = autoscaler::import::import(&src, "c.toml").unwrap();
    for secret in [
        "oldplaintoken20chars",
        "glrt-0ld-Runner-Token_123",
        "GR1348941oldRegistrationTok",
        "0ldPassw0rd",
        "AKIAOLDACCESSKEY42",
        "old/secret+key",
        "hunter2-old",
    ] {
        assert!(!out.contains(secret), "{secret} leaked into:\n{out}");
    }
    // The comments themselves are kept, with the values redacted.
    assert!(
        out.contains("# previous runner: token = \"[REDACTED]\" (rotated 2023)"),
        "{out}"
    );
    assert!(
        out.contains("# \"openstack-password=[REDACTED]\", before the move"),
        "{out}"
    );
    assert!(out.contains("# password:[REDACTED]"), "{out}");
    autoscaler_config::parse(&out, "out.toml").unwrap_or_else(|e| panic!("{e}\n{out}"));
}

// Regression, issue 11 item 9: a key with the wrong type was dropped without a word
// (`limit = "24"` even became "limit = 0 (unlimited)").
#[test]
fn wrongly_typed_keys_are_an_error_naming_file_line_column_and_key() {
    let src = reference_with("  limit = 24", "  limit = \"24\"");
    let src = src.replacen("    IdleCount = 4", "    IdleCount = \"4\"", 1);
    let src = src.replacen("    privileged = false", "    privileged = \"no\"", 1);
    let src = src.replacen(
        "      SecretKey = \"supersecretsecretkey\"",
        "      SecretKey = 12345678",
        1,
    );
    let e = autoscaler::import::import(&src, "c.toml").unwrap_err();
    let text = e.to_string();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines,
        [
            "c.toml:14:11: runners[0].limit: expected an integer, found a string (`\"24\"`)",
            "c.toml:21:18: runners[0].docker.privileged: expected true or false, found a string (`\"no\"`)",
            "c.toml:28:19: runners[0].cache.s3.SecretKey: expected a string, found an integer",
            "c.toml:31:17: runners[0].machine.IdleCount: expected an integer, found a string (`\"4\"`)",
            "c.toml: 4 key(s) with the wrong type (gitlab-runner refuses such a file too); fix them and import again",
        ],
        "{text}"
    );
    assert!(
        !text.contains("12345678"),
        "a secret key's value is never shown"
    );
}

#[test]
fn wrongly_typed_keys_in_lists_and_blocks_are_reported() {
    let src = r#"
[[runners]]
  name = "dm"
  url = "https://gitlab.example.com/"
  executor = "docker+machine"
  limit = 8
  docker = { image = "debian", privileged = true }
  [runners.machine]
    MachineDriver = "openstack"
    MachineOptions = ["openstack-flavor-name=m1", 42]
    [[runners.machine.autoscaling]]
      Periods = "* * 9-17 * * mon-fri *"
      IdleTime = "10m"
"#;
    let text = autoscaler::import::import(src, "c.toml")
        .unwrap_err()
        .to_string();
    for want in [
        "c.toml:7:12: runners[0].docker: expected a [section] table (the importer does not read inline tables), found an inline table",
        "c.toml:10:22: runners[0].machine.MachineOptions: expected an array of strings, found an array with a non-string entry",
        "c.toml:12:17: runners[0].machine.autoscaling[0].Periods: expected an array of strings, found a string",
        "c.toml:13:18: runners[0].machine.autoscaling[0].IdleTime: expected an integer, found a string",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
}
