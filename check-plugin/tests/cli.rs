//! Golden command-line tests: the real binary against local fakes, output and exit code
//! compared with `tests/golden/<case>.txt` (`UPDATE_GOLDEN=1` rewrites them; review the
//! diff). Time is pinned with `--now`; loopback ports are replaced by `PORT`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use chrono::{DateTime, Utc};
use support::scenario::{self as fake, Fake, World};

const NOW: &str = "2026-03-02T12:00:00Z";

fn now() -> DateTime<Utc> {
    NOW.parse().unwrap()
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_check_gitlab_autoscaler"));
    c.env_clear()
        .env("FAKE_GITLAB_TOKEN", fake::TOKEN)
        .env("OS_PASSWORD", fake::OS_PASSWORD);
    c
}

fn exec(mut cmd: Command) -> Run {
    let out = cmd.output().expect("run the plugin");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Starts the scenario's fake, writes its config, runs the plugin with `args`.
async fn scenario(name: &str, args: &[&str]) -> (Run, tempfile::TempDir) {
    let world = World::scenario(name, now()).expect("known scenario");
    let up = world.status.is_some();
    let f = Fake::start(world).await.expect("start fake");
    let dir = tempfile::tempdir().unwrap();
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cfg = dir.path().join("config.toml");
    std::fs::write(&cfg, f.config(up, closed)).unwrap();
    let mut cmd = bin();
    cmd.arg("-C").arg(&cfg).arg("--now").arg(NOW).args(args);
    let run = tokio::task::spawn_blocking(move || exec(cmd))
        .await
        .unwrap();
    (run, dir)
}

fn normalise(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find("127.0.0.1:") {
        out.push_str(&rest[..i + "127.0.0.1:".len()]);
        rest = &rest[i + "127.0.0.1:".len()..];
        let digits = rest.chars().take_while(char::is_ascii_digit).count();
        out.push_str(if digits > 0 { "PORT" } else { "" });
        rest = &rest[digits..];
    }
    out.push_str(rest);
    out
}

fn golden(case: &str, run: &Run) {
    let path: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(format!("{case}.txt"));
    let actual = format!("exit: {}\n{}", run.code, normalise(&run.stdout));
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|_| panic!("{} missing; run with UPDATE_GOLDEN=1", path.display()));
    assert_eq!(actual, expected, "golden {case} differs");
}

/// What every run must satisfy, whatever the state (Icinga's parsing rules).
fn plugin_rules(run: &Run) {
    assert!((0..=3).contains(&run.code), "exit {}", run.code);
    assert!(
        run.stderr.is_empty(),
        "stderr must stay silent: {}",
        run.stderr
    );
    let first = run.stdout.lines().next().unwrap_or("");
    assert!(first.starts_with("GITLAB AUTOSCALER "), "{first}");
    assert!(first.matches('|').count() <= 1, "{first}");
    assert!(
        run.stdout.lines().skip(1).all(|l| !l.contains('|')),
        "only line 1 may carry perfdata: {}",
        run.stdout
    );
    if let Some((_, perf)) = first.split_once(" | ") {
        assert!(!perf.contains("  "), "single spaces only: {perf}");
        for item in perf.split(' ') {
            let (label, value) = item.split_once('=').expect("label=value");
            assert!(!label.is_empty());
            let v = value.split(';').next().unwrap().trim_end_matches('s');
            v.parse::<f64>()
                .unwrap_or_else(|_| panic!("numeric value in {item}"));
            assert!(!value.contains('e') && !value.contains(','), "{item}");
        }
    }
    assert!(!run.stdout.contains(fake::TOKEN), "token leaked");
    assert!(!run.stdout.contains(fake::OS_PASSWORD), "password leaked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ok_scenario_exits_0() {
    let (run, _d) = scenario("ok", &[]).await;
    plugin_rules(&run);
    assert_eq!(run.code, 0, "{}", run.stdout);
    golden("ok", &run);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_runner_and_old_job_exit_1() {
    let (run, _d) = scenario("warning", &[]).await;
    plugin_rules(&run);
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(
        run.stdout
            .contains("runner 1003 ci-docker-0003: offline, last contact 3h 2m ago")
    );
    assert!(
        run.stdout
            .contains("job 502 (project 43, pool arm): pending for 20m 0s")
    );
    golden("warning", &run);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_vms_and_dead_controller_exit_2() {
    let (run, _d) = scenario("critical", &[]).await;
    plugin_rules(&run);
    assert_eq!(run.code, 2, "{}", run.stdout);
    assert!(run.stdout.contains("server ci-docker-0001 (00000000-0000-0000-0000-000000000001): ERROR, age 58m 20s (No valid host was found."));
    assert!(
        !run.stdout.contains("other-docker-1"),
        "another controller's server leaked in"
    );
    golden("critical", &run);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_token_exits_3() {
    let (run, _d) = scenario("unknown", &[]).await;
    plugin_rules(&run);
    assert_eq!(run.code, 3, "{}", run.stdout);
    assert!(run.stdout.contains("HTTP 401 (token refused)"));
    golden("unknown", &run);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_exits_3_naming_the_stage() {
    let started = std::time::SystemTime::now();
    let (run, _d) = scenario("timeout", &["-t", "1"]).await;
    let took = started.elapsed().unwrap();
    plugin_rules(&run);
    assert_eq!(run.code, 3, "{}", run.stdout);
    assert!(took.as_secs_f64() < 5.0, "took {took:?}");
    assert!(
        run.stdout
            .starts_with("GITLAB AUTOSCALER UNKNOWN - timed out after 1s; stage reached: ")
    );
    assert!(
        run.stdout.contains("gitlab runners: listing runners"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("openstack: authenticating with keystone"),
        "{}",
        run.stdout
    );
    golden("timeout", &run);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopped_controller_only_fails_the_controller_subcheck() {
    let (run, _d) = scenario("down", &[]).await;
    plugin_rules(&run);
    assert_eq!(run.code, 2);
    assert!(run.stdout.contains("[CRITICAL] controller: no heartbeat: "));
    assert!(run.stdout.contains("[OK] runners:"));
    assert!(run.stdout.contains("[OK] vms:"));
    let (run, _d) = scenario("down", &["-s", "runners,vms,queue"]).await;
    assert_eq!(run.code, 0, "{}", run.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thresholds_on_the_command_line_change_the_verdict() {
    let (run, _d) = scenario(
        "warning",
        &[
            "-w",
            "runners_offline=none",
            "-w",
            "pending_age=@0:1199",
            "-c",
            "pending_age=1100:",
        ],
    )
    .await;
    // pending_age 1200 s: inside 1100: (no crit), outside @0:1199 (no warn) -> OK.
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert!(
        run.stdout.contains("pending_age=1200s;@0:1199;1100:;0"),
        "{}",
        run.stdout
    );
    let (run, _d) = scenario("ok", &["-s", "queue", "-c", "jobs_pending=~:0"]).await;
    assert_eq!(run.code, 2, "{}", run.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_from_the_override_variable_is_used() {
    let world = World::scenario("ok", now()).unwrap();
    let f = Fake::start(world).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(&cfg, f.config(true, 1)).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_check_gitlab_autoscaler"));
    cmd.env_clear()
        .env("GITLAB_AUTOSCALER_TOKEN", fake::TOKEN)
        .env("OS_PASSWORD", fake::OS_PASSWORD)
        .args(["-s", "runners", "--now", NOW, "-C"])
        .arg(&cfg);
    let run = tokio::task::spawn_blocking(move || exec(cmd))
        .await
        .unwrap();
    assert_eq!(run.code, 0, "{}", run.stdout);
    // Neither variable: the config's token_env is named, the value is not.
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_check_gitlab_autoscaler"));
    cmd.env_clear().args(["-s", "runners", "-C"]).arg(&cfg);
    let run = tokio::task::spawn_blocking(move || exec(cmd))
        .await
        .unwrap();
    assert_eq!(run.code, 3, "{}", run.stdout);
    assert!(
        run.stdout.contains("GITLAB_AUTOSCALER_TOKEN is not set"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("env FAKE_GITLAB_TOKEN"),
        "{}",
        run.stdout
    );
}

#[test]
fn help_version_and_bad_options_exit_3() {
    for args in [&["-h"][..], &["-V"], &["--nope"], &["-w", "x=1"]] {
        let mut cmd = bin();
        cmd.args(args);
        let run = exec(cmd);
        assert_eq!(run.code, 3, "{args:?}: {}", run.stdout);
        assert!(run.stderr.is_empty(), "{args:?}: {}", run.stderr);
    }
    let mut cmd = bin();
    cmd.arg("-V");
    assert!(exec(cmd).stdout.starts_with("check_gitlab_autoscaler "));
}

#[test]
fn unreadable_config_is_unknown_naming_the_file() {
    let mut cmd = bin();
    cmd.args(["-C", "/nonexistent/autoscaler.toml"]);
    let run = exec(cmd);
    plugin_rules(&run);
    assert_eq!(run.code, 3);
    assert!(
        run.stdout.contains("/nonexistent/autoscaler.toml"),
        "{}",
        run.stdout
    );
}

#[test]
fn invalid_config_is_unknown_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bad.toml");
    std::fs::write(
        &cfg,
        "[controller]\nid = \"ci\"\npoll_interval = \"soon\"\n",
    )
    .unwrap();
    let mut cmd = bin();
    cmd.arg("-C").arg(&cfg);
    let run = exec(cmd);
    assert_eq!(run.code, 3);
    assert_eq!(run.stdout.lines().count(), 1, "{}", run.stdout);
    assert!(run.stdout.contains("bad.toml"), "{}", run.stdout);
}
