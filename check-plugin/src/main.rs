//! `check_gitlab_autoscaler`: parses arguments, runs the check, prints, exits 0..3.
//! Everything else lives in the library (`autoscaler_check::cli`).

use std::io::Write;

use autoscaler_check::cli::{Outcome, parse_args, run};
use autoscaler_config::ProcessEnv;

fn main() {
    // A panic must still end as one UNKNOWN line on stdout, never a trace on stderr.
    std::panic::set_hook(Box::new(|info| {
        let place = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        println!("GITLAB AUTOSCALER UNKNOWN - internal error{place}");
        std::process::exit(3);
    }));
    let outcome = match parse_args(std::env::args_os()) {
        Err(o) => o,
        Ok(opts) => {
            if opts.verbose > 0 {
                let level = if opts.verbose > 1 { "debug" } else { "warn" };
                tracing_subscriber::fmt()
                    .with_writer(std::io::stderr)
                    .with_env_filter(tracing_subscriber::EnvFilter::new(level))
                    .init();
            }
            match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt.block_on(run(&opts, &ProcessEnv)),
                Err(e) => Outcome {
                    stdout: format!("GITLAB AUTOSCALER UNKNOWN - cannot start the runtime: {e}\n"),
                    code: 3,
                },
            }
        }
    };
    let mut out = std::io::stdout().lock();
    // Nothing sensible is left to do when stdout is gone.
    let _ = out.write_all(outcome.stdout.as_bytes());
    let _ = out.flush();
    std::process::exit(outcome.code);
}
