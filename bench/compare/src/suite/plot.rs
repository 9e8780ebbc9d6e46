//! One SVG per data set and workload (plotters): throughput by engine and
//! thread count (bars at the median, whiskers from min to max) beside the
//! latency percentiles (p50 and p99, log scale).
//!
//! The SVG backend writes text as text, but plotters measures it with a
//! font: DejaVu Sans from Debian's `fonts-dejavu-core` (or the TrueType
//! file in `SNOWFALL_PLOT_FONT`). Without one, no plots are drawn (the CSV
//! and the tables still are), and the driver says so.

use std::path::Path;

use plotters::prelude::*;

use super::report::{Config, Row, cell, engines, spread};
use super::workload::Workload;

const FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";

/// Registers the font plotters measures text with.
pub fn font() -> Result<(), String> {
    let path = std::env::var("SNOWFALL_PLOT_FONT").unwrap_or_else(|_| FONT.to_string());
    let bytes = std::fs::read(&path)
        .map_err(|e| format!("{path}: {e} (install fonts-dejavu-core or set SNOWFALL_PLOT_FONT)"))?;
    plotters::style::register_font("sans-serif", FontStyle::Normal, Box::leak(bytes.into_boxed_slice()))
        .map_err(|_| format!("{path}: not a font plotters can read"))
}

/// One colour per entry of [`THREADS`].
const COLOURS: [RGBColor; 2] = [RGBColor(31, 119, 180), RGBColor(255, 127, 14)];

/// Draws every plot of `rows` into `dir`; the files written.
pub fn all(rows: &[Row], dir: &Path) -> Result<Vec<String>, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut written = Vec::new();
    for config in super::report::configs(rows) {
        for w in Workload::ALL {
            if !rows.iter().any(|r| r.config() == config && r.workload == w.name()) {
                continue;
            }
            let name = format!("{}-{}.svg", config.slug(), w.name());
            one(rows, &config, w, &dir.join(&name)).map_err(|e| format!("{name}: {e}"))?;
            written.push(name);
        }
    }
    Ok(written)
}

/// `y` operations/s in the unit the axis's top calls for.
fn rate(y: f64, top: f64) -> String {
    // Enough decimals to tell the axis's labels apart.
    if top >= 2e6 {
        format!("{:.*} M", if top < 2e7 { 2 } else { 1 }, y / 1e6)
    } else if top >= 2e3 {
        format!("{:.*} K", if top < 2e4 { 1 } else { 0 }, y / 1e3)
    } else {
        format!("{y:.0}")
    }
}

/// An engine's bars: one per thread count.
struct Group {
    engine: String,
    bars: Vec<Bar>,
}

/// One thread count's spread of values.
struct Bar {
    threads: u64,
    median: f64,
    min: f64,
    max: f64,
    p50: f64,
    p99: f64,
}

/// Thread counts drawn, each its colour.
const THREADS: [u64; 2] = [1, 2];

/// Engine `g`'s bar for thread count number `t`: its left and right x
/// (engines at integers, so the axis labels fall on them).
fn span(g: usize, t: usize) -> (f64, f64) {
    let w = 0.8 / THREADS.len() as f64;
    let left = g as f64 - 0.4 + t as f64 * w;
    (left, left + w)
}

fn one(rows: &[Row], config: &Config, w: Workload, path: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let mut groups = Vec::new();
    for engine in engines(rows) {
        let mut bars = Vec::new();
        for threads in THREADS {
            let got: Vec<&Row> = cell(rows, config, &engine, w.name(), threads).collect();
            if got.is_empty() {
                continue;
            }
            let s = spread(got.iter().map(|r| r.ops_per_s).collect());
            bars.push(Bar {
                threads,
                median: s.median,
                min: s.min,
                max: s.max,
                p50: spread(got.iter().map(|r| r.p50_us).collect()).median,
                p99: spread(got.iter().map(|r| r.p99_us).collect()).median,
            });
        }
        if !bars.is_empty() {
            groups.push(Group { engine, bars });
        }
    }
    let n = groups.len();
    let x_range = -0.5..n as f64 - 0.5;
    let names: Vec<String> = groups.iter().map(|g| g.engine.clone()).collect();
    let label = |x: &f64| {
        let i = x.round();
        if (x - i).abs() < 1e-6 && i >= 0.0 {
            names.get(i as usize).cloned().unwrap_or_default()
        } else {
            String::new()
        }
    };
    let bars = || {
        groups.iter().enumerate().flat_map(|(g, group)| {
            group.bars.iter().map(move |b| {
                let t = THREADS.iter().position(|&t| t == b.threads).unwrap_or(0);
                (span(g, t), t, b)
            })
        })
    };
    let root = SVGBackend::new(path, (1200, 460)).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(&format!("{} — {}", w.describe(), config.title()), ("sans-serif", 15))?;
    let (left, right) = root.split_horizontally(620);

    let top = groups.iter().flat_map(|g| &g.bars).map(|b| b.max).fold(0.0, f64::max) * 1.15 + 1.0;
    let mut chart = ChartBuilder::on(&left)
        .caption("operations/s: median, min-max line", ("sans-serif", 13))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(70)
        .build_cartesian_2d(x_range.clone(), 0f64..top)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(n)
        .x_label_formatter(&label)
        .y_label_formatter(&|y| rate(*y, top))
        .draw()?;
    for (t, threads) in THREADS.iter().enumerate() {
        let colour = COLOURS[t];
        chart
            .draw_series(
                bars()
                    .filter(|&(_, bt, _)| bt == t)
                    .map(|((l, r), _, b)| Rectangle::new([(l, 0.0), (r, b.median)], colour.filled())),
            )?
            .label(format!("{threads} thread{}", if *threads == 1 { "" } else { "s" }))
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], colour.filled()));
    }
    chart.draw_series(bars().map(|((l, r), _, b)| {
        let x = (l + r) / 2.0;
        PathElement::new(vec![(x, b.min), (x, b.max)], BLACK.stroke_width(2))
    }))?;
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .border_style(BLACK)
        .background_style(WHITE)
        .draw()?;

    let low = bars().map(|(_, _, b)| b.p50).fold(f64::INFINITY, f64::min).max(0.01) / 2.0;
    let high = bars().map(|(_, _, b)| b.p99).fold(0.0, f64::max).max(low * 4.0) * 2.0;
    let mut chart = ChartBuilder::on(&right)
        .caption("latency µs: p99 bar, p50 dot (log scale)", ("sans-serif", 13))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(60)
        .build_cartesian_2d(x_range, (low..high).log_scale())?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(n)
        .x_label_formatter(&label)
        .y_labels(8)
        .y_label_formatter(&|y| if *y >= 10.0 { format!("{y:.0}") } else { format!("{y:.2}") })
        .draw()?;
    chart.draw_series(
        bars().map(|((l, r), t, b)| Rectangle::new([(l, low), (r, b.p99.max(low))], COLOURS[t].mix(0.7).filled())),
    )?;
    chart.draw_series(bars().map(|((l, r), _, b)| Circle::new(((l + r) / 2.0, b.p50.max(low)), 4, BLACK.filled())))?;
    root.present()?;
    Ok(())
}
