//! Renders cloud-init user-data for one runner VM. Pure: no I/O, no clock, no randomness;
//! the same [`BootstrapParams`] always give the same bytes.
//!
//! The caller (the autoscaler's apply step, or `autoscaler bootstrap render`) maps the
//! pool's configuration onto [`PoolBootstrap`], resolves the secrets, adds the VM's
//! [`VmIdentity`] and calls [`render`] (for Nova) or [`render_redacted`] (for a preview).
//!
//! # What the VM does
//!
//! The user-data is one `#cloud-config` document (why: docs/adr/0003-user-data-format.md).
//! Its `write_files` puts a bootstrap script, the optional hooks and the runner's
//! `config.toml` (mode 0600, staged) on the VM; its `runcmd` runs the script, which:
//! runs `shell_before`; regenerates `/etc/machine-id`; installs Docker (distro package,
//! convenience script, script URL, or checks the image); installs `qemu-user-static` and
//! `binfmt-support` and checks the binfmt handlers; blocks job containers from the
//! metadata service (unless `block_metadata_in_jobs` is off); installs gitlab-runner
//! (package repository, or checks the image); moves `config.toml` into
//! `/etc/gitlab-runner`; starts the runner; deletes cloud-init's copies of the
//! user-data; runs `shell_after`. docs/bootstrap.md has the details.
//!
//! # Secrets
//!
//! The runner token and the S3 keys appear only in the staged `config.toml`, never in a
//! script or on a command line. [`UserData`] keeps the text as a secret and its `Debug`
//! prints sizes only. [`render_redacted`] replaces every secret with [`REDACTED`].
//!
//! # Layout
//!
//! - `params`: the input types.
//! - `script`: the bootstrap shell script.
//! - `runner_config`: gitlab-runner's `config.toml`.
//! - `cloud_config`: the `#cloud-config` document and the extra cloud-config merge.
//! - `metadata`: the metadata block for job containers and the user-data clean-up.
//! - `escape`: shell and TOML quoting.
//! - `paths`: file paths on the VM.

mod cloud_config;
mod error;
mod escape;
mod metadata;
mod params;
pub mod paths;
mod runner_config;
mod script;
mod user_data;

pub use error::RenderError;
pub use params::{
    BootstrapOptions, BootstrapParams, DEFAULT_RUNNER_REPOSITORY, DockerInstall, PREVIEW_TOKEN,
    PoolBootstrap, RunnerInstall, RunnerSettings, S3Cache, VmIdentity,
};
pub use user_data::UserData;

use secrecy::ExposeSecret;

use crate::cloud_config::File;

/// Nova's limit on `user_data`: 65535 bytes of base64.
pub const NOVA_USER_DATA_LIMIT: usize = 65535;

/// What [`render_redacted`] writes instead of a secret.
pub const REDACTED: &str = "[REDACTED]";

/// The architectures accepted in `binfmt_arches` (Docker platform names), with the
/// qemu binfmt handler each needs.
pub const BINFMT_ARCHES: &[(&str, &str)] = &[
    ("amd64", "qemu-x86_64"),
    ("386", "qemu-i386"),
    ("arm64", "qemu-aarch64"),
    ("arm", "qemu-arm"),
    ("ppc64le", "qemu-ppc64le"),
    ("s390x", "qemu-s390x"),
    ("riscv64", "qemu-riscv64"),
    ("mips64le", "qemu-mips64el"),
    ("mips64", "qemu-mips64"),
    ("loong64", "qemu-loongarch64"),
];

/// The names [`BINFMT_ARCHES`] accepts: the one vocabulary of `binfmt_arches`, which the
/// configuration validates against (so `validate` and rendering cannot disagree).
pub fn binfmt_arch_names() -> impl Iterator<Item = &'static str> {
    BINFMT_ARCHES.iter().map(|(name, _)| *name)
}

/// Whether a rendering carries the real secrets or placeholders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Secrets {
    /// The real token and keys: what Nova gets, or a preview after an explicit request
    /// to reveal.
    Revealed,
    /// Every secret replaced by [`REDACTED`]: the default preview.
    Redacted,
}

/// Renders the user-data for Nova, with the real secrets.
///
/// # Errors
///
/// [`RenderError::InvalidValue`] / [`RenderError::InvalidSecret`] for a value that cannot
/// be rendered (the message names the key), [`RenderError::ExtraCloudConfigSyntax`] /
/// [`RenderError::ExtraCloudConfigMerge`] for an extra cloud-config that does not parse
/// or does not merge, and [`RenderError::TooLarge`] when the base64 encoding exceeds
/// [`NOVA_USER_DATA_LIMIT`].
pub fn render(params: &BootstrapParams) -> Result<UserData, RenderError> {
    render_preview(params, Secrets::Revealed)
}

/// Renders the user-data with every secret replaced by [`REDACTED`], for
/// `autoscaler bootstrap render`. The size check applies to the real user-data, so a
/// preview fails exactly when [`render`] would.
///
/// # Errors
///
/// As [`render`].
pub fn render_redacted(params: &BootstrapParams) -> Result<UserData, RenderError> {
    render_preview(params, Secrets::Redacted)
}

/// Renders the user-data with the secrets [`Secrets::Revealed`] or
/// [`Secrets::Redacted`]; [`render`] and [`render_redacted`] call this.
///
/// # Errors
///
/// As [`render`].
pub fn render_preview(params: &BootstrapParams, secrets: Secrets) -> Result<UserData, RenderError> {
    let handlers = validate(params)?;
    let real = render_text(params, &handlers, Secrets::Revealed)?;
    let real_b64 = user_data::base64_len(real.len());
    if real_b64 > NOVA_USER_DATA_LIMIT {
        return Err(RenderError::too_large(real.len(), real_b64));
    }
    match secrets {
        Secrets::Revealed => Ok(UserData::new(real, false)),
        Secrets::Redacted => {
            drop(UserData::new(real, false)); // zeroes the real text
            Ok(UserData::new(
                render_text(params, &handlers, secrets)?,
                true,
            ))
        }
    }
}

fn render_text(
    params: &BootstrapParams,
    handlers: &[&'static str],
    secrets: Secrets,
) -> Result<String, RenderError> {
    let options = &params.pool.bootstrap;
    let before = hook(options.shell_before.as_deref());
    let after = hook(options.shell_after.as_deref());
    let script = script::render(&script::ScriptInputs {
        options,
        binfmt_handlers: handlers,
        has_before: before.is_some(),
        has_after: after.is_some(),
    });
    let mut files = vec![File {
        path: paths::SCRIPT,
        permissions: "0700",
        content: script,
    }];
    if let Some(content) = before {
        files.push(File {
            path: paths::SHELL_BEFORE,
            permissions: "0700",
            content,
        });
    }
    if let Some(content) = after {
        files.push(File {
            path: paths::SHELL_AFTER,
            permissions: "0700",
            content,
        });
    }
    if options.block_metadata_in_jobs {
        files.extend(metadata::block_files());
    }
    files.push(metadata::forget_file());
    files.push(File {
        path: paths::STAGED_RUNNER_CONFIG,
        permissions: "0600",
        content: runner_config::render(params, secrets),
    });
    cloud_config::render(
        &params.vm.name,
        files,
        options.extra_cloud_config.as_deref(),
    )
}

/// A hook file: `None` for an unset or blank snippet; `#!/bin/sh` is added when the
/// snippet has no interpreter line, and a final newline when it lacks one.
fn hook(snippet: Option<&str>) -> Option<String> {
    let snippet = snippet.filter(|s| !s.trim().is_empty())?;
    let mut out = String::new();
    if !snippet.starts_with("#!") {
        out.push_str("#!/bin/sh\n");
    }
    out.push_str(snippet);
    if !out.ends_with('\n') {
        out.push('\n');
    }
    Some(out)
}

/// Checks every value the renderer substitutes and maps `binfmt_arches` to handler
/// names (deduplicated, in config order).
fn validate(params: &BootstrapParams) -> Result<Vec<&'static str>, RenderError> {
    let vm = &params.vm;
    let runner = &params.pool.runner;
    let options = &params.pool.bootstrap;

    word("vm.name", &vm.name)?;
    url("gitlab.url", &vm.gitlab_url)?;
    secret_word("runner token", vm.runner_token.expose_secret())?;
    word("pools.runner.docker_image", &runner.docker_image)?;
    for volume in &runner.volumes {
        word("pools.runner.volumes", volume)?;
    }
    if let Some(cache) = &runner.cache {
        word("pools.runner.cache.server_address", &cache.server_address)?;
        word("pools.runner.cache.bucket_name", &cache.bucket_name)?;
        if let Some(location) = cache.bucket_location.as_deref().filter(|l| !l.is_empty()) {
            word("pools.runner.cache.bucket_location", location)?;
        }
        secret_word(
            "pools.runner.cache access key",
            cache.access_key.expose_secret(),
        )?;
        secret_word(
            "pools.runner.cache secret key",
            cache.secret_key.expose_secret(),
        )?;
    }
    if let DockerInstall::ScriptUrl(u) = &options.docker_install {
        url("pools.bootstrap.docker_install_url", u)?;
    }
    if let RunnerInstall::Repository(u) = &options.runner_install {
        url("pools.bootstrap.runner_repository", u)?;
        if u.ends_with('/') {
            return Err(RenderError::InvalidValue {
                key: "pools.bootstrap.runner_repository",
                value: u.clone(),
                reason: "must not end with `/` (the script appends `/gpgkey` and `/<distro>/`)",
            });
        }
    }
    for (key, snippet) in [
        ("pools.bootstrap.shell_before", &options.shell_before),
        ("pools.bootstrap.shell_after", &options.shell_after),
    ] {
        if let Some(s) = snippet.as_deref().filter(|s| s.contains('\0')) {
            return Err(RenderError::InvalidValue {
                key,
                value: s.chars().take(40).filter(|c| *c != '\0').collect(),
                reason: "contains a NUL byte",
            });
        }
    }

    let mut handlers = Vec::new();
    if options.qemu_binfmt {
        for arch in &options.binfmt_arches {
            let Some((_, handler)) = BINFMT_ARCHES.iter().find(|(a, _)| a == arch) else {
                return Err(RenderError::InvalidValue {
                    key: "pools.bootstrap.binfmt_arches",
                    value: arch.clone(),
                    reason: "unknown architecture",
                });
            };
            if !handlers.contains(handler) {
                handlers.push(*handler);
            }
        }
    }
    Ok(handlers)
}

/// A non-empty value without control characters or surrounding whitespace.
fn word(key: &'static str, value: &str) -> Result<(), RenderError> {
    let reason = if value.is_empty() {
        "must not be empty"
    } else if value.chars().any(char::is_control) {
        "must not contain control characters"
    } else if value.trim() != value {
        "must not start or end with whitespace"
    } else {
        return Ok(());
    };
    Err(RenderError::InvalidValue {
        key,
        value: value.escape_debug().to_string(),
        reason,
    })
}

/// Like [`word`], without whitespace at all and without echoing the value.
fn secret_word(key: &'static str, value: &str) -> Result<(), RenderError> {
    let reason = if value.is_empty() {
        "must not be empty"
    } else if value.chars().any(|c| c.is_control() || c.is_whitespace()) {
        "must not contain whitespace or control characters"
    } else {
        return Ok(());
    };
    Err(RenderError::InvalidSecret { key, reason })
}

/// An `http://` or `https://` URL with a host, without whitespace or control characters.
fn url(key: &'static str, value: &str) -> Result<(), RenderError> {
    word(key, value)?;
    let rest = value
        .strip_prefix("https://")
        .or_else(|| value.strip_prefix("http://"));
    let reason = match rest {
        None => "must start with https:// or http://",
        Some(rest) if rest.is_empty() || rest.starts_with('/') => "has no host",
        Some(_) if value.chars().any(char::is_whitespace) => "must not contain whitespace",
        Some(_) => return Ok(()),
    };
    Err(RenderError::InvalidValue {
        key,
        value: value.to_owned(),
        reason,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
