//! `autoscaler bootstrap render`: the user-data of a pool's VMs, secrets redacted.

use anyhow::Context as _;
use autoscaler_bootstrap as bs;
use autoscaler_config as cfg;

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
        pool: crate::settings::pool_bootstrap(pool, args.reveal)?,
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
