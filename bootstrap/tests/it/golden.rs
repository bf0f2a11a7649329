//! `render()` of every variant must equal its golden file in `tests/golden/`.
//! `UPDATE_GOLDEN=1 cargo test -p autoscaler-bootstrap` rewrites the files; review the
//! diff before committing. `tests/cloud-init/run.sh` validates the golden files with
//! cloud-init, which is sound because this test keeps them equal to the renderer's output.

use std::path::PathBuf;

use autoscaler_bootstrap::{REDACTED, UserData, render, render_redacted};
use serde_yaml_ng::Value;

use crate::variants::{self, ACCESS_KEY, SECRET_KEY, TOKEN};

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// Compares `data` with the golden file `name.yaml`, or rewrites it under UPDATE_GOLDEN.
fn check(name: &str, data: &UserData) -> Result<(), String> {
    let path = golden_dir().join(format!("{name}.yaml"));
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(golden_dir()).unwrap();
        std::fs::write(&path, data.as_str()).unwrap();
        return Ok(());
    }
    let want = std::fs::read_to_string(&path).map_err(|e| {
        format!(
            "{}: {e} (run with UPDATE_GOLDEN=1 to create it)",
            path.display()
        )
    })?;
    if want == data.as_str() {
        return Ok(());
    }
    let line = want
        .lines()
        .zip(data.as_str().lines())
        .position(|(a, b)| a != b)
        .unwrap_or_else(|| want.lines().count().min(data.as_str().lines().count()));
    Err(format!(
        "{}: rendered output differs from line {} on (UPDATE_GOLDEN=1 rewrites it)",
        path.display(),
        line + 1
    ))
}

fn parse(data: &UserData) -> Value {
    let text = data.as_str();
    assert!(text.starts_with("#cloud-config\n"));
    let doc: Value = serde_yaml_ng::from_str(text).expect("user-data parses as YAML");
    assert!(doc.is_mapping());
    doc
}

#[test]
fn every_variant_renders_to_its_golden_file_and_parses_as_yaml() {
    let mut failures = Vec::new();
    for v in variants::all() {
        let data = render(&v.params).unwrap_or_else(|e| panic!("{}: {e}", v.name));
        parse(&data);
        if let Err(e) = check(v.name, &data) {
            failures.push(e);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn redacted_preview_renders_to_its_golden_file_without_secrets() {
    let v = variants::all()
        .into_iter()
        .find(|v| v.name == "s3-cache")
        .unwrap();
    let data = render_redacted(&v.params).unwrap();
    parse(&data);
    for secret in [TOKEN, ACCESS_KEY, SECRET_KEY] {
        assert!(!data.as_str().contains(secret));
    }
    assert_eq!(data.as_str().matches(REDACTED).count(), 3);
    check("s3-cache.redacted", &data).unwrap();
}

#[test]
fn no_golden_file_is_left_without_a_variant() {
    let mut known: Vec<String> = variants::all()
        .iter()
        .map(|v| format!("{}.yaml", v.name))
        .collect();
    known.push("s3-cache.redacted.yaml".into());
    for entry in std::fs::read_dir(golden_dir()).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        assert!(known.contains(&name), "stale golden file {name}");
    }
}

#[test]
fn variants_differ_from_the_default_only_where_they_should() {
    let all = variants::all();
    let base = render(&all[0].params).unwrap();
    for v in &all[1..] {
        let data = render(&v.params).unwrap();
        assert_ne!(
            data.as_str(),
            base.as_str(),
            "{} renders like the default",
            v.name
        );
    }
}
