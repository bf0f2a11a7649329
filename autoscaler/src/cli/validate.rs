//! `autoscaler validate CONFIG`: every error at once, or OK.

use super::ValidateArgs;

/// Prints every problem of the file (exit 1) or a one-line OK with a summary (exit 0).
pub(super) fn run(args: &ValidateArgs) -> anyhow::Result<i32> {
    match autoscaler_config::load(&args.config) {
        Ok(config) => {
            let problems = crate::settings::render_check(&config);
            if !problems.is_empty() {
                for p in &problems {
                    println!("{}: {p}", args.config.display());
                }
                println!("{}: {} error(s)", args.config.display(), problems.len());
                return Ok(1);
            }
            let pools: Vec<&str> = config.pools.iter().map(|p| p.name.as_str()).collect();
            println!(
                "OK: {}: {} pool(s): {}",
                args.config.display(),
                pools.len(),
                pools.join(", ")
            );
            for w in &config.warnings {
                println!("warning: {w}");
            }
            if args.online {
                return online(&config);
            }
            Ok(0)
        }
        Err(errors) => {
            println!("{errors}");
            println!("{}: {} error(s)", args.config.display(), errors.len());
            Ok(1)
        }
    }
}

/// `--online`: every pool's template resolved against the real cloud, every problem listed.
fn online(config: &autoscaler_config::Config) -> anyhow::Result<i32> {
    use anyhow::Context as _;
    let controller = autoscaler_core::ports::ControllerId::new(config.controller.id.clone())
        .map_err(|e| anyhow::anyhow!("controller.id: {e}"))?;
    let auth = match &config.openstack {
        Some(os) => autoscaler_openstack::AuthSettings::from(os),
        None => autoscaler_openstack::AuthSettings::default(),
    };
    let resolved = autoscaler_openstack::resolve_auth(&auth, &autoscaler_config::ProcessEnv)
        .context("OpenStack credentials")?;
    let client = autoscaler_openstack::OpenStack::new(
        resolved,
        controller,
        autoscaler_openstack::ClientOptions::default(),
    )
    .context("building the OpenStack client")?;
    let templates: Vec<(String, autoscaler_core::ports::ServerTemplateSpec)> = config
        .pools
        .iter()
        .map(|p| {
            (
                p.name.clone(),
                autoscaler_core::ports::ServerTemplateSpec::from(&p.server),
            )
        })
        .collect();
    let report = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(autoscaler_openstack::preflight(&client, &templates));
    print!("{report}");
    Ok(if report.is_ok() { 0 } else { 1 })
}
