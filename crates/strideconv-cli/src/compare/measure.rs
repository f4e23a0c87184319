//! Running one cell: plan every method, check every result against a reference, then time
//! and measure memory for the methods that agree.

use std::collections::HashMap;
use std::time::Instant;

use ndarray::ArrayD;
use strideconv::{memory, Error, Method, Plan};

use super::grid::{Cell, Preset, Problem};
use super::progress::Progress;

/// Timed repeats stop once they add up to this many seconds...
const TARGET_SECONDS: f64 = 0.05;
/// ...or after this many calls, but not before this many.
const MAX_REPEATS: usize = 200;
const MIN_REPEATS: usize = 2;
/// Calls shorter than this get an untimed warm-up call before timing.
const WARM_UP_BELOW: f64 = 0.05;
/// Calls shorter than this are mostly overhead and say little about larger cells.
const CALIBRATE_ABOVE: f64 = 2e-3;

/// Order in which methods serve as the reference for the others: the definition first.
const REFERENCE_ORDER: [Method; 8] = [
    Method::Naive,
    Method::Direct,
    Method::Im2col,
    Method::ShiftAdd,
    Method::Fft,
    Method::FftFull,
    Method::Winograd,
    Method::Auto,
];

/// What happened to one method on one cell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Checked against the reference and timed.
    Ok,
    /// Not run: its predicted time per call exceeds the budget.
    Skipped,
    /// The method cannot compute this problem.
    Refused,
    /// Its result differs from the reference beyond the tolerance (not timed).
    Mismatch,
    /// Planning or executing returned an error.
    Failed,
}

impl Status {
    /// The name in the CSV.
    pub fn name(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Skipped => "skipped",
            Status::Refused => "refused",
            Status::Mismatch => "mismatch",
            Status::Failed => "failed",
        }
    }
}

/// One method on one cell: one row of the results.
#[derive(Clone, Debug)]
pub struct Record {
    /// The grid point.
    pub cell: Cell,
    /// The method asked for (may be `Auto`).
    pub method: Method,
    /// The method that ran (what `auto` chose; the method itself otherwise).
    pub chosen: Option<Method>,
    /// Outcome.
    pub status: Status,
    /// Best time of one call, in seconds.
    pub seconds: Option<f64>,
    /// Peak heap bytes during a call beyond those live before it (the output included).
    pub peak_bytes: Option<usize>,
    /// Timed calls.
    pub runs: usize,
    /// Largest absolute difference from the reference.
    pub max_abs_err: Option<f64>,
    /// Predicted seconds per call that the budget was compared with.
    pub predicted: Option<f64>,
    /// Why it was skipped, refused or failed, or what it was checked against.
    pub note: String,
}

impl Record {
    fn new(cell: Cell, method: Method, status: Status, note: impl Into<String>) -> Self {
        Record {
            cell,
            method,
            chosen: None,
            status,
            seconds: None,
            peak_bytes: None,
            runs: 0,
            max_abs_err: None,
            predicted: None,
            note: note.into(),
        }
    }
}

/// How the study runs every cell.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The methods to run, `Auto` included when asked for.
    pub methods: Vec<Method>,
    /// Threads per call (`None`: all cores).
    pub threads: Option<usize>,
    /// Longest predicted seconds per call that still runs.
    pub budget: f64,
}

/// Predicts seconds per call from the cost model, corrected by what was measured so far.
#[derive(Debug, Default)]
struct Predictor {
    /// Measured over modelled time of the latest call long enough to say, per method run.
    ratio: HashMap<Method, f64>,
    /// Per (method asked for, f): the smallest n at which a call took longer than the
    /// budget. Time grows with n at fixed f, so larger n are skipped without asking.
    over_budget: HashMap<(Method, usize), usize>,
}

impl Predictor {
    fn predict(&self, ran: Method, modelled: f64) -> f64 {
        modelled * self.ratio.get(&ran).copied().unwrap_or(1.0)
    }

    fn too_slow_before(&self, asked: Method, cell: Cell) -> Option<usize> {
        self.over_budget
            .get(&(asked, cell.f))
            .copied()
            .filter(|&n| n <= cell.n)
    }

    fn learn(
        &mut self,
        asked: Method,
        ran: Method,
        cell: Cell,
        modelled: f64,
        measured: f64,
        budget: f64,
    ) {
        if measured >= CALIBRATE_ABOVE && modelled > 0.0 {
            self.ratio.insert(ran, measured / modelled);
        }
        if measured > budget {
            let n = self.over_budget.entry((asked, cell.f)).or_insert(cell.n);
            *n = (*n).min(cell.n);
        }
    }
}

/// A method that was planned and has run once, waiting to be checked and timed.
struct Candidate {
    slot: usize,
    plan: Plan<f64>,
    modelled: f64,
    output: ArrayD<f64>,
    first_seconds: f64,
    first_peak: usize,
}

/// Runs cells one after another, learning from each to predict the next.
#[derive(Debug)]
pub struct Runner {
    settings: Settings,
    predictor: Predictor,
}

impl Runner {
    /// A runner with nothing measured yet.
    pub fn new(settings: Settings) -> Self {
        Runner {
            settings,
            predictor: Predictor::default(),
        }
    }

    /// Every method on one cell, one record each, in the order of `settings.methods`.
    pub fn run_cell(&mut self, preset: Preset, cell: Cell, progress: &Progress) -> Vec<Record> {
        let problem = Problem::new(preset, cell);
        let (x, k) = problem.data(seed_of(cell));
        let mut records: Vec<Record> = Vec::with_capacity(self.settings.methods.len());
        let mut candidates = Vec::new();
        for (slot, &method) in self.settings.methods.iter().enumerate() {
            progress.method(method, "checking");
            let (record, candidate) = self.plan_and_run_once(&problem, cell, method, slot, &x, &k);
            records.push(record);
            candidates.extend(candidate);
        }
        check(&problem, &mut records, &mut candidates);
        candidates.retain(|c| records[c.slot].status == Status::Ok);
        for c in &mut candidates {
            c.output = ArrayD::zeros(ndarray::IxDyn(&[0]));
        }
        for c in &candidates {
            progress.method(records[c.slot].method, "timing");
        }
        let timed = time_calls(&candidates, &x, &k);
        for (c, (seconds, runs, peak)) in candidates.iter().zip(timed) {
            let record = &mut records[c.slot];
            record.seconds = Some(seconds);
            record.runs = runs;
            record.peak_bytes = Some(peak.max(c.first_peak));
            self.predictor.learn(
                record.method,
                c.plan.method(),
                cell,
                c.modelled,
                seconds,
                self.settings.budget,
            );
        }
        records
    }

    /// Plan `method`; unless it refuses or is predicted too slow, run it once for the check.
    fn plan_and_run_once(
        &self,
        problem: &Problem,
        cell: Cell,
        method: Method,
        slot: usize,
        x: &ArrayD<f64>,
        k: &ArrayD<f64>,
    ) -> (Record, Option<Candidate>) {
        let threads = self.settings.threads;
        let planned = problem
            .spec()
            .map_err(PlanError::Other)
            .and_then(|s| Plan::<f64>::new(s, method, threads).map_err(plan_error));
        let plan = match planned {
            Ok(plan) => plan,
            Err(e) => return (e.record(cell, method), None),
        };
        let mut record = Record::new(cell, method, Status::Ok, "");
        record.chosen = Some(plan.method());
        let modelled = modelled_seconds(&plan);
        let predicted = self.predictor.predict(plan.method(), modelled);
        record.predicted = Some(predicted);
        if let Some(n0) = self.predictor.too_slow_before(method, cell) {
            record.status = Status::Skipped;
            record.note = format!("a call took longer than the budget at n={n0}, f={}", cell.f);
            return (record, None);
        }
        if predicted > self.settings.budget {
            record.status = Status::Skipped;
            record.note = format!(
                "predicted {} per call, over the budget",
                super::format_seconds(predicted)
            );
            return (record, None);
        }
        let (output, first_seconds, first_peak) = measured_call(&plan, x, k);
        match output {
            Ok(output) => {
                let candidate = Candidate {
                    slot,
                    plan,
                    modelled,
                    output,
                    first_seconds,
                    first_peak,
                };
                (record, Some(candidate))
            }
            Err(e) => {
                record.status = Status::Failed;
                record.note = e.to_string();
                (record, None)
            }
        }
    }
}

/// Why a plan could not be made.
enum PlanError {
    Refused(String),
    Other(String),
}

impl PlanError {
    fn record(self, cell: Cell, method: Method) -> Record {
        match self {
            PlanError::Refused(why) => Record::new(cell, method, Status::Refused, why),
            PlanError::Other(why) => Record::new(cell, method, Status::Failed, why),
        }
    }
}

fn plan_error(e: Error) -> PlanError {
    match e {
        Error::MethodRefused { reason, .. } => PlanError::Refused(reason),
        other => PlanError::Other(other.to_string()),
    }
}

/// Predicted wall seconds the runner spends on `problem` (for the progress bar): for each
/// method under the budget, the check call, a warm-up and the timed calls.
pub fn predicted_work(problem: &Problem, settings: &Settings) -> f64 {
    let Ok(spec) = problem.spec() else { return 0.0 };
    let Ok(plan) = Plan::<f64>::new(spec, Method::Auto, settings.threads) else {
        return 0.0;
    };
    let cost = |m: Method| {
        let ran = if m == Method::Auto { plan.method() } else { m };
        plan.estimates()
            .iter()
            .find(|e| e.method == ran)
            .and_then(|e| e.cost.as_ref().ok().copied())
    };
    let calls: f64 = settings
        .methods
        .iter()
        .filter_map(|&m| cost(m))
        .filter(|&c| c <= settings.budget)
        .map(|c| c + if c < WARM_UP_BELOW { c } else { 0.0 } + repeats(c) as f64 * c)
        .sum();
    calls + 1e-3
}

/// Calls timed after a first call of `first` seconds: enough to fill [`TARGET_SECONDS`],
/// at least [`MIN_REPEATS`].
fn repeats(first: f64) -> usize {
    ((TARGET_SECONDS / first.max(1e-9)).ceil() as usize).clamp(MIN_REPEATS, MAX_REPEATS)
}

/// Seconds the library's cost model gives for the method the plan runs.
fn modelled_seconds(plan: &Plan<f64>) -> f64 {
    plan.estimates()
        .iter()
        .find(|e| e.method == plan.method())
        .and_then(|e| e.cost.as_ref().ok().copied())
        .unwrap_or(0.0)
}

/// Different data for every cell, the same on every run of the study.
fn seed_of(cell: Cell) -> u64 {
    (cell.n as u64) << 32 | cell.f as u64
}

/// One call: its result, its seconds, and the heap bytes it needed beyond those live before.
fn measured_call(
    plan: &Plan<f64>,
    x: &ArrayD<f64>,
    k: &ArrayD<f64>,
) -> (strideconv::Result<ArrayD<f64>>, f64, usize) {
    let before = memory::current_bytes();
    memory::reset_peak();
    let start = Instant::now();
    let output = plan.execute(x.view(), k.view());
    let seconds = start.elapsed().as_secs_f64();
    let peak = memory::peak_bytes().saturating_sub(before);
    (output, seconds, peak)
}

/// Time repeated calls of every candidate: best seconds, calls timed, and the largest peak of
/// each. The checked outputs were dropped before, so they do not count as live memory.
///
/// A short first call is discarded (cold caches, one-time set-up) and every run of calls starts
/// with an untimed warm-up; a long first call is as good as any and counts as one of the
/// samples. At least two more
/// calls are timed, so that one call slowed by other work on the machine does not decide.
fn time_calls(
    candidates: &[Candidate],
    x: &ArrayD<f64>,
    k: &ArrayD<f64>,
) -> Vec<(f64, usize, usize)> {
    // Best time, calls timed, peak bytes.
    let mut state: Vec<(f64, usize, usize)> = candidates
        .iter()
        .map(|c| {
            if c.first_seconds < WARM_UP_BELOW {
                (f64::INFINITY, 0, 0)
            } else {
                (c.first_seconds, 1, 0)
            }
        })
        .collect();
    // Four passes, the methods in order, in reverse, in order, in reverse, each method's calls
    // back to back within a pass (the steady state of a caller repeating one plan: warm
    // caches, the allocator's memory reused). A drift in the machine's state then reaches the
    // first and the last methods alike, and every method is timed both early and late; a
    // burst of other work on this shared machine (which made the same method on the same cell
    // measure up to twice as slow in one pass as in another) rarely covers all four.
    const PASSES: usize = 4;
    let n = candidates.len();
    for pass in 0..PASSES {
        for step in 0..n {
            let i = if pass % 2 == 0 { step } else { n - 1 - step };
            let (c, s) = (&candidates[i], &mut state[i]);
            if c.first_seconds < WARM_UP_BELOW {
                drop(c.plan.execute(x.view(), k.view()));
            }
            // This pass's share of the method's calls (at least one).
            let calls = repeats(c.first_seconds);
            let share = calls / PASSES + usize::from(pass < calls % PASSES);
            for _ in 0..share.max(1) {
                let (output, seconds, bytes) = measured_call(&c.plan, x, k);
                drop(output);
                s.0 = s.0.min(seconds);
                s.1 += 1;
                s.2 = s.2.max(bytes);
            }
        }
    }
    state
}

/// Largest absolute difference allowed between two methods' results: rounding grows with
/// the reduction length L (direct sums) and with log N · √L (FFT, N input points). Inputs
/// are in [-1, 1), so no further scaling is needed.
pub fn tolerance(problem: &Problem) -> f64 {
    let l = problem.reduction_len() as f64;
    let points: usize = problem.x_shape.iter().product();
    let log_n = (points as f64).log2().max(1.0);
    32.0 * f64::EPSILON * (l + log_n * l.sqrt())
}

/// Check every candidate against the reference (the first in [`REFERENCE_ORDER`]); the
/// reference itself against the next one. Mismatching candidates are dropped.
fn check(problem: &Problem, records: &mut [Record], candidates: &mut Vec<Candidate>) {
    let rank = |c: &Candidate| {
        REFERENCE_ORDER
            .iter()
            .position(|&m| m == records[c.slot].method)
            .unwrap_or(usize::MAX)
    };
    candidates.sort_by_key(rank);
    let tol = tolerance(problem);
    let outcomes: Vec<(Option<f64>, String)> = (0..candidates.len())
        .map(|i| {
            let j = if i == 0 { 1 } else { 0 };
            match candidates.get(j) {
                Some(other) => {
                    let err = max_abs_diff(&candidates[i].output, &other.output);
                    (
                        Some(err),
                        format!("checked against {}", records[other.slot].method.name()),
                    )
                }
                None => (None, "unchecked: no other method ran".to_string()),
            }
        })
        .collect();
    for (c, (err, note)) in candidates.iter().zip(outcomes) {
        let record = &mut records[c.slot];
        record.max_abs_err = err;
        record.note = note;
        if err.is_some_and(|e| e.is_nan() || e > tol) {
            record.status = Status::Mismatch;
            record.note = format!("{} (tolerance {tol:.1e})", record.note);
        }
    }
    candidates.retain(|c| records[c.slot].status == Status::Ok);
}

/// Largest |a − b|; infinite if the shapes differ, NaN if any value is NaN.
fn max_abs_diff(a: &ArrayD<f64>, b: &ArrayD<f64>) -> f64 {
    if a.shape() != b.shape() {
        return f64::INFINITY;
    }
    a.iter()
        .zip(b.iter())
        .map(|(p, q)| (p - q).abs())
        .fold(0.0, |m, d| {
            if d.is_nan() || m.is_nan() {
                f64::NAN
            } else {
                m.max(d)
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tolerance_grows_with_the_reduction() {
        let small = Problem::new(Preset::Seed2d, Cell { n: 64, f: 3 });
        let large = Problem::new(Preset::Seed2d, Cell { n: 64, f: 30 });
        assert!(tolerance(&small) < tolerance(&large));
        assert!(tolerance(&large) < 1e-9);
    }

    #[test]
    fn differences_see_nan_and_shapes() {
        let a = ndarray::arr1(&[1.0, 2.0]).into_dyn();
        let b = ndarray::arr1(&[1.0, f64::NAN]).into_dyn();
        let c = ndarray::arr1(&[1.0]).into_dyn();
        assert!(max_abs_diff(&a, &b).is_nan());
        assert_eq!(max_abs_diff(&a, &c), f64::INFINITY);
        assert_eq!(max_abs_diff(&a, &a), 0.0);
    }

    #[test]
    fn predictor_skips_larger_n_after_a_slow_call() {
        let mut p = Predictor::default();
        let cell = Cell { n: 100, f: 9 };
        p.learn(Method::Naive, Method::Naive, cell, 0.1, 0.5, 0.25);
        assert_eq!(
            p.too_slow_before(Method::Naive, Cell { n: 200, f: 9 }),
            Some(100)
        );
        assert_eq!(p.too_slow_before(Method::Naive, Cell { n: 50, f: 9 }), None);
        assert_eq!(
            p.too_slow_before(Method::Naive, Cell { n: 200, f: 10 }),
            None
        );
        assert!((p.predict(Method::Naive, 1.0) - 5.0).abs() < 1e-12);
    }
}
