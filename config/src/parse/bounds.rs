//! Bounds of every duration and count the file sets: values outside them are refused
//! (docs/configuration.md, "Bounds"). They keep time arithmetic and counters far from
//! overflow and refuse settings no operator means (a poll every nanosecond).

use std::time::Duration;

/// `poll_interval`: 1 s .. 1 h.
pub const POLL_INTERVAL: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(3600));
/// `idle_time` (pool and period): 0 s .. 30 days.
pub const IDLE_TIME: (Duration, Duration) = (Duration::ZERO, Duration::from_secs(30 * 24 * 3600));
/// `offline_after`: 1 min .. 24 h (gitlab-runner contacts GitLab every few seconds;
/// GitLab's `contacted_at` is only meaningful at minute granularity).
pub const OFFLINE_AFTER: (Duration, Duration) =
    (Duration::from_secs(60), Duration::from_secs(24 * 3600));
/// `boot_timeout`: 10 s .. 24 h (a VM boots in tens of seconds at best; short values
/// are for test clouds whose fake VMs are ACTIVE at once).
pub const BOOT_TIMEOUT: (Duration, Duration) =
    (Duration::from_secs(10), Duration::from_secs(24 * 3600));
/// `maximum_timeout`: GitLab's minimum of 10 min .. its job timeout cap of 30 days.
pub const MAXIMUM_TIMEOUT: (Duration, Duration) = (
    Duration::from_secs(600),
    Duration::from_secs(30 * 24 * 3600),
);
/// `limit` (pool and period): 1 .. 10,000 VMs.
pub const LIMIT: (u32, u32) = (1, 10_000);
/// `capacity`: 1 .. 1,000 jobs per VM.
pub const CAPACITY: (u32, u32) = (1, 1_000);
/// `max_builds` (pool and period): 0 (unlimited) .. 1,000,000 jobs per VM.
pub const MAX_BUILDS: (u32, u32) = (0, 1_000_000);
/// `forecast_days`: 0 (off) .. 30 days of history.
pub const FORECAST_DAYS: (u32, u32) = (0, 30);
/// `target_wait` (pool and period): 1 s .. 1 h.
pub const TARGET_WAIT: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(3600));
/// `target_percentile`: 50 .. 99 percent.
pub const TARGET_PERCENTILE: (u32, u32) = (50, 99);
/// `billing_period`: 1 s .. 31 days.
pub const BILLING_PERIOD: (Duration, Duration) =
    (Duration::from_secs(1), Duration::from_secs(31 * 24 * 3600));
