//! Draws the suite's charts as SVG from its CSV results.
//!
//! ```text
//! chart RESULTS_DIR OUT_DIR
//! ```
//!
//! Each chart is drawn when its CSV is there (a script that was not run
//! leaves its chart as it was): `echo.csv` -> `echo.svg`, `trigger.csv` ->
//! `trigger.svg` and `trigger-syscalls.svg`, `load-vs-wrk.csv` ->
//! `load-vs-wrk.svg`, `c10k.csv` -> `c10k.svg`, `floor.csv` -> `floor.svg`,
//! `http.csv` -> `http.svg`, `threads.csv` -> `threads.svg`,
//! `threads-skew.csv` -> `threads-skew.svg`, `latency.csv` ->
//! `latency-echo.svg` and `latency-http.svg`, `scale.csv` -> `scale.svg`
//! (the last two in `curves.rs`).
//! Bars are medians over the rounds, whiskers their min-max. Where a CSV has
//! a `client` column (echo, http: each server measured by several load
//! clients), the chart is the independent client's (echo-client, wrk).

use std::collections::HashMap;
use std::error::Error;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

mod curves;

use plotters::coord::Shift;
use plotters::prelude::*;

type Result<T> = std::result::Result<T, Box<dyn Error>>;
type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;
/// Draws one chart from the results directory into the output directory.
type Draw = fn(&Path, &Path) -> Result<Vec<PathBuf>>;

const BLUE: RGBColor = RGBColor(31, 119, 180);
const ORANGE: RGBColor = RGBColor(255, 127, 14);
const GREEN: RGBColor = RGBColor(44, 160, 44);
const RED: RGBColor = RGBColor(214, 39, 40);
const PURPLE: RGBColor = RGBColor(148, 103, 189);
const GREY: RGBColor = RGBColor(90, 90, 90);

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() != 2 {
        eprintln!("usage: chart RESULTS_DIR OUT_DIR");
        return ExitCode::from(2);
    }
    let (results, out) = (PathBuf::from(&args[0]), PathBuf::from(&args[1]));
    if let Err(e) = std::fs::create_dir_all(&out) {
        eprintln!("chart: cannot create {}: {e}", out.display());
        return ExitCode::from(1);
    }
    let charts: [(&str, Draw); 10] = [
        ("echo.csv", echo),
        ("http.csv", http),
        ("threads.csv", threads),
        ("threads-skew.csv", threads_skew),
        ("trigger.csv", trigger),
        ("load-vs-wrk.csv", load_vs_wrk),
        ("c10k.csv", c10k),
        ("floor.csv", floor),
        ("latency.csv", curves::latency),
        ("scale.csv", curves::scale),
    ];
    let mut failed = false;
    for (csv, draw) in charts {
        let path = results.join(csv);
        if !path.exists() {
            eprintln!("chart: no {} (skipped)", path.display());
            continue;
        }
        match draw(&results, &out) {
            Ok(files) => {
                for f in files {
                    println!("{}", f.display());
                }
            }
            Err(e) => {
                eprintln!("chart: {csv}: {e}");
                failed = true;
            }
        }
    }
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

// ---- data -------------------------------------------------------------------------

/// Rows of a CSV written by the suite (a header line; no quoted commas).
struct Table {
    rows: Vec<HashMap<String, String>>,
}

impl Table {
    fn read(path: &Path) -> Result<Table> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let mut lines = text.lines().filter(|l| !l.trim().is_empty());
        let header: Vec<String> = lines
            .next()
            .ok_or("empty file")?
            .split(',')
            .map(str::to_string)
            .collect();
        let rows = lines
            .map(|l| {
                header
                    .iter()
                    .cloned()
                    .zip(l.split(',').map(str::to_string))
                    .collect()
            })
            .collect();
        Ok(Table { rows })
    }

    /// Only the rows measured by `client`, when the table says which client
    /// measured each row (and some row names `client`); else the table whole.
    fn by_client(self, client: &str) -> Table {
        if !self
            .rows
            .iter()
            .any(|r| r.get("client").map(String::as_str) == Some(client))
        {
            return self;
        }
        let rows = self
            .rows
            .into_iter()
            .filter(|r| r.get("client").map(String::as_str) == Some(client))
            .collect();
        Table { rows }
    }

    /// The rows where every `(column, value)` of `filter` matches.
    fn select(&self, filter: &[(&str, &str)]) -> Vec<&HashMap<String, String>> {
        self.rows
            .iter()
            .filter(|r| {
                filter
                    .iter()
                    .all(|(k, v)| r.get(*k).map(String::as_str) == Some(*v))
            })
            .collect()
    }

    fn num(row: &HashMap<String, String>, column: &str) -> Option<f64> {
        row.get(column)?
            .parse()
            .ok()
            .filter(|v: &f64| v.is_finite())
    }

    /// `(median, min, max)` of the first row matching `filter`.
    fn spread(&self, filter: &[(&str, &str)], prefix: &str) -> Option<(f64, f64, f64)> {
        let row = *self.select(filter).first()?;
        let median = Table::num(row, &format!("{prefix}_median"))?;
        let min = Table::num(row, &format!("{prefix}_min")).unwrap_or(median);
        let max = Table::num(row, &format!("{prefix}_max")).unwrap_or(median);
        Some((median, min, max))
    }

    /// Distinct values of `column`, in order of appearance.
    fn distinct(&self, column: &str) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for r in &self.rows {
            if let Some(v) = r.get(column) {
                if !out.contains(v) {
                    out.push(v.clone());
                }
            }
        }
        out
    }
}

struct Series {
    name: String,
    color: RGBColor,
    values: Vec<Option<(f64, f64, f64)>>,
}

/// `123456` -> `123k`.
fn si(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.2}M", v / 1e6)
    } else if v >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else if v >= 1e3 {
        format!("{:.1}k", v / 1e3)
    } else if v >= 10.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

fn conns_label(c: &str) -> String {
    match c.parse::<u64>() {
        Ok(n) if n >= 1000 && n % 1000 == 0 => format!("{}k", n / 1000),
        _ => c.to_string(),
    }
}

// ---- drawing ----------------------------------------------------------------------

/// A category axis: `n` slots of width 1 on `0..n`, a key point (and so a
/// label) at the centre of each. (plotters' `with_key_points` over an f64
/// range loses the default formatting the mesh needs.)
struct Categories(usize);

impl Ranged for Categories {
    type ValueType = f64;
    type FormatOption = plotters::coord::ranged1d::DefaultFormatting;

    fn range(&self) -> std::ops::Range<f64> {
        0.0..self.0 as f64
    }

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let n = (self.0 as f64).max(1.0);
        limit.0 + (value / n * f64::from(limit.1 - limit.0)).round() as i32
    }

    fn key_points<H: plotters::coord::ranged1d::KeyPointHint>(&self, _hint: H) -> Vec<f64> {
        (0..self.0).map(|i| i as f64 + 0.5).collect()
    }
}

/// A horizontal marker over one category: a dashed line and its label.
struct Mark {
    category: usize,
    value: f64,
    label: String,
}

/// Grouped bars with min-max whiskers, one group per category.
fn grouped_bars(
    area: &Area,
    title: &str,
    y_desc: &str,
    categories: &[String],
    series: &[Series],
    marks: &[Mark],
) -> Result<()> {
    let top = series
        .iter()
        .flat_map(|s| s.values.iter().flatten().map(|v| v.2))
        .chain(marks.iter().map(|m| m.value))
        .fold(0.0f64, f64::max)
        .max(1e-9)
        * 1.18;
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 17))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(70)
        .build_cartesian_2d(Categories(categories.len()), 0.0..top)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_label_formatter(&|v| {
            categories
                .get(v.floor().max(0.0) as usize)
                .cloned()
                .unwrap_or_default()
        })
        .y_label_formatter(&|v| si(*v))
        .y_desc(y_desc)
        .label_style(("sans-serif", 13))
        .axis_desc_style(("sans-serif", 14))
        .draw()?;
    let k = series.len().max(1) as f64;
    let slot = 0.8 / k;
    for (j, s) in series.iter().enumerate() {
        let color = s.color;
        let bars: Vec<(f64, (f64, f64, f64))> = s
            .values
            .iter()
            .enumerate()
            .filter_map(|(i, v)| v.map(|v| (i as f64 + 0.1 + slot * j as f64, v)))
            .collect();
        chart
            .draw_series(bars.iter().map(|&(x, (median, _, _))| {
                Rectangle::new(
                    [(x + slot * 0.05, 0.0), (x + slot * 0.95, median)],
                    color.filled(),
                )
            }))?
            .label(s.name.clone())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.filled()));
        chart.draw_series(bars.iter().map(|&(x, (median, min, max))| {
            ErrorBar::new_vertical(x + slot / 2.0, min, median, max, BLACK.stroke_width(1), 6)
        }))?;
        chart.draw_series(bars.iter().map(|&(x, (median, _, max))| {
            Text::new(
                si(median),
                (x + slot * 0.1, max.max(median) + top * 0.02),
                ("sans-serif", 11).into_font().color(&GREY),
            )
        }))?;
    }
    for m in marks {
        let (x0, x1) = (m.category as f64 + 0.05, m.category as f64 + 0.95);
        chart.draw_series(DashedLineSeries::new(
            [(x0, m.value), (x1, m.value)],
            6,
            4,
            RED.stroke_width(2),
        ))?;
        chart.draw_series(std::iter::once(Text::new(
            m.label.clone(),
            (x0, m.value + top * 0.045),
            ("sans-serif", 12).into_font().color(&RED),
        )))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .label_font(("sans-serif", 13))
        .draw()?;
    Ok(())
}

fn svg_path(out: &Path, name: &str) -> PathBuf {
    out.join(name)
}

fn rounds_note(table: &Table) -> String {
    table
        .rows
        .first()
        .and_then(|r| r.get("rounds"))
        .map(|r| format!("median of {r} rounds, whiskers min-max"))
        .unwrap_or_default()
}

/// The echo grid's categories: `100 conns / 1`, ...
fn grid(table: &Table) -> (Vec<(String, String)>, Vec<String>) {
    let mut cells = Vec::new();
    for c in table.distinct("conns") {
        for p in table.distinct("pipeline") {
            cells.push((c.clone(), p));
        }
    }
    let labels = cells
        .iter()
        .map(|(c, p)| format!("{} conns, {} in flight", conns_label(c), p))
        .collect();
    (cells, labels)
}

/// The echo-like grid drawn as four panels: requests per server CPU-second
/// (top) and raw requests/s (bottom), one column per pipeline depth, so
/// that bars of very different heights never share an axis. `defs` names
/// each contender: its value in column `key`, its legend and its colour.
/// `floor`, if given, is marked over 100 connections, 1 in flight.
fn by_pipeline(
    root: &Area,
    what: &str,
    table: &Table,
    key: &str,
    defs: &[(&str, &str, RGBColor)],
    floor: Option<f64>,
) -> Result<()> {
    let conns = table.distinct("conns");
    let pipes = table.distinct("pipeline");
    let labels: Vec<String> = conns
        .iter()
        .map(|c| format!("{} connections", conns_label(c)))
        .collect();
    let root = root.titled(
        &format!("{what} ({})", rounds_note(table)),
        ("sans-serif", 20),
    )?;
    let panels = root.split_evenly((2, pipes.len().max(1)));
    let metrics = [
        (
            "per_cpu",
            "requests / server CPU-s",
            "requests per server CPU-second",
        ),
        ("rps", "requests / s", "raw requests per second"),
    ];
    for (m, (metric, y_desc, name)) in metrics.iter().enumerate() {
        for (j, p) in pipes.iter().enumerate() {
            let series: Vec<Series> = defs
                .iter()
                .map(|(k, legend, color)| Series {
                    name: legend.to_string(),
                    color: *color,
                    values: conns
                        .iter()
                        .map(|c| table.spread(&[(key, k), ("conns", c), ("pipeline", p)], metric))
                        .collect(),
                })
                .collect();
            let marks: Vec<Mark> = match (m, p.as_str(), floor) {
                (0, "1", Some(f)) => conns
                    .iter()
                    .position(|c| c == "100")
                    .map(|at| Mark {
                        category: at,
                        value: f,
                        label: format!("syscall floor {}", si(f)),
                    })
                    .into_iter()
                    .collect(),
                _ => Vec::new(),
            };
            grouped_bars(
                &panels[m * pipes.len() + j],
                &format!("{p} in flight: {name}"),
                y_desc,
                &labels,
                &series,
                &marks,
            )?;
        }
    }
    Ok(())
}

// ---- the charts --------------------------------------------------------------------

fn echo(results: &Path, out: &Path) -> Result<Vec<PathBuf>> {
    let table = Table::read(&results.join("echo.csv"))?.by_client("echo-client");
    let floor = Table::read(&results.join("floor.csv")).ok().and_then(|f| {
        f.select(&[("key", "floor_rt_64")])
            .first()
            .and_then(|r| Table::num(r, "ns_median"))
            .map(|ns| 1e9 / ns)
    });
    let path = svg_path(out, "echo.svg");
    let file = path.clone();
    let root = SVGBackend::new(&file, (1200, 900)).into_drawing_area();
    root.fill(&WHITE)?;
    by_pipeline(
        &root,
        "Echo, 64 B: tenk vs tokio (client: bench/probes echo-client)",
        &table,
        "server",
        &[
            ("tenk", "tenk (1 thread, edge)", BLUE),
            ("tokio", "tokio current_thread", ORANGE),
        ],
        floor,
    )?;
    root.present()?;
    Ok(vec![path])
}

fn http(results: &Path, out: &Path) -> Result<Vec<PathBuf>> {
    let table = Table::read(&results.join("http.csv"))?.by_client("wrk");
    let path = svg_path(out, "http.svg");
    let file = path.clone();
    let root = SVGBackend::new(&file, (1200, 900)).into_drawing_area();
    root.fill(&WHITE)?;
    by_pipeline(
        &root,
        "HTTP GET / hello (client: wrk -t1 where it measured)",
        &table,
        "server",
        &[
            ("tenk", "tenk serve http", BLUE),
            ("tokio", "tokio + httparse", ORANGE),
            ("nginx", "nginx-light, 1 worker", GREEN),
        ],
        None,
    )?;
    root.present()?;
    Ok(vec![path])
}

fn threads(results: &Path, out: &Path) -> Result<Vec<PathBuf>> {
    let table = Table::read(&results.join("threads.csv"))?;
    let path = svg_path(out, "threads.svg");
    let file = path.clone();
    let root = SVGBackend::new(&file, (1200, 900)).into_drawing_area();
    root.fill(&WHITE)?;
    by_pipeline(
        &root,
        "HTTP GET / hello, 1 vs 2 threads (server CPU: all its threads)",
        &table,
        "server",
        &[
            ("tenk1", "tenk, 1 thread", PURPLE),
            ("tenk2", "tenk, 2 threads", BLUE),
            ("tokio2", "tokio multi_thread, 2 workers", ORANGE),
            ("nginx2", "nginx-light, 2 workers", GREEN),
        ],
        None,
    )?;
    root.present()?;
    Ok(vec![path])
}

fn threads_skew(results: &Path, out: &Path) -> Result<Vec<PathBuf>> {
    let table = Table::read(&results.join("threads-skew.csv"))?;
    let strategies = [
        ("reuseport", "reuseport"),
        ("exclusive", "exclusive"),
        ("dispatch-rr", "dispatch, round-robin"),
        ("dispatch-lc", "dispatch, least-conns"),
    ];
    let colors = [BLUE, ORANGE, GREEN, PURPLE];
    let labels: Vec<String> = strategies.iter().map(|s| s.1.to_string()).collect();
    let series: Vec<Series> = table
        .distinct("conns")
        .iter()
        .zip(colors.iter().cycle())
        .map(|(c, color)| Series {
            name: format!("{} connections", conns_label(c)),
            color: *color,
            values: strategies
                .iter()
                .map(|(key, _)| table.spread(&[("strategy", key), ("conns", c)], "skew"))
                .collect(),
        })
        .collect();
    let path = svg_path(out, "threads-skew.svg");
    let file = path.clone();
    let root = SVGBackend::new(&file, (1000, 450)).into_drawing_area();
    root.fill(&WHITE)?;
    grouped_bars(
        &root,
        &format!(
            "Connections per worker, 2 threads: max / min ({})",
            rounds_note(&table)
        ),
        "max / min (1 = even)",
        &labels,
        &series,
        &[],
    )?;
    root.present()?;
    Ok(vec![path])
}

fn trigger(results: &Path, out: &Path) -> Result<Vec<PathBuf>> {
    let table = Table::read(&results.join("trigger.csv"))?;
    let (cells, labels) = grid(&table);
    let modes = [("edge", BLUE), ("level", GREEN), ("oneshot", PURPLE)];
    let path = svg_path(out, "trigger.svg");
    let file = path.clone();
    let root = SVGBackend::new(&file, (1200, 900)).into_drawing_area();
    root.fill(&WHITE)?;
    by_pipeline(
        &root,
        "tenk echo by epoll mode",
        &table,
        "mode",
        &[
            ("edge", "edge", BLUE),
            ("level", "level", GREEN),
            ("oneshot", "one-shot", PURPLE),
        ],
        None,
    )?;
    root.present()?;

    // Stacked syscalls per round trip, one bar per mode in each cell.
    let kinds = [
        ("read_per_rt", "read", BLUE),
        ("write_per_rt", "write", GREEN),
        ("wait_per_rt", "epoll_wait", ORANGE),
        ("ctl_per_rt", "epoll_ctl", RED),
    ];
    let stacks: Vec<Vec<[f64; 4]>> = cells
        .iter()
        .map(|(c, p)| {
            modes
                .iter()
                .map(|(mode, _)| {
                    let row = table.select(&[("mode", mode), ("conns", c), ("pipeline", p)]);
                    let mut v = [0.0; 4];
                    if let Some(row) = row.first() {
                        for (k, (col, _, _)) in kinds.iter().enumerate() {
                            v[k] = Table::num(row, col).unwrap_or(0.0);
                        }
                    }
                    v
                })
                .collect()
        })
        .collect();
    let top = stacks
        .iter()
        .flatten()
        .map(|v| v.iter().sum::<f64>())
        .fold(0.0f64, f64::max)
        .max(0.1)
        * 1.2;
    let path2 = svg_path(out, "trigger-syscalls.svg");
    let file2 = path2.clone();
    let root = SVGBackend::new(&file2, (1100, 500)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Steady-state syscalls per round trip (E = edge, L = level, O = one-shot)",
            ("sans-serif", 20),
        )
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(60)
        .build_cartesian_2d(Categories(cells.len()), 0.0..top)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_label_formatter(&|v| {
            labels
                .get(v.floor().max(0.0) as usize)
                .cloned()
                .unwrap_or_default()
        })
        .y_desc("syscalls / round trip")
        .label_style(("sans-serif", 13))
        .axis_desc_style(("sans-serif", 14))
        .draw()?;
    let slot = 0.8 / modes.len() as f64;
    for (k, (_, name, color)) in kinds.iter().enumerate() {
        let color = *color;
        let mut rects = Vec::new();
        for (i, cell) in stacks.iter().enumerate() {
            for (j, v) in cell.iter().enumerate() {
                let x = i as f64 + 0.1 + slot * j as f64;
                let base: f64 = v[..k].iter().sum();
                rects.push(Rectangle::new(
                    [(x + slot * 0.08, base), (x + slot * 0.92, base + v[k])],
                    color.filled(),
                ));
            }
        }
        chart
            .draw_series(rects)?
            .label(*name)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.filled()));
    }
    let mut texts = Vec::new();
    for (i, cell) in stacks.iter().enumerate() {
        for (j, v) in cell.iter().enumerate() {
            let x = i as f64 + 0.1 + slot * j as f64 + slot * 0.3;
            let total: f64 = v.iter().sum();
            let letter = ["E", "L", "O"][j];
            texts.push(Text::new(
                format!("{letter} {total:.2}"),
                (x - slot * 0.2, total + top * 0.03),
                ("sans-serif", 11).into_font().color(&GREY),
            ));
        }
    }
    chart.draw_series(texts)?;
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .label_font(("sans-serif", 13))
        .draw()?;
    root.present()?;
    Ok(vec![path, path2])
}

fn load_vs_wrk(results: &Path, out: &Path) -> Result<Vec<PathBuf>> {
    let table = Table::read(&results.join("load-vs-wrk.csv"))?;
    let conns = table.distinct("conns");
    let labels: Vec<String> = conns
        .iter()
        .map(|c| format!("{} connections", conns_label(c)))
        .collect();
    let series = |metric: &str| -> Vec<Series> {
        [("tenk", "tenk load http", BLUE), ("wrk", "wrk", ORANGE)]
            .iter()
            .map(|(key, name, color)| Series {
                name: name.to_string(),
                color: *color,
                values: conns
                    .iter()
                    .map(|c| table.spread(&[("tool", key), ("conns", c)], metric))
                    .collect(),
            })
            .collect()
    };
    let path = svg_path(out, "load-vs-wrk.svg");
    let file = path.clone();
    let root = SVGBackend::new(&file, (1100, 450)).into_drawing_area();
    root.fill(&WHITE)?;
    let (left, right) = root.split_horizontally(550);
    grouped_bars(
        &left,
        "Rate against one nginx worker (median, min-max)",
        "requests / s",
        &labels,
        &series("rps"),
        &[],
    )?;
    grouped_bars(
        &right,
        "Load tool CPU per request (lower is better)",
        "client CPU µs / request",
        &labels,
        &series("client_us"),
        &[],
    )?;
    root.present()?;
    Ok(vec![path])
}

fn c10k(results: &Path, out: &Path) -> Result<Vec<PathBuf>> {
    let table = Table::read(&results.join("c10k.csv"))?;
    let mechanisms = [
        ("poll (active last)", RED),
        ("poll (active first)", ORANGE),
        ("epoll", BLUE),
    ];
    let points: Vec<Vec<(f64, f64)>> = mechanisms
        .iter()
        .map(|(m, _)| {
            table
                .select(&[("mechanism", m)])
                .iter()
                .filter_map(|r| Some((Table::num(r, "idle")?, Table::num(r, "ns_median")?)))
                .collect()
        })
        .collect();
    let all = points.iter().flatten();
    let (xmax, ymin, ymax) = all.fold((10.0f64, f64::MAX, 1.0f64), |(x, lo, hi), p| {
        (x.max(p.0), lo.min(p.1), hi.max(p.1))
    });
    let path = svg_path(out, "c10k.svg");
    let file = path.clone();
    let root = SVGBackend::new(&file, (900, 550)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Cost of one wake-up: N idle connections + 1 active (log-log)",
            ("sans-serif", 20),
        )
        .margin(14)
        .x_label_area_size(44)
        .y_label_area_size(70)
        .build_cartesian_2d(
            (5.0..xmax * 2.0).log_scale(),
            ((ymin / 2.0).max(1.0)..ymax * 2.0).log_scale(),
        )?;
    chart
        .configure_mesh()
        .x_desc("idle connections")
        .y_desc("ns per wake-up")
        .x_label_formatter(&|v| si(*v))
        .y_label_formatter(&|v| si(*v))
        .label_style(("sans-serif", 13))
        .axis_desc_style(("sans-serif", 14))
        .draw()?;
    for ((name, color), pts) in mechanisms.iter().zip(&points) {
        let color = *color;
        chart
            .draw_series(LineSeries::new(pts.iter().copied(), color.stroke_width(2)))?
            .label(*name)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], color.stroke_width(2)));
        chart.draw_series(pts.iter().map(|&p| Circle::new(p, 4, color.filled())))?;
        chart.draw_series(pts.iter().map(|&(x, y)| {
            Text::new(
                si(y),
                (x * 1.08, y * 1.15),
                ("sans-serif", 11).into_font().color(&color),
            )
        }))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .label_font(("sans-serif", 13))
        .draw()?;
    root.present()?;
    Ok(vec![path])
}

fn floor(results: &Path, out: &Path) -> Result<Vec<PathBuf>> {
    let table = Table::read(&results.join("floor.csv"))?;
    let rows: Vec<(String, f64, f64, f64)> = table
        .rows
        .iter()
        .filter_map(|r| {
            Some((
                r.get("operation")?.clone(),
                Table::num(r, "ns_median")?,
                Table::num(r, "ns_min")?,
                Table::num(r, "ns_max")?,
            ))
        })
        .collect();
    let top = rows.iter().map(|r| r.3).fold(1.0f64, f64::max) * 1.15;
    let path = svg_path(out, "floor.svg");
    let file = path.clone();
    let root = SVGBackend::new(&file, (1000, 40 * rows.len() as u32 + 120)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Syscall floor: ns per call, loopback TCP, 64 B",
            ("sans-serif", 20),
        )
        .margin(14)
        .x_label_area_size(40)
        .y_label_area_size(330)
        .build_cartesian_2d(0.0..top, Categories(rows.len()))?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_label_formatter(&|v| {
            // Row 0 at the top.
            let i = rows.len() as isize - 1 - v.floor() as isize;
            usize::try_from(i)
                .ok()
                .and_then(|i| rows.get(i))
                .map(|r| r.0.clone())
                .unwrap_or_default()
        })
        .x_desc("ns per call (median, whiskers min-max)")
        .label_style(("sans-serif", 13))
        .axis_desc_style(("sans-serif", 14))
        .draw()?;
    let y_of = |i: usize| (rows.len() - 1 - i) as f64;
    chart.draw_series(rows.iter().enumerate().map(|(i, r)| {
        let color = if r.0.starts_with("floor") { RED } else { BLUE };
        Rectangle::new([(0.0, y_of(i) + 0.2), (r.1, y_of(i) + 0.8)], color.filled())
    }))?;
    chart.draw_series(rows.iter().enumerate().map(|(i, r)| {
        ErrorBar::new_horizontal(y_of(i) + 0.5, r.2, r.1, r.3, BLACK.stroke_width(1), 6)
    }))?;
    chart.draw_series(rows.iter().enumerate().map(|(i, r)| {
        Text::new(
            format!("{:.0}", r.1),
            (r.3 + top * 0.01, y_of(i) + 0.65),
            ("sans-serif", 12).into_font().color(&GREY),
        )
    }))?;
    root.present()?;
    Ok(vec![path])
}
