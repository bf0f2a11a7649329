//! The gitlab-runner `config.toml` of one VM: global `concurrent`, one `[[runners]]`
//! entry with the VM's token, the docker executor and the pool's cache.
//!
//! Writing `config.toml` directly needs no `gitlab-runner register` call: with a `glrt-`
//! token `register` only calls `/runners/verify`, and it would put the token on a
//! command line. gitlab-runner derives its system id from `/etc/machine-id`, which the
//! bootstrap script regenerates before the runner first starts.

use std::fmt::Write as _;

use secrecy::{ExposeSecret, SecretString};

use crate::escape::toml_string;
use crate::params::{BootstrapParams, S3Cache};
use crate::{REDACTED, Secrets};

/// Renders the `config.toml` text. Values were validated by the caller; here they are
/// only TOML-escaped.
pub(crate) fn render(params: &BootstrapParams, secrets: Secrets) -> String {
    let pool = &params.pool;
    let vm = &params.vm;
    let runner = &pool.runner;
    let mut out = String::new();
    // `writeln!` into a String cannot fail; the results are ignored on purpose.
    let _ = writeln!(
        out,
        "# gitlab-runner configuration for {}, written by gitlab-autoscaler.",
        sanitize_comment(&vm.name)
    );
    let _ = writeln!(out, "concurrent = {}", pool.capacity);
    let _ = writeln!(out);
    let _ = writeln!(out, "[[runners]]");
    let _ = writeln!(out, "  name = {}", toml_string(&vm.name));
    let _ = writeln!(out, "  url = {}", toml_string(&vm.gitlab_url));
    let _ = writeln!(out, "  id = {}", vm.runner_id);
    let _ = writeln!(out, "  token = {}", secret(&vm.runner_token, secrets));
    let _ = writeln!(out, "  executor = \"docker\"");
    let _ = writeln!(out, "  limit = {}", pool.capacity);
    let _ = writeln!(out, "  [runners.docker]");
    let _ = writeln!(out, "    image = {}", toml_string(&runner.docker_image));
    let _ = writeln!(out, "    privileged = {}", runner.privileged);
    let volumes: Vec<String> = runner.volumes.iter().map(|v| toml_string(v)).collect();
    let _ = writeln!(out, "    volumes = [{}]", volumes.join(", "));
    if let Some(cache) = &runner.cache {
        write_cache(&mut out, cache, secrets);
    }
    out
}

fn write_cache(out: &mut String, cache: &S3Cache, secrets: Secrets) {
    let _ = writeln!(out, "  [runners.cache]");
    let _ = writeln!(out, "    Type = \"s3\"");
    let _ = writeln!(out, "    Shared = {}", cache.shared);
    let _ = writeln!(out, "    [runners.cache.s3]");
    let _ = writeln!(
        out,
        "      ServerAddress = {}",
        toml_string(&cache.server_address)
    );
    let _ = writeln!(
        out,
        "      AccessKey = {}",
        secret(&cache.access_key, secrets)
    );
    let _ = writeln!(
        out,
        "      SecretKey = {}",
        secret(&cache.secret_key, secrets)
    );
    let _ = writeln!(
        out,
        "      BucketName = {}",
        toml_string(&cache.bucket_name)
    );
    if let Some(location) = cache.bucket_location.as_deref().filter(|l| !l.is_empty()) {
        let _ = writeln!(out, "      BucketLocation = {}", toml_string(location));
    }
    let _ = writeln!(out, "      Insecure = {}", cache.insecure);
}

fn secret(value: &SecretString, secrets: Secrets) -> String {
    match secrets {
        Secrets::Revealed => toml_string(value.expose_secret()),
        Secrets::Redacted => toml_string(REDACTED),
    }
}

/// A comment line ends at a newline; the name is validated to have none, but keep the
/// comment a single line whatever the caller passed.
fn sanitize_comment(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).collect()
}
