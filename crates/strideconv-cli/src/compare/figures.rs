//! The study's figures, built from its records: one time map per method, the
//! fastest-method map, and `auto` against the best method.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use plotters::style::RGBColor;
use strideconv::Method;

use super::format_seconds;
use super::grid::{Cell, Preset};
use super::heatmap::{self, ColourBar, Heatmap, Key, Paint, VIRIDIS, YELLOW_RED};
use super::measure::{Record, Status};

const SKIPPED: RGBColor = RGBColor(215, 215, 215);
const REFUSED: RGBColor = RGBColor(140, 140, 140);
const WRONG: RGBColor = RGBColor(255, 0, 255);
const OUTSIDE: RGBColor = RGBColor(255, 255, 255);

/// Ratios of `auto` to the best method at and beyond this are drawn darkest.
const WORST_RATIO_SHOWN: f64 = 3.0;

/// A fixed colour per method, so maps of different presets read alike.
pub fn method_colour(m: Method) -> RGBColor {
    match m {
        Method::Naive => RGBColor(140, 86, 75),
        Method::Im2col => RGBColor(255, 127, 14),
        Method::ShiftAdd => RGBColor(44, 160, 44),
        Method::FftFull => RGBColor(148, 103, 189),
        Method::Fft => RGBColor(31, 119, 180),
        Method::Direct => RGBColor(214, 39, 40),
        Method::Winograd => RGBColor(23, 190, 207),
        Method::Auto => RGBColor(0, 0, 0),
    }
}

/// Everything measured in one study, indexed for the figures and the summary.
#[derive(Debug)]
pub struct Results<'a> {
    /// The setup.
    pub preset: Preset,
    /// Threads per call.
    pub threads: usize,
    /// Input sizes that have at least one cell.
    pub sizes: Vec<usize>,
    /// Kernel sizes that have at least one cell.
    pub kernels: Vec<usize>,
    /// The methods run, in order.
    pub methods: Vec<Method>,
    by_cell: HashMap<(Cell, Method), &'a Record>,
}

impl<'a> Results<'a> {
    /// Index `records`.
    pub fn new(
        preset: Preset,
        threads: usize,
        methods: Vec<Method>,
        records: &'a [Record],
    ) -> Self {
        let mut sizes: Vec<usize> = records.iter().map(|r| r.cell.n).collect();
        let mut kernels: Vec<usize> = records.iter().map(|r| r.cell.f).collect();
        for v in [&mut sizes, &mut kernels] {
            v.sort_unstable();
            v.dedup();
        }
        let by_cell = records.iter().map(|r| ((r.cell, r.method), r)).collect();
        Results {
            preset,
            threads,
            sizes,
            kernels,
            methods,
            by_cell,
        }
    }

    /// The record of `method` on `cell`, if that cell is in the grid.
    pub fn get(&self, cell: Cell, method: Method) -> Option<&'a Record> {
        self.by_cell.get(&(cell, method)).copied()
    }

    /// Every cell of the grid, by n then f.
    pub fn cells(&self) -> Vec<Cell> {
        super::grid::cells(&self.sizes, &self.kernels)
    }

    /// The fastest concrete method on `cell` and its seconds, among those measured.
    pub fn fastest(&self, cell: Cell) -> Option<(Method, f64)> {
        self.methods
            .iter()
            .filter(|&&m| m != Method::Auto)
            .filter_map(|&m| {
                self.get(cell, m)
                    .and_then(|r| r.seconds.filter(|_| r.status == Status::Ok))
                    .map(|s| (m, s))
            })
            .min_by(|a, b| a.1.total_cmp(&b.1))
    }

    /// `auto`'s seconds over the fastest method's, with what `auto` chose and what was best.
    pub fn auto_ratio(&self, cell: Cell) -> Option<(f64, Method, Method)> {
        let auto = self
            .get(cell, Method::Auto)
            .filter(|r| r.status == Status::Ok)?;
        let (best, best_s) = self.fastest(cell)?;
        Some((auto.seconds? / best_s, auto.chosen?, best))
    }

    /// The forced time of the method `auto` chose over the fastest method's: how good the
    /// choice is, apart from the noise between two timings of the same computation (`auto`
    /// runs the plan of the method it chose).
    pub fn choice_ratio(&self, cell: Cell) -> Option<f64> {
        let chose = self
            .get(cell, Method::Auto)
            .filter(|r| r.status == Status::Ok)?
            .chosen?;
        let chose_s = self
            .get(cell, chose)
            .filter(|r| r.status == Status::Ok)?
            .seconds?;
        let (_, best_s) = self.fastest(cell)?;
        Some(chose_s / best_s)
    }

    fn subtitle(&self) -> String {
        format!(
            "{}: {}; float64, {} thread{}, best of repeated calls",
            self.preset.name(),
            self.preset.describe(),
            self.threads,
            if self.threads == 1 { "" } else { "s" }
        )
    }

    /// A heatmap frame with every cell of the grid painted by `paint`.
    fn frame(
        &self,
        title: String,
        key: Key,
        states: Vec<(RGBColor, String)>,
        paint: impl Fn(Cell) -> Paint,
    ) -> Heatmap {
        let c = self
            .preset
            .channels()
            .map(|c| format!("×{c}"))
            .unwrap_or_default();
        let cells = self
            .sizes
            .iter()
            .map(|&n| {
                self.kernels
                    .iter()
                    .map(|&f| (f <= n).then(|| paint(Cell { n, f })))
                    .collect()
            })
            .collect();
        let mut states = states;
        states.push((OUTSIDE, "f > n: no such problem".into()));
        Heatmap {
            title,
            subtitle: self.subtitle(),
            x_label: format!("n  (input n×n{c})"),
            y_label: format!("f  (kernel f×f{c})"),
            xs: self.sizes.clone(),
            ys: self.kernels.clone(),
            cells,
            key,
            states,
        }
    }
}

/// Whole decades covering every measured time, as log10 bounds.
fn decades(results: &Results<'_>) -> (f64, f64) {
    let times = results.by_cell.values().filter_map(|r| r.seconds);
    let (lo, hi) = times.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), s| {
        (lo.min(s), hi.max(s))
    });
    if !lo.is_finite() {
        return (-6.0, 0.0);
    }
    let (lo, hi) = (lo.log10().floor(), hi.log10().ceil());
    (lo, if hi > lo { hi } else { lo + 1.0 })
}

fn time_bar(lo: f64, hi: f64) -> ColourBar {
    let span = hi - lo;
    let every = if span > 8.0 { 2 } else { 1 };
    let ticks = (0..=span as usize)
        .step_by(every)
        .map(|d| (d as f64 / span, format_seconds(10f64.powf(lo + d as f64))))
        .collect();
    ColourBar {
        title: "seconds per call".into(),
        scale: VIRIDIS,
        ticks,
    }
}

fn state_paint(r: Option<&Record>) -> Paint {
    let colour = match r.map(|r| r.status) {
        Some(Status::Refused) => REFUSED,
        Some(Status::Mismatch | Status::Failed) => WRONG,
        _ => SKIPPED,
    };
    Paint { colour, text: None }
}

fn states(skipped: &str, refused: bool, wrong: bool) -> Vec<(RGBColor, String)> {
    let mut s = vec![(SKIPPED, skipped.to_string())];
    if refused {
        s.push((REFUSED, "refused by the method".into()));
    }
    if wrong {
        s.push((WRONG, "wrong result or error".into()));
    }
    s
}

/// The time map of one method.
pub fn time_map(results: &Results<'_>, method: Method) -> Heatmap {
    let (lo, hi) = decades(results);
    let paint = |cell: Cell| {
        let r = results.get(cell, method);
        match r.filter(|r| r.status == Status::Ok).and_then(|r| r.seconds) {
            Some(s) => Paint {
                colour: VIRIDIS.at((s.log10() - lo) / (hi - lo)),
                text: Some(format_seconds(s)),
            },
            None => state_paint(r),
        }
    };
    let title = match method {
        Method::Auto => "auto (the planner's choice): time per call".to_string(),
        m => format!("{}: time per call", m.name()),
    };
    let key = Key::Bar(time_bar(lo, hi));
    results.frame(
        title,
        key,
        states("skipped (over budget)", true, true),
        paint,
    )
}

/// Which method is fastest in each cell.
pub fn fastest_map(results: &Results<'_>) -> Heatmap {
    let mut wins: HashMap<Method, usize> = HashMap::new();
    for cell in results.cells() {
        if let Some((m, _)) = results.fastest(cell) {
            *wins.entry(m).or_default() += 1;
        }
    }
    let paint = |cell: Cell| match results.fastest(cell) {
        Some((m, _)) => Paint {
            colour: method_colour(m),
            text: Some(m.name().to_string()),
        },
        None => Paint {
            colour: SKIPPED,
            text: None,
        },
    };
    let entries = results
        .methods
        .iter()
        .filter(|&&m| m != Method::Auto)
        .map(|&m| {
            (
                method_colour(m),
                format!(
                    "{} ({} cells)",
                    m.name(),
                    wins.get(&m).copied().unwrap_or(0)
                ),
            )
        })
        .collect();
    let key = Key::Legend {
        title: "fastest method".into(),
        entries,
    };
    results.frame(
        "Fastest method".into(),
        key,
        states("no method measured", false, false),
        paint,
    )
}

/// `auto`'s time over the fastest method's time, cell by cell; the text is what `auto` chose.
pub fn auto_map(results: &Results<'_>) -> Heatmap {
    let top = WORST_RATIO_SHOWN.ln();
    let paint = |cell: Cell| match results.auto_ratio(cell) {
        Some((ratio, chosen, _)) => Paint {
            colour: YELLOW_RED.at(ratio.ln() / top),
            text: Some(chosen.name().to_string()),
        },
        None => Paint {
            colour: SKIPPED,
            text: None,
        },
    };
    let ticks = [1.0, 1.1, 1.25, 1.5, 2.0, WORST_RATIO_SHOWN]
        .iter()
        .map(|&r: &f64| {
            (
                r.ln() / top,
                if r == WORST_RATIO_SHOWN {
                    format!("≥ {r}×")
                } else {
                    format!("{r}×")
                },
            )
        })
        .collect();
    let key = Key::Bar(ColourBar {
        title: "auto time / best time".into(),
        scale: YELLOW_RED,
        ticks,
    });
    let title = "auto versus the fastest method (text: what auto chose)".to_string();
    results.frame(title, key, states("not measured", false, false), paint)
}

/// File name of a method's time map.
pub fn time_map_file(method: Method) -> String {
    format!("time_{}.png", method.name())
}

/// Draw every figure into `dir`; returns the files written.
pub fn draw_all(results: &Results<'_>, dir: &Path) -> Result<Vec<PathBuf>, String> {
    let mut maps: Vec<(String, Heatmap)> = results
        .methods
        .iter()
        .map(|&m| (time_map_file(m), time_map(results, m)))
        .collect();
    maps.push(("fastest.png".into(), fastest_map(results)));
    if results.methods.contains(&Method::Auto) {
        maps.push(("auto_vs_best.png".into(), auto_map(results)));
    }
    let mut written = Vec::new();
    for (name, map) in maps {
        let path = dir.join(name);
        heatmap::draw(&map, &path)?;
        written.push(path);
    }
    Ok(written)
}
