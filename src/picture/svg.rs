//! The SVG picture, written by hand: a circle for the ring, a dot per member placed by address
//! (clockwise from the top), ours highlighted, a line per link of ours coloured by its kind, and
//! relayed members joined through their forwarder with a dashed line.

use std::fmt::Write;

use super::{Member, Reach, members, short};
use crate::runtime::RingView;

const SIZE: f64 = 520.0;
const CX: f64 = 260.0;
const CY: f64 = 270.0;
const R: f64 = 180.0;
const DIRECT: &str = "#2e7d32";
const TURN: &str = "#ef6c00";
const RELAY: &str = "#6a1b9a";
const PENDING: &str = "#9e9e9e";

/// The SVG document for `view`.
pub fn svg(view: &RingView) -> String {
    let members = members(view);
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{SIZE}" height="{SIZE}" viewBox="0 0 {SIZE} {SIZE}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{CX}" y="24" text-anchor="middle" font-size="15">ring {} — {} members known, about {:.0} in all{}</text>"#,
        escape(&view.name),
        members.len(),
        view.size_estimate,
        if view.connected { "" } else { " (joining)" }
    );
    let _ = writeln!(
        s,
        r##"<circle cx="{CX}" cy="{CY}" r="{R}" fill="none" stroke="#bdbdbd" stroke-width="2"/>"##
    );
    let at = |m: &Member| point(m.position, R);
    if let Some(me) = members.iter().find(|m| m.reach == Reach::Us) {
        let (x0, y0) = at(me);
        for m in &members {
            let (x, y) = at(m);
            let (colour, dash) = match &m.reach {
                Reach::Us => continue,
                Reach::Direct(_) => (DIRECT, ""),
                Reach::Turn => (TURN, ""),
                Reach::Pending => (PENDING, r#" stroke-dasharray="2 4""#),
                Reach::Relay(via) => {
                    let hop = members.iter().find(|v| &v.address == via).map(at);
                    let (vx, vy) = hop.unwrap_or((CX, CY));
                    let _ = writeln!(
                        s,
                        r#"<polyline points="{x0:.1},{y0:.1} {vx:.1},{vy:.1} {x:.1},{y:.1}" fill="none" stroke="{RELAY}" stroke-width="2" stroke-dasharray="6 4"/>"#
                    );
                    continue;
                }
            };
            let _ = writeln!(
                s,
                r#"<line x1="{x0:.1}" y1="{y0:.1}" x2="{x:.1}" y2="{y:.1}" stroke="{colour}" stroke-width="2"{dash}/>"#
            );
        }
    }
    for m in &members {
        let (x, y) = at(m);
        let (lx, ly) = point(m.position, R + 22.0);
        let us = m.reach == Reach::Us;
        let (r, fill) = if us {
            (9.0, "#1565c0")
        } else {
            (6.0, "#424242")
        };
        let _ = writeln!(
            s,
            r#"<circle cx="{x:.1}" cy="{y:.1}" r="{r}" fill="{fill}"><title>{} ({})</title></circle>"#,
            escape(&m.address),
            escape(&m.roles)
        );
        let weight = if us { r#" font-weight="bold""# } else { "" };
        let _ = writeln!(
            s,
            r#"<text x="{lx:.1}" y="{ly:.1}" text-anchor="middle" dominant-baseline="middle"{weight}>{}</text>"#,
            escape(&short(&m.address))
        );
    }
    legend(&mut s);
    s.push_str("</svg>\n");
    s
}

fn legend(s: &mut String) {
    let y = SIZE - 22.0;
    for (i, (label, colour, dash)) in [
        ("direct", DIRECT, ""),
        ("TURN", TURN, ""),
        ("relay", RELAY, r#" stroke-dasharray="6 4""#),
    ]
    .into_iter()
    .enumerate()
    {
        let x = 20.0 + 110.0 * i as f64;
        let _ = writeln!(
            s,
            r#"<line x1="{x}" y1="{y}" x2="{}" y2="{y}" stroke="{colour}" stroke-width="2"{dash}/><text x="{}" y="{}">{label}</text>"#,
            x + 30.0,
            x + 36.0,
            y + 4.0
        );
    }
}

/// The point at `fraction` of the way round, clockwise from the top, at `radius`.
fn point(fraction: f64, radius: f64) -> (f64, f64) {
    let a = fraction * std::f64::consts::TAU;
    (CX + radius * a.sin(), CY - radius * a.cos())
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
