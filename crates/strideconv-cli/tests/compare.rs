//! `strideconv compare`, run as a user runs it: tiny grids of every preset, and bad arguments.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

const METHODS: [&str; 8] = [
    "naive",
    "im2col",
    "shift_add",
    "fft_full",
    "fft",
    "direct",
    "winograd",
    "auto",
];
const HEADER: &str = "preset,n,f,c,stride,method,seconds,peak_bytes,status";

fn strideconv(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_strideconv"))
        .args(args)
        .output()
        .expect("the binary runs")
}

/// A fresh directory for one test's output.
fn out_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("compare-tests")
        .join(name);
    let _ = fs::remove_dir_all(&dir);
    dir
}

/// Split one CSV line, honouring double quotes.
fn fields(line: &str) -> Vec<String> {
    let (mut out, mut field, mut quoted) = (Vec::new(), String::new(), false);
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => out.push(std::mem::take(&mut field)),
            _ => field.push(c),
        }
    }
    out.push(field);
    out
}

/// Rows of the CSV as column name -> value maps, after checking the header.
fn read_csv(path: &Path) -> Vec<Vec<(String, String)>> {
    let text = fs::read_to_string(path).expect("results.csv exists");
    let mut lines = text.lines();
    let header = lines.next().expect("a header");
    assert!(header.starts_with(HEADER), "header {header:?}");
    let names = fields(header);
    lines
        .map(|l| {
            let row = fields(l);
            assert_eq!(row.len(), names.len(), "row {l:?}");
            names.iter().cloned().zip(row).collect()
        })
        .collect()
}

fn get<'a>(row: &'a [(String, String)], name: &str) -> &'a str {
    &row.iter()
        .find(|(k, _)| k == name)
        .unwrap_or_else(|| panic!("no column {name}"))
        .1
}

/// Decode a PNG completely (every chunk's CRC and the image data) and return its size.
fn png_size(path: &Path) -> (u32, u32) {
    let file = File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut reader = png::Decoder::new(BufReader::new(file))
        .read_info()
        .expect("a PNG header");
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader
        .next_frame(&mut buf)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (info.width, info.height)
}

fn assert_pngs(dir: &Path, methods: &[&str]) {
    let mut names: Vec<String> = methods.iter().map(|m| format!("time_{m}.png")).collect();
    names.push("fastest.png".into());
    if methods.contains(&"auto") {
        names.push("auto_vs_best.png".into());
    }
    for name in &names {
        let (w, h) = png_size(&dir.join(name));
        assert!(w >= 600 && h >= 400, "{name} is {w}x{h}");
    }
    let found = fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "png")
        })
        .count();
    assert_eq!(found, names.len(), "PNG files in {}", dir.display());
}

/// Run a preset on n ∈ {8, 12}, f ∈ {1, 3, 12, 40}: the cells (8,1), (8,3), (12,1), (12,3),
/// (12,12); f = 40 fits no input and is left out.
fn tiny_study(preset: &str, channels: &str, stride: &str) {
    let dir = out_dir(preset);
    let out = strideconv(&[
        "compare",
        "--preset",
        preset,
        "--sizes",
        "12,8",
        "--kernels",
        "1,3,12,40",
        "--budget",
        "5",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows = read_csv(&dir.join("results.csv"));
    assert_eq!(rows.len(), 5 * METHODS.len());
    let cells: BTreeSet<(usize, usize)> = rows
        .iter()
        .map(|r| (get(r, "n").parse().unwrap(), get(r, "f").parse().unwrap()))
        .collect();
    assert_eq!(
        cells,
        BTreeSet::from([(8, 1), (8, 3), (12, 1), (12, 3), (12, 12)])
    );
    for r in &rows {
        assert_eq!(
            (get(r, "preset"), get(r, "c"), get(r, "stride")),
            (preset, channels, stride)
        );
        let method = get(r, "method");
        assert!(METHODS.contains(&method), "method {method}");
        if method == "winograd" {
            assert_eq!(get(r, "status"), "refused");
            continue;
        }
        assert_eq!(get(r, "status"), "ok", "{r:?}");
        assert!(get(r, "seconds").parse::<f64>().unwrap() > 0.0);
        get(r, "peak_bytes")
            .parse::<usize>()
            .expect("peak bytes are counted");
        assert!(get(r, "max_abs_err").parse::<f64>().unwrap() < 1e-9);
    }
    assert_pngs(&dir, &METHODS);
    let summary = fs::read_to_string(dir.join("summary.md")).unwrap();
    assert!(summary.contains(&format!("# strideconv compare: {preset}")));
    assert!(summary.contains("agreed with their reference"));
}

#[test]
fn seed_2d_on_a_tiny_grid() {
    tiny_study("seed-2d", "1", "2");
}

#[test]
fn seed_3d_c5_s2_on_a_tiny_grid() {
    tiny_study("seed-3d-c5-s2", "5", "2");
}

#[test]
fn seed_3d_c10_s5_on_a_tiny_grid() {
    tiny_study("seed-3d-c10-s5", "10", "5");
}

#[test]
fn chosen_methods_and_threads() {
    let dir = out_dir("methods");
    let out = strideconv(&[
        "compare",
        "--sizes",
        "16",
        "--kernels",
        "2,16",
        "--methods",
        "auto,direct",
        "--threads",
        "1",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows = read_csv(&dir.join("results.csv"));
    let methods: Vec<&str> = rows.iter().map(|r| get(r, "method")).collect();
    assert_eq!(methods, ["direct", "auto", "direct", "auto"]);
    assert!(rows.iter().all(|r| get(r, "threads") == "1"));
    assert_pngs(&dir, &["direct", "auto"]);
}

#[test]
fn a_tiny_budget_skips_and_says_so() {
    let dir = out_dir("budget");
    let out = strideconv(&[
        "compare",
        "--sizes",
        "64",
        "--kernels",
        "9",
        "--methods",
        "naive,fft",
        "--budget",
        "1e-12",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows = read_csv(&dir.join("results.csv"));
    assert_eq!(rows.len(), 2);
    for r in &rows {
        assert_eq!(get(r, "status"), "skipped");
        assert_eq!(get(r, "seconds"), "");
        assert!(get(r, "note").contains("over the budget"), "{r:?}");
    }
    assert_pngs(&dir, &["naive", "fft"]);
}

/// The command fails, writes nothing, and says what was wrong.
fn fails_with(args: &[&str], expected: &[&str]) {
    static CALLS: AtomicUsize = AtomicUsize::new(0);
    let dir = out_dir(&format!("bad-{}", CALLS.fetch_add(1, Ordering::Relaxed)));
    let mut all = vec!["compare", "--out", dir.to_str().unwrap()];
    all.extend_from_slice(args);
    let out = strideconv(&all);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{args:?} succeeded");
    for e in expected {
        assert!(err.contains(e), "{args:?}: stderr {err:?} lacks {e:?}");
    }
    assert!(!dir.exists(), "{args:?} wrote output");
}

#[test]
fn an_unknown_preset_is_refused() {
    fails_with(
        &["--preset", "seed-4d"],
        &[
            "--preset",
            "seed-4d",
            "seed-2d, seed-3d-c5-s2, seed-3d-c10-s5",
        ],
    );
}

#[test]
fn kernels_larger_than_every_input_are_refused() {
    fails_with(
        &["--sizes", "8,16", "--kernels", "17,32"],
        &["no cell", "17,32", "8,16", "f must be at most n"],
    );
}

#[test]
fn empty_and_malformed_lists_are_refused() {
    fails_with(&["--sizes", ""], &["--sizes", "empty"]);
    fails_with(&["--kernels", ","], &["--kernels", "empty"]);
    fails_with(&["--methods", ""], &["--methods", "empty"]);
    fails_with(
        &["--sizes", "64,0"],
        &["--sizes", "'0' is not a positive integer"],
    );
    fails_with(&["--kernels", "3,five"], &["--kernels", "'five'"]);
    fails_with(
        &["--methods", "direct,fastest"],
        &["--methods", "'fastest'"],
    );
}

#[test]
fn bad_numbers_are_refused() {
    fails_with(&["--threads", "0"], &["--threads"]);
    fails_with(&["--budget", "0"], &["--budget"]);
    fails_with(&["--budget=-1"], &["--budget"]);
    fails_with(&["--budget", "NaN"], &["--budget"]);
    fails_with(&["--sizes", "100000"], &["--sizes", "GiB"]);
}
