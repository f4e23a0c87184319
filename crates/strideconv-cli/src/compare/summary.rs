//! The study's Markdown summary: where each method wins, how close `auto` comes to the
//! best, what was not measured, the checks, and memory.

use std::fmt::Write as _;

use strideconv::Method;

use super::figures::Results;
use super::format_seconds;
use super::grid::Cell;
use super::measure::{Record, Status};

/// How the study was run, for the summary's header.
#[derive(Debug)]
pub struct RunInfo {
    /// The command line, as typed.
    pub command: String,
    /// Budget per call, in seconds.
    pub budget: f64,
    /// Wall-clock seconds of the whole study.
    pub wall_seconds: f64,
}

/// The summary as Markdown.
pub fn markdown(results: &Results<'_>, records: &[Record], info: &RunInfo) -> String {
    let mut s = String::new();
    header(&mut s, results, info);
    wins(&mut s, results);
    fastest_table(&mut s, results);
    if results.methods.contains(&Method::Auto) {
        auto_section(&mut s, results);
    }
    coverage(&mut s, results, records);
    checks(&mut s, records);
    memory(&mut s, results, records);
    s
}

fn join<T: ToString>(v: &[T]) -> String {
    v.iter()
        .map(|x| x.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn header(s: &mut String, r: &Results<'_>, info: &RunInfo) {
    let p = r.preset;
    let _ = writeln!(s, "# strideconv compare: {}\n", p.name());
    let _ = writeln!(
        s,
        "{}; float64 data uniform in [-1, 1); {} thread(s) per call. Every result is checked \
         against another method before it is timed; times are the best of repeated calls \
         after a warm-up. A method is skipped on a cell when one call is predicted to take \
         longer than {} (cost model, corrected by the calls measured so far).\n",
        p.describe(),
        r.threads,
        format_seconds(info.budget)
    );
    let _ = writeln!(s, "- command: `{}`", info.command);
    let _ = writeln!(s, "- n: {}", join(&r.sizes));
    let _ = writeln!(s, "- f: {} (only f ≤ n)", join(&r.kernels));
    let _ = writeln!(
        s,
        "- cells: {}; study time: {:.0} s\n",
        r.cells().len(),
        info.wall_seconds
    );
}

/// The f values of `fs` (indices into the kernel axis) as runs: `1–3, 7, 768–1024`.
fn runs(kernels: &[usize], indices: &[usize]) -> String {
    let mut parts = Vec::new();
    let mut i = 0;
    while i < indices.len() {
        let mut j = i;
        while j + 1 < indices.len() && indices[j + 1] == indices[j] + 1 {
            j += 1;
        }
        let (a, b) = (kernels[indices[i]], kernels[indices[j]]);
        parts.push(if i == j {
            a.to_string()
        } else {
            format!("{a}–{b}")
        });
        i = j + 1;
    }
    parts.join(", ")
}

/// Where `method` is fastest: per n, the runs of f.
fn where_wins(r: &Results<'_>, method: Method) -> (usize, String) {
    let mut total = 0;
    let mut parts = Vec::new();
    for &n in &r.sizes {
        let idx: Vec<usize> = (0..r.kernels.len())
            .filter(|&j| {
                r.kernels[j] <= n
                    && r.fastest(Cell { n, f: r.kernels[j] })
                        .is_some_and(|(m, _)| m == method)
            })
            .collect();
        if !idx.is_empty() {
            total += idx.len();
            parts.push(format!("n={n}: f {}", runs(&r.kernels, &idx)));
        }
    }
    (total, parts.join("; "))
}

fn wins(s: &mut String, r: &Results<'_>) {
    let _ = writeln!(s, "## Where each method wins\n");
    let _ = writeln!(
        s,
        "| method | cells won | where (f values per n) |\n|---|---:|---|"
    );
    for &m in r.methods.iter().filter(|&&m| m != Method::Auto) {
        let (total, text) = where_wins(r, m);
        let _ = writeln!(
            s,
            "| {} | {total} | {} |",
            m.name(),
            if text.is_empty() { "—".into() } else { text }
        );
    }
    let _ = writeln!(s);
}

fn fastest_table(s: &mut String, r: &Results<'_>) {
    let _ = writeln!(s, "## Fastest method per cell\n");
    let _ = writeln!(s, "Rows f, columns n (the map `fastest.png` as text).\n");
    let _ = writeln!(
        s,
        "| f \\ n | {} |",
        r.sizes
            .iter()
            .map(|n| n.to_string())
            .collect::<Vec<_>>()
            .join(" | ")
    );
    let _ = writeln!(s, "|---:|{}", "---|".repeat(r.sizes.len()));
    for &f in &r.kernels {
        let row: Vec<String> = r
            .sizes
            .iter()
            .map(|&n| match (f <= n, r.fastest(Cell { n, f })) {
                (false, _) => String::new(),
                (true, Some((m, _))) => m.name().to_string(),
                (true, None) => "·".to_string(),
            })
            .collect();
        let _ = writeln!(s, "| {f} | {} |", row.join(" | "));
    }
    let _ = writeln!(s);
}

fn auto_section(s: &mut String, r: &Results<'_>) {
    let _ = writeln!(s, "## auto against the fastest method\n");
    let mut ratios: Vec<(f64, Cell, Method, Method)> = r
        .cells()
        .into_iter()
        .filter_map(|c| r.auto_ratio(c).map(|(q, chose, best)| (q, c, chose, best)))
        .collect();
    if ratios.is_empty() {
        let _ = writeln!(s, "No cell has both auto and another method measured.\n");
        return;
    }
    ratios.sort_by(|a, b| a.0.total_cmp(&b.0));
    let count = ratios.len();
    let within = |limit: f64| ratios.iter().filter(|q| q.0 <= limit).count();
    let same = ratios.iter().filter(|q| q.2 == q.3).count();
    let median = ratios[count / 2].0;
    let (worst, cell, chose, best) = ratios[count - 1];
    let pct = |k: usize| 100.0 * k as f64 / count as f64;
    let _ = writeln!(
        s,
        "- cells with auto and the fastest method measured: {count}"
    );
    let _ = writeln!(
        s,
        "- auto chose the fastest method: {same} ({:.0}%)",
        pct(same)
    );
    let _ = writeln!(
        s,
        "- auto within 10% of the fastest: {} ({:.0}%)",
        within(1.1),
        pct(within(1.1))
    );
    let _ = writeln!(
        s,
        "- auto within 50% of the fastest: {} ({:.0}%)",
        within(1.5),
        pct(within(1.5))
    );
    let _ = writeln!(s, "- median ratio {median:.2}; worst {worst:.2} at n={}, f={} (auto chose {}, {} was fastest)", cell.n, cell.f, chose, best);
    // The same comparison by the choice alone: the chosen method's own timing against the
    // fastest's, so that two timings of one computation (auto and the method it runs) do
    // not count their noise as a planner's miss.
    let choices: Vec<f64> = r
        .cells()
        .into_iter()
        .filter_map(|c| r.choice_ratio(c))
        .collect();
    if !choices.is_empty() {
        let good = choices.iter().filter(|&&q| q <= 1.1).count();
        let worst = choices.iter().copied().fold(1.0, f64::max);
        let _ = writeln!(
            s,
            "- the method auto chose, timed as itself, within 10% of the fastest: {good} of {} \
             ({:.0}%); worst {worst:.2}",
            choices.len(),
            100.0 * good as f64 / choices.len() as f64
        );
    }
    let _ = writeln!(s);
}

fn coverage(s: &mut String, r: &Results<'_>, records: &[Record]) {
    let _ = writeln!(s, "## What was measured\n");
    let _ = writeln!(
        s,
        "| method | ok | skipped | refused | wrong or failed |\n|---|---:|---:|---:|---:|"
    );
    for &m in &r.methods {
        let count = |st: &[Status]| {
            records
                .iter()
                .filter(|x| x.method == m && st.contains(&x.status))
                .count()
        };
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} |",
            m.name(),
            count(&[Status::Ok]),
            count(&[Status::Skipped]),
            count(&[Status::Refused]),
            count(&[Status::Mismatch, Status::Failed])
        );
    }
    let mut reasons: Vec<(Method, &str)> = records
        .iter()
        .filter(|x| x.status == Status::Refused)
        .map(|x| (x.method, x.note.as_str()))
        .collect();
    reasons.sort_by_key(|&(m, why)| (m.name(), why));
    reasons.dedup();
    for (m, why) in reasons {
        let _ = writeln!(s, "\n{} refused: {why}", m.name());
    }
    let _ = writeln!(s);
}

fn checks(s: &mut String, records: &[Record]) {
    let _ = writeln!(s, "## Checks\n");
    let bad: Vec<&Record> = records
        .iter()
        .filter(|x| matches!(x.status, Status::Mismatch | Status::Failed))
        .collect();
    let checked = records.iter().filter(|x| x.max_abs_err.is_some()).count();
    let largest = records
        .iter()
        .filter(|x| x.status == Status::Ok)
        .filter_map(|x| x.max_abs_err)
        .fold(0.0, f64::max);
    if bad.is_empty() {
        let _ = writeln!(s, "All {checked} checked results agreed with their reference (largest difference {largest:.1e}).\n");
        return;
    }
    let _ = writeln!(s, "{} results were wrong or failed:\n", bad.len());
    for x in bad {
        let _ = writeln!(
            s,
            "- {} at n={}, f={}: {} ({})",
            x.method.name(),
            x.cell.n,
            x.cell.f,
            x.status.name(),
            x.note
        );
    }
    let _ = writeln!(s);
}

fn mib(bytes: usize) -> String {
    format!("{:.2} MiB", bytes as f64 / (1 << 20) as f64)
}

fn memory(s: &mut String, r: &Results<'_>, records: &[Record]) {
    let _ = writeln!(s, "## Peak extra memory\n");
    let _ = writeln!(
        s,
        "Heap bytes a call needs beyond those live before it, its output included.\n"
    );
    let _ = writeln!(s, "| method | largest peak | at |\n|---|---:|---|");
    for &m in &r.methods {
        let top = records
            .iter()
            .filter(|x| x.method == m)
            .filter_map(|x| x.peak_bytes.map(|b| (b, x.cell)))
            .max_by_key(|p| p.0);
        match top {
            Some((b, c)) => {
                let _ = writeln!(s, "| {} | {} | n={}, f={} |", m.name(), mib(b), c.n, c.f);
            }
            None => {
                let _ = writeln!(s, "| {} | — | |", m.name());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::grid::Preset;
    use super::*;

    #[test]
    fn runs_join_consecutive_indices() {
        let k = [1, 2, 3, 5, 7, 9];
        assert_eq!(runs(&k, &[0, 1, 2, 4]), "1–3, 7");
        assert_eq!(runs(&k, &[5]), "9");
        assert_eq!(runs(&k, &[]), "");
    }

    fn timed(cell: Cell, method: Method, chosen: Method, seconds: f64) -> Record {
        Record {
            cell,
            method,
            chosen: Some(chosen),
            status: Status::Ok,
            seconds: Some(seconds),
            peak_bytes: None,
            runs: 3,
            max_abs_err: None,
            predicted: None,
            note: String::new(),
        }
    }

    #[test]
    fn auto_is_judged_by_its_timing_and_by_its_choice() {
        use Method::{Auto, Direct, Fft};
        let (a, b) = (Cell { n: 64, f: 3 }, Cell { n: 64, f: 5 });
        let records = [
            // Chose the fastest, but its own timing read 1.2× slower.
            timed(a, Direct, Direct, 1.0),
            timed(a, Fft, Fft, 1.05),
            timed(a, Auto, Direct, 1.2),
            // Chose a method twice as slow as the fastest.
            timed(b, Direct, Direct, 1.0),
            timed(b, Fft, Fft, 2.0),
            timed(b, Auto, Fft, 2.0),
        ];
        let r = Results::new(Preset::Seed2d, 2, vec![Direct, Fft, Auto], &records);
        assert_eq!(r.choice_ratio(a), Some(1.0));
        assert_eq!(r.choice_ratio(b), Some(2.0));
        let mut s = String::new();
        auto_section(&mut s, &r);
        assert!(s.contains("auto within 10% of the fastest: 0 (0%)"), "{s}");
        assert!(
            s.contains("timed as itself, within 10% of the fastest: 1 of 2 (50%); worst 2.00"),
            "{s}"
        );
    }
}
