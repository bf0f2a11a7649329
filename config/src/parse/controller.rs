//! The `[controller]` section: who we are (`id`, the ownership tag), how often we look
//! (`poll_interval`), when a runner counts as offline, where we listen and keep state.

use std::net::SocketAddr;
use std::time::Duration;

use super::bounds;
use super::names::valid_name;
use super::reader::{Ctx, Node};
use crate::model::Controller;

/// Reads `[controller]`; `None` when anything in it is wrong (reported).
pub(super) fn controller(ctx: &mut Ctx<'_>, n: &Node<'_>) -> Option<Controller> {
    ctx.check_keys(
        n,
        &[
            "id",
            "poll_interval",
            "offline_after",
            "listen",
            "state_dir",
        ],
        &[],
    );
    let id = ctx.required(n, "id", |c, n, k| {
        c.str_as(n, k, |id| {
            if valid_name(id, 31) {
                Ok(id.to_owned())
            } else {
                Err(format!(
                    "`{id}` must match ^[a-z0-9][a-z0-9-]{{0,30}}$ (lowercase letters, digits, dashes; at most 31)"
                ))
            }
        })
    });
    let poll_interval = ctx.defaulted(
        n,
        "poll_interval",
        |c, n, k| c.bounded_duration(n, k, bounds::POLL_INTERVAL).map(|d| d.v),
        || Duration::from_secs(15),
    );
    let offline_after = ctx.defaulted(
        n,
        "offline_after",
        |c, n, k| c.bounded_duration(n, k, bounds::OFFLINE_AFTER).map(|d| d.v),
        || Controller::DEFAULT_OFFLINE_AFTER,
    );
    let listen = ctx.defaulted(
        n,
        "listen",
        |c, n, k| {
            c.str_as(n, k, |s| {
                s.parse::<SocketAddr>()
                    .map_err(|_| format!("`{s}` is not an address such as 127.0.0.1:9252"))
            })
        },
        || SocketAddr::from(([127, 0, 0, 1], 9252)),
    );
    let state_dir = ctx.path(n, "state_dir");
    Some(Controller {
        id: id?,
        poll_interval: poll_interval?,
        offline_after: offline_after?,
        listen: listen?,
        state_dir,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::Duration;

    use super::super::parse_config;
    use super::super::testing::*;

    #[test]
    fn controller_id_must_be_a_short_lowercase_name() {
        one_err(
            &BASE.replace("id = \"ci\"", "id = \"CI\""),
            "controller.id",
            "must match",
        );
        one_err(
            &BASE.replace("id = \"ci\"", &format!("id = \"{}\"", "a".repeat(32))),
            "controller.id",
            "at most 31",
        );
        one_err(
            &BASE.replace("id = \"ci\"", ""),
            "controller.id",
            "missing required key",
        );
    }

    #[test]
    fn offline_after_defaults_to_five_minutes_and_is_bounded() {
        assert_eq!(
            ok(&with("[controller]", "")).controller.offline_after,
            Duration::from_secs(300)
        );
        assert_eq!(
            ok(&with("[controller]", "offline_after = \"10m\""))
                .controller
                .offline_after,
            Duration::from_secs(600)
        );
        one_err(
            &with("[controller]", "offline_after = \"5s\""),
            "controller.offline_after",
            "`5s` is out of range: must be between 1m and 1day",
        );
    }

    #[test]
    fn zero_poll_interval_is_rejected() {
        one_err(
            &with("[controller]", "poll_interval = 0"),
            "controller.poll_interval",
            "`0` is out of range: must be between 1s and 1h",
        );
    }

    // Regression, issue 11 item 9: "1000000000y" passed validation and panicked the
    // process (exit 101) at the first timer; "1ns" made the loop spin.
    #[test]
    fn absurd_poll_intervals_are_refused_naming_file_line_key_and_value() {
        for (value, shown) in [
            ("\"1000000000y\"", "`1000000000y`"),
            ("\"1ns\"", "`1ns`"),
            ("\"2h\"", "`2h`"),
            ("99999999999", "`99999999999`"),
        ] {
            let src = with("[controller]", &format!("poll_interval = {value}"));
            let e = parse_config(&src, "t.toml", now()).unwrap_err();
            assert_eq!(e.len(), 1, "{e}");
            assert_eq!(
                e.to_string(),
                format!(
                    "t.toml:5:17: controller.poll_interval: {shown} is out of range: must be between 1s and 1h"
                )
            );
        }
        assert_eq!(
            ok(&with("[controller]", "poll_interval = \"1h\""))
                .controller
                .poll_interval,
            Duration::from_secs(3600)
        );
    }

    #[test]
    fn listen_must_be_a_socket_address() {
        one_err(
            &with("[controller]", "listen = \"localhost\""),
            "controller.listen",
            "`localhost`",
        );
    }
}
