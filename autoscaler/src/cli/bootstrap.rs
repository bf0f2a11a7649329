//! `autoscaler bootstrap render`: the user-data of a pool's VMs, secrets redacted.

use anyhow::Context as _;
use autoscaler_bootstrap as bs;
use autoscaler_config::{self as cfg, ProcessEnv};
use secrecy::SecretString;

use super::RenderArgs;

/// Renders the pool's user-data for a preview VM.
pub(super) fn render(args: &RenderArgs) -> anyhow::Result<i32> {
    let config = cfg::load(&args.config).map_err(|e| anyhow::anyhow!("{e}"))?;
    let pool = config.pool(&args.pool).with_context(|| {
        let names: Vec<&str> = config.pools.iter().map(|p| p.name.as_str()).collect();
        format!(
            "{}: no pool named `{}` (pools: {})",
            args.config.display(),
            args.pool,
            names.join(", ")
        )
    })?;
    let params = bs::BootstrapParams {
        pool: pool_bootstrap(pool, args.reveal)?,
        vm: bs::VmIdentity::preview(
            config.gitlab.url.to_string(),
            format!("{}-{}-preview", config.controller.id, pool.name),
        ),
    };
    let secrets = if args.reveal {
        bs::Secrets::Revealed
    } else {
        bs::Secrets::Redacted
    };
    let user_data = bs::render_preview(&params, secrets)
        .with_context(|| format!("rendering user-data for pool `{}`", pool.name))?;
    print!("{}", user_data.as_str());
    eprintln!(
        "# {} bytes, {} bytes base64 (Nova limit {})",
        user_data.len(),
        user_data.base64_len(),
        bs::NOVA_USER_DATA_LIMIT
    );
    Ok(0)
}

/// Maps a configured pool to the renderer's parameters. S3 keys are read only when they
/// are to be shown; otherwise placeholders keep the preview free of secrets.
pub(crate) fn pool_bootstrap(pool: &cfg::Pool, resolve: bool) -> anyhow::Result<bs::PoolBootstrap> {
    let secret = |source: &cfg::SecretSource, what: &str| -> anyhow::Result<SecretString> {
        if resolve {
            source
                .resolve(&ProcessEnv as &dyn cfg::Env)
                .with_context(|| format!("pool `{}`: reading the S3 {what}", pool.name))
        } else {
            Ok(SecretString::from(bs::REDACTED.to_string()))
        }
    };
    let cache = match &pool.runner.cache {
        Some(c) => Some(bs::S3Cache {
            shared: c.shared,
            server_address: c.server_address.clone(),
            bucket_name: c.bucket_name.clone(),
            bucket_location: c.bucket_location.clone(),
            insecure: c.insecure,
            access_key: secret(&c.access_key, "access key")?,
            secret_key: secret(&c.secret_key, "secret key")?,
        }),
        None => None,
    };
    let b = &pool.bootstrap;
    let extra_cloud_config = match &b.extra_cloud_config_file {
        Some(path) => Some(std::fs::read_to_string(path).with_context(|| {
            format!(
                "pool `{}`: reading extra_cloud_config_file {}",
                pool.name,
                path.display()
            )
        })?),
        None => None,
    };
    Ok(bs::PoolBootstrap {
        capacity: pool.capacity,
        runner: bs::RunnerSettings {
            docker_image: pool.runner.docker_image.clone(),
            privileged: pool.runner.privileged,
            volumes: pool.runner.volumes.clone(),
            cache,
        },
        bootstrap: bs::BootstrapOptions {
            docker_install: match &b.docker_install {
                cfg::DockerInstall::Distro => bs::DockerInstall::Distro,
                cfg::DockerInstall::ConvenienceScript => bs::DockerInstall::ConvenienceScript,
                cfg::DockerInstall::ScriptUrl(u) => bs::DockerInstall::ScriptUrl(u.to_string()),
                cfg::DockerInstall::Image => bs::DockerInstall::Image,
            },
            qemu_binfmt: b.qemu_binfmt,
            binfmt_arches: b.binfmt_arches.clone(),
            runner_install: match &b.runner_install {
                cfg::RunnerInstall::Repository(u) => bs::RunnerInstall::Repository(u.to_string()),
                cfg::RunnerInstall::Image => bs::RunnerInstall::Image,
            },
            extra_cloud_config,
            shell_before: b.shell_before.clone(),
            shell_after: b.shell_after.clone(),
        },
    })
}
