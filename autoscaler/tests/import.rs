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
