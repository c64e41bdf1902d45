//! The report's HTML: hand-written templates (a template engine would add a dependency for
//! a dozen `format!` calls), inline SVG charts, every value escaped.

use std::fmt::Write as _;

use base64::Engine as _;

use super::{ClipEntry, FrameEntry, VideoData};

const CHART_W: f64 = 960.0;
const PLOT_H: f64 = 170.0;
const MARGIN_L: f64 = 58.0;
const MARGIN_R: f64 = 46.0;
const MARGIN_T: f64 = 8.0;
const AXIS_H: f64 = 24.0;
const LANE_H: f64 = 16.0;
const ROWS_PER_PAGE: usize = 50;

const PALETTE: [&str; 10] = [
    "#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#edc948", "#76b7b2", "#ff9da7", "#9c755f",
    "#bab0ac", "#e15759",
];

pub fn boundary_colour(kind: &str) -> &'static str {
    match kind {
        "cut" => "#d62728",
        "dissolve" => "#1f77b4",
        "fade" => "#7b3fa0",
        _ => "#555555",
    }
}

const STYLE: &str = r#"
:root { color-scheme: light; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
  margin: 0 auto; max-width: 1100px; padding: 16px 24px 48px; color: #1d1d1f; background: #fafafa; }
h1 { font-size: 22px; margin: 0 0 2px; } h2 { font-size: 17px; margin: 0 0 8px; word-break: break-all; }
h3 { font-size: 14px; margin: 14px 0 6px; color: #444; }
.sub { color: #666; margin: 0 0 10px; }
.help { background: #eef3f8; border: 1px solid #d5e1ee; border-radius: 6px; padding: 8px 12px; margin: 8px 0 16px; }
.help p { margin: 4px 0; }
section.video, #index { background: #fff; border: 1px solid #ddd; border-radius: 8px; padding: 14px 16px; margin: 14px 0; }
.badge { display: inline-block; font-size: 12px; font-weight: 600; padding: 1px 7px; border-radius: 9px; margin-right: 6px; vertical-align: 2px; }
.badge.ok { background: #e3f4e5; color: #1d6b2a; } .badge.error { background: #fde4e4; color: #a11; }
.banner { border-radius: 6px; padding: 6px 10px; margin: 6px 0; }
.banner.error { background: #fde4e4; color: #7a0d0d; } .banner.warn { background: #fff4d6; color: #6b4a00; }
.banner.note { background: #f0f0f0; color: #444; }
table { border-collapse: collapse; } td, th { padding: 3px 8px; text-align: left; border-bottom: 1px solid #eee; vertical-align: top; }
th { font-weight: 600; color: #444; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
#videos tr.error td { background: #fff5f5; } #videos td.err { color: #a11; max-width: 360px; }
.controls { margin: 6px 0 8px; display: flex; gap: 8px; align-items: center; }
.controls input { padding: 3px 6px; width: 240px; }
svg.chart { display: block; width: 100%; height: auto; background: #fff; }
svg text { font: 11px system-ui, "DejaVu Sans", sans-serif; fill: #555; }
.legend { display: flex; flex-wrap: wrap; gap: 4px 14px; font-size: 12px; color: #444; margin: 4px 0; }
.sw { display: inline-block; width: 14px; height: 10px; margin-right: 4px; vertical-align: -1px; border-radius: 2px; }
.shots { display: flex; flex-wrap: wrap; gap: 8px; }
figure.shot { margin: 0; font-size: 11px; color: #444; width: min-content; }
figure.shot img, figure.shot .missing { display: block; border-radius: 3px; border-top: 4px solid #bbb; }
figure.shot .missing { width: 96px; height: 54px; background: #eee; color: #888; font-size: 10px; text-align: center; line-height: 54px; }
figure.shot figcaption { white-space: nowrap; }
div.row { display: flex; flex-wrap: wrap; gap: 2px 14px; font-size: 12px; color: #333; }
div.row b { font-weight: 600; color: #666; }
"#;

/// The page script: pages and filters the index table (without JavaScript every row shows).
pub const INDEX_SCRIPT: &str = r#"
(function () {
  var rows = Array.prototype.slice.call(document.querySelectorAll('#videos tbody tr'));
  var per = ROWS_PER_PAGE, page = 0;
  var filter = document.getElementById('filter');
  var info = document.getElementById('pageinfo');
  function shown() {
    var q = filter.value.toLowerCase();
    return rows.filter(function (r) { return r.dataset.video.toLowerCase().indexOf(q) >= 0; });
  }
  function render() {
    var s = shown(), pages = Math.max(1, Math.ceil(s.length / per));
    page = Math.min(page, pages - 1);
    rows.forEach(function (r) { r.hidden = true; });
    s.slice(page * per, page * per + per).forEach(function (r) { r.hidden = false; });
    info.textContent = s.length + ' of ' + rows.length + ' videos · page ' + (page + 1) + ' of ' + pages;
  }
  document.getElementById('prev').addEventListener('click', function () { page = Math.max(0, page - 1); render(); });
  document.getElementById('next').addEventListener('click', function () { page += 1; render(); });
  filter.addEventListener('input', function () { page = 0; render(); });
  render();
  document.body.dataset.ready = '1';
})();
"#;

/// A whole self-contained HTML page.
pub fn page(title: &str, body: &str, script: &str) -> String {
    let script = if script.is_empty() {
        String::new()
    } else {
        format!(
            "<script>{}</script>\n",
            script.replace("ROWS_PER_PAGE", &ROWS_PER_PAGE.to_string())
        )
    };
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n{body}\n{script}</body>\n</html>\n",
        esc(title)
    )
}

/// Header, how-to-read notes and the index table (errors first, as `clips` is sorted).
pub fn index(folder: &str, clips: &[ClipEntry], inline: bool) -> String {
    let failed = clips.iter().filter(|c| !c.ok).count();
    let mut s = String::new();
    let _ = write!(
        s,
        "<header><h1>framegpt report</h1>\n<p class=\"sub\"><code>{}</code> · {} video{} · {} failed · framegpt {}</p>\n",
        esc(folder),
        clips.len(),
        if clips.len() == 1 { "" } else { "s" },
        failed,
        env!("CARGO_PKG_VERSION")
    );
    s.push_str(
        "<div class=\"help\">\
         <p><b>Surprise</b> (black curve) is how badly the model predicted each frame from the frames before it: \
         flat while the picture moves as expected, a spike where something new appears. The scale is logarithmic.</p>\
         <p><b>Vertical lines</b> are the shot boundaries framegpt found: \
         <span class=\"sw\" style=\"background:#d62728\"></span>cut, \
         <span class=\"sw\" style=\"background:#1f77b4\"></span>dissolve (dashed), \
         <span class=\"sw\" style=\"background:#7b3fa0\"></span>fade (dotted). \
         With a model adapted to one camera (<code>framegpt adapt</code>), the <b>anomaly</b> strip under the chart is darker where a frame is more unusual for that camera. \
         Grey bands are stretches with no analyzed frame (not decodable, or past the end of a truncated file). \
         Below each chart: one picture per shot, taken at its first frame. Hover a line or band for details.</p>\
         <p>The numbers come from <code>clips.csv</code>, <code>frames.csv</code> and <code>shots.csv</code> in this folder; \
         failed inputs are listed first.</p></div>\n</header>\n",
    );
    s.push_str(
        "<section id=\"index\"><h2>Videos</h2>\n<div class=\"controls\">\
         <input id=\"filter\" type=\"search\" placeholder=\"filter by name\" aria-label=\"filter by name\">\
         <button id=\"prev\" type=\"button\">◀ previous</button><button id=\"next\" type=\"button\">next ▶</button>\
         <span id=\"pageinfo\"></span></div>\n<table id=\"videos\"><thead><tr>\
         <th>video</th><th>status</th><th>duration</th><th>frames</th><th>shots</th>\
         <th>decode errors</th><th>max surprise</th>",
    );
    // clips.csv has anomaly values only where an adapted model ran.
    let anomaly = clips.iter().any(|c| !c.get("max_anomaly").is_empty());
    if anomaly {
        s.push_str("<th>max anomaly</th>");
    }
    s.push_str("<th>top label</th></tr></thead>\n<tbody>\n");
    for (i, c) in clips.iter().enumerate() {
        let href = if inline {
            format!("#v{i}")
        } else {
            format!("{}/{}", url_path(&c.video), super::REPORT_FILE)
        };
        let status = if c.ok {
            "<span class=\"badge ok\">ok</span>".to_string()
        } else {
            format!(
                "<span class=\"badge error\">error</span></td><td class=\"err\" colspan=\"{}\">{}",
                6 + usize::from(anomaly),
                esc(&c.error)
            )
        };
        let _ = write!(
            s,
            "<tr class=\"{}\" data-video=\"{}\"><td><a href=\"{}\">{}</a></td><td>{}</td>",
            if c.ok { "ok" } else { "error" },
            esc(&c.video),
            esc(&href),
            esc(&c.video),
            status
        );
        if c.ok {
            let _ = write!(
                s,
                "<td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>",
                c.duration_s.map_or(String::new(), |d| format!("{d:.1} s")),
                esc(c.get("frames_analyzed")),
                esc(c.get("shots")),
                c.decode_errors,
                esc(c.get("max_surprise")),
            );
            if anomaly {
                let at = c.get("max_anomaly_s");
                let _ = write!(
                    s,
                    "<td class=\"num\">{}{}</td>",
                    esc(c.get("max_anomaly")),
                    if at.is_empty() {
                        String::new()
                    } else {
                        format!(" <small>at {} s</small>", esc(at))
                    }
                );
            }
            let _ = write!(s, "<td>{}</td>", esc(c.get("top_label")));
        }
        s.push_str("</tr>\n");
    }
    s.push_str("</tbody></table></section>\n");
    s
}

/// One video: status, warnings, the chart, the shots' thumbnails and its clips.csv row.
pub fn video_section(i: usize, d: &VideoData) -> String {
    let c = &d.clip;
    let boundaries = d.shots.iter().skip(1).count();
    let mut s = String::new();
    let _ = write!(
        s,
        "<section class=\"video\" id=\"v{i}\" data-video=\"{}\" data-shots=\"{}\" data-boundaries=\"{boundaries}\">\n\
         <h2><span class=\"badge {}\">{}</span>{}</h2>\n",
        esc(&c.video),
        d.shots.len(),
        if c.ok { "ok" } else { "error" },
        if c.ok { "ok" } else { "error" },
        esc(&c.video)
    );
    if !c.error.is_empty() {
        let kept = if d.frames.is_empty() {
            String::new()
        } else {
            format!(
                " — the {} frames that did decode are shown below",
                d.frames.len()
            )
        };
        let _ = writeln!(
            s,
            "<div class=\"banner error\"><b>error:</b> {}{kept}</div>",
            esc(&c.error)
        );
    }
    if c.decode_errors > 0 {
        let _ = writeln!(
            s,
            "<div class=\"banner warn\"><b>{} decode error{}:</b> corrupt packets the decoder skipped; \
             their frames are missing from the analysis (grey bands where they leave a gap)</div>",
            c.decode_errors,
            if c.decode_errors == 1 { "" } else { "s" }
        );
    }
    if let Some(e) = &d.load_error {
        let _ = writeln!(
            s,
            "<div class=\"banner error\"><b>cannot show this video:</b> {}</div>",
            esc(e)
        );
    }
    if !d.frames.is_empty() {
        s.push_str(&chart(d));
        s.push_str(&legend(d));
        let _ = writeln!(s, "<h3>Shots ({})</h3>", d.shots.len());
        if let Some(note) = &d.thumbnail_note {
            let _ = writeln!(
                s,
                "<div class=\"banner note\">no pictures: {}</div>",
                esc(note)
            );
        }
        s.push_str(&shot_strip(d));
    }
    s.push_str("<h3>clips.csv</h3>\n<div class=\"row\">");
    for (k, v) in &c.columns {
        let _ = write!(
            s,
            "<span><b>{}</b> {}</span>",
            esc(k),
            if v.is_empty() {
                "–".to_string()
            } else {
                esc(v)
            }
        );
    }
    s.push_str("</div>\n</section>\n");
    s
}

struct Scale {
    t0: f64,
    t1: f64,
}

impl Scale {
    fn x(&self, t: f64) -> f64 {
        let span = (self.t1 - self.t0).max(1e-9);
        MARGIN_L + ((t - self.t0) / span).clamp(0.0, 1.0) * (CHART_W - MARGIN_L - MARGIN_R)
    }

    /// The time at `x` (the inverse of [`Scale::x`] inside the plot).
    fn time(&self, x: f64) -> f64 {
        self.t0 + (x - MARGIN_L) / (CHART_W - MARGIN_L - MARGIN_R) * (self.t1 - self.t0)
    }
}

fn median_interval(frames: &[FrameEntry]) -> f64 {
    let mut dt: Vec<f64> = frames
        .windows(2)
        .map(|w| w[1].time_s - w[0].time_s)
        .filter(|d| *d > 0.0)
        .collect();
    if dt.is_empty() {
        return 0.04;
    }
    dt.sort_by(f64::total_cmp);
    dt[dt.len() / 2]
}

fn chart(d: &VideoData) -> String {
    let frames = &d.frames;
    let dt = median_interval(frames);
    let last_t = frames.last().map_or(0.0, |f| f.time_s) + dt;
    let scale = Scale {
        t0: frames.first().map_or(0.0, |f| f.time_s.min(0.0)),
        t1: d.clip.duration_s.unwrap_or(last_t).max(last_t),
    };
    let has_labels = frames
        .iter()
        .any(|f| f.label.as_deref().is_some_and(|l| !l.is_empty()));
    let has_anomaly = d.frames.iter().any(|f| f.anomaly.is_some());
    let lanes = usize::from(has_labels) + usize::from(d.has_repeated) + usize::from(has_anomaly);
    let plot_bottom = MARGIN_T + PLOT_H;
    let height = plot_bottom + AXIS_H + lanes as f64 * (LANE_H + 4.0) + 4.0;
    let mut s = format!(
        "<svg class=\"chart\" viewBox=\"0 0 {CHART_W} {height}\" role=\"img\" aria-label=\"surprise curve of {}\">\n",
        esc(&d.clip.video)
    );
    let (px0, px1) = (MARGIN_L, CHART_W - MARGIN_R);
    let _ = writeln!(
        s,
        "<rect x=\"{px0}\" y=\"{MARGIN_T}\" width=\"{}\" height=\"{PLOT_H}\" fill=\"#fcfcfc\" stroke=\"#ccc\"/>",
        px1 - px0
    );

    let g = Geometry {
        scale,
        dt,
        last_t,
        plot_bottom,
        px0,
        px1,
    };
    draw_gaps(&mut s, d, &g);
    draw_surprise(&mut s, d, &g);
    if d.has_boundary_prob {
        draw_boundary_prob(&mut s, d, &g);
    }
    draw_boundaries(&mut s, d, &g);
    draw_time_axis(&mut s, &g);
    let mut lane_y = plot_bottom + AXIS_H;
    if d.has_repeated {
        draw_repeated_lane(&mut s, d, &g, lane_y);
        lane_y += LANE_H + 4.0;
    }
    if has_anomaly {
        draw_anomaly_lane(&mut s, d, &g, lane_y);
        lane_y += LANE_H + 4.0;
    }
    if has_labels {
        draw_label_lane(&mut s, d, &g, lane_y);
    }
    s.push_str("</svg>\n");
    s
}

/// Where things go in a chart.
struct Geometry {
    scale: Scale,
    /// The typical time between analyzed frames.
    dt: f64,
    /// The end of the last analyzed frame.
    last_t: f64,
    plot_bottom: f64,
    px0: f64,
    px1: f64,
}

fn draw_gaps(s: &mut String, d: &VideoData, g: &Geometry) {
    let (frames, scale, dt, last_t) = (&d.frames, &g.scale, g.dt, g.last_t);
    // Gaps: stretches without analyzed frames (undecodable packets, truncated ends).
    let mut gaps: Vec<(f64, f64, String)> = Vec::new();
    for w in frames.windows(2) {
        if w[1].time_s - w[0].time_s > (3.0 * dt).max(0.2) {
            gaps.push((
                w[0].time_s + dt,
                w[1].time_s,
                format!(
                    "no analyzed frame from {:.2} s to {:.2} s",
                    w[0].time_s, w[1].time_s
                ),
            ));
        }
    }
    if let Some(dur) = d.clip.duration_s {
        if dur - last_t > (3.0 * dt).max(0.2) {
            gaps.push((
                last_t,
                dur,
                format!("not analyzed: {last_t:.2} s to the declared end at {dur:.2} s"),
            ));
        }
    }
    for (a, b, why) in &gaps {
        let (xa, xb) = (scale.x(*a), scale.x(*b));
        let _ = writeln!(
            s,
            "<rect class=\"gap\" x=\"{xa:.1}\" y=\"{MARGIN_T}\" width=\"{:.1}\" height=\"{PLOT_H}\" fill=\"#ddd\" opacity=\"0.8\"><title>{}</title></rect>",
            (xb - xa).max(1.0),
            esc(why)
        );
    }
}

fn draw_surprise(s: &mut String, d: &VideoData, g: &Geometry) {
    let (frames, scale, plot_bottom, px0, px1) = (&d.frames, &g.scale, g.plot_bottom, g.px0, g.px1);
    // Surprise on a log scale.
    let values: Vec<f64> = frames
        .iter()
        .filter_map(|f| f.surprise)
        .filter(|v| *v > 0.0 && v.is_finite())
        .collect();
    if values.is_empty() {
        let _ = writeln!(
            s,
            "<text x=\"{}\" y=\"{}\">no surprise values (fewer than 2 analyzed frames)</text>",
            px0 + 8.0,
            MARGIN_T + 20.0
        );
    } else {
        let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = values.iter().copied().fold(0.0, f64::max);
        let (mut llo, mut lhi) = (lo.log10().floor(), hi.log10().ceil());
        if lhi - llo < 1.0 {
            lhi = llo + 1.0;
        }
        if lhi - llo > 6.0 {
            llo = lhi - 6.0;
        }
        let y = |v: f64| {
            let l = v.max(10f64.powf(llo)).log10();
            plot_bottom - (l - llo) / (lhi - llo) * PLOT_H
        };
        for k in (llo as i32)..=(lhi as i32) {
            let yy = y(10f64.powi(k));
            let _ = writeln!(
                s,
                "<line x1=\"{px0}\" x2=\"{px1}\" y1=\"{yy:.1}\" y2=\"{yy:.1}\" stroke=\"#eee\"/>\
                 <text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
                px0 - 4.0,
                yy + 4.0,
                10f64.powi(k)
            );
        }
        let _ = writeln!(
            s,
            "<text x=\"12\" y=\"{:.1}\" transform=\"rotate(-90 12 {:.1})\" text-anchor=\"middle\">surprise</text>",
            MARGIN_T + PLOT_H / 2.0,
            MARGIN_T + PLOT_H / 2.0
        );
        let points = downsample(frames, scale, |f| f.surprise.filter(|v| *v > 0.0));
        let path = polyline(&points, y);
        let _ = writeln!(
            s,
            "<path class=\"surprise\" d=\"{path}\" fill=\"none\" stroke=\"#222\" stroke-width=\"1.2\"/>"
        );
    }
}

fn draw_boundary_prob(s: &mut String, d: &VideoData, g: &Geometry) {
    let (frames, scale, plot_bottom, px1) = (&d.frames, &g.scale, g.plot_bottom, g.px1);
    // Boundary probability (contract v2 models), linear 0..1 on the right axis.
    let y = |v: f64| plot_bottom - v.clamp(0.0, 1.0) * PLOT_H;
    for v in [0.0, 0.5, 1.0] {
        let _ = writeln!(
            s,
            "<text x=\"{}\" y=\"{:.1}\" fill=\"#2ca02c\">{v}</text>",
            px1 + 4.0,
            y(v) + 4.0
        );
    }
    let _ = writeln!(
        s,
        "<text x=\"{}\" y=\"{:.1}\" transform=\"rotate(90 {} {:.1})\" text-anchor=\"middle\" fill=\"#2ca02c\">boundary prob.</text>",
        CHART_W - 10.0,
        MARGIN_T + PLOT_H / 2.0,
        CHART_W - 10.0,
        MARGIN_T + PLOT_H / 2.0
    );
    let points = downsample(frames, scale, |f| f.boundary_prob);
    let _ = writeln!(
        s,
        "<path class=\"boundary-prob\" d=\"{}\" fill=\"none\" stroke=\"#2ca02c\" stroke-width=\"1.2\" opacity=\"0.9\"/>",
        polyline(&points, y)
    );
}

fn draw_boundaries(s: &mut String, d: &VideoData, g: &Geometry) {
    let (scale, plot_bottom) = (&g.scale, g.plot_bottom);
    // Shot boundaries, one marker each.
    for shot in d.shots.iter().skip(1) {
        let kind = shot.transition.as_deref().unwrap_or("cut");
        let x = scale.x(shot.start_s);
        let dash = match kind {
            "dissolve" => " stroke-dasharray=\"5 3\"",
            "fade" => " stroke-dasharray=\"2 2\"",
            _ => "",
        };
        let _ = writeln!(
            s,
            "<g class=\"boundary\" data-boundary=\"{}\" data-frame=\"{}\"><line x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{MARGIN_T}\" y2=\"{plot_bottom}\" stroke=\"{}\" stroke-width=\"1.6\"{dash}/>\
             <title>{} at frame {} ({:.3} s): shot {} begins</title></g>",
            esc(kind),
            shot.start_frame,
            boundary_colour(kind),
            esc(kind),
            shot.start_frame,
            shot.start_s,
            shot.shot + 1
        );
    }
}

fn draw_time_axis(s: &mut String, g: &Geometry) {
    let (scale, plot_bottom) = (&g.scale, g.plot_bottom);
    // Time axis.
    let span = scale.t1 - scale.t0;
    let step = nice_step(span / 8.0);
    let mut t = (scale.t0 / step).ceil() * step;
    while t <= scale.t1 + 1e-9 {
        let x = scale.x(t);
        let _ = writeln!(
            s,
            "<line x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{plot_bottom}\" y2=\"{}\" stroke=\"#999\"/>\
             <text x=\"{x:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
            plot_bottom + 4.0,
            plot_bottom + 16.0,
            fmt_seconds(t, step)
        );
        t += step;
    }
}

fn draw_repeated_lane(s: &mut String, d: &VideoData, g: &Geometry, lane_y: f64) {
    let (frames, scale, dt, px0) = (&d.frames, &g.scale, g.dt, g.px0);
    let _ = writeln!(
        s,
        "<text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">repeated</text>",
        px0 - 4.0,
        lane_y + 12.0
    );
    for (a, b) in runs(frames, |f| f.repeated == Some(1)) {
        let (xa, xb) = (scale.x(frames[a].time_s), scale.x(frames[b].time_s + dt));
        let _ = writeln!(
            s,
            "<rect class=\"repeated\" x=\"{xa:.1}\" y=\"{lane_y:.1}\" width=\"{:.1}\" height=\"{LANE_H}\" fill=\"#f28e2b\">\
             <title>repeated frame{}: {}–{} ({:.2}–{:.2} s)</title></rect>",
            (xb - xa).max(1.5),
            if a == b { "" } else { "s" },
            frames[a].frame,
            frames[b].frame,
            frames[a].time_s,
            frames[b].time_s
        );
    }
}

/// `anomaly` (adapted models) as a strip: the darker, the more unusual the frame is for the
/// camera, from 1 (lighter: footage like the camera's normal scores about 0-2) to 10 and above
/// (darkest); the strongest frame of each stretch of one shade is named in its tooltip.
fn draw_anomaly_lane(s: &mut String, d: &VideoData, g: &Geometry, lane_y: f64) {
    let (scale, px0, px1) = (&g.scale, g.px0, g.px1);
    let _ = writeln!(
        s,
        "<text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">anomaly</text>",
        px0 - 4.0,
        lane_y + 12.0
    );
    let shade = |v: f64| ((v - 1.0) / 9.0 * 8.0).round().clamp(0.0, 8.0) as u8;
    let points = downsample(&d.frames, scale, |f| f.anomaly);
    let mut k = 0;
    while k < points.len() {
        let level = shade(points[k].1);
        let mut end = k;
        let mut top = k;
        while end + 1 < points.len() && shade(points[end + 1].1) == level {
            end += 1;
            if points[end].1 > points[top].1 {
                top = end;
            }
        }
        let xa = points[k].0;
        let xb = points.get(end + 1).map_or(px1, |p| p.0);
        if level > 0 {
            let _ = writeln!(
                s,
                "<rect class=\"anomaly\" x=\"{xa:.1}\" y=\"{lane_y:.1}\" width=\"{:.1}\" height=\"{LANE_H}\" fill=\"#8c564b\" opacity=\"{:.3}\">\
                 <title>anomaly up to {:.1} at {:.2} s</title></rect>",
                (xb - xa).max(1.0),
                f64::from(level) / 8.0,
                points[top].1,
                scale.time(points[top].0)
            );
        }
        k = end + 1;
    }
}

fn draw_label_lane(s: &mut String, d: &VideoData, g: &Geometry, lane_y: f64) {
    let (frames, scale, dt, px0) = (&d.frames, &g.scale, g.dt, g.px0);
    let names = label_names(frames);
    let _ = writeln!(
        s,
        "<text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">label</text>",
        px0 - 4.0,
        lane_y + 12.0
    );
    let mut a = 0;
    while a < frames.len() {
        let label = frames[a].label.clone().unwrap_or_default();
        let mut b = a;
        while b + 1 < frames.len() && frames[b + 1].label.clone().unwrap_or_default() == label {
            b += 1;
        }
        if !label.is_empty() {
            let conf: Vec<f64> = frames[a..=b].iter().filter_map(|f| f.confidence).collect();
            let mean = conf.iter().sum::<f64>() / conf.len().max(1) as f64;
            let k = names.iter().position(|n| *n == label).unwrap_or(0);
            let end_t = frames
                .get(b + 1)
                .map_or(frames[b].time_s + dt, |f| f.time_s);
            let (xa, xb) = (scale.x(frames[a].time_s), scale.x(end_t));
            let _ = writeln!(
                s,
                "<rect class=\"label\" x=\"{xa:.1}\" y=\"{lane_y:.1}\" width=\"{:.1}\" height=\"{LANE_H}\" fill=\"{}\" opacity=\"{:.2}\">\
                 <title>{} · mean confidence {mean:.2} · {:.2}–{end_t:.2} s</title></rect>",
                (xb - xa).max(1.0),
                PALETTE[k % PALETTE.len()],
                0.25 + 0.75 * mean.clamp(0.0, 1.0),
                esc(&label),
                frames[a].time_s
            );
        }
        a = b + 1;
    }
}

fn legend(d: &VideoData) -> String {
    let mut s = String::from("<div class=\"legend\">");
    s.push_str(
        "<span><span class=\"sw\" style=\"background:#222\"></span>surprise (log scale)</span>",
    );
    if d.has_boundary_prob {
        s.push_str("<span><span class=\"sw\" style=\"background:#2ca02c\"></span>boundary probability (right axis)</span>");
    }
    for kind in ["cut", "dissolve", "fade"] {
        let n = d
            .shots
            .iter()
            .skip(1)
            .filter(|x| x.transition.as_deref() == Some(kind))
            .count();
        let _ = write!(
            s,
            "<span><span class=\"sw\" style=\"background:{}\"></span>{kind}: {n}</span>",
            boundary_colour(kind)
        );
    }
    if d.has_repeated {
        let n = d.frames.iter().filter(|f| f.repeated == Some(1)).count();
        let _ = write!(
            s,
            "<span><span class=\"sw\" style=\"background:#f28e2b\"></span>repeated frames: {n}</span>"
        );
    }
    let top = d
        .frames
        .iter()
        .filter_map(|f| f.anomaly.map(|a| (a, f.time_s)))
        .fold(None, |m: Option<(f64, f64)>, x| match m {
            Some(m) if m.0 >= x.0 => Some(m),
            _ => Some(x),
        });
    if let Some((a, t)) = top {
        let _ = write!(
            s,
            "<span><span class=\"sw\" style=\"background:#8c564b\"></span>anomaly (darker: more unusual for this camera; highest {a:.1} at {t:.2} s)</span>"
        );
    }
    let names = label_names(&d.frames);
    for (k, n) in names.iter().enumerate() {
        let _ = write!(
            s,
            "<span><span class=\"sw\" style=\"background:{}\"></span>{}</span>",
            PALETTE[k % PALETTE.len()],
            esc(n)
        );
    }
    if names.is_empty() {
        s.push_str("<span>labels: none (the model has no classification head; see <code>framegpt finetune</code>)</span>");
    } else {
        s.push_str("<span>(label bands: darker = more confident)</span>");
    }
    s.push_str("</div>\n");
    s
}

fn shot_strip(d: &VideoData) -> String {
    let mut s = String::from("<div class=\"shots\">\n");
    for (k, shot) in d.shots.iter().enumerate() {
        let kind = shot.transition.as_deref().filter(|t| !t.is_empty());
        let colour = kind.map_or("#bbb", boundary_colour);
        let alt = format!("shot {} at {:.2} s", k + 1, shot.start_s);
        let picture = match d.thumbnails.get(k).and_then(Option::as_ref) {
            Some(jpeg) => format!(
                "<img class=\"thumb\" src=\"data:image/jpeg;base64,{}\" alt=\"{}\" style=\"border-top-color:{colour}\">",
                base64::engine::general_purpose::STANDARD.encode(jpeg),
                esc(&alt)
            ),
            None => format!(
                "<div class=\"missing\" style=\"border-top-color:{colour}\">no picture</div>"
            ),
        };
        let label = shot
            .label
            .as_deref()
            .filter(|l| !l.is_empty())
            .map_or(String::new(), |l| format!(" · {}", esc(l)));
        let _ = writeln!(
            s,
            "<figure class=\"shot\" data-shot=\"{}\">{picture}<figcaption><b>{}</b> · {:.2}–{:.2} s · {}{label}<br>frames {}–{}</figcaption></figure>",
            shot.shot,
            k + 1,
            shot.start_s,
            shot.end_s,
            kind.unwrap_or("start"),
            shot.start_frame,
            shot.end_frame
        );
    }
    s.push_str("</div>\n");
    s
}

/// At most two points per pixel column (the column's maximum keeps every peak visible).
fn downsample(
    frames: &[FrameEntry],
    scale: &Scale,
    value: impl Fn(&FrameEntry) -> Option<f64>,
) -> Vec<(f64, f64)> {
    let limit = 2.0 * (CHART_W - MARGIN_L - MARGIN_R);
    if (frames.len() as f64) <= limit {
        return frames
            .iter()
            .filter_map(|f| value(f).map(|v| (scale.x(f.time_s), v)))
            .collect();
    }
    let mut out: Vec<(f64, f64)> = Vec::new();
    let mut column: Option<(i64, f64, f64)> = None;
    for f in frames {
        let Some(v) = value(f) else { continue };
        let x = scale.x(f.time_s);
        let col = (x * 2.0) as i64;
        match &mut column {
            Some((c, cx, cv)) if *c == col => {
                if v > *cv {
                    *cv = v;
                    *cx = x;
                }
            }
            _ => {
                if let Some((_, cx, cv)) = column {
                    out.push((cx, cv));
                }
                column = Some((col, x, v));
            }
        }
    }
    if let Some((_, cx, cv)) = column {
        out.push((cx, cv));
    }
    out
}

fn polyline(points: &[(f64, f64)], y: impl Fn(f64) -> f64) -> String {
    let mut s = String::with_capacity(points.len() * 14);
    for (k, (x, v)) in points.iter().enumerate() {
        let _ = write!(s, "{}{x:.1} {:.1}", if k == 0 { "M" } else { " L" }, y(*v));
    }
    s
}

/// Index ranges (inclusive) of consecutive frames where `pred` holds.
fn runs(frames: &[FrameEntry], pred: impl Fn(&FrameEntry) -> bool) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = None;
    for (k, f) in frames.iter().enumerate() {
        match (pred(f), start) {
            (true, None) => start = Some(k),
            (false, Some(a)) => {
                out.push((a, k - 1));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(a) = start {
        out.push((a, frames.len() - 1));
    }
    out
}

/// Labels in order of first appearance.
fn label_names(frames: &[FrameEntry]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for f in frames {
        if let Some(l) = f.label.as_deref().filter(|l| !l.is_empty()) {
            if !names.iter().any(|n| n == l) {
                names.push(l.to_string());
            }
        }
    }
    names
}

fn nice_step(raw: f64) -> f64 {
    let raw = raw.max(1e-3);
    let mag = 10f64.powf(raw.log10().floor());
    for m in [1.0, 2.0, 5.0, 10.0] {
        if m * mag >= raw {
            return m * mag;
        }
    }
    10.0 * mag
}

fn fmt_seconds(t: f64, step: f64) -> String {
    if t >= 60.0 && step >= 1.0 {
        format!(
            "{}:{:02}",
            (t / 60.0).floor() as u64,
            (t % 60.0).round() as u64
        )
    } else if step >= 1.0 {
        format!("{t:.0} s")
    } else {
        format!("{t:.1} s")
    }
}

/// A relative path as a URL path (each segment percent-encoded).
fn url_path(rel: &str) -> String {
    let mut out = String::new();
    for b in rel.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'/' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// HTML text and attribute escaping.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::ShotEntry;

    fn frame(frame: u64, time_s: f64, surprise: Option<f64>) -> FrameEntry {
        FrameEntry {
            frame,
            time_s,
            surprise,
            label: None,
            confidence: None,
            boundary_prob: None,
            repeated: None,
            anomaly: None,
        }
    }

    #[test]
    fn escaping_covers_markup_and_quotes() {
        assert_eq!(
            esc("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }

    #[test]
    fn long_curves_keep_their_peaks() {
        let frames: Vec<FrameEntry> = (0..100_000)
            .map(|k| {
                frame(
                    k,
                    k as f64 / 25.0,
                    Some(if k == 54_321 { 9.0 } else { 0.01 }),
                )
            })
            .collect();
        let scale = Scale {
            t0: 0.0,
            t1: 4000.0,
        };
        let pts = downsample(&frames, &scale, |f| f.surprise);
        assert!(pts.len() <= 2 * (CHART_W - MARGIN_L - MARGIN_R) as usize + 1);
        assert!(pts.iter().any(|(_, v)| *v == 9.0));
    }

    #[test]
    fn runs_are_inclusive_ranges() {
        let mut f: Vec<FrameEntry> = (0..6).map(|k| frame(k, k as f64, None)).collect();
        for k in [1, 2, 5] {
            f[k].repeated = Some(1);
        }
        assert_eq!(runs(&f, |r| r.repeated == Some(1)), vec![(1, 2), (5, 5)]);
    }

    #[test]
    fn optional_columns_draw_when_present() {
        let mut frames: Vec<FrameEntry> = (0..40)
            .map(|k| frame(k, k as f64 / 20.0, (k > 0).then_some(0.05)))
            .collect();
        frames[20].boundary_prob = Some(0.9);
        frames[11].repeated = Some(1);
        let clip = ClipEntry {
            columns: vec![("video".into(), "a.mp4".into())],
            video: "a.mp4".into(),
            ok: true,
            error: String::new(),
            duration_s: Some(2.0),
            decode_errors: 2,
        };
        let shots = vec![
            ShotEntry {
                shot: 0,
                start_frame: 0,
                end_frame: 19,
                start_s: 0.0,
                end_s: 1.0,
                transition: None,
                label: None,
            },
            ShotEntry {
                shot: 1,
                start_frame: 20,
                end_frame: 39,
                start_s: 1.0,
                end_s: 2.0,
                transition: Some("dissolve".into()),
                label: None,
            },
        ];
        let mut d = VideoData {
            clip,
            frames,
            shots,
            has_boundary_prob: false,
            has_repeated: false,
            load_error: None,
            thumbnails: vec![None, Some(vec![0xff, 0xd8])],
            thumbnail_note: None,
        };
        let plain = video_section(0, &d);
        assert!(!plain.contains("boundary-prob") && !plain.contains("class=\"repeated\""));
        assert_eq!(plain.matches("data-boundary=\"dissolve\"").count(), 1);
        assert_eq!(plain.matches("class=\"thumb\"").count(), 1);
        assert!(plain.contains("2 decode errors"));
        d.has_boundary_prob = true;
        d.has_repeated = true;
        let full = video_section(0, &d);
        assert!(full.contains("class=\"boundary-prob\""));
        assert_eq!(full.matches("class=\"repeated\"").count(), 1);
        assert!(!full.contains("class=\"anomaly\""));
        // An adapted model's anomaly: one strip, shaded where a frame is unusual, the
        // strongest frame named.
        for (k, f) in d.frames.iter_mut().enumerate().skip(1) {
            f.anomaly = Some(if (30..33).contains(&k) { 400.0 } else { 2.0 });
        }
        let adapted = video_section(0, &d);
        assert!(
            adapted.contains("anomaly up to 400.0 at 1.50 s"),
            "{adapted}"
        );
        assert!(adapted.contains("highest 400.0 at 1.50 s"));
        assert!(adapted.matches("class=\"anomaly\"").count() >= 2);
    }

    #[test]
    fn the_index_shows_max_anomaly_only_when_a_clip_has_one() {
        let clip = |max: &str| ClipEntry {
            columns: vec![
                ("video".into(), "a.mp4".into()),
                ("max_anomaly".into(), max.into()),
                (
                    "max_anomaly_s".into(),
                    if max.is_empty() { "" } else { "3.200" }.into(),
                ),
            ],
            video: "a.mp4".into(),
            ok: true,
            error: String::new(),
            duration_s: Some(2.0),
            decode_errors: 0,
        };
        let plain = index("out", &[clip("")], true);
        assert!(!plain.contains("max anomaly"));
        let adapted = index("out", &[clip("51.250")], true);
        assert!(adapted.contains("<th>max anomaly</th>"));
        assert!(
            adapted.contains("51.250 <small>at 3.200 s</small>"),
            "{adapted}"
        );
    }
}
