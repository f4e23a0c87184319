//! `strideconv compare`: the seed's comparison study, with every method of the library.
//!
//! For each cell of a grid of input sizes n and kernel sizes f (f ≤ n) of a preset, every
//! method is planned, run once and checked against another method's result, then timed
//! (best of repeated calls) with its peak extra heap memory recorded. Methods that refuse a
//! problem are recorded as refused; methods predicted to take longer than the budget per call
//! are skipped, as the seed skipped its slow cases. Written to the output directory:
//! `results.csv` (one row per cell and method), `time_<method>.png` (one heatmap per method),
//! `fastest.png`, `auto_vs_best.png` and `summary.md`.

mod csv;
mod figures;
mod grid;
mod heatmap;
mod measure;
mod progress;
mod summary;

use std::fs;
use std::path::PathBuf;
use std::time::Instant;

use strideconv::Method;

use self::figures::Results;
use self::grid::{Cell, Preset, Problem};
use self::measure::{Record, Runner, Settings, Status};
use self::progress::Progress;

/// Default `--budget`: the longest predicted call that still runs, in seconds.
const DEFAULT_BUDGET: f64 = 0.5;
/// Inputs larger than this many bytes are refused (they would not fit in memory together
/// with the outputs of every method).
const MAX_INPUT_BYTES: usize = 4 << 30;

/// Options of `compare`.
#[derive(clap::Args, Debug)]
pub struct CompareArgs {
    /// The setup: seed-2d (n×n, f×f, stride 2), seed-3d-c5-s2 (n×n×5, f×f×5, stride 2) or
    /// seed-3d-c10-s5 (n×n×10, f×f×10, stride 5).
    #[arg(long, default_value = "seed-2d")]
    pub preset: String,
    /// Input sizes n, comma-separated [default: 16,32,64,128,256,512,1024].
    #[arg(long)]
    pub sizes: Option<String>,
    /// Kernel sizes f, comma-separated; only f ≤ n is run [default: 1,2,3,4,5,7,9,12,16,...,1024].
    #[arg(long)]
    pub kernels: Option<String>,
    /// Methods, comma-separated, `auto` included [default: every method and auto].
    #[arg(long)]
    pub methods: Option<String>,
    /// Threads per call [default: all cores].
    #[arg(long)]
    pub threads: Option<usize>,
    /// Skip a method on a cell when one call is predicted to take longer (seconds).
    #[arg(long, default_value_t = DEFAULT_BUDGET)]
    pub budget: f64,
    /// Output directory [default: compare-out/<preset>].
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// A validated study.
#[derive(Debug)]
struct Study {
    preset: Preset,
    cells: Vec<Cell>,
    settings: Settings,
    out: PathBuf,
}

impl Study {
    fn from_args(args: &CompareArgs) -> Result<Self, String> {
        let preset = Preset::parse(&args.preset)?;
        let sizes = match &args.sizes {
            Some(s) => positive_list("--sizes", s)?,
            None => preset.default_sizes(),
        };
        let kernels = match &args.kernels {
            Some(s) => positive_list("--kernels", s)?,
            None => preset.default_kernels(),
        };
        check_input_bytes(preset, &sizes)?;
        let cells = grid::cells(&sizes, &kernels);
        if cells.is_empty() {
            return Err(format!(
                "no cell to measure: every kernel size f ({}) is larger than every input size n ({}); f must be at most n",
                join(&kernels),
                join(&sizes)
            ));
        }
        let methods = match &args.methods {
            Some(s) => method_list(s)?,
            None => Method::ALL.into_iter().chain([Method::Auto]).collect(),
        };
        if args.threads == Some(0) {
            return Err("invalid --threads 0: expected at least 1".into());
        }
        if args.budget.is_nan() || args.budget <= 0.0 {
            return Err(format!(
                "invalid --budget {}: expected a positive number of seconds",
                args.budget
            ));
        }
        let out = args
            .out
            .clone()
            .unwrap_or_else(|| PathBuf::from("compare-out").join(preset.name()));
        let settings = Settings {
            methods,
            threads: args.threads,
            budget: args.budget,
        };
        Ok(Study {
            preset,
            cells,
            settings,
            out,
        })
    }

    fn threads(&self) -> usize {
        self.settings.threads.unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        })
    }
}

fn join(v: &[usize]) -> String {
    v.iter()
        .map(|x| x.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// A comma-separated list of positive integers, sorted, without repeats.
fn positive_list(flag: &str, s: &str) -> Result<Vec<usize>, String> {
    let parts: Vec<&str> = s
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    if parts.is_empty() {
        return Err(format!("invalid {flag} '{s}': the list is empty; expected comma-separated positive integers, e.g. 64,128,256"));
    }
    let mut values = Vec::with_capacity(parts.len());
    for p in parts {
        match p.parse::<usize>() {
            Ok(v) if v > 0 => values.push(v),
            _ => {
                return Err(format!(
                    "invalid {flag} '{s}': '{p}' is not a positive integer"
                ))
            }
        }
    }
    values.sort_unstable();
    values.dedup();
    Ok(values)
}

/// Method names, comma-separated, in the library's order with `auto` last.
fn method_list(s: &str) -> Result<Vec<Method>, String> {
    let mut asked = Vec::new();
    for name in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let m: Method = name.parse().map_err(|_| {
            format!("invalid --methods '{s}': unknown method '{name}'; expected auto, naive, im2col, shift_add, fft_full, fft, direct or winograd")
        })?;
        asked.push(m);
    }
    if asked.is_empty() {
        return Err(format!("invalid --methods '{s}': the list is empty; expected method names, e.g. direct,fft,auto"));
    }
    Ok(Method::ALL
        .into_iter()
        .chain([Method::Auto])
        .filter(|m| asked.contains(m))
        .collect())
}

fn check_input_bytes(preset: Preset, sizes: &[usize]) -> Result<(), String> {
    let n = sizes.iter().copied().max().unwrap_or(0);
    let bytes = n
        .saturating_mul(n)
        .saturating_mul(preset.channels().unwrap_or(1))
        .saturating_mul(8);
    if bytes > MAX_INPUT_BYTES {
        return Err(format!(
            "invalid --sizes: n = {n} needs a {:.1} GiB input; the study allows up to {} GiB",
            bytes as f64 / (1u64 << 30) as f64,
            MAX_INPUT_BYTES >> 30
        ));
    }
    Ok(())
}

/// Seconds with a unit and three significant digits: `812 ns`, `12.3 µs`, `1.5 ms`, `2 s`.
pub(crate) fn format_seconds(s: f64) -> String {
    let (value, unit) = match s {
        s if s >= 1.0 => (s, "s"),
        s if s >= 1e-3 => (s * 1e3, "ms"),
        s if s >= 1e-6 => (s * 1e6, "µs"),
        s => (s * 1e9, "ns"),
    };
    let digits = if value >= 100.0 {
        0
    } else if value >= 10.0 {
        1
    } else {
        2
    };
    let mut text = format!("{value:.digits$}");
    if text.contains('.') {
        text = text.trim_end_matches('0').trim_end_matches('.').to_string();
    }
    format!("{text} {unit}")
}

/// Run every cell, writing CSV rows as cells finish.
fn measure_all(study: &Study, csv: &mut csv::CsvWriter) -> Result<Vec<Record>, String> {
    let work: Vec<f64> = study
        .cells
        .iter()
        .map(|&c| measure::predicted_work(&Problem::new(study.preset, c), &study.settings))
        .collect();
    let progress = Progress::new(work.iter().sum(), study.cells.len());
    let mut runner = Runner::new(study.settings.clone());
    let mut records = Vec::new();
    for (i, (&cell, &w)) in study.cells.iter().zip(&work).enumerate() {
        progress.cell(i, cell);
        let rows = runner.run_cell(study.preset, cell, &progress);
        if let Err(e) = csv.write(&rows) {
            progress.finish();
            return Err(e);
        }
        records.extend(rows);
        progress.advance(w);
    }
    progress.finish();
    Ok(records)
}

/// Run the study.
pub fn run(args: &CompareArgs) -> Result<(), String> {
    let study = Study::from_args(args)?;
    fs::create_dir_all(&study.out)
        .map_err(|e| format!("cannot create {}: {e}", study.out.display()))?;
    let started = Instant::now();
    let csv_path = study.out.join("results.csv");
    let mut csv = csv::CsvWriter::create(&csv_path, study.preset, study.threads())?;
    let records = measure_all(&study, &mut csv)?;
    let results = Results::new(
        study.preset,
        study.threads(),
        study.settings.methods.clone(),
        &records,
    );
    let pictures = figures::draw_all(&results, &study.out)?;
    let info = summary::RunInfo {
        command: command_line(),
        budget: study.settings.budget,
        wall_seconds: started.elapsed().as_secs_f64(),
    };
    let summary_path = study.out.join("summary.md");
    fs::write(&summary_path, summary::markdown(&results, &records, &info))
        .map_err(|e| format!("cannot write {}: {e}", summary_path.display()))?;
    report(&study, &results, &info, pictures.len());
    let wrong = records
        .iter()
        .filter(|r| matches!(r.status, Status::Mismatch | Status::Failed))
        .count();
    if wrong > 0 {
        return Err(format!(
            "{wrong} results were wrong or failed; see {}",
            summary_path.display()
        ));
    }
    Ok(())
}

fn command_line() -> String {
    let rest: Vec<String> = std::env::args().skip(1).collect();
    format!("strideconv {}", rest.join(" "))
}

/// A few lines on stdout: what was written and who won.
fn report(study: &Study, results: &Results<'_>, info: &summary::RunInfo, pictures: usize) {
    println!(
        "{}: {} cells × {} methods in {:.0} s",
        study.preset.name(),
        study.cells.len(),
        study.settings.methods.len(),
        info.wall_seconds
    );
    println!(
        "wrote {}: results.csv, summary.md and {pictures} heatmaps",
        study.out.display()
    );
    let mut wins: Vec<(Method, usize)> = Vec::new();
    for cell in results.cells() {
        if let Some((m, _)) = results.fastest(cell) {
            match wins.iter_mut().find(|w| w.0 == m) {
                Some(w) => w.1 += 1,
                None => wins.push((m, 1)),
            }
        }
    }
    wins.sort_by_key(|w| std::cmp::Reverse(w.1));
    let text: Vec<String> = wins
        .iter()
        .map(|(m, k)| format!("{} {k}", m.name()))
        .collect();
    println!("fastest (cells won): {}", text.join(", "));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_are_validated() {
        assert_eq!(positive_list("--sizes", "128, 64,64"), Ok(vec![64, 128]));
        assert!(positive_list("--sizes", "").unwrap_err().contains("empty"));
        assert!(positive_list("--sizes", " , ")
            .unwrap_err()
            .contains("empty"));
        assert!(positive_list("--kernels", "3,0")
            .unwrap_err()
            .contains("'0'"));
        assert!(positive_list("--kernels", "3,x")
            .unwrap_err()
            .contains("'x'"));
    }

    #[test]
    fn methods_come_in_library_order() {
        assert_eq!(
            method_list("auto,fft,direct"),
            Ok(vec![Method::Fft, Method::Direct, Method::Auto])
        );
        assert!(method_list("fast").unwrap_err().contains("'fast'"));
        assert!(method_list(",").unwrap_err().contains("empty"));
    }

    #[test]
    fn seconds_read_well() {
        assert_eq!(format_seconds(1e-5), "10 µs");
        assert_eq!(format_seconds(0.00123), "1.23 ms");
        assert_eq!(format_seconds(2.0), "2 s");
        assert_eq!(format_seconds(8.12e-7), "812 ns");
        assert_eq!(format_seconds(0.25), "250 ms");
    }
}
