//! Rendering a [`CheckResult`] as plugin output, shaped for Icinga 2's parser.
//!
//! ```text
//! GITLAB AUTOSCALER WARNING - runners: 1 offline ... | runners_offline=1;0;2;0 ...
//! [WARNING] runners: 12 runners: 11 online, 1 offline, 0 stale, 0 never contacted
//!  \_ [WARNING] runner 17 ci-1-docker-3: offline, last contact 3h 2m ago
//! [OK] vms: ...
//! ```
//!
//! Line 1 is the summary and all perfdata after its single `|`, items separated by one
//! space (Icinga splits every line at its first `|` and tokens at single spaces); no other
//! line contains `|`. Pure; no I/O.

use crate::evaluate::{CheckResult, Perf, State, clean};
use crate::range::Range;

/// The service name at the start of line 1.
pub const SERVICE: &str = "GITLAB AUTOSCALER";

/// Renders the full output (ending in a newline).
pub fn render(result: &CheckResult) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "{SERVICE} {} - {}",
        result.state.label(),
        summary(result)
    ));
    let perf = result
        .perfdata
        .iter()
        .map(perf_item)
        .collect::<Vec<_>>()
        .join(" ");
    if !perf.is_empty() {
        out.push_str(" | ");
        out.push_str(&perf);
    }
    out.push('\n');
    for sc in &result.subchecks {
        out.push_str(&format!(
            "[{}] {}: {}\n",
            sc.state.label(),
            sc.subcheck.name(),
            clean(&sc.summary)
        ));
        for d in &sc.details {
            out.push_str(&format!(" \\_ [{}] {}\n", d.state.label(), clean(&d.text)));
        }
    }
    out
}

/// Line 1 text: the subchecks that are not OK, worst first; all of them when all are OK.
fn summary(result: &CheckResult) -> String {
    let order = [State::Critical, State::Unknown, State::Warning];
    let mut parts = Vec::new();
    for st in order {
        for sc in result.subchecks.iter().filter(|s| s.state == st) {
            parts.push(format!("{}: {}", sc.subcheck.name(), clean(&sc.summary)));
        }
    }
    if parts.is_empty() {
        parts = result
            .subchecks
            .iter()
            .map(|s| format!("{}: {}", s.subcheck.name(), clean(&s.summary)))
            .collect();
    }
    if parts.is_empty() {
        return "no subcheck selected".into();
    }
    parts.join("; ")
}

/// Formats a number with a POSIX decimal point and no exponent.
pub fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

fn perf_item(p: &Perf) -> String {
    let label = if p.label.contains(' ') {
        format!("'{}'", p.label.replace(['\'', '='], "_"))
    } else {
        p.label.replace(['\'', '='], "_")
    };
    let th = |r: &Option<Range>| r.map(|r| r.perfdata()).unwrap_or_default();
    let fields = [
        th(&p.warning),
        th(&p.critical),
        p.min.map(number).unwrap_or_default(),
        p.max.map(number).unwrap_or_default(),
    ];
    let keep = fields
        .iter()
        .rposition(|f| !f.is_empty())
        .map_or(0, |i| i + 1);
    let mut s = format!("{label}={}{}", number(p.value), p.uom);
    for f in &fields[..keep] {
        s.push(';');
        s.push_str(f);
    }
    s
}

/// One UNKNOWN line for errors that stop the check before it can evaluate anything.
pub fn unknown_line(message: &str) -> String {
    format!("{SERVICE} UNKNOWN - {}\n", clean(message))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::evaluate::{Detail, SubcheckResult};
    use crate::thresholds::Subcheck;

    fn perf(label: &str, v: f64) -> Perf {
        Perf {
            label: label.into(),
            value: v,
            uom: "s",
            warning: Some("600".parse().unwrap()),
            critical: Some("10:20".parse().unwrap()),
            min: Some(0.0),
            max: None,
        }
    }

    #[test]
    fn perfdata_drops_trailing_empty_fields_and_keeps_ranges_raw() {
        assert_eq!(perf_item(&perf("age", 12.0)), "age=12s;600;10:20;0");
        let mut p = perf("x", 1.5);
        p.warning = None;
        p.critical = None;
        p.min = None;
        assert_eq!(perf_item(&p), "x=1.5s");
    }

    #[test]
    fn labels_with_spaces_are_quoted() {
        assert_eq!(perf_item(&perf("a b", 1.0)), "'a b'=1s;600;10:20;0");
    }

    #[test]
    fn only_line_one_has_a_pipe_and_perfdata_is_single_spaced() {
        let r = CheckResult {
            state: State::Warning,
            subchecks: vec![SubcheckResult {
                subcheck: Subcheck::Runners,
                state: State::Warning,
                summary: "1 offline | bad".into(),
                details: vec![Detail {
                    state: State::Warning,
                    text: "runner 1 a|b\nc: offline".into(),
                }],
            }],
            perfdata: vec![perf("a", 1.0), perf("b", 2.0)],
        };
        let out = render(&r);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 3, "{out}");
        assert_eq!(lines[0].matches('|').count(), 1, "{out}");
        assert!(
            lines[0].ends_with("| a=1s;600;10:20;0 b=2s;600;10:20;0"),
            "{out}"
        );
        assert!(!lines[0].contains("  "), "{out}");
        assert!(lines[1..].iter().all(|l| !l.contains('|')), "{out}");
        assert_eq!(lines[2], " \\_ [WARNING] runner 1 a/b c: offline");
    }

    #[test]
    fn numbers_never_use_exponents() {
        assert_eq!(number(1e20), "100000000000000000000");
        assert_eq!(number(0.000_1), "0");
        assert_eq!(number(2.5), "2.5");
        assert_eq!(number(-3.0), "-3");
    }
}
