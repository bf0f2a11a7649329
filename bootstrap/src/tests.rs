//! Unit tests of the public render functions. Golden files and the behavioural test
//! live in `tests/it/`.

use std::num::NonZeroU32;

use secrecy::SecretString;
use serde_yaml_ng::Value;

use super::*;

const TOKEN: &str = "glrt-t0p$ecret'token";
const ACCESS: &str = "AKIA-access-key";
const SECRET: &str = "s3-secret-key";

fn params() -> BootstrapParams {
    BootstrapParams {
        pool: PoolBootstrap {
            capacity: NonZeroU32::MIN,
            runner: RunnerSettings {
                cache: Some(S3Cache {
                    shared: true,
                    server_address: "s3.example:9000".into(),
                    bucket_name: "runner-cache".into(),
                    bucket_location: None,
                    insecure: false,
                    access_key: SecretString::from(ACCESS),
                    secret_key: SecretString::from(SECRET),
                }),
                ..RunnerSettings::default()
            },
            bootstrap: BootstrapOptions::default(),
        },
        vm: VmIdentity {
            gitlab_url: "https://gitlab.example/".into(),
            runner_token: SecretString::from(TOKEN),
            name: "ci-pool-1".into(),
            runner_id: 42,
        },
    }
}

fn doc(data: &UserData) -> Value {
    serde_yaml_ng::from_str(data.as_str()).unwrap()
}

/// The `write_files` entry with this path.
fn file(doc: &Value, path: &str) -> Value {
    doc["write_files"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|f| f["path"].as_str() == Some(path))
        .unwrap_or_else(|| panic!("no write_files entry {path}"))
        .clone()
}

fn runner_config(data: &UserData) -> toml_edit::DocumentMut {
    let doc = doc(data);
    let f = file(&doc, paths::STAGED_RUNNER_CONFIG);
    f["content"].as_str().unwrap().parse().unwrap()
}

fn script(data: &UserData) -> String {
    file(&doc(data), paths::SCRIPT)["content"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn token_and_keys_appear_only_in_the_staged_runner_config() {
    let data = render(&params()).unwrap();
    for secret in [TOKEN, ACCESS, SECRET] {
        let doc = doc(&data);
        let holders: Vec<&str> = doc["write_files"]
            .as_sequence()
            .unwrap()
            .iter()
            .filter(|f| f["content"].as_str().unwrap().contains(secret))
            .map(|f| f["path"].as_str().unwrap())
            .collect();
        assert_eq!(holders, [paths::STAGED_RUNNER_CONFIG], "{secret}");
        assert!(
            !doc["runcmd"]
                .as_sequence()
                .unwrap()
                .iter()
                .any(|c| { c.as_str().unwrap().contains(secret) })
        );
    }
}

#[test]
fn runner_config_is_staged_with_mode_0600() {
    let doc = doc(&render(&params()).unwrap());
    let f = file(&doc, paths::STAGED_RUNNER_CONFIG);
    assert_eq!(f["permissions"].as_str(), Some("0600"));
}

#[test]
fn runner_config_carries_the_vm_values_and_pool_settings() {
    let mut p = params();
    p.pool.capacity = NonZeroU32::new(4).unwrap();
    p.pool.runner.privileged = true;
    p.pool.runner.volumes = vec![
        "/cache".into(),
        "/var/run/docker.sock:/var/run/docker.sock".into(),
    ];
    let cfg = runner_config(&render(&p).unwrap());
    assert_eq!(cfg["concurrent"].as_integer(), Some(4));
    let r = &cfg["runners"].as_array_of_tables().unwrap().get(0).unwrap();
    assert_eq!(r["name"].as_str(), Some("ci-pool-1"));
    assert_eq!(r["url"].as_str(), Some("https://gitlab.example/"));
    assert_eq!(r["id"].as_integer(), Some(42));
    assert_eq!(r["token"].as_str(), Some(TOKEN));
    assert_eq!(r["executor"].as_str(), Some("docker"));
    assert_eq!(r["limit"].as_integer(), Some(4));
    assert_eq!(r["docker"]["image"].as_str(), Some("alpine"));
    assert_eq!(r["docker"]["privileged"].as_bool(), Some(true));
    let volumes: Vec<&str> = r["docker"]["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(
        volumes,
        ["/cache", "/var/run/docker.sock:/var/run/docker.sock"]
    );
    let s3 = &r["cache"]["s3"];
    assert_eq!(r["cache"]["Type"].as_str(), Some("s3"));
    assert_eq!(r["cache"]["Shared"].as_bool(), Some(true));
    assert_eq!(s3["ServerAddress"].as_str(), Some("s3.example:9000"));
    assert_eq!(s3["AccessKey"].as_str(), Some(ACCESS));
    assert_eq!(s3["SecretKey"].as_str(), Some(SECRET));
    assert_eq!(s3["BucketName"].as_str(), Some("runner-cache"));
    assert!(s3.get("BucketLocation").is_none());
    assert_eq!(s3["Insecure"].as_bool(), Some(false));
}

#[test]
fn runner_name_with_quotes_dollars_and_spaces_is_toml_escaped() {
    let mut p = params();
    p.vm.name = r#"it's "$HOME" \ two  words"#.into();
    let cfg = runner_config(&render(&p).unwrap());
    assert_eq!(
        cfg["runners"][0]["name"].as_str(),
        Some(r#"it's "$HOME" \ two  words"#)
    );
}

#[test]
fn docker_install_url_with_quote_and_dollar_is_shell_quoted() {
    let url = "https://example.test/engine-install.sh?a='b'&c=$HOME`id`";
    let mut p = params();
    p.pool.bootstrap.docker_install = DockerInstall::ScriptUrl(url.into());
    let script = script(&render(&p).unwrap());
    let line = script
        .lines()
        .find(|l| l.starts_with("DOCKER_INSTALL_URL="))
        .unwrap();
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("{line}\nprintf '%s' \"$DOCKER_INSTALL_URL\""))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8(out.stdout).unwrap(), url);
}

#[test]
fn redacted_render_hides_every_secret() {
    let data = render_redacted(&params()).unwrap();
    assert!(data.is_redacted());
    for secret in [TOKEN, ACCESS, SECRET] {
        assert!(!data.as_str().contains(secret), "{secret} leaked");
    }
    let cfg = runner_config(&data);
    assert_eq!(cfg["runners"][0]["token"].as_str(), Some(REDACTED));
    assert_eq!(
        cfg["runners"][0]["cache"]["s3"]["AccessKey"].as_str(),
        Some(REDACTED)
    );
    assert_eq!(
        cfg["runners"][0]["cache"]["s3"]["SecretKey"].as_str(),
        Some(REDACTED)
    );
}

#[test]
fn revealed_preview_equals_render() {
    let p = params();
    assert_eq!(
        render_preview(&p, Secrets::Revealed).unwrap().as_str(),
        render(&p).unwrap().as_str()
    );
}

#[test]
fn debug_output_never_shows_secrets() {
    let p = params();
    let data = render(&p).unwrap();
    for text in [format!("{p:?}"), format!("{data:?}")] {
        for secret in [TOKEN, ACCESS, SECRET] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
    }
}

#[test]
fn render_is_deterministic() {
    let p = params();
    assert_eq!(render(&p).unwrap().as_str(), render(&p).unwrap().as_str());
}

#[test]
fn user_data_over_the_nova_limit_is_refused_with_its_size() {
    let mut p = params();
    p.pool.bootstrap.shell_after = Some(format!("echo '{}'\n", "x".repeat(60_000)));
    let err = render(&p).unwrap_err();
    let RenderError::TooLarge {
        base64_len,
        raw_len,
        limit,
    } = err
    else {
        panic!("{err}");
    };
    assert!(base64_len > NOVA_USER_DATA_LIMIT);
    assert_eq!(limit, NOVA_USER_DATA_LIMIT);
    assert!(err_text(&p).contains(&format!("user-data is {base64_len} bytes as base64 ({raw_len} bytes raw), over nova's limit of 65535 bytes")));
}

fn err_text(p: &BootstrapParams) -> String {
    render(p).unwrap_err().to_string()
}

#[test]
fn size_limit_applies_to_the_real_user_data_even_in_a_preview() {
    // Find a hook size where the redacted text fits but the real one does not.
    let real_len = |p: &BootstrapParams| render(p).map(|d| d.base64_len());
    let mut p = params();
    p.vm.runner_token = SecretString::from(format!("glrt-{}", "a".repeat(300)));
    let base = real_len(&p).unwrap();
    // Each 3 bytes of hook add 4 bytes of base64; land just over the limit.
    let pad = (NOVA_USER_DATA_LIMIT - base) / 4 * 3 + 6;
    p.pool.bootstrap.shell_after = Some(format!("#{}\n", "y".repeat(pad)));
    assert!(render(&p).is_err());
    let redacted_size = {
        let mut q = p.clone();
        q.vm.runner_token = SecretString::from("glrt-x");
        real_len(&q).unwrap()
    };
    assert!(
        redacted_size <= NOVA_USER_DATA_LIMIT,
        "setup: redacted text must fit"
    );
    assert!(matches!(
        render_redacted(&p),
        Err(RenderError::TooLarge { .. })
    ));
}

#[test]
fn size_just_under_the_limit_is_accepted() {
    let mut p = params();
    let base = render(&p).unwrap().base64_len();
    let mut pad = (NOVA_USER_DATA_LIMIT - base) / 4 * 3;
    loop {
        p.pool.bootstrap.shell_after = Some(format!("#{}\n", "y".repeat(pad)));
        match render(&p) {
            Ok(d) => {
                assert!(d.base64_len() <= NOVA_USER_DATA_LIMIT);
                assert!(
                    d.base64_len() > NOVA_USER_DATA_LIMIT - 16,
                    "{}",
                    d.base64_len()
                );
                break;
            }
            Err(_) => pad -= 1,
        }
    }
}

#[test]
fn unknown_binfmt_arch_is_refused_naming_it() {
    let mut p = params();
    p.pool.bootstrap.binfmt_arches = vec!["arm64".into(), "sparc".into()];
    assert!(
        err_text(&p).starts_with(
            "pools.bootstrap.binfmt_arches: invalid value `sparc`: unknown architecture"
        )
    );
}

#[test]
fn binfmt_arches_are_ignored_when_qemu_is_off() {
    let mut p = params();
    p.pool.bootstrap.qemu_binfmt = false;
    p.pool.bootstrap.binfmt_arches = vec!["sparc".into()];
    let script = script(&render(&p).unwrap());
    for word in [
        "qemu-user-static",
        "binfmt-support",
        "update-binfmts",
        "binfmt_enabled",
    ] {
        assert!(!script.contains(word), "{word} in {script}");
    }
}

#[test]
fn duplicate_binfmt_arches_are_checked_once() {
    let mut p = params();
    p.pool.bootstrap.binfmt_arches = vec!["arm".into(), "arm64".into(), "arm".into()];
    let script = script(&render(&p).unwrap());
    assert!(
        script.contains("for handler in qemu-arm qemu-aarch64; do"),
        "{script}"
    );
}

#[test]
fn gitlab_url_without_scheme_is_refused() {
    let mut p = params();
    p.vm.gitlab_url = "gitlab.example".into();
    assert_eq!(
        err_text(&p),
        "gitlab.url: invalid value `gitlab.example`: must start with https:// or http://"
    );
}

#[test]
fn script_url_with_whitespace_is_refused() {
    let mut p = params();
    p.pool.bootstrap.docker_install = DockerInstall::ScriptUrl("https://x/a b.sh".into());
    assert!(err_text(&p).starts_with("pools.bootstrap.docker_install_url: invalid value"));
}

#[test]
fn runner_repository_with_trailing_slash_is_refused() {
    let mut p = params();
    p.pool.bootstrap.runner_install =
        RunnerInstall::Repository(format!("{DEFAULT_RUNNER_REPOSITORY}/"));
    assert!(err_text(&p).starts_with("pools.bootstrap.runner_repository: invalid value"));
}

#[test]
fn token_with_newline_is_refused_without_showing_it() {
    let mut p = params();
    p.vm.runner_token = SecretString::from("glrt-abc\ninjected = true");
    let text = err_text(&p);
    assert_eq!(
        text,
        "runner token: must not contain whitespace or control characters"
    );
}

#[test]
fn empty_docker_image_is_refused() {
    let mut p = params();
    p.pool.runner.docker_image = String::new();
    assert_eq!(
        err_text(&p),
        "pools.runner.docker_image: invalid value ``: must not be empty"
    );
}

#[test]
fn hooks_get_an_interpreter_line_and_run_first_and_last() {
    let mut p = params();
    p.pool.bootstrap.shell_before = Some("echo before".into());
    p.pool.bootstrap.shell_after = Some("#!/bin/bash\necho after\n".into());
    let data = render(&p).unwrap();
    let doc = doc(&data);
    assert_eq!(
        file(&doc, paths::SHELL_BEFORE)["content"].as_str(),
        Some("#!/bin/sh\necho before\n")
    );
    assert_eq!(
        file(&doc, paths::SHELL_AFTER)["content"].as_str(),
        Some("#!/bin/bash\necho after\n")
    );
    let script = script(&data);
    let steps: Vec<&str> = script
        .lines()
        .filter(|l| l.starts_with("step \""))
        .collect();
    assert_eq!(steps.first(), Some(&"step \"running shell_before\""));
    assert_eq!(steps[steps.len() - 2], "step \"running shell_after\"");
}

#[test]
fn blank_hooks_are_left_out() {
    let mut p = params();
    p.pool.bootstrap.shell_before = Some("  \n".into());
    let data = render(&p).unwrap();
    assert!(!data.as_str().contains(paths::SHELL_BEFORE));
}

#[test]
fn error_labels_are_distinct() {
    let mut p = params();
    p.vm.gitlab_url = String::new();
    let err = render(&p).unwrap_err();
    assert_eq!(err.label(), "invalid_value");
    assert!(!err.is_transient());
}

#[test]
fn preview_identity_renders_and_redacts_its_placeholder_token() {
    let mut p = params();
    p.vm = VmIdentity::preview("https://gitlab.example/", "ci-pool-preview");
    let data = render_redacted(&p).unwrap();
    assert!(!data.as_str().contains(PREVIEW_TOKEN));
    assert!(data.as_str().contains("ci-pool-preview"));
}
