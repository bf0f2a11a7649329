//! The `autoscaler` binary as an operator runs it: exit codes, output, errors.
#![allow(clippy::unwrap_used, missing_docs)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn autoscaler(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_autoscaler"))
        .args(args)
        .current_dir(repo())
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

/// `bootstrap render` of `pool` of the reference setup.
fn bootstrap_render(pool: &str) -> Output {
    autoscaler(&[
        "bootstrap",
        "render",
        "--config",
        "docs/examples/reference-setup.toml",
        "--pool",
        pool,
    ])
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn validate_accepts_the_reference_example() {
    let o = autoscaler(&["validate", "docs/examples/reference-setup.toml"]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert_eq!(
        stdout(&o),
        "OK: docs/examples/reference-setup.toml: 2 pool(s): non-privileged, privileged\n"
    );
}

#[test]
fn validate_names_file_line_column_and_key_of_each_broken_example() {
    let cases = [
        ("typo-key.toml", "idle_tme"),
        ("bad-duration.toml", "idle_time"),
        ("unknown-timezone.toml", "timezone"),
        ("impossible-cron.toml", "schedules"),
        ("inline-token.toml", "token"),
        ("idle-count-over-limit.toml", "idle_count"),
    ];
    for (file, key) in cases {
        let path = format!("docs/examples/broken/{file}");
        let o = autoscaler(&["validate", &path]);
        assert_eq!(o.status.code(), Some(1), "{file}: {}", stdout(&o));
        let out = stdout(&o);
        let errors: Vec<&str> = out.lines().filter(|l| l.starts_with(&path)).collect();
        assert_eq!(
            errors.len(),
            2,
            "{file}: one error line plus the count:\n{out}"
        );
        let first = errors[0];
        let rest = &first[path.len()..];
        let mut parts = rest.splitn(4, ':');
        assert_eq!(parts.next(), Some(""), "{first}");
        assert!(
            parts.next().unwrap().parse::<usize>().is_ok(),
            "line in {first}"
        );
        assert!(
            parts.next().unwrap().parse::<usize>().is_ok(),
            "column in {first}"
        );
        assert!(
            first.contains(key),
            "{file}: key `{key}` not named in {first}"
        );
        assert!(out.ends_with("1 error(s)\n"), "{out}");
    }
}

#[test]
fn validate_of_a_missing_file_fails_naming_it() {
    let o = autoscaler(&["validate", "does/not/exist.toml"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("does/not/exist.toml"), "{}", stdout(&o));
}

#[test]
fn simulate_with_no_arguments_runs_the_embedded_reference() {
    let o = autoscaler(&["simulate"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("1602 jobs"), "{out}");
    assert!(
        out.contains("pool non-privileged at trace start: period #1"),
        "{out}"
    );
    assert!(out.contains("autoscaler"), "{out}");
}

#[test]
fn simulate_compare_json_has_every_policy_and_figure() {
    let o = autoscaler(&["simulate", "--compare", "--format", "json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let names: Vec<&str> = v["policies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["autoscaler", "docker+machine", "clairvoyant", "limit floor"]
    );
    for p in v["policies"].as_array().unwrap() {
        for key in [
            "jobs",
            "wait_p50_s",
            "wait_p95_s",
            "wait_p99_s",
            "wait_max_s",
            "vm_hours",
            "busy_vm_hours",
            "utilisation",
            "idle_share",
            "peak_vms",
            "creates",
            "deletes",
            "vm_hours_vs_clairvoyant",
        ] {
            assert!(!p[key].is_null(), "{} lacks {key}", p["name"]);
        }
        assert_eq!(p["pools"].as_array().unwrap().len(), 2);
    }
}

#[test]
fn simulate_plot_writes_an_svg() {
    let dir = tempfile::tempdir().unwrap();
    let svg = dir.path().join("plot.svg");
    let o = autoscaler(&["simulate", "--compare", "--plot", svg.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = std::fs::read_to_string(&svg).unwrap();
    assert!(text.starts_with("<svg"), "{}", &text[..80.min(text.len())]);
    assert!(text.contains("docker+machine") && text.contains("polyline"));
}

#[test]
fn simulate_reports_a_bad_trace_row_by_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.csv");
    std::fs::write(
        &bad,
        "submitted_at,duration_s,tags,project,pipeline,stage\n2026-11-02T00:10:01Z,60,docker,p,1,0\nnot-a-time,60,docker,p,1,0\n",
    )
    .unwrap();
    let o = autoscaler(&["simulate", "--trace", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("bad.csv:3: submitted_at `not-a-time`"),
        "{err}"
    );
}

#[test]
fn simulate_rejects_a_sweep_of_an_unknown_key() {
    let o = autoscaler(&["simulate", "--sweep", "limit=1..3"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("only `idle_count` or `target_wait` can be swept"),
        "{}",
        stderr(&o)
    );
    let o = autoscaler(&["simulate", "--sweep", "target_wait=5m..1m"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("need 0 < FROM <= TO"), "{}", stderr(&o));
}

#[test]
fn bootstrap_render_redacts_secrets_by_default() {
    let o = bootstrap_render("privileged");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.starts_with("#cloud-config"),
        "{}",
        &out[..80.min(out.len())]
    );
    assert!(out.contains("[REDACTED]"));
    assert!(out.contains("qemu-user-static") && out.contains("binfmt-support"));
    assert!(
        out.contains("privileged = true"),
        "privileged pool runs privileged containers"
    );
}

#[test]
fn bootstrap_render_of_an_unknown_pool_lists_the_pools() {
    let o = bootstrap_render("nope");
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("no pool named `nope` (pools: non-privileged, privileged)"),
        "{}",
        stderr(&o)
    );
}

/// `run --dev` end to end: the real controller over HTTP against the in-process fakes scales
/// the pool up for the replayed burst and back down, then drains; nothing killed or left.
#[test]
fn run_dev_scales_up_and_down_and_leaves_nothing() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_autoscaler"))
        .args(["run", "--dev", "--speed", "600", "--duration", "100s"])
        .current_dir(repo())
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Bounded: the replay takes about 30 s; --duration ends it at 100 s at the latest.
    // 1,200 waits of 200 ms: at most 240 s.
    let mut waits = 0;
    while child.try_wait().unwrap().is_none() {
        waits += 1;
        if waits > 1200 {
            child.kill().unwrap();
            panic!("run --dev did not stop by itself");
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let o = child.wait_with_output().unwrap();
    let (out, err) = (stdout(&o), stderr(&o));
    assert_eq!(o.status.code(), Some(0), "{out}\n{err}");
    assert!(err.contains("configuration  /"), "{err}");
    let summary = out.lines().last().unwrap();
    assert!(
        summary.starts_with("summary: 72 of 72 jobs fed, 72 done, 0 killed;"),
        "{summary}"
    );
    assert!(summary.ends_with("left: 0 servers, 0 runners"), "{summary}");
    // VMs of the main pool over time: the warm pool, growth for the burst up to the limit
    // (10), then back to the idle count and, after the drain, none.
    let sizes: Vec<usize> = out
        .lines()
        .filter(|l| l.starts_with("pool docker:"))
        .map(|l| {
            l.split("VMs: ")
                .nth(1)
                .unwrap()
                .split(", ")
                .filter_map(|part| part.split(' ').next()?.parse::<usize>().ok())
                .sum()
        })
        .collect();
    let peak = sizes.iter().copied().max().unwrap();
    let at_peak = sizes.iter().position(|&n| n == peak).unwrap();
    assert_eq!(peak, 10, "{sizes:?}");
    assert!(sizes[..at_peak].contains(&2), "warm pool first: {sizes:?}");
    assert!(
        sizes[at_peak..].contains(&2),
        "back to the idle count: {sizes:?}"
    );
    assert_eq!(sizes.last(), Some(&0), "{sizes:?}");
    // Every action is shown with its reason.
    assert!(out.contains("(idle_floor)"), "{out}");
    assert!(out.contains("(demand)"), "{out}");
    assert!(
        out.contains("(idle_timeout)") || out.contains("(over_limit)"),
        "{out}"
    );
}
