//! Property tests: `Schedule::matches`, `Pool::policy_at` and `Pool::next_transition`
//! against an independent brute-force rule around real DST transitions of
//! Europe/Berlin, America/New_York and Australia/Lord_Howe (30-minute DST).
//!
//! The oracle never touches the `cron` crate: field sets are plain predicates, local
//! time comes from chrono-tz offsets, transitions are found by scanning, and the DST
//! rule of `docs/adr/0002-schedules.md` is applied second by second.

#![allow(clippy::unwrap_used)]

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::OnceLock;

use autoscaler_config::{Schedule, parse_at};
use chrono::{DateTime, Datelike, Offset, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use proptest::prelude::*;

type Pred = fn(u32) -> bool;

const SEC: &[(&str, Pred)] = &[
    ("*", |_| true),
    ("0-29", |v| v < 30),
    ("*/20", |v| v % 20 == 0),
    ("15", |v| v == 15),
];
const MIN: &[(&str, Pred)] = &[
    ("*", |_| true),
    ("0-29", |v| v < 30),
    ("30-59", |v| v >= 30),
    ("*/15", |v| v % 15 == 0),
    ("10-40", |v| (10..=40).contains(&v)),
    ("5", |v| v == 5),
];
const HOUR: &[(&str, Pred)] = &[
    ("*", |_| true),
    ("0-2", |v| v <= 2),
    ("1-3", |v| (1..=3).contains(&v)),
    ("2", |v| v == 2),
    ("3", |v| v == 3),
    ("1", |v| v == 1),
    ("2-3", |v| v == 2 || v == 3),
    ("0-8,22-23", |v| v <= 8 || v >= 22),
    ("22-23,0-1", |v| v <= 1 || v >= 22),
];
/// (text, restricted, predicate on day of month)
const DOM: &[(&str, bool, Pred)] = &[("*", false, |_| true), ("1-15", true, |v| v <= 15)];
/// (text, restricted, predicate on day of week with 0 = Sunday)
const DOW: &[(&str, bool, Pred)] = &[
    ("*", false, |_| true),
    ("mon-fri", true, |v| (1..=5).contains(&v)),
    ("sat,sun", true, |v| v == 0 || v == 6),
    ("0", true, |v| v == 0),
    ("1-5", true, |v| (1..=5).contains(&v)),
    ("7", true, |v| v == 0),
    ("5-7", true, |v| v == 0 || v >= 5),
];

const ZONES: [Tz; 3] = [
    chrono_tz::Europe::Berlin,
    chrono_tz::America::New_York,
    chrono_tz::Australia::Lord_Howe,
];

/// A generated expression: indices into the tables, and whether to write 5 fields.
#[derive(Debug, Clone, Copy)]
struct Expr {
    sec: usize,
    min: usize,
    hour: usize,
    dom: usize,
    dow: usize,
    five: bool,
}

impl Expr {
    fn text(&self) -> String {
        let (m, h, d, w) = (
            MIN[self.min].0,
            HOUR[self.hour].0,
            DOM[self.dom].0,
            DOW[self.dow].0,
        );
        if self.five && self.sec == 0 {
            format!("{m} {h} {d} * {w}")
        } else {
            format!("{} {m} {h} {d} * {w} *", SEC[self.sec].0)
        }
    }

    /// Whether local wall time (seconds since the epoch, read as local) is in the window.
    fn wall_ok(&self, wall: i64) -> bool {
        let w = DateTime::from_timestamp(wall, 0).unwrap().naive_utc();
        let (dom_r, dom_p) = (DOM[self.dom].1, DOM[self.dom].2);
        let (dow_r, dow_p) = (DOW[self.dow].1, DOW[self.dow].2);
        let dom_ok = dom_p(w.day());
        let dow_ok = dow_p(w.weekday().num_days_from_sunday());
        let day = match (dom_r, dow_r) {
            (true, true) => dom_ok || dow_ok,
            _ => dom_ok && dow_ok,
        };
        day && HOUR[self.hour].1(w.hour())
            && MIN[self.min].1(w.minute())
            && SEC[self.sec].1(w.second())
    }
}

fn offset(tz: Tz, t: i64) -> i64 {
    let utc = DateTime::from_timestamp(t, 0).unwrap().naive_utc();
    i64::from(tz.offset_from_utc_datetime(&utc).fix().local_minus_utc())
}

/// (instant, offset before, offset after) of every change 2025-2027, by scanning.
fn transitions(tz: Tz) -> &'static [(i64, i64, i64)] {
    static CACHE: OnceLock<Vec<Vec<(i64, i64, i64)>>> = OnceLock::new();
    let all = CACHE.get_or_init(|| {
        ZONES
            .iter()
            .map(|&z| {
                let start = Utc
                    .with_ymd_and_hms(2025, 1, 1, 0, 0, 0)
                    .unwrap()
                    .timestamp();
                let end = Utc
                    .with_ymd_and_hms(2028, 1, 1, 0, 0, 0)
                    .unwrap()
                    .timestamp();
                let mut out = Vec::new();
                let mut t = start;
                while t < end {
                    if offset(z, t + 1800) != offset(z, t) {
                        let mut x = t + 1;
                        while offset(z, x) == offset(z, t) {
                            x += 1;
                        }
                        out.push((x, offset(z, t), offset(z, x)));
                    }
                    t += 1800;
                }
                out
            })
            .collect()
    });
    let i = ZONES.iter().position(|z| *z == tz).unwrap();
    &all[i]
}

/// The documented DST rule, brute force.
#[derive(Default)]
struct Oracle {
    gap_cache: RefCell<HashMap<(String, i64), Vec<bool>>>,
}

impl Oracle {
    fn matches(&self, e: &Expr, tz: Tz, t: i64) -> bool {
        for &(at, before, after) in transitions(tz) {
            let len = (after - before).abs();
            if t >= at && t < at + len {
                if after > before {
                    let s = (t - at) as usize;
                    let key = (format!("{e:?}{tz}"), at);
                    let mut cache = self.gap_cache.borrow_mut();
                    let profile = cache.entry(key).or_insert_with(|| {
                        let g0 = at + before;
                        let g1 = g0 + len;
                        let old: Vec<bool> = (0..len).map(|s| e.wall_ok(g0 + s)).collect();
                        let new: Vec<bool> = (0..len).map(|s| e.wall_ok(g1 + s)).collect();
                        let first_new = new.iter().position(|b| *b);
                        let last_old = old.iter().rposition(|b| *b);
                        (0..len as usize)
                            .map(|s| {
                                old[s]
                                    || new[s]
                                    || matches!((first_new, last_old), (Some(f), Some(l)) if f <= s && s <= l)
                            })
                            .collect()
                    });
                    return profile[s];
                }
                return e.wall_ok(at - 1 + before);
            }
        }
        e.wall_ok(t + offset(tz, t))
    }
}

fn expr() -> impl Strategy<Value = Expr> {
    (
        0..SEC.len(),
        0..MIN.len(),
        0..HOUR.len(),
        0..DOM.len(),
        0..DOW.len(),
        any::<bool>(),
    )
        .prop_map(|(sec, min, hour, dom, dow, five)| Expr {
            sec,
            min,
            hour,
            dom,
            dow,
            five,
        })
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap()
}

fn at(t: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(t, 0).unwrap()
}

/// A pool whose periods are `periods` (zone index, expressions).
fn pool_toml(periods: &[(usize, Vec<Expr>)]) -> String {
    let mut s = String::from(
        "[controller]\nid = \"p\"\n[gitlab]\nurl = \"https://g.example/\"\ntoken_env = \"T\"\n\
         [gitlab.scope]\ninstance = true\n[[pools]]\nname = \"p\"\nlimit = 10\n\
         [pools.server]\nflavor = \"f\"\nimage = \"i\"\nnetworks = [\"n\"]\n[pools.runner]\n",
    );
    for (i, (zone, exprs)) in periods.iter().enumerate() {
        // The config refuses a repeated entry; repeats change nothing for the oracle's "any".
        let mut list: Vec<String> = Vec::new();
        for e in exprs {
            let quoted = format!("\"{}\"", e.text());
            if !list.contains(&quoted) {
                list.push(quoted);
            }
        }
        s.push_str(&format!(
            "[[pools.periods]]\nschedules = [{}]\ntimezone = \"{}\"\nidle_count = {}\n",
            list.join(", "),
            ZONES[*zone].name(),
            i + 1
        ));
    }
    s
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn matches_agrees_with_brute_force_near_transitions(
        e in expr(),
        zone in 0..3usize,
        which in 0..6usize,
        offsets in prop::collection::vec(-4 * 3600i64..4 * 3600, 40),
    ) {
        let tz = ZONES[zone];
        let s = Schedule::parse(&e.text()).unwrap();
        let (t0, _, _) = transitions(tz)[which];
        let oracle = Oracle::default();
        for off in offsets {
            let t = t0 + off;
            prop_assert_eq!(s.matches(at(t), tz), oracle.matches(&e, tz, t), "{} in {} at {}", e.text(), tz, at(t));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn policy_at_and_next_transition_agree_with_brute_force(
        periods in prop::collection::vec((0..3usize, prop::collection::vec(expr(), 1..3)), 1..4),
        which in 0..6usize,
        start in -3 * 3600i64..3600,
    ) {
        let cfg = parse_at(&pool_toml(&periods), "prop.toml", now()).unwrap();
        let pool = &cfg.pools[0];
        let tz = ZONES[periods[0].0];
        let t0 = transitions(tz)[which].0 + start;
        let oracle = Oracle::default();
        let winner = |t: i64| {
            periods.iter().rposition(|(z, exprs)| exprs.iter().any(|e| oracle.matches(e, ZONES[*z], t)))
        };
        prop_assert_eq!(pool.policy_at(at(t0)).period, winner(t0));
        // Follow next_transition across the whole window; between two transitions the
        // brute-force winner must not change, at each transition it must.
        let window_end = t0 + 5 * 3600;
        let mut t = t0;
        while t < window_end {
            let w = winner(t);
            let next = pool.next_transition(at(t)).map(|d| d.timestamp());
            let scan_end = next.map_or(window_end, |n| n.min(window_end));
            for u in t + 1..scan_end {
                prop_assert_eq!(winner(u), w, "winner changed at {} before next_transition {:?}", at(u), next.map(at));
            }
            match next {
                Some(n) if n <= window_end => {
                    prop_assert!(n > t);
                    prop_assert_ne!(winner(n), w, "no change at next_transition {}", at(n));
                    prop_assert_eq!(pool.policy_at(at(n)).period, winner(n));
                    t = n;
                }
                _ => break,
            }
        }
    }
}
