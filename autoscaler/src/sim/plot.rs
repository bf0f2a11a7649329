//! SVG plots: VMs by state and queue length over time, one panel per policy
//! ([`svg`]); the wait/VM-hours trade-off of sweeps, one curve per policy ([`tradeoff_svg`]).

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

/// One sweep point of a trade-off plot: VM-hours (x), p95 wait in seconds (y), label.
pub type TradeoffPoint = (f64, f64, String);

/// The trade-off of a sweep: p95 wait (y) against VM-hours (x), one labelled curve per
/// series, points in sweep order.
pub fn tradeoff_svg(title: &str, series: &[(&str, &[TradeoffPoint])]) -> String {
    const H: f64 = 520.0;
    const COLOURS: [&str; 4] = ["#d62728", "#1f77b4", "#2ca02c", "#9467bd"];
    let all = series.iter().flat_map(|(_, pts)| pts.iter());
    let xmax = all.clone().map(|p| p.0).fold(1.0f64, f64::max) * 1.05;
    let ymax = all.map(|p| p.1).fold(1.0f64, f64::max) * 1.05;
    let px = |x: f64| MARGIN * 2.0 + x / xmax * (W - 3.0 * MARGIN);
    let py = |y: f64| H - MARGIN - y / ymax * (H - 2.0 * MARGIN);
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(out, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        out,
        r#"<text x="{}" y="20" font-weight="bold">{}</text>"#,
        MARGIN * 2.0,
        escape(title)
    );
    let (x0, y0) = (px(0.0), py(0.0));
    let _ = writeln!(
        out,
        r##"<line x1="{x0}" y1="{y0}" x2="{}" y2="{y0}" stroke="#444"/><line x1="{x0}" y1="{y0}" x2="{x0}" y2="{}" stroke="#444"/>"##,
        px(xmax),
        py(ymax)
    );
    let _ = writeln!(
        out,
        r#"<text x="{}" y="{}">VM-hours</text><text x="8" y="{}">p95 wait (s)</text>"#,
        px(xmax) - 60.0,
        y0 + 28.0,
        py(ymax) - 8.0
    );
    for k in 0..=4 {
        let (xv, yv) = (xmax * f64::from(k) / 4.0, ymax * f64::from(k) / 4.0);
        let _ = writeln!(
            out,
            r#"<text x="{:.1}" y="{:.1}">{xv:.0}</text><text x="{:.1}" y="{:.1}">{yv:.0}</text>"#,
            px(xv) - 10.0,
            y0 + 14.0,
            x0 - 40.0,
            py(yv) + 4.0
        );
    }
    for (i, (name, pts)) in series.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let line: Vec<String> = pts
            .iter()
            .map(|p| format!("{:.1},{:.1}", px(p.0), py(p.1)))
            .collect();
        let _ = writeln!(
            out,
            r#"<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{}"/>"#,
            line.join(" ")
        );
        for p in pts.iter() {
            let _ = writeln!(
                out,
                r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{colour}"/><text x="{:.1}" y="{:.1}" fill="{colour}" font-size="10">{}</text>"#,
                px(p.0),
                py(p.1),
                px(p.0) + 4.0,
                py(p.1) - 4.0,
                escape(&p.2)
            );
        }
        let _ = writeln!(
            out,
            r#"<text x="{}" y="{}" fill="{colour}">{}</text>"#,
            W - MARGIN - 260.0,
            40.0 + 16.0 * i as f64,
            escape(name)
        );
    }
    out.push_str("</svg>\n");
    out
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
