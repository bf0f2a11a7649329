//! The named variants shared by the golden and behavioural tests. Each one changes one
//! thing from the defaults (`distro-docker`), so a golden diff shows what that option does.

use std::num::NonZeroU32;

use autoscaler_bootstrap::{
    BootstrapOptions, BootstrapParams, DockerInstall, PoolBootstrap, RunnerInstall, RunnerSettings,
    S3Cache, VmIdentity,
};
use secrecy::SecretString;

/// The fake token in every variant (and golden file).
pub const TOKEN: &str = "glrt-golden-token-0123456789";
/// The fake S3 keys of the `s3-cache` variant.
pub const ACCESS_KEY: &str = "golden-access-key";
/// See [`ACCESS_KEY`].
pub const SECRET_KEY: &str = "golden-secret-key";

/// A variant: its golden file stem and its parameters.
pub struct Variant {
    pub name: &'static str,
    pub params: BootstrapParams,
}

fn base() -> BootstrapParams {
    BootstrapParams {
        pool: PoolBootstrap {
            capacity: NonZeroU32::MIN,
            runner: RunnerSettings::default(),
            bootstrap: BootstrapOptions::default(),
        },
        vm: VmIdentity {
            gitlab_url: "https://git.icinga.com/".into(),
            runner_token: SecretString::from(TOKEN),
            name: "icinga-ci-non-privileged-0001".into(),
            runner_id: 4711,
        },
    }
}

fn variant(name: &'static str, change: impl FnOnce(&mut BootstrapParams)) -> Variant {
    let mut params = base();
    change(&mut params);
    Variant { name, params }
}

/// Every variant, in a fixed order.
pub fn all() -> Vec<Variant> {
    vec![
        variant("distro-docker", |_| {}),
        variant("convenience-script", |p| {
            p.pool.bootstrap.docker_install = DockerInstall::ConvenienceScript;
        }),
        variant("script-url", |p| {
            // A quote and a dollar sign to show the shell quoting in the golden file.
            p.pool.bootstrap.docker_install = DockerInstall::ScriptUrl(
                "https://files.example.test/engine-install.sh?user=o'brien&v=$1".into(),
            );
        }),
        variant("docker-in-image", |p| {
            p.pool.bootstrap.docker_install = DockerInstall::Image;
        }),
        variant("qemu-off", |p| {
            p.pool.bootstrap.qemu_binfmt = false;
        }),
        variant("runner-preinstalled", |p| {
            p.pool.bootstrap.runner_install = RunnerInstall::Image;
        }),
        variant("s3-cache", |p| {
            p.pool.runner.cache = Some(S3Cache {
                shared: true,
                server_address: "s3provider.domain.localdomain".into(),
                bucket_name: "openstack-gitlab-runner".into(),
                bucket_location: Some("eu-central-1".into()),
                insecure: false,
                access_key: SecretString::from(ACCESS_KEY),
                secret_key: SecretString::from(SECRET_KEY),
            });
        }),
        variant("hooks-extra", |p| {
            p.pool.runner.privileged = true;
            p.pool.runner.volumes = vec!["/cache".into(), "/certs/client".into()];
            p.pool.bootstrap.shell_before = Some("echo \"hook: shell_before ran\"\n".into());
            p.pool.bootstrap.shell_after =
                Some("#!/bin/sh\nset -eu\necho \"hook: shell_after ran\"\n".into());
            p.pool.bootstrap.extra_cloud_config = Some(
                "#cloud-config\n\
                 timezone: Europe/Berlin\n\
                 packages:\n  - htop\n\
                 write_files:\n  - path: /etc/docker/daemon.json\n    permissions: '0644'\n    \
                 content: |\n      {\"log-driver\": \"json-file\", \"log-opts\": {\"max-size\": \"10m\"}}\n\
                 runcmd:\n  - [sh, -c, 'echo extra runcmd ran']\n"
                    .into(),
            );
        }),
        variant("metadata-open", |p| {
            p.pool.bootstrap.block_metadata_in_jobs = false;
        }),
        variant("capacity-4", |p| {
            p.pool.capacity = NonZeroU32::new(4).unwrap();
            p.vm.name = "icinga-ci-big-0001".into();
        }),
    ]
}
