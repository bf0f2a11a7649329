//! SVG plot of VMs by state and queue length over time, one panel per policy.

use std::fmt::Write as _;

use super::report::PolicyReport;

const W: f64 = 1200.0;
const PANEL_H: f64 = 220.0;
const MARGIN: f64 = 40.0;

/// Renders the samples of each report as one SVG document.
pub fn svg(reports: &[&PolicyReport]) -> String {
    let panels: Vec<&&PolicyReport> = reports.iter().filter(|r| !r.samples.is_empty()).collect();
    let height = MARGIN + panels.len() as f64 * (PANEL_H + MARGIN);
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(out, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let series: [(&str, &str); 6] = [
        ("total VMs", "#444444"),
        ("busy", "#d62728"),
        ("idle", "#2ca02c"),
        ("parked", "#9467bd"),
        ("creating", "#ff7f0e"),
        ("queue", "#1f77b4"),
    ];
    for (i, r) in panels.iter().enumerate() {
        let top = MARGIN + i as f64 * (PANEL_H + MARGIN);
        let s = &r.samples;
        let t0 = s.first().map_or(0, |x| x.t) as f64;
        let t1 = s.last().map_or(1, |x| x.t) as f64;
        let span = (t1 - t0).max(1.0);
        let ymax = s
            .iter()
            .map(|x| (x.creating + x.idle + x.busy + x.parked + x.other).max(x.queue))
            .max()
            .unwrap_or(1)
            .max(1) as f64;
        let _ = writeln!(
            out,
            r#"<text x="{MARGIN}" y="{}" font-weight="bold">{} (y max {ymax})</text>"#,
            top - 8.0,
            escape(&r.name)
        );
        let _ = writeln!(
            out,
            r##"<rect x="{MARGIN}" y="{top}" width="{}" height="{PANEL_H}" fill="none" stroke="#cccccc"/>"##,
            W - 2.0 * MARGIN
        );
        for (k, (label, colour)) in series.iter().enumerate() {
            let mut pts = String::new();
            for x in s {
                let v = match k {
                    0 => x.creating + x.idle + x.busy + x.parked + x.other,
                    1 => x.busy,
                    2 => x.idle,
                    3 => x.parked,
                    4 => x.creating,
                    _ => x.queue,
                } as f64;
                let px = MARGIN + (x.t as f64 - t0) / span * (W - 2.0 * MARGIN);
                let py = top + PANEL_H - v / ymax * PANEL_H;
                let _ = write!(pts, "{px:.1},{py:.1} ");
            }
            let _ = writeln!(
                out,
                r#"<polyline fill="none" stroke="{colour}" stroke-width="1" points="{}"/>"#,
                pts.trim_end()
            );
            let _ = writeln!(
                out,
                r#"<text x="{}" y="{}" fill="{colour}">{label}</text>"#,
                W - MARGIN - 80.0,
                top + 14.0 + 14.0 * k as f64
            );
        }
    }
    out.push_str("</svg>\n");
    out
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
