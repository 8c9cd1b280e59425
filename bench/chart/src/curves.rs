//! Line charts of bench/latency.sh and bench/scale.sh: latency against
//! the offered rate, and cost and memory against connections.

use std::path::{Path, PathBuf};

use plotters::element::DashedPathElement;
use plotters::prelude::*;

use crate::{si, svg_path, Result, Table, BLUE, GREEN, ORANGE, PURPLE, RED};

/// A server's colour, the same in every curve chart.
fn colour(server: &str) -> RGBColor {
    match server {
        "tenk" => BLUE,
        "tokio" => ORANGE,
        "nginx" => GREEN,
        _ => PURPLE,
    }
}

/// Points of `y` against `x` for the rows matching `filter`, by `x`.
fn points(table: &Table, filter: &[(&str, &str)], x: &str, y: &str) -> Vec<(f64, f64)> {
    let mut pts: Vec<(f64, f64)> = table
        .select(filter)
        .iter()
        .filter_map(|r| Some((Table::num(r, x)?, Table::num(r, y)?)))
        .filter(|&(x, y)| x > 0.0 && y > 0.0)
        .collect();
    pts.sort_by(|a, b| a.0.total_cmp(&b.0));
    pts
}

/// `latency.csv` -> `latency-WORKLOAD.svg`: corrected p50, p99 and p99.9
/// (median of the rounds) against the achieved rate, one colour per
/// server, one line style per percentile.
pub fn latency(results: &Path, out: &Path) -> Result<Vec<PathBuf>> {
    let table = Table::read(&results.join("latency.csv"))?;
    let mut files = Vec::new();
    for workload in table.distinct("workload") {
        let servers: Vec<String> = table
            .select(&[("workload", &workload)])
            .iter()
            .filter_map(|r| r.get("server").cloned())
            .fold(Vec::new(), |mut v, s| {
                if !v.contains(&s) {
                    v.push(s);
                }
                v
            });
        let percentiles = [
            ("p50", "p50_median"),
            ("p99", "p99_median"),
            ("p99.9", "p999_median"),
        ];
        let curves: Vec<(String, usize, RGBColor, Vec<(f64, f64)>)> = servers
            .iter()
            .flat_map(|s| {
                let table = &table;
                let workload = &workload;
                percentiles
                    .iter()
                    .enumerate()
                    .map(move |(i, (label, col))| {
                        let pts = points(
                            table,
                            &[("workload", workload), ("server", s)],
                            "rps_median",
                            col,
                        );
                        (format!("{s} {label}"), i, colour(s), pts)
                    })
            })
            .collect();
        let all: Vec<(f64, f64)> = curves.iter().flat_map(|c| c.3.iter().copied()).collect();
        if all.is_empty() {
            continue;
        }
        let xmax = all.iter().map(|p| p.0).fold(1.0, f64::max);
        let ymin = all.iter().map(|p| p.1).fold(f64::MAX, f64::min);
        let ymax = all.iter().map(|p| p.1).fold(1.0, f64::max);
        let path = svg_path(out, &format!("latency-{workload}.svg"));
        let file = path.clone();
        let root = SVGBackend::new(&file, (900, 560)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                format!(
                    "{workload}: corrected latency vs offered rate (open loop, 10-100 % of each server's max)"
                ),
                ("sans-serif", 18),
            )
            .margin(14)
            .x_label_area_size(44)
            .y_label_area_size(70)
            .build_cartesian_2d(0.0..xmax * 1.05, ((ymin / 1.5).max(1.0)..ymax * 2.0).log_scale())?;
        chart
            .configure_mesh()
            .x_desc("achieved rate, requests/s")
            .y_desc("latency, µs (log)")
            .x_label_formatter(&|v| si(*v))
            .y_label_formatter(&|v| si(*v))
            .label_style(("sans-serif", 13))
            .axis_desc_style(("sans-serif", 14))
            .draw()?;
        for (name, style, color, pts) in &curves {
            let color = *color;
            // p50 solid, p99 dashed, p99.9 dotted: the colour names the server.
            let width = 2;
            match style {
                0 => {
                    chart
                        .draw_series(LineSeries::new(
                            pts.iter().copied(),
                            color.stroke_width(width),
                        ))?
                        .label(name.as_str())
                        .legend(move |(x, y)| {
                            PathElement::new([(x, y), (x + 18, y)], color.stroke_width(2))
                        });
                    chart.draw_series(pts.iter().map(|&p| Circle::new(p, 3, color.filled())))?;
                }
                1 => {
                    chart
                        .draw_series(DashedLineSeries::new(
                            pts.iter().copied(),
                            8,
                            4,
                            color.stroke_width(width),
                        ))?
                        .label(name.as_str())
                        .legend(move |(x, y)| {
                            DashedPathElement::new(
                                [(x, y), (x + 18, y)],
                                6,
                                3,
                                color.stroke_width(2),
                            )
                        });
                    chart.draw_series(
                        pts.iter()
                            .map(|&p| TriangleMarker::new(p, 4, color.filled())),
                    )?;
                }
                _ => {
                    chart
                        .draw_series(DashedLineSeries::new(
                            pts.iter().copied(),
                            2,
                            4,
                            color.stroke_width(width),
                        ))?
                        .label(name.as_str())
                        .legend(move |(x, y)| {
                            DashedPathElement::new(
                                [(x, y), (x + 18, y)],
                                2,
                                3,
                                color.stroke_width(2),
                            )
                        });
                    chart.draw_series(
                        pts.iter().map(|&p| Cross::new(p, 4, color.stroke_width(2))),
                    )?;
                }
            }
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.3))
            .label_font(("sans-serif", 12))
            .draw()?;
        root.present()?;
        files.push(path);
    }
    Ok(files)
}

/// `scale.csv` -> `scale.svg`: requests per server CPU-second (left) and
/// server RSS under load (right) against busy connections, log-x, one
/// line per workload and server.
pub fn scale(results: &Path, out: &Path) -> Result<Vec<PathBuf>> {
    let table = Table::read(&results.join("scale.csv"))?;
    let lines: Vec<(String, String, RGBColor, bool)> = [
        ("echo", "tenk"),
        ("echo", "tokio"),
        ("http", "tenk"),
        ("http", "nginx"),
    ]
    .iter()
    .map(|(w, s)| {
        let color = if *w == "http" && *s == "tenk" {
            RED
        } else {
            colour(s)
        };
        (w.to_string(), s.to_string(), color, *w == "http")
    })
    .collect();
    let path = svg_path(out, "scale.svg");
    let file = path.clone();
    let root = SVGBackend::new(&file, (1200, 520)).into_drawing_area();
    root.fill(&WHITE)?;
    let (left, right) = root.split_horizontally(600);
    for (area, column, title, ydesc) in [
        (
            &left,
            "per_cpu_median",
            "Requests per server CPU-second",
            "requests / CPU-s",
        ),
        (
            &right,
            "rss_peak_median",
            "Server RSS under load",
            "RSS, kB (log)",
        ),
    ] {
        let series: Vec<(String, RGBColor, bool, Vec<(f64, f64)>)> = lines
            .iter()
            .map(|(w, s, c, dashed)| {
                (
                    format!("{w} {s}"),
                    *c,
                    *dashed,
                    points(&table, &[("workload", w), ("server", s)], "conns", column),
                )
            })
            .filter(|l| !l.3.is_empty())
            .collect();
        let all: Vec<(f64, f64)> = series.iter().flat_map(|l| l.3.iter().copied()).collect();
        if all.is_empty() {
            continue;
        }
        let xmax = all.iter().map(|p| p.0).fold(10.0, f64::max);
        let ymax = all.iter().map(|p| p.1).fold(1.0, f64::max);
        let ymin = all.iter().map(|p| p.1).fold(f64::MAX, f64::min);
        let mut builder = ChartBuilder::on(area);
        builder
            .caption(title, ("sans-serif", 18))
            .margin(14)
            .x_label_area_size(44)
            .y_label_area_size(70);
        let x = (5.0..xmax * 2.0).log_scale();
        macro_rules! draw {
            ($chart:expr) => {{
                let mut chart = $chart;
                chart
                    .configure_mesh()
                    .x_desc("busy connections (log)")
                    .y_desc(ydesc)
                    .x_label_formatter(&|v| si(*v))
                    .y_label_formatter(&|v| si(*v))
                    .label_style(("sans-serif", 13))
                    .axis_desc_style(("sans-serif", 14))
                    .draw()?;
                for (name, color, dashed, pts) in &series {
                    let color = *color;
                    if *dashed {
                        chart
                            .draw_series(DashedLineSeries::new(
                                pts.iter().copied(),
                                8,
                                4,
                                color.stroke_width(2),
                            ))?
                            .label(name.as_str())
                            .legend(move |(x, y)| {
                                DashedPathElement::new(
                                    [(x, y), (x + 18, y)],
                                    6,
                                    3,
                                    color.stroke_width(2),
                                )
                            });
                    } else {
                        chart
                            .draw_series(LineSeries::new(
                                pts.iter().copied(),
                                color.stroke_width(2),
                            ))?
                            .label(name.as_str())
                            .legend(move |(x, y)| {
                                PathElement::new([(x, y), (x + 18, y)], color.stroke_width(2))
                            });
                    }
                    chart.draw_series(pts.iter().map(|&p| Circle::new(p, 3, color.filled())))?;
                }
                chart
                    .configure_series_labels()
                    .position(SeriesLabelPosition::LowerLeft)
                    .background_style(WHITE.mix(0.85))
                    .border_style(BLACK.mix(0.3))
                    .label_font(("sans-serif", 12))
                    .draw()?;
            }};
        }
        if column == "rss_peak_median" {
            draw!(builder.build_cartesian_2d(x, ((ymin / 1.5).max(1.0)..ymax * 2.0).log_scale())?);
        } else {
            draw!(builder.build_cartesian_2d(x, 0.0..ymax * 1.15)?);
        }
    }
    root.present()?;
    Ok(vec![path])
}
