//! Runs the check plugin's scenarios on the project's shared fakes (`autoscaler-fakes`:
//! GitLab, Keystone/Nova) plus a controller `/status`, for `tests/icinga/run.sh` and the
//! benchmark. Not part of the plugin.
//!
//! ```text
//! cargo run -p autoscaler-check --example fake_services -- DIR [SCENARIO...]
//! ```
//!
//! Starts one fake per scenario (default: ok warning critical unknown timeout down big),
//! writes `DIR/<scenario>.toml` (a controller config pointing at it) and `DIR/ready` (after
//! everything listens), then serves until stdin closes or the process is killed. The token
//! and password the fakes accept are in `DIR/env` (`FAKE_GITLAB_TOKEN`, `OS_PASSWORD`).

#[path = "../tests/support/scenario.rs"]
mod fake;

use std::path::PathBuf;

use fake::{Fake, World};

const DEFAULT: [&str; 7] = [
    "ok", "warning", "critical", "unknown", "timeout", "down", "big",
];

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(
        args.next()
            .ok_or("usage: fake_services DIR [SCENARIO...]")?,
    );
    let mut names: Vec<String> = args.collect();
    if names.is_empty() {
        names = DEFAULT.iter().map(|s| s.to_string()).collect();
    }
    std::fs::create_dir_all(&dir)?;
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0")?;
        l.local_addr()?.port()
    };
    let now = chrono::Utc::now();
    let mut running = Vec::new();
    for name in &names {
        let world = World::scenario(name, now).ok_or_else(|| format!("unknown scenario {name}"))?;
        let controller_up = world.status.is_some();
        let f = Fake::start(world).await?;
        std::fs::write(
            dir.join(format!("{name}.toml")),
            f.config(controller_up, closed),
        )?;
        println!("{name} {}", f.gitlab.url());
        running.push(f);
    }
    std::fs::write(
        dir.join("env"),
        format!(
            "FAKE_GITLAB_TOKEN={}\nOS_PASSWORD={}\n",
            fake::TOKEN,
            fake::OS_PASSWORD
        ),
    )?;
    std::fs::write(dir.join("ready"), format!("{}\n", std::process::id()))?;
    // Serve until stdin reaches EOF (the caller closes it) or a signal ends the process.
    tokio::task::spawn_blocking(|| {
        let mut sink = String::new();
        while std::io::stdin()
            .read_line(&mut sink)
            .map(|n| n > 0)
            .unwrap_or(false)
        {
            sink.clear();
        }
    })
    .await?;
    let total: u64 = running.iter().map(Fake::requests).sum();
    eprintln!("fake services: {total} requests served");
    Ok(())
}
