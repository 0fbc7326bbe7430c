//! A small SVG bar chart: fan-out latency percentiles per subscriber count.

use std::fmt::Write;

/// `groups`: (label, [(series name, milliseconds)]).
pub fn latency_svg(title: &str, groups: &[(String, Vec<(&str, f64)>)]) -> String {
    let (w, h, left, bottom, top) = (720.0, 360.0, 70.0, 50.0, 40.0);
    let max = groups
        .iter()
        .flat_map(|(_, s)| s.iter().map(|(_, v)| *v))
        .filter(|v| v.is_finite())
        .fold(1.0_f64, f64::max)
        * 1.15;
    let plot_h = h - bottom - top;
    let group_w = (w - left - 20.0) / groups.len().max(1) as f64;
    let colors = ["#2563eb", "#f59e0b", "#dc2626"];
    let mut svg = String::new();
    let _ = write!(
        svg,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12"><rect width="100%" height="100%" fill="#fff"/><text x="{}" y="22" font-size="15" text-anchor="middle">{title}</text>"##,
        w / 2.0
    );
    for i in 0..=4 {
        let v = max * i as f64 / 4.0;
        let y = top + plot_h - plot_h * i as f64 / 4.0;
        let _ = write!(
            svg,
            r##"<line x1="{left}" x2="{}" y1="{y}" y2="{y}" stroke="#e5e7eb"/><text x="{}" y="{}" text-anchor="end">{v:.1} ms</text>"##,
            w - 20.0,
            left - 6.0,
            y + 4.0
        );
    }
    for (g, (label, series)) in groups.iter().enumerate() {
        let x0 = left + g as f64 * group_w;
        let bar = group_w * 0.7 / series.len().max(1) as f64;
        for (s, (name, v)) in series.iter().enumerate() {
            let v = if v.is_finite() { *v } else { 0.0 };
            let bh = plot_h * v / max;
            let x = x0 + group_w * 0.15 + s as f64 * bar;
            let _ = write!(
                svg,
                r##"<rect x="{x}" y="{}" width="{}" height="{bh}" fill="{}"><title>{name}: {v:.2} ms</title></rect><text x="{}" y="{}" text-anchor="middle" font-size="10">{v:.1}</text>"##,
                top + plot_h - bh,
                bar - 2.0,
                colors[s % colors.len()],
                x + bar / 2.0,
                top + plot_h - bh - 3.0
            );
        }
        let _ = write!(
            svg,
            r##"<text x="{}" y="{}" text-anchor="middle">{label}</text>"##,
            x0 + group_w / 2.0,
            h - bottom + 18.0
        );
    }
    if let Some((_, series)) = groups.first() {
        for (s, (name, _)) in series.iter().enumerate() {
            let x = left + 10.0 + s as f64 * 90.0;
            let _ = write!(
                svg,
                r##"<rect x="{x}" y="{}" width="12" height="12" fill="{}"/><text x="{}" y="{}">{name}</text>"##,
                h - 22.0,
                colors[s % colors.len()],
                x + 16.0,
                h - 12.0
            );
        }
    }
    svg.push_str("</svg>\n");
    svg
}
