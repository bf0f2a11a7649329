//! `autoscaler validate CONFIG`: every error at once, or OK.

use super::ValidateArgs;

/// Prints every problem of the file (exit 1) or a one-line OK with a summary (exit 0).
pub(super) fn run(args: &ValidateArgs) -> anyhow::Result<i32> {
    match autoscaler_config::load(&args.config) {
        Ok(config) => {
            let pools: Vec<&str> = config.pools.iter().map(|p| p.name.as_str()).collect();
            println!(
                "OK: {}: {} pool(s): {}",
                args.config.display(),
                pools.len(),
                pools.join(", ")
            );
            Ok(0)
        }
        Err(errors) => {
            println!("{errors}");
            println!("{}: {} error(s)", args.config.display(), errors.len());
            Ok(1)
        }
    }
}
