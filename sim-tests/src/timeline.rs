//! A self-contained HTML timeline of a run: one lane per member plus lanes for the cluster
//! and the clients; faults as spans, leader terms as marks, client operations as ticks
//! (red when their outcome was unknown), violations in red at the end.

use std::fmt::Write;

use crate::checker::Violation;
use crate::history::{History, Outcome};

const LANE_HEIGHT_PX: u64 = 28;
const WIDTH_PX: u64 = 1400;
const LEFT_PX: u64 = 110;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Renders the timeline. `leaders` are (term, member name, first seen ms) marks.
pub fn render(
    title: &str,
    h: &History,
    lanes: &[String],
    leaders: &[(u64, String)],
    violations: &[Violation],
    end_ms: u64,
) -> String {
    let end = end_ms.max(1);
    let x = |ms: u64| LEFT_PX + ms.min(end) * (WIDTH_PX - LEFT_PX - 10) / end;
    let mut all_lanes: Vec<String> = lanes.to_vec();
    all_lanes.push("cluster".into());
    all_lanes.push("clients".into());
    let lane_y = |name: &str| {
        all_lanes
            .iter()
            .position(|l| l == name)
            .unwrap_or(all_lanes.len() - 2) as u64
            * LANE_HEIGHT_PX
            + 30
    };
    let height = all_lanes.len() as u64 * LANE_HEIGHT_PX + 60;
    let mut svg = String::new();
    for (i, l) in all_lanes.iter().enumerate() {
        let y = i as u64 * LANE_HEIGHT_PX + 30;
        let _ = write!(
            svg,
            r##"<text x="4" y="{}" font-size="12">{}</text><line x1="{LEFT_PX}" y1="{}" x2="{WIDTH_PX}" y2="{}" stroke="#ddd"/>"##,
            y + 16,
            esc(l),
            y + 20,
            y + 20
        );
    }
    for m in &h.marks {
        let y = lane_y(&m.lane);
        let (x0, x1) = (
            x(m.at_ms),
            x(m.until_ms.unwrap_or(m.at_ms)).max(x(m.at_ms) + 2),
        );
        let _ = write!(
            svg,
            r##"<rect x="{x0}" y="{}" width="{}" height="14" fill="#f5a623" opacity="0.7"><title>{} {} @{}ms..{:?}</title></rect>"##,
            y + 4,
            x1 - x0,
            esc(&m.kind),
            esc(&m.detail),
            m.at_ms,
            m.until_ms
        );
    }
    for (term, name) in leaders {
        let y = lane_y(name);
        let _ = write!(
            svg,
            r##"<text x="{LEFT_PX}" y="{}" font-size="9" fill="#2a7">L t{term}</text>"##,
            y + 28
        );
    }
    let cy = lane_y("clients");
    for r in &h.records {
        let color = if matches!(r.outcome, Outcome::Unknown(_)) {
            "#d0021b"
        } else {
            "#4a90e2"
        };
        let _ = write!(
            svg,
            r##"<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="{color}"><title>client {} {:?} → {:?}</title></line>"##,
            x(r.invoked_ms),
            cy + 4 + (r.client as u64 % 5) * 3,
            x(r.completed_ms).max(x(r.invoked_ms) + 1),
            cy + 4 + (r.client as u64 % 5) * 3,
            r.client,
            r.op,
            r.outcome
        );
    }
    let mut vio = String::new();
    for v in violations {
        let _ = write!(
            vio,
            "<li><b>{}</b>: {}</li>",
            esc(v.property),
            esc(&v.detail)
        );
    }
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{t}</title></head><body style=\"font-family:sans-serif\"><h2>{t}</h2><p>{} operations, {} watch responses, {} ms simulated.</p><svg width=\"{WIDTH_PX}\" height=\"{height}\" style=\"border:1px solid #ccc\">{svg}</svg><h3>Violations</h3><ul>{}</ul></body></html>",
        h.records.len(), h.watched.len(), end_ms,
        if vio.is_empty() { "<li>none</li>".to_string() } else { vio },
        t = esc(title)
    )
}
