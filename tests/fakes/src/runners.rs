//! A runner simulator joining the two fakes: it plays gitlab-runner on every VM of the fake
//! OpenStack, so jobs of the fake GitLab start only on VMs that exist and have booted.

use std::sync::Arc;

use tokio::sync::broadcast;

use crate::gitlab::FakeGitLabServer;
use crate::{FakeOpenStack, FakeStatus, ServerEvent, ServerEventKind};

/// Every `glrt-` runner token in a text (a VM's cloud-init user-data).
pub fn runner_tokens(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("glrt-") {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
            .unwrap_or(tail.len());
        out.push(tail[..end].to_string());
        rest = &tail[end..];
    }
    out
}

/// Runs until the cloud stops: whenever a server goes ACTIVE, reads its user-data, finds the
/// runner token the autoscaler put there and tells `gitlab` that runner has booted (it then
/// contacts GitLab and takes jobs while not paused). Servers already ACTIVE when it starts,
/// and any missed while lagging behind the event stream, are handled too.
pub async fn play_runners(cloud: Arc<FakeOpenStack>, gitlab: Arc<FakeGitLabServer>) {
    let mut events = cloud.subscribe();
    let boot = |id: &str| {
        if let Some(ud) = cloud.user_data(id) {
            for token in runner_tokens(&ud) {
                gitlab.runner_booted(&token);
            }
        }
    };
    let boot_all_active = || {
        for s in cloud.servers() {
            if s.status == FakeStatus::Active {
                boot(&s.id);
            }
        }
    };
    boot_all_active();
    loop {
        match events.recv().await {
            Ok(ServerEvent {
                kind: ServerEventKind::Active,
                server,
            }) => boot(&server.id),
            Ok(_) => {}
            Err(broadcast::error::RecvError::Lagged(_)) => boot_all_active(),
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_found_in_user_data() {
        let ud = "#cloud-config\nwrite_files:\n- content: |\n    token = \"glrt-abc_DEF-1\"\n";
        assert_eq!(runner_tokens(ud), ["glrt-abc_DEF-1"]);
        assert_eq!(runner_tokens("a glrt-x b glrt-y"), ["glrt-x", "glrt-y"]);
        assert!(runner_tokens("no token here").is_empty());
    }
}
