//! Assembles the single `#cloud-config` document and merges the pool's extra
//! cloud-config into it.
//!
//! Merge rule (also in docs/bootstrap.md and docs/adr/0003-user-data-format.md):
//! the bootstrap owns two top-level keys, `write_files` and `runcmd`. If the extra
//! cloud-config has them, they must be lists and are appended after the bootstrap's
//! own entries; a `write_files` entry may not target a file the bootstrap writes.
//! `merge_how` / `merge_type` are refused (there is only one document, so they would
//! mean nothing, or something surprising). Every other top-level key is copied as is,
//! after the bootstrap's keys, in the order of the extra document.

use serde_yaml_ng::{Mapping, Value};

use crate::error::RenderError;
use crate::paths::{
    BLOCK_METADATA_SCRIPT, BLOCK_METADATA_UNIT, FORGET_USER_DATA, RUNNER_CONFIG, RUNNER_DIR,
    RUNNER_DROP_IN, SCRIPT, WORK_DIR,
};

/// One `write_files` entry of the bootstrap.
pub(crate) struct File {
    /// Absolute path on the VM.
    pub path: &'static str,
    /// Octal mode as cloud-init wants it: a string such as `"0700"`.
    pub permissions: &'static str,
    /// File content.
    pub content: String,
}

/// Builds the document text, starting with the `#cloud-config` header.
pub(crate) fn render(
    vm_name: &str,
    files: Vec<File>,
    extra: Option<&str>,
) -> Result<String, RenderError> {
    let mut write_files: Vec<Value> = files.into_iter().map(file_entry).collect();
    let mut runcmd = vec![Value::String(format!("sh {SCRIPT}"))];
    let mut rest = Mapping::new();

    if let Some(extra) = extra {
        merge_extra(extra, &mut write_files, &mut runcmd, &mut rest)?;
    }

    let mut doc = Mapping::new();
    doc.insert("write_files".into(), Value::Sequence(write_files));
    doc.insert("runcmd".into(), Value::Sequence(runcmd));
    for (k, v) in rest {
        doc.insert(k, v);
    }
    let body = serde_yaml_ng::to_string(&Value::Mapping(doc)).map_err(RenderError::Emit)?;
    let name: String = vm_name.chars().filter(|c| !c.is_control()).collect();
    Ok(format!(
        "#cloud-config\n# gitlab-autoscaler bootstrap for {name}; see docs/bootstrap.md\n{body}"
    ))
}

fn file_entry(file: File) -> Value {
    let mut m = Mapping::new();
    m.insert("path".into(), file.path.into());
    m.insert("permissions".into(), file.permissions.into());
    m.insert("content".into(), Value::String(file.content));
    Value::Mapping(m)
}

fn merge_extra(
    extra: &str,
    write_files: &mut Vec<Value>,
    runcmd: &mut Vec<Value>,
    rest: &mut Mapping,
) -> Result<(), RenderError> {
    let parsed: Value =
        serde_yaml_ng::from_str(extra).map_err(RenderError::ExtraCloudConfigSyntax)?;
    let map = match parsed {
        Value::Null => return Ok(()),
        Value::Mapping(m) => m,
        other => {
            return Err(RenderError::merge(
                "(top level)",
                format!(
                    "expected a mapping of cloud-config keys, found {}",
                    kind(&other)
                ),
            ));
        }
    };
    for (key, value) in map {
        let Value::String(name) = key else {
            return Err(RenderError::merge(
                format!("{key:?}"),
                "top-level keys must be strings",
            ));
        };
        match name.as_str() {
            "write_files" => {
                let items = expect_list(&name, value)?;
                for (i, item) in items.iter().enumerate() {
                    check_extra_file(i, item)?;
                }
                write_files.extend(items);
            }
            "runcmd" => runcmd.extend(expect_list(&name, value)?),
            "merge_how" | "merge_type" => {
                return Err(RenderError::merge(
                    name,
                    "merge directives are not supported: the bootstrap merges extra_cloud_config \
                     itself (write_files and runcmd lists are appended; see docs/bootstrap.md)",
                ));
            }
            _ => {
                rest.insert(Value::String(name), value);
            }
        }
    }
    Ok(())
}

fn expect_list(key: &str, value: Value) -> Result<Vec<Value>, RenderError> {
    match value {
        Value::Sequence(items) => Ok(items),
        other => Err(RenderError::merge(
            key,
            format!(
                "must be a list to be appended to the bootstrap's own {key}, found {}",
                kind(&other)
            ),
        )),
    }
}

/// An extra `write_files` entry must have a string `path` that is not one of the
/// bootstrap's files: overwriting them would silently replace the script or the runner
/// config.
fn check_extra_file(index: usize, item: &Value) -> Result<(), RenderError> {
    let key = format!("write_files[{index}].path");
    let Some(path) = item.get("path") else {
        return Err(RenderError::merge(key, "missing"));
    };
    let Some(path) = path.as_str() else {
        return Err(RenderError::merge(
            key,
            format!("must be a string, found {}", kind(path)),
        ));
    };
    let Some(normal) = normalize(path) else {
        return Err(RenderError::merge(
            key,
            format!("`{path}` must be an absolute path without `..`"),
        ));
    };
    let owned_dir = |dir: &str| normal == dir || normal.starts_with(&format!("{dir}/"));
    let system_id = format!("{RUNNER_DIR}/.runner_system_id");
    let owned_file = [
        RUNNER_CONFIG,
        system_id.as_str(),
        BLOCK_METADATA_SCRIPT,
        BLOCK_METADATA_UNIT,
        RUNNER_DROP_IN,
        FORGET_USER_DATA,
    ]
    .contains(&normal.as_str());
    if owned_dir(WORK_DIR) || owned_file {
        return Err(RenderError::merge(
            key,
            format!("`{path}` is written or managed by the bootstrap itself"),
        ));
    }
    Ok(())
}

/// Lexical normalisation: absolute, no `..`, `.` and empty components dropped.
fn normalize(path: &str) -> Option<String> {
    if !path.starts_with('/') {
        return None;
    }
    let mut parts = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => return None,
            p => parts.push(p),
        }
    }
    Some(format!("/{}", parts.join("/")))
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn files() -> Vec<File> {
        vec![File {
            path: SCRIPT,
            permissions: "0700",
            content: "#!/bin/sh\necho hi\n".into(),
        }]
    }

    fn parse(text: &str) -> Value {
        serde_yaml_ng::from_str(text).unwrap()
    }

    #[test]
    fn document_starts_with_the_cloud_config_header() {
        let out = render("vm-1", files(), None).unwrap();
        assert!(out.starts_with("#cloud-config\n"));
    }

    #[test]
    fn extra_runcmd_and_write_files_are_appended_after_ours() {
        let extra = "runcmd:\n  - echo extra\nwrite_files:\n  - path: /etc/motd\n    content: hi\n";
        let doc = parse(&render("vm-1", files(), Some(extra)).unwrap());
        let runcmd = doc["runcmd"].as_sequence().unwrap();
        assert_eq!(runcmd.len(), 2);
        assert_eq!(runcmd[0].as_str().unwrap(), format!("sh {SCRIPT}"));
        assert_eq!(runcmd[1].as_str().unwrap(), "echo extra");
        let wf = doc["write_files"].as_sequence().unwrap();
        assert_eq!(wf[0]["path"].as_str().unwrap(), SCRIPT);
        assert_eq!(wf[1]["path"].as_str().unwrap(), "/etc/motd");
    }

    #[test]
    fn other_extra_keys_are_copied_after_ours() {
        let extra = "#cloud-config\npackages: [htop]\ntimezone: Europe/Berlin\n";
        let doc = parse(&render("vm-1", files(), Some(extra)).unwrap());
        let keys: Vec<&str> = doc
            .as_mapping()
            .unwrap()
            .keys()
            .map(|k| k.as_str().unwrap())
            .collect();
        assert_eq!(keys, ["write_files", "runcmd", "packages", "timezone"]);
    }

    #[test]
    fn empty_extra_changes_nothing() {
        let plain = render("vm-1", files(), None).unwrap();
        assert_eq!(
            render("vm-1", files(), Some("#cloud-config\n")).unwrap(),
            plain
        );
    }

    #[test]
    fn extra_that_is_not_a_mapping_is_refused() {
        let err = render("vm-1", files(), Some("- a\n- b\n")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "pools.bootstrap.extra_cloud_config: (top level): expected a mapping of cloud-config keys, found a list"
        );
    }

    #[test]
    fn extra_runcmd_that_is_not_a_list_is_refused() {
        let err = render("vm-1", files(), Some("runcmd: echo hi\n")).unwrap_err();
        assert!(err.to_string().contains("runcmd: must be a list"), "{err}");
    }

    #[test]
    fn extra_merge_how_is_refused() {
        let err = render("vm-1", files(), Some("merge_how: list(append)\n")).unwrap_err();
        assert!(
            err.to_string().contains("merge_how: merge directives"),
            "{err}"
        );
    }

    #[test]
    fn extra_file_over_the_runner_config_is_refused() {
        let extra = "write_files:\n  - path: /etc//gitlab-runner/./config.toml\n    content: x\n";
        let err = render("vm-1", files(), Some(extra)).unwrap_err();
        assert!(
            err.to_string()
                .contains("write_files[0].path: `/etc//gitlab-runner/./config.toml` is written"),
            "{err}"
        );
    }

    #[test]
    fn extra_files_over_the_metadata_block_and_user_data_clean_up_are_refused() {
        for path in [
            BLOCK_METADATA_SCRIPT,
            BLOCK_METADATA_UNIT,
            RUNNER_DROP_IN,
            FORGET_USER_DATA,
        ] {
            let extra = format!("write_files:\n  - path: {path}\n    content: x\n");
            let err = render("vm-1", files(), Some(&extra)).unwrap_err();
            assert!(
                err.to_string()
                    .contains("is written or managed by the bootstrap"),
                "{path}: {err}"
            );
        }
    }

    #[test]
    fn extra_file_inside_the_bootstrap_folder_is_refused() {
        let extra = format!("write_files:\n  - path: {WORK_DIR}/bootstrap.sh\n    content: x\n");
        assert!(render("vm-1", files(), Some(&extra)).is_err());
    }

    #[test]
    fn extra_file_with_dotdot_is_refused() {
        let extra = "write_files:\n  - path: /tmp/../etc/gitlab-runner/config.toml\n";
        let err = render("vm-1", files(), Some(extra)).unwrap_err();
        assert!(err.to_string().contains("without `..`"), "{err}");
    }

    #[test]
    fn extra_with_broken_yaml_is_refused_with_its_position() {
        let err = render("vm-1", files(), Some("runcmd:\n  - a\n b: [\n")).unwrap_err();
        assert!(matches!(err, RenderError::ExtraCloudConfigSyntax(_)));
        let source = std::error::Error::source(&err).unwrap().to_string();
        assert!(source.contains("line"), "{source}");
    }

    #[test]
    fn extra_with_duplicate_keys_is_refused() {
        let err = render("vm-1", files(), Some("runcmd: []\nruncmd: []\n")).unwrap_err();
        assert!(matches!(err, RenderError::ExtraCloudConfigSyntax(_)));
    }
}
