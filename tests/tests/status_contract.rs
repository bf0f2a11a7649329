//! The controller's `/status` document and the check plugin's reader must agree field for
//! field: the controller serves `autoscaler::endpoint::ControllerStatus`, the check plugin
//! parses `autoscaler_check::ControllerStatus`. This test fails when either drifts.
#![allow(clippy::unwrap_used, missing_docs)]

use autoscaler_core::status::{ControllerPoolStatus, ControllerStatus};

fn served() -> ControllerStatus {
    let at = chrono::DateTime::parse_from_rfc3339("2026-11-24T10:00:00Z")
        .unwrap()
        .to_utc();
    ControllerStatus {
        controller_id: "ci".into(),
        version: "0.1.0".into(),
        last_tick_at: Some(at),
        last_success_at: Some(at - chrono::Duration::seconds(15)),
        last_error: Some("listing owned servers: timeout".into()),
        gitlab_unavailable_since: Some(at - chrono::Duration::seconds(300)),
        gitlab_error: Some("gitlab unreachable: connection refused".into()),
        gitlab_error_kind: Some("unavailable".into()),
        openstack_unavailable_since: Some(at - chrono::Duration::seconds(60)),
        openstack_error: Some("listing owned servers: auth: 401 Unauthorized".into()),
        openstack_error_kind: Some("auth".into()),
        pools: vec![ControllerPoolStatus {
            name: "docker".into(),
            vms: 7,
            desired: 9,
            pending_jobs: 3,
            circuit_open: true,
            held_back: Vec::new(),
        }],
    }
}

#[test]
fn the_check_plugin_reads_every_field_the_controller_serves() {
    let s = served();
    let json = serde_json::to_value(&s).unwrap();
    let read: autoscaler_check::ControllerStatus = serde_json::from_value(json.clone()).unwrap();
    assert_eq!(read.controller_id, s.controller_id);
    assert_eq!(read.version, s.version);
    assert_eq!(read.last_tick_at, s.last_tick_at);
    assert_eq!(read.last_success_at, s.last_success_at);
    assert_eq!(read.last_error, s.last_error);
    assert_eq!(read.pools.len(), 1);
    let (a, b) = (&read.pools[0], &s.pools[0]);
    assert_eq!(
        (&a.name, a.vms, a.desired, a.pending_jobs, a.circuit_open),
        (&b.name, b.vms, b.desired, b.pending_jobs, b.circuit_open)
    );
    // And nothing the controller serves is unknown to the reader, nor the other way round.
    let back = serde_json::to_value(&read).unwrap();
    assert_eq!(back, json);
}
