//! The progress bar: drawn on stderr when it is a terminal, silent otherwise.
//!
//! Progress is counted in predicted work (cost-model seconds), not in cells: cells at large
//! n take far longer than small ones, and an ETA by cell count would mislead.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use strideconv::Method;

use super::grid::Cell;

/// The study's progress bar.
#[derive(Debug)]
pub struct Progress {
    bar: ProgressBar,
    cells: usize,
}

/// Bar units: predicted microseconds.
fn units(seconds: f64) -> u64 {
    (seconds * 1e6).round().max(0.0) as u64
}

impl Progress {
    /// A bar for `cells` cells and `total_work` predicted seconds; indicatif hides it when
    /// stderr is not a terminal. No steady tick: a ticking thread would allocate while calls
    /// are being measured.
    pub fn new(total_work: f64, cells: usize) -> Self {
        let bar =
            ProgressBar::with_draw_target(Some(units(total_work)), ProgressDrawTarget::stderr());
        let style =
            ProgressStyle::with_template("[{bar:24}] {percent:>3}% ETA {eta:>3}  {prefix} {msg}")
                .expect("the template is valid")
                .progress_chars("=> ");
        bar.set_style(style);
        Progress { bar, cells }
    }

    /// Starting cell number `index` (0-based).
    pub fn cell(&self, index: usize, cell: Cell) {
        self.bar.set_prefix(format!(
            "{}/{} n={} f={}",
            index + 1,
            self.cells,
            cell.n,
            cell.f
        ));
    }

    /// Starting `phase` of `method` on the current cell.
    pub fn method(&self, method: Method, phase: &str) {
        self.bar.set_message(format!("{} {phase}", method.name()));
    }

    /// A cell predicted to take `work` seconds is done.
    pub fn advance(&self, work: f64) {
        self.bar.inc(units(work));
    }

    /// Remove the bar.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
