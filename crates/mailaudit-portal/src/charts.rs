//! Server-side SVG charts: a line chart over time ([`line_chart`]) and horizontal stacked bars
//! ([`bar_chart`]), drawn with maud's `html!` (no script, no external asset, nothing fetched).
//!
//! Every label and title is spliced as a value, so maud escapes it; nothing here uses
//! `PreEscaped`. Numbers are written with at most one decimal and no trailing `.0` ([`num`]),
//! so the same data always gives the same bytes.
//!
//! Each chart is an `<svg role="img">` labelled by its own `<title>` and `<desc>` (a summary of
//! the data in words); the ids inside it are the caller's `id` plus a suffix, so two charts on
//! one page do not collide. The charts read in black and white: the lines differ by dash pattern
//! and marker shape as well as colour, the bar segments by hatching as well as colour. Colours
//! come from the portal's style sheet (`.series-N`, `.seg-<class>`); presentation attributes
//! give a readable fallback (black lines, grey bars) where it is absent. No `style` attribute is
//! used (the portal's Content-Security-Policy allows only its style sheet).
//!
//! SVG elements are always written with an end tag (`<circle …></circle>`): in an HTML page an
//! SVG element without one would swallow its siblings.

use maud::{Markup, html};

use mailaudit_core::guide::date;

/// One line of a line chart: its label (legend) and its points (unix seconds, value).
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    /// The series' name, in the legend and in each point's tooltip.
    pub label: String,
    /// The points, `(unix seconds, value)`, in any order; a value that is not finite is skipped.
    pub points: Vec<(i64, f64)>,
}

/// One bar of a stacked bar chart: its label and its segments (segment label, value, CSS class
/// suffix such as "critical", "high", "medium", "low", "info").
#[derive(Clone, Debug, PartialEq)]
pub struct Bar {
    /// The bar's name, left of the bar.
    pub label: String,
    /// The segments, left to right: `(label, value, class suffix)`. A value that is not a
    /// positive finite number is not drawn (it still names its label in the legend).
    pub segments: Vec<(String, f64, String)>,
}

/// The width of every chart's `viewBox`.
const WIDTH: f64 = 640.0;
/// The height of an empty chart's `viewBox`.
const EMPTY_HEIGHT: f64 = 80.0;
/// The font size (user units) of the charts' text; also the base of the text width estimates.
const FONT: f64 = 11.0;
/// The estimated width of one character at [`FONT`] (no measuring on the server).
const CHAR_W: f64 = 6.2;
/// The height of one legend row.
const LEGEND_ROW: f64 = 18.0;
/// The most characters of a label shown in a legend (the rest replaced by `…`).
const LEGEND_CHARS: usize = 32;

/// The line chart's height with one legend row; each further row adds [`LEGEND_ROW`].
const LINE_HEIGHT: f64 = 260.0;
/// The line chart's plot area: left edge (room for the y labels).
const LINE_LEFT: f64 = 56.0;
/// The line chart's plot area: right edge (room for half a date label).
const LINE_RIGHT: f64 = 604.0;
/// The line chart's plot area: top edge.
const LINE_TOP: f64 = 12.0;
/// The line chart's plot area: bottom edge (the x axis).
const LINE_BOTTOM: f64 = 208.0;
/// The x ticks of a line chart (fewer when they would repeat a date).
const X_TICKS: i128 = 5;
/// At most about this many markers per series: a longer series marks every n-th point.
const MAX_MARKERS: usize = 40;

/// The dash pattern of each of the six series styles (`series-0` … `series-5`): solid, dashed,
/// dotted, dash-dot, long dash, dash-dot-dot.
const DASHES: [&str; 6] = ["none", "7 4", "2 3", "9 3 2 3", "14 5", "7 3 2 3 2 3"];

/// The bar chart's label column: labels end here (right-aligned).
const BAR_LABEL_END: f64 = 152.0;
/// The most characters of a bar's label shown (the rest replaced by `…`).
const BAR_LABEL_CHARS: usize = 24;
/// The left edge of the bars.
const BAR_LEFT: f64 = 160.0;
/// The width of the largest bar (room for its total on the right).
pub const BAR_PLOT_WIDTH: f64 = 420.0;
/// The space above the first bar.
const BAR_TOP: f64 = 8.0;
/// The height of one bar's row.
const BAR_ROW: f64 = 24.0;
/// The height of one bar.
const BAR_H: f64 = 16.0;

/// `v` with at most one decimal and no trailing `.0` (`12`, `12.5`, `-3`); `-0` is `0`.
pub fn num(v: f64) -> String {
    let s = format!("{v:.1}");
    let s = s.strip_suffix(".0").unwrap_or(&s);
    if s == "-0" {
        "0".to_string()
    } else {
        s.to_string()
    }
}

/// `id` made safe as an XML id and inside `url(#…)`: ASCII letters, digits, `-` and `_` kept,
/// anything else becomes `-`; `chart-` is prepended unless it starts with a letter.
fn chart_id(id: &str) -> String {
    let s: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    if s.starts_with(|c: char| c.is_ascii_alphabetic()) {
        s
    } else {
        format!("chart-{s}")
    }
}

/// A segment's class suffix as one class name: ASCII letters (lowercased), digits, `-` and `_`
/// kept, the rest dropped; `other` when nothing is left.
fn class_suffix(class: &str) -> String {
    let s: String = class
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .map(|c| c.to_ascii_lowercase())
        .collect();
    if s.is_empty() { "other".to_string() } else { s }
}

/// `s` cut to at most `max` characters, the last of them `…` when cut; and whether it was.
fn clip(s: &str, max: usize) -> (String, bool) {
    if s.chars().count() <= max {
        (s.to_string(), false)
    } else {
        let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
        out.push('…');
        (out, true)
    }
}

/// The estimated width of `s` at [`FONT`].
fn text_width(s: &str) -> f64 {
    s.chars().count() as f64 * CHAR_W
}

/// A "nice" step of about `x`: 1, 2 or 5 times a power of ten, at least `x`; 1 when `x` is
/// not a positive finite number.
fn nice_step(x: f64) -> f64 {
    if !(x.is_finite() && x > 0.0) {
        return 1.0;
    }
    let base = 10f64.powf(x.log10().floor());
    let f = x / base;
    let nice = if f <= 1.0 + 1e-9 {
        1.0
    } else if f <= 2.0 + 1e-9 {
        2.0
    } else if f <= 5.0 + 1e-9 {
        5.0
    } else {
        10.0
    };
    nice * base
}

/// The y axis for data whose largest value is `largest`: `(maximum, tick step)`, the maximum
/// a multiple of a nice step (about five of them) at or above `largest` and at least 1.
pub fn nice_max(largest: f64) -> (f64, f64) {
    let m = if largest.is_finite() {
        largest.max(1.0)
    } else {
        1.0
    };
    let step = nice_step(m / 5.0);
    ((m / step - 1e-9).ceil() * step, step)
}

/// The y ticks from 0 to `top` every `step` (at most a few dozen); `top` itself is added when
/// the last multiple falls more than half a step short of it.
fn y_ticks(top: f64, step: f64) -> Vec<f64> {
    let n = ((top / step) + 1e-9).floor().clamp(0.0, 50.0) as u32;
    let mut ticks: Vec<f64> = (0..=n).map(|i| f64::from(i) * step).collect();
    if ticks.last().is_some_and(|last| top - last > step / 2.0) {
        ticks.push(top);
    }
    ticks
}

/// Where each legend item goes: `(x, row)` per item, items of `widths` laid out left to right
/// from `x0`, wrapping before `right`; and the number of rows (at least 1).
fn legend_layout(widths: &[f64], x0: f64, right: f64) -> (Vec<(f64, usize)>, usize) {
    let mut at = Vec::with_capacity(widths.len());
    let (mut x, mut row) = (x0, 0);
    for &w in widths {
        if x > x0 && x + w > right {
            x = x0;
            row += 1;
        }
        at.push((x, row));
        x += w;
    }
    (at, row + 1)
}

/// The `<svg>` of every chart: `role="img"`, labelled by its `<title>` and `<desc>` (ids
/// `<id>-title`, `<id>-desc`), a `viewBox` of [`WIDTH`] × `height` that scales to its
/// container, and `body`.
fn frame(id: &str, kind: &str, title: &str, desc: &str, height: f64, body: Markup) -> Markup {
    html! {
        svg xmlns="http://www.w3.org/2000/svg" class={ "chart " (kind) } id=(id) role="img"
            aria-labelledby={ (id) "-title " (id) "-desc" }
            viewBox={ "0 0 " (num(WIDTH)) " " (num(height)) } width="100%"
            font-size=(num(FONT)) {
            title id={ (id) "-title" } { (title) }
            desc id={ (id) "-desc" } { (desc) }
            (body)
        }
    }
}

/// A chart without data: its title, and "No data yet".
fn no_data(id: &str, kind: &str, title: &str) -> Markup {
    frame(
        id,
        kind,
        title,
        "No data yet.",
        EMPTY_HEIGHT,
        html! {
            text class="empty" x=(num(WIDTH / 2.0)) y=(num(EMPTY_HEIGHT / 2.0 + 5.0))
                text-anchor="middle" { "No data yet" }
        },
    )
}

/// A line chart's style `i` (cycling over six): `(class index, marker shape, hollow)`.
fn style(i: usize) -> (usize, usize, bool) {
    let k = i % DASHES.len();
    (k, k % 4, k >= 4)
}

/// A marker centred on (`x`, `y`): shape 0 a circle, 1 a square, 2 a triangle, 3 a diamond;
/// white inside when `hollow` (else the series' colour, from its group); `tip` as its tooltip.
fn marker(shape: usize, hollow: bool, x: f64, y: f64, tip: Option<&str>) -> Markup {
    let class = if hollow { "marker hollow" } else { "marker" };
    // A filled marker takes the series' fill from its group; a hollow one is white inside.
    let fill = hollow.then_some("#fff");
    let tip = html! { @if let Some(t) = tip { title { (t) } } };
    let polygon = |pts: &[(f64, f64)]| {
        pts.iter()
            .map(|(px, py)| format!("{},{}", num(x + px), num(y + py)))
            .collect::<Vec<_>>()
            .join(" ")
    };
    match shape % 4 {
        0 => html! {
            circle class=(class) fill=[fill] cx=(num(x)) cy=(num(y)) r="3.5" { (tip) }
        },
        1 => html! {
            rect class=(class) fill=[fill] x=(num(x - 3.2)) y=(num(y - 3.2)) width="6.4"
                height="6.4" { (tip) }
        },
        2 => html! {
            polygon class=(class) fill=[fill]
                points=(polygon(&[(0.0, -4.4), (4.2, 3.0), (-4.2, 3.0)])) { (tip) }
        },
        _ => html! {
            polygon class=(class) fill=[fill]
                points=(polygon(&[(0.0, -4.6), (4.6, 0.0), (0.0, 4.6), (-4.6, 0.0)])) { (tip) }
        },
    }
}

/// A line chart over time: x = time (ticks labelled YYYY-MM-DD, about 5 of them, from the
/// earliest to the latest point of all series), y from 0 to `y_max` (None: a "nice" rounded
/// maximum above the largest value, at least 1), y ticks with `y_unit` appended (e.g. "%" or
/// ""). Series styled 0..n (CSS classes `series-0`…`series-5`, cycling, each with its own
/// stroke-dasharray and marker shape drawn with circles/squares/triangles/diamonds). A legend
/// below the plot. With no point at all: an SVG saying "No data yet" (still with title). One
/// point: drawn as a marker. Width 640, height 260 viewBox (taller when the legend needs more
/// than one row), `width="100%"` so it scales.
///
/// Values are drawn clamped to 0..`y_max` (a tooltip gives the real value); `id` prefixes the
/// chart's internal ids (ASCII letters, digits, `-` and `_` kept, anything else becoming `-`).
pub fn line_chart(
    id: &str,
    title: &str,
    series: &[Series],
    y_max: Option<f64>,
    y_unit: &str,
) -> Markup {
    let id = chart_id(id);
    // Each series' finite points, in time order.
    let lines: Vec<Vec<(i64, f64)>> = series
        .iter()
        .map(|s| {
            let mut p: Vec<(i64, f64)> = s
                .points
                .iter()
                .copied()
                .filter(|(_, v)| v.is_finite())
                .collect();
            p.sort_by_key(|&(t, _)| t);
            p
        })
        .collect();
    let times = || lines.iter().flatten().map(|&(t, _)| t);
    let (Some(t0), Some(t1)) = (times().min(), times().max()) else {
        return no_data(&id, "line-chart", title);
    };
    let largest = lines.iter().flatten().map(|&(_, v)| v).fold(0.0, f64::max);
    let (top, step) = match y_max {
        Some(m) if m.is_finite() && m > 0.0 => (m, nice_step(m / 5.0)),
        _ => nice_max(largest),
    };
    let span = i128::from(t1) - i128::from(t0);
    let x_of = |t: i64| {
        if span == 0 {
            (LINE_LEFT + LINE_RIGHT) / 2.0
        } else {
            LINE_LEFT
                + (i128::from(t) - i128::from(t0)) as f64 / span as f64 * (LINE_RIGHT - LINE_LEFT)
        }
    };
    let y_of = |v: f64| LINE_BOTTOM - v.clamp(0.0, top) / top * (LINE_BOTTOM - LINE_TOP);

    // The x ticks: evenly spaced from the first to the last time, a repeated date left out.
    let mut x_ticks: Vec<(f64, String)> = Vec::new();
    let tick_count = if span == 0 { 1 } else { X_TICKS };
    for i in 0..tick_count {
        let t = if span == 0 {
            t0
        } else {
            let at = i128::from(t0) + span * i / (X_TICKS - 1);
            i64::try_from(at).unwrap_or(t1)
        };
        let label = date(t);
        if x_ticks.last().is_none_or(|(_, l)| *l != label) {
            x_ticks.push((x_of(t), label));
        }
    }

    // The legend: a line sample with its marker, then the label.
    let labels: Vec<(String, bool)> = series
        .iter()
        .map(|s| clip(&s.label, LEGEND_CHARS))
        .collect();
    let widths: Vec<f64> = labels
        .iter()
        .map(|(l, _)| 32.0 + text_width(l) + 18.0)
        .collect();
    let (places, rows) = legend_layout(&widths, LINE_LEFT, WIDTH - 8.0);
    let height = LINE_HEIGHT + (rows - 1) as f64 * LEGEND_ROW;
    let legend_y = LINE_BOTTOM + 38.0;

    let mut desc = format!(
        "Line chart of {} series from {} to {}, y from 0 to {}{y_unit}.",
        series.len(),
        date(t0),
        date(t1),
        num(top)
    );
    for (s, pts) in series.iter().zip(&lines) {
        match pts.last() {
            Some(&(t, v)) => desc.push_str(&format!(
                " {}: {} point{}, latest {}{y_unit} on {}.",
                s.label,
                pts.len(),
                if pts.len() == 1 { "" } else { "s" },
                num(v),
                date(t)
            )),
            None => desc.push_str(&format!(" {}: no data.", s.label)),
        }
    }

    let body = html! {
        g class="grid" stroke="#dcdcdc" {
            @for v in y_ticks(top, step) {
                line class="grid" x1=(num(LINE_LEFT)) x2=(num(LINE_RIGHT)) y1=(num(y_of(v)))
                    y2=(num(y_of(v))) {}
            }
        }
        @for v in y_ticks(top, step) {
            text class="tick y" x=(num(LINE_LEFT - 6.0)) y=(num(y_of(v) + 4.0))
                text-anchor="end" { (num(v)) (y_unit) }
        }
        g class="axis" stroke="#6b6b6b" {
            line class="axis" x1=(num(LINE_LEFT)) x2=(num(LINE_LEFT)) y1=(num(LINE_TOP))
                y2=(num(LINE_BOTTOM)) {}
            line class="axis" x1=(num(LINE_LEFT)) x2=(num(LINE_RIGHT)) y1=(num(LINE_BOTTOM))
                y2=(num(LINE_BOTTOM)) {}
            @for (x, _) in &x_ticks {
                line class="axis" x1=(num(*x)) x2=(num(*x)) y1=(num(LINE_BOTTOM))
                    y2=(num(LINE_BOTTOM + 4.0)) {}
            }
        }
        @for (x, label) in &x_ticks {
            text class="tick x" x=(num(*x)) y=(num(LINE_BOTTOM + 16.0)) text-anchor="middle" {
                (label)
            }
        }
        @for (i, (s, pts)) in series.iter().zip(&lines).enumerate() {
            @let (k, shape, hollow) = style(i);
            @let every = pts.len().div_ceil(MAX_MARKERS).max(1);
            g class={ "series series-" (k) } stroke="currentColor" fill="currentColor" {
                @if pts.len() > 1 {
                    polyline class="line" fill="none" stroke-width="2" stroke-linejoin="round"
                        stroke-dasharray=(DASHES[k])
                        points=(pts.iter()
                            .map(|&(t, v)| format!("{},{}", num(x_of(t)), num(y_of(v))))
                            .collect::<Vec<_>>()
                            .join(" ")) {}
                }
                @for (j, &(t, v)) in pts.iter().enumerate() {
                    @if j % every == 0 || j + 1 == pts.len() {
                        (marker(shape, hollow, x_of(t), y_of(v),
                            Some(&format!("{}: {}{y_unit} on {}", s.label, num(v), date(t)))))
                    }
                }
            }
        }
        g class="legend" {
            @for (i, ((label, cut), (x, row))) in labels.iter().zip(&places).enumerate() {
                @let (k, shape, hollow) = style(i);
                @let y = legend_y + *row as f64 * LEGEND_ROW;
                g class={ "series series-" (k) } stroke="currentColor" fill="currentColor" {
                    line class="line" x1=(num(*x)) x2=(num(x + 26.0)) y1=(num(y)) y2=(num(y))
                        stroke-width="2" stroke-dasharray=(DASHES[k]) {}
                    (marker(shape, hollow, x + 13.0, y, None))
                }
                text class="legend" x=(num(x + 32.0)) y=(num(y + 4.0)) {
                    @if *cut { title { (series[i].label) } }
                    (label)
                }
            }
        }
    };
    frame(&id, "line-chart", title, &desc, height, body)
}

/// The hatching drawn over a segment of class `class` (the `legend`-th label of the chart), for
/// black and white: 0 none, 1 diagonal lines, 2 dots, 3 the other diagonal, 4 horizontal lines,
/// 5 cross-hatching. The severities always get the same one.
fn hatch_of(class: &str, legend: usize) -> usize {
    match class {
        "critical" => 0,
        "high" => 1,
        "medium" => 2,
        "low" => 3,
        "info" => 4,
        _ => legend % 6,
    }
}

/// The `<pattern>` of hatching `k` (1 to 5, see [`hatch_of`]), id `<id>-hatch-<k>`.
fn hatch_pattern(id: &str, k: usize) -> Markup {
    let pid = format!("{id}-hatch-{k}");
    html! {
        pattern id=(pid) patternUnits="userSpaceOnUse" width="6" height="6"
            patternTransform=(match k { 1 | 5 => "rotate(45)", 3 => "rotate(-45)", _ => "rotate(0)" }) {
            @match k {
                2 => {
                    circle cx="3" cy="3" r="1.1" fill="#000" fill-opacity="0.45" {}
                }
                4 => {
                    line x1="0" y1="3" x2="6" y2="3" stroke="#000" stroke-opacity="0.45"
                        stroke-width="1.2" {}
                }
                5 => {
                    line x1="0" y1="3" x2="6" y2="3" stroke="#000" stroke-opacity="0.45"
                        stroke-width="1" {}
                    line x1="3" y1="0" x2="3" y2="6" stroke="#000" stroke-opacity="0.45"
                        stroke-width="1" {}
                }
                _ => {
                    line x1="3" y1="0" x2="3" y2="6" stroke="#000" stroke-opacity="0.45"
                        stroke-width="1.5" {}
                }
            }
        }
    }
}

/// A segment-coloured rectangle (`seg seg-<class>`, grey without the style sheet) with its
/// hatching over it (which lets the pointer through to the segment's tooltip); `(x, y, w, h)`
/// its box.
fn seg_rect(
    id: &str,
    class: &str,
    hatch: usize,
    (x, y, w, h): (f64, f64, f64, f64),
    tip: Option<&str>,
) -> Markup {
    html! {
        rect class={ "seg seg-" (class) } fill="#9aa5b1" stroke="#fff" stroke-width="1"
            x=(num(x)) y=(num(y)) width=(num(w)) height=(num(h)) {
            @if let Some(t) = tip { title { (t) } }
        }
        @if hatch > 0 {
            rect class="hatch" fill={ "url(#" (id) "-hatch-" (hatch) ")" } pointer-events="none"
                x=(num(x)) y=(num(y)) width=(num(w)) height=(num(h)) {}
        }
    }
}

/// A segment's value as drawn: itself when positive and finite, else 0.
fn drawn(v: f64) -> f64 {
    if v.is_finite() && v > 0.0 { v } else { 0.0 }
}

/// The drawn segments of a bar: `(x, width, segment)` of each segment with a positive value,
/// left to right from [`BAR_LEFT`], `scale` user units per unit of value.
fn stack(
    segments: &[(String, f64, String)],
    scale: f64,
) -> Vec<(f64, f64, &(String, f64, String))> {
    let mut x = BAR_LEFT;
    let mut out = Vec::new();
    for seg in segments {
        let w = drawn(seg.1) * scale;
        if w > 0.0 {
            out.push((x, w, seg));
            x += w;
        }
    }
    out
}

/// Horizontal stacked bars (one per `Bar`, label on the left, the total at the right end), a
/// legend of the segment labels (first-seen order) with their classes `seg-<class>`, scaled to
/// the largest total. Each segment has a `<title>` child giving "label: segment value". No bars
/// or all totals 0: "No data yet".
///
/// The largest bar is [`BAR_PLOT_WIDTH`] wide; a segment also gets hatching by its class, so
/// the chart reads in black and white. `id` prefixes the chart's internal ids.
pub fn bar_chart(id: &str, title: &str, bars: &[Bar]) -> Markup {
    let id = chart_id(id);
    let totals: Vec<f64> = bars
        .iter()
        .map(|b| b.segments.iter().map(|s| drawn(s.1)).sum())
        .collect();
    let max = totals.iter().copied().fold(0.0, f64::max);
    if !(max.is_finite() && max > 0.0) {
        return no_data(&id, "bar-chart", title);
    }
    let scale = BAR_PLOT_WIDTH / max;

    // The legend: each segment label once, first seen first, with its class and hatching.
    let mut legend: Vec<(&str, String, usize)> = Vec::new();
    for (label, _, class) in bars.iter().flat_map(|b| &b.segments) {
        if !legend.iter().any(|(l, _, _)| l == label) {
            let class = class_suffix(class);
            let hatch = hatch_of(&class, legend.len());
            legend.push((label, class, hatch));
        }
    }
    let hatch_for = |label: &str| {
        legend
            .iter()
            .find(|(l, _, _)| *l == label)
            .map_or(0, |(_, _, h)| *h)
    };
    let mut hatches: Vec<usize> = legend
        .iter()
        .map(|(_, _, h)| *h)
        .filter(|h| *h > 0)
        .collect();
    hatches.sort_unstable();
    hatches.dedup();
    let clipped: Vec<(String, bool)> = legend
        .iter()
        .map(|(l, _, _)| clip(l, LEGEND_CHARS))
        .collect();
    let widths: Vec<f64> = clipped
        .iter()
        .map(|(l, _)| 18.0 + text_width(l) + 18.0)
        .collect();
    let (places, rows) = legend_layout(&widths, BAR_LEFT, WIDTH - 8.0);
    let legend_top = BAR_TOP + bars.len() as f64 * BAR_ROW + 10.0;
    let height = legend_top + rows as f64 * LEGEND_ROW + 6.0;

    let mut desc = format!(
        "Stacked bar chart of {} bar{}, scaled to the largest total, {}.",
        bars.len(),
        if bars.len() == 1 { "" } else { "s" },
        num(max)
    );
    for (b, total) in bars.iter().zip(&totals) {
        let parts: Vec<String> = b
            .segments
            .iter()
            .map(|(l, v, _)| format!("{l} {}", num(drawn(*v))))
            .collect();
        desc.push_str(&format!(
            " {}: {} ({}).",
            b.label,
            num(*total),
            parts.join(", ")
        ));
    }

    let body = html! {
        @if !hatches.is_empty() {
            defs { @for k in &hatches { (hatch_pattern(&id, *k)) } }
        }
        @for (i, (b, total)) in bars.iter().zip(&totals).enumerate() {
            @let y = BAR_TOP + i as f64 * BAR_ROW + (BAR_ROW - BAR_H) / 2.0;
            @let (label, cut) = clip(&b.label, BAR_LABEL_CHARS);
            g class="bar" {
                text class="label" x=(num(BAR_LABEL_END)) y=(num(y + BAR_H / 2.0 + 4.0))
                    text-anchor="end" {
                    @if cut { title { (b.label) } }
                    (label)
                }
                @for (x, w, (seg, v, class)) in stack(&b.segments, scale) {
                    (seg_rect(&id, &class_suffix(class), hatch_for(seg), (x, y, w, BAR_H),
                        Some(&format!("{}: {seg} {}", b.label, num(drawn(*v))))))
                }
                text class="total" x=(num(BAR_LEFT + total * scale + 6.0))
                    y=(num(y + BAR_H / 2.0 + 4.0)) { (num(*total)) }
            }
        }
        g class="legend" {
            @for (((label, class, hatch), (short, cut)), (x, row)) in
                legend.iter().zip(&clipped).zip(&places) {
                @let y = legend_top + *row as f64 * LEGEND_ROW;
                (seg_rect(&id, class, *hatch, (*x, y + 3.0, 12.0, 12.0), None))
                text class="legend" x=(num(x + 18.0)) y=(num(y + 13.0)) {
                    @if *cut { title { (label) } }
                    (short)
                }
            }
        }
    };
    frame(&id, "bar-chart", title, &desc, height, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The unix time of `YYYY-MM-DD` 00:00 UTC (days from civil, for the tests' data).
    fn day(y: i64, m: i64, d: i64) -> i64 {
        let y = if m <= 2 { y - 1 } else { y };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        (era * 146_097 + doe - 719_468) * 86_400
    }

    /// The text of every `<text class="{class}" …>` element, in order (a `<title>` child skipped).
    fn texts(svg: &str, class: &str) -> Vec<String> {
        let open = format!("<text class=\"{class}\"");
        let mut out = Vec::new();
        let mut rest = svg;
        while let Some(at) = rest.find(&open) {
            rest = &rest[at + open.len()..];
            let start = rest.find('>').map_or(0, |i| i + 1);
            let mut body = &rest[start..];
            if let Some(after) = body.strip_prefix("<title>") {
                body = after.split_once("</title>").map_or("", |(_, b)| b);
            }
            out.push(body.split('<').next().unwrap_or("").to_string());
        }
        out
    }

    /// The value of attribute `name` of every element starting with `open` (e.g. `<polyline`).
    fn attrs(svg: &str, open: &str, name: &str) -> Vec<String> {
        let key = format!(" {name}=\"");
        svg.match_indices(open)
            .filter_map(|(at, _)| {
                let tag = &svg[at..];
                let tag = &tag[..tag.find('>')?];
                let v = &tag[tag.find(&key)? + key.len()..];
                Some(v[..v.find('"')?].to_string())
            })
            .collect()
    }

    /// Two series over a month: scores up to 93.
    fn two() -> Vec<Series> {
        vec![
            Series {
                label: "Score".into(),
                points: vec![
                    (day(2026, 1, 1), 40.0),
                    (day(2026, 1, 15), 70.5),
                    (day(2026, 1, 31), 93.0),
                ],
            },
            Series {
                label: "Fleet average".into(),
                points: vec![(day(2026, 1, 31), 60.0), (day(2026, 1, 5), 50.0)],
            },
        ]
    }

    #[test]
    fn numbers() {
        assert_eq!(num(1.0), "1");
        assert_eq!(num(12.34), "12.3");
        assert_eq!(num(-0.04), "0");
        assert_eq!(num(0.0), "0");
        assert_eq!(num(-3.0), "-3");
        assert_eq!(num(99.96), "100");
        assert_eq!(nice_max(93.0), (100.0, 20.0));
        assert_eq!(nice_max(0.0).0, 1.0);
        assert_eq!(nice_max(0.3).0, 1.0);
        assert_eq!(nice_max(7.0).0, 8.0);
        assert_eq!(nice_max(100.0).0, 100.0);
        assert_eq!(nice_max(101.0).0, 150.0);
        assert_eq!(nice_max(f64::NAN).0, 1.0);
        assert_eq!(day(1970, 1, 1), 0);
        assert_eq!(date(day(2026, 3, 1)), "2026-03-01");
    }

    #[test]
    fn empty_says_no_data() {
        for svg in [
            line_chart("c1", "Score history", &[], None, ""),
            line_chart(
                "c1",
                "Score history",
                &[Series {
                    label: "x".into(),
                    points: vec![(0, f64::NAN)],
                }],
                None,
                "",
            ),
            bar_chart("c1", "Score history", &[]),
            bar_chart(
                "c1",
                "Score history",
                &[Bar {
                    label: "a".into(),
                    segments: vec![("high".into(), 0.0, "high".into())],
                }],
            ),
        ] {
            let svg = svg.into_string();
            assert!(svg.contains(">No data yet</text>"), "{svg}");
            assert!(
                svg.contains("<title id=\"c1-title\">Score history</title>"),
                "{svg}"
            );
            assert!(svg.contains("role=\"img\""), "{svg}");
            assert!(
                svg.contains("aria-labelledby=\"c1-title c1-desc\""),
                "{svg}"
            );
            assert!(!svg.contains("<rect"), "{svg}");
            assert!(!svg.contains("<polyline"), "{svg}");
        }
    }

    #[test]
    fn two_series() {
        let svg = line_chart("hist", "Score", &two(), None, "").into_string();
        assert!(svg.starts_with("<svg "), "{svg}");
        assert!(svg.contains("viewBox=\"0 0 640 260\""), "{svg}");
        assert!(svg.contains("width=\"100%\""), "{svg}");
        assert_eq!(svg.matches("<polyline").count(), 2, "{svg}");
        let dashes = attrs(&svg, "<polyline", "stroke-dasharray");
        assert_eq!(dashes.len(), 2);
        assert_ne!(dashes[0], dashes[1]);
        let classes = attrs(&svg, "<g class=\"series ", "class");
        assert!(
            classes.contains(&"series series-0".to_string()),
            "{classes:?}"
        );
        assert!(
            classes.contains(&"series series-1".to_string()),
            "{classes:?}"
        );
        // Different marker shapes: circles for the first series, squares for the second.
        assert!(svg.contains("<circle class=\"marker\""), "{svg}");
        assert!(svg.contains("<rect class=\"marker\""), "{svg}");
        // Every point has its marker and tooltip, in time order for the second series.
        assert_eq!(svg.matches("class=\"marker\"").count(), 5 + 2, "{svg}");
        assert!(
            svg.contains("<title>Fleet average: 50 on 2026-01-05</title>"),
            "{svg}"
        );
        assert!(
            svg.contains("<title>Score: 70.5 on 2026-01-15</title>"),
            "{svg}"
        );
        assert_eq!(texts(&svg, "legend"), ["Score", "Fleet average"]);
        let xs = texts(&svg, "tick x");
        assert_eq!(xs.len(), 5, "{xs:?}");
        assert_eq!(xs.first().map(String::as_str), Some("2026-01-01"));
        assert_eq!(xs.last().map(String::as_str), Some("2026-01-31"));
        for (i, x) in xs.iter().enumerate() {
            assert_eq!(x.len(), 10, "{x}");
            assert!(
                x.as_str() >= "2026-01-01" && x.as_str() <= "2026-01-31",
                "{x}"
            );
            assert!(i == 0 || xs[i - 1] < *x, "{xs:?}");
        }
        assert_eq!(texts(&svg, "tick y"), ["0", "20", "40", "60", "80", "100"]);
        // The highest point sits below the top (93 of 100).
        assert!(svg.contains("<desc id=\"hist-desc\">Line chart of 2 series from 2026-01-01 to 2026-01-31, y from 0 to 100."), "{svg}");
        // SVG elements always end with an end tag.
        for el in [
            "circle", "rect", "polyline", "line", "polygon", "text", "g", "title",
        ] {
            assert_eq!(
                svg.matches(&format!("<{el} ")).count() + svg.matches(&format!("<{el}>")).count(),
                svg.matches(&format!("</{el}>")).count(),
                "{el}: {svg}"
            );
        }
    }

    #[test]
    fn given_maximum_and_unit() {
        let svg = line_chart("pct", "Pass rate", &two(), Some(100.0), "%").into_string();
        assert_eq!(
            texts(&svg, "tick y"),
            ["0%", "20%", "40%", "60%", "80%", "100%"]
        );
        let svg = line_chart("pct", "Pass rate", &two(), Some(7.0), "").into_string();
        assert_eq!(texts(&svg, "tick y"), ["0", "2", "4", "6"]);
        // Above the given maximum: drawn at the top, the tooltip says the value.
        let svg = line_chart("pct", "Pass rate", &two(), Some(50.0), "%").into_string();
        assert!(
            svg.contains("<title>Score: 93% on 2026-01-31</title>"),
            "{svg}"
        );
        assert!(svg.contains(&format!("cy=\"{}\"", num(LINE_TOP))), "{svg}");
    }

    #[test]
    fn one_point_is_a_marker() {
        let s = [Series {
            label: "Score".into(),
            points: vec![(day(2026, 2, 3), 42.0)],
        }];
        let svg = line_chart("one", "Score", &s, None, "").into_string();
        assert!(!svg.contains("<polyline"), "{svg}");
        assert!(svg.contains("<circle class=\"marker\""), "{svg}");
        assert!(
            svg.contains("<title>Score: 42 on 2026-02-03</title>"),
            "{svg}"
        );
        // In the middle of the plot, one date tick.
        assert!(
            svg.contains(&format!("cx=\"{}\"", num((LINE_LEFT + LINE_RIGHT) / 2.0))),
            "{svg}"
        );
        assert_eq!(texts(&svg, "tick x"), ["2026-02-03"]);
        assert_eq!(texts(&svg, "tick y").last().map(String::as_str), Some("50"));
    }

    #[test]
    fn styles_cycle_and_differ() {
        let series: Vec<Series> = (0..8)
            .map(|i| Series {
                label: format!("series number {i} with a fairly long name"),
                points: vec![(i, 1.0), (i + 10, 2.0)],
            })
            .collect();
        let svg = line_chart("many", "Many", &series, None, "").into_string();
        let dashes = attrs(&svg, "<polyline", "stroke-dasharray");
        assert_eq!(dashes.len(), 8);
        let mut six = dashes[..6].to_vec();
        six.sort();
        six.dedup();
        assert_eq!(six.len(), 6, "{dashes:?}");
        assert_eq!(dashes[6], dashes[0]);
        assert!(svg.contains("class=\"series series-5\""), "{svg}");
        assert!(!svg.contains("series-6"), "{svg}");
        assert!(svg.contains("class=\"marker hollow\""), "{svg}");
        assert!(svg.contains("<polygon class=\"marker\""), "{svg}");
        // The legend wraps: the chart grows below.
        assert!(!svg.contains("viewBox=\"0 0 640 260\""), "{svg}");
        assert_eq!(texts(&svg, "legend").len(), 8);
    }

    #[test]
    fn hostile_text_is_escaped() {
        let evil = "<script>alert(1)</script>";
        let escaped = "&lt;script&gt;alert(1)&lt;/script&gt;";
        let line = line_chart(
            "x\" onload=\"alert(1)",
            evil,
            &[Series {
                label: evil.into(),
                points: vec![(0, 1.0), (86_400, 2.0)],
            }],
            None,
            evil,
        )
        .into_string();
        let bars = bar_chart(
            "x\" onload=\"alert(1)",
            evil,
            &[Bar {
                label: evil.into(),
                segments: vec![(evil.into(), 3.0, "\"><script>x".into())],
            }],
        )
        .into_string();
        for svg in [line, bars] {
            assert!(!svg.contains("<script"), "{svg}");
            assert!(!svg.contains("onload=\""), "{svg}");
            assert!(svg.contains(escaped), "{svg}");
            assert!(svg.contains("id=\"x--onload--alert-1-\""), "{svg}");
        }
    }

    #[test]
    fn ids_are_prefixed() {
        let bars = [Bar {
            label: "a".into(),
            segments: vec![
                ("critical".into(), 1.0, "critical".into()),
                ("high".into(), 1.0, "high".into()),
            ],
        }];
        for (svg, prefix) in [
            (
                line_chart("one", "A", &two(), None, "").into_string(),
                "one",
            ),
            (bar_chart("two", "B", &bars).into_string(), "two"),
            (bar_chart("9", "B", &bars).into_string(), "chart-9"),
        ] {
            let ids = attrs(&svg, "<", "id");
            assert!(ids.len() >= 3, "{svg}");
            assert!(ids.iter().all(|i| i.starts_with(prefix)), "{ids:?}");
            assert!(!svg.contains("url(#") || svg.contains(&format!("url(#{prefix}-hatch-")));
        }
    }

    #[test]
    fn bars_scale_to_the_largest() {
        let bars = [
            Bar {
                label: "big.example".into(),
                segments: vec![
                    ("Critical".into(), 4.0, "critical".into()),
                    ("High".into(), 6.0, "high".into()),
                ],
            },
            Bar {
                label: "half.example".into(),
                segments: vec![
                    ("High".into(), 5.0, "high".into()),
                    ("Critical".into(), 0.0, "critical".into()),
                ],
            },
            Bar {
                label: "quarter.example".into(),
                segments: vec![
                    ("Low".into(), 1.5, "low".into()),
                    ("Info".into(), 1.0, "info".into()),
                ],
            },
            Bar {
                label: "none.example".into(),
                segments: vec![],
            },
        ];
        let svg = bar_chart("sev", "Findings by severity", &bars).into_string();
        let widths: Vec<f64> = attrs(&svg, "<rect class=\"seg ", "width")
            .iter()
            .map(|w| w.parse().unwrap_or(f64::NAN))
            .collect();
        let xs: Vec<f64> = attrs(&svg, "<rect class=\"seg ", "x")
            .iter()
            .map(|w| w.parse().unwrap_or(f64::NAN))
            .collect();
        // 4 + 6 (the largest: the plot's width), 5 (half), 1.5 + 1 (a quarter); then the
        // legend's four swatches.
        assert_eq!(
            widths,
            [168.0, 252.0, 210.0, 63.0, 42.0, 12.0, 12.0, 12.0, 12.0]
        );
        assert_eq!(widths[0] + widths[1], BAR_PLOT_WIDTH);
        assert_eq!(widths[2], BAR_PLOT_WIDTH / 2.0);
        assert_eq!(
            xs[..5],
            [
                BAR_LEFT,
                BAR_LEFT + 168.0,
                BAR_LEFT,
                BAR_LEFT,
                BAR_LEFT + 63.0
            ]
        );
        assert_eq!(texts(&svg, "total"), ["10", "5", "2.5", "0"]);
        assert_eq!(
            texts(&svg, "label"),
            [
                "big.example",
                "half.example",
                "quarter.example",
                "none.example"
            ]
        );
        // Each drawn segment's tooltip.
        for tip in [
            "big.example: Critical 4",
            "big.example: High 6",
            "half.example: High 5",
            "quarter.example: Low 1.5",
            "quarter.example: Info 1",
        ] {
            assert!(
                svg.contains(&format!("<title>{tip}</title>")),
                "{tip}: {svg}"
            );
        }
        assert!(!svg.contains("half.example: Critical"), "{svg}");
        // The legend: first seen first, with the classes.
        assert_eq!(texts(&svg, "legend"), ["Critical", "High", "Low", "Info"]);
        let classes = attrs(&svg, "<rect class=\"seg ", "class");
        assert_eq!(
            classes[5..],
            [
                "seg seg-critical",
                "seg seg-high",
                "seg seg-low",
                "seg seg-info"
            ]
        );
        // Hatching for black and white: the patterns used, defined once, prefixed.
        assert!(svg.contains("<pattern id=\"sev-hatch-1\""), "{svg}");
        assert!(svg.contains("fill=\"url(#sev-hatch-1)\""), "{svg}");
        assert!(!svg.contains("sev-hatch-5"), "{svg}");
        assert!(
            svg.contains("<desc id=\"sev-desc\">Stacked bar chart of 4 bars"),
            "{svg}"
        );
    }

    #[test]
    fn long_labels_are_clipped_with_the_full_text_as_tooltip() {
        let long = "a-very-long-customer-domain-name.example.com";
        let bars = [Bar {
            label: long.into(),
            segments: vec![("High".into(), 2.0, "High Severity!".into())],
        }];
        let svg = bar_chart("b", "B", &bars).into_string();
        let (short, cut) = clip(long, BAR_LABEL_CHARS);
        assert!(cut);
        assert_eq!(short.chars().count(), BAR_LABEL_CHARS);
        assert_eq!(texts(&svg, "label"), [short]);
        assert!(svg.contains(&format!("<title>{long}</title>")), "{svg}");
        assert!(svg.contains("class=\"seg seg-highseverity\""), "{svg}");
    }
}
