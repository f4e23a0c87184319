//! Fork-join on a few persistent threads, the calling thread among them.
//!
//! Every multi-threaded call splits its work into numbered parts and runs them on `threads`
//! threads: the caller and `threads − 1` workers of a team kept for that count. This replaces
//! a rayon pool because of what a fan-out costs on the machines this library is measured on
//! (2-core virtual machines): `ThreadPool::install` hands the whole call to the pool's
//! workers and puts the caller to sleep until they are done, so every call pays two
//! cross-thread wake-ups, and after the job the pool's spinning workers and the waking caller
//! are three threads on two cores. Measured here (a 2-thread job of 2 × 50 µs): `install`
//! added 35–40 µs to back-to-back calls and 80 µs to calls 300 µs apart; this team adds
//! 1–2 µs and 27 µs. The im2col layer 3×3 64→64 @56 made three such fan-outs per call.
//!
//! How it works:
//! - parts are claimed one at a time by every thread in the job, the caller from the first
//!   on and the workers from the last back (so repeated calls give a thread the same parts),
//!   and a worker that is slow to wake costs nothing: the others take its parts;
//! - the caller publishes a job by bumping an epoch that the workers watch: spinning for
//!   [`SPIN`] after their last job, then asleep on a condition variable;
//! - a worker enters a job by incrementing its entry count unless the caller has closed it
//!   (all parts claimed); the caller then waits only for the workers that entered, so a
//!   sleeping worker never delays a call, and after a `fork` (no workers) the caller runs
//!   every part itself;
//! - a call made from inside a part runs its parts in order on that thread (no nesting),
//!   and so does a call that finds its team busy with another thread's job: no more threads
//!   than asked ever compute;
//! - a panic in a part is caught, the remaining parts are skipped, and the panic resumes on
//!   the caller once every thread has left the job.
//!
//! `unsafe` here is limited to handing a job that lives on the caller's stack to the
//! workers (valid until each worker that entered it has left) and to cutting a slice into
//! disjoint pieces for parts that each run once.
#![allow(unsafe_code)]

use std::any::Any;
use std::cell::Cell;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long a worker keeps watching for the next job before it sleeps. A sleeping worker
/// takes tens of microseconds to wake here; calls repeated in a loop come far sooner.
const SPIN: Duration = Duration::from_micros(300);

/// Bit of [`Team::entry`] set when the caller closes a job.
const CLOSED: usize = 1 << (usize::BITS - 1);

/// The parts of one job, claimed one at a time: the caller takes them from the first on,
/// the workers from the last back. Where the threads keep pace the same parts fall to the
/// same thread from one call to the next, so a part's data is still in that core's cache
/// when a call is repeated on the same arrays (a shared counter dealt them out by who came
/// first). Depthwise 3×3/2 256 @28 float32 on 2 threads, Rust loop, the mean of a loop of
/// calls, best of 8 rounds interleaved: batch 1 25 → 22 µs, batch 8 188 → 176 µs; layers and
/// seed problems of 0.3–20 ms within ±3%.
pub(crate) struct Parts {
    /// Parts claimed (from either end), past `total` once they are all gone.
    taken: AtomicUsize,
    /// Parts claimed from the front, and from the back.
    front: AtomicUsize,
    back: AtomicUsize,
    total: usize,
    /// Whether workers share the job (else every part is taken from the front, in order).
    shared: bool,
}

impl Parts {
    fn new(total: usize, shared: bool) -> Self {
        Parts {
            taken: AtomicUsize::new(0),
            front: AtomicUsize::new(0),
            back: AtomicUsize::new(0),
            total,
            shared,
        }
    }

    /// The next unclaimed part, if any.
    pub(crate) fn claim(&self) -> Option<usize> {
        if self.taken.load(Ordering::Relaxed) >= self.total
            || self.taken.fetch_add(1, Ordering::Relaxed) >= self.total
        {
            return None;
        }
        // This thread is owed one part: fewer than `total` were claimed before, so the ends
        // have not met and the part it takes from its end is nobody else's.
        Some(if self.shared && WORKER.with(Cell::get) {
            self.total - 1 - self.back.fetch_add(1, Ordering::Relaxed)
        } else {
            self.front.fetch_add(1, Ordering::Relaxed)
        })
    }

    /// Leave the remaining parts unclaimed (after a panic).
    fn exhaust(&self) {
        self.taken.store(self.total, Ordering::Relaxed);
    }
}

/// What every thread of a job runs once: claim parts until none are left.
type Body<'a> = dyn Fn(&Parts) + Sync + 'a;

/// A published job: the body and its parts. Lives on the caller's stack for the call.
struct Job<'a> {
    body: &'a Body<'a>,
    parts: Parts,
    panic: Mutex<Option<Box<dyn Any + Send>>>,
}

impl Job<'_> {
    /// Run the body on this thread, keeping a panic for the caller.
    fn run(&self) {
        let was = IN_JOB.with(|c| c.replace(true));
        if let Err(p) = catch_unwind(AssertUnwindSafe(|| (self.body)(&self.parts))) {
            self.parts.exhaust();
            let mut slot = self.panic.lock().unwrap_or_else(|e| e.into_inner());
            slot.get_or_insert(p);
        }
        IN_JOB.with(|c| c.set(was));
    }
}

thread_local! {
    /// Set while this thread runs a part of a job (a nested call then runs in order).
    static IN_JOB: Cell<bool> = const { Cell::new(false) };
    /// Set on a team's workers: they claim parts from the back.
    static WORKER: Cell<bool> = const { Cell::new(false) };
}

/// The state a team's caller and workers share.
struct Team {
    /// Bumped once per published job.
    epoch: AtomicU64,
    /// The current job (type-erased `*const Job`), valid while it is open or entered.
    job: AtomicPtr<()>,
    /// Workers that entered the current job, plus [`CLOSED`] once the caller closed it.
    entry: AtomicUsize,
    /// Workers that entered the current job and have left it.
    left: AtomicUsize,
    /// Held by the thread whose job the team runs.
    busy: AtomicBool,
    /// Workers asleep (or about to be) on `wake`.
    sleepers: AtomicUsize,
    lock: Mutex<()>,
    wake: Condvar,
    /// Workers spin between jobs only when the team fits the machine's cores.
    spin: bool,
}

/// The team for `threads` threads (`threads − 1` workers), built once per count and process.
fn team(threads: usize) -> Arc<Team> {
    type Teams = Mutex<Vec<(usize, u32, Arc<Team>)>>;
    static TEAMS: OnceLock<Teams> = OnceLock::new();
    let pid = std::process::id();
    let teams = TEAMS.get_or_init(|| Mutex::new(Vec::new()));
    let mut teams = teams.lock().unwrap_or_else(|e| e.into_inner());
    // A forked child has none of its parent's workers: it gets teams of its own.
    teams.retain(|(_, p, _)| *p == pid);
    if let Some((_, _, t)) = teams.iter().find(|(n, _, _)| *n == threads) {
        return t.clone();
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let t = Arc::new(Team {
        epoch: AtomicU64::new(0),
        job: AtomicPtr::new(std::ptr::null_mut()),
        entry: AtomicUsize::new(CLOSED),
        left: AtomicUsize::new(0),
        busy: AtomicBool::new(false),
        sleepers: AtomicUsize::new(0),
        lock: Mutex::new(()),
        wake: Condvar::new(),
        spin: threads <= cores,
    });
    for i in 1..threads {
        let shared = t.clone();
        // A worker that cannot be started only means fewer threads take parts.
        let _ = std::thread::Builder::new()
            .name(format!("strideconv-{i}"))
            .spawn(move || work(&shared));
    }
    teams.push((threads, pid, t.clone()));
    t
}

/// A worker: wait for each new job, take part in it if it is still open.
fn work(team: &Team) {
    WORKER.with(|w| w.set(true));
    let mut seen = team.epoch.load(Ordering::Acquire);
    loop {
        seen = wait_for_job(team, seen);
        // Enter unless the caller has closed the job already.
        if team.entry.fetch_add(1, Ordering::AcqRel) & CLOSED != 0 {
            continue;
        }
        let job = team
            .job
            .load(Ordering::Acquire)
            .cast_const()
            .cast::<Job<'_>>();
        // SAFETY: the job was open when this worker entered it (the entry count, which the
        // caller reads when it closes the job, includes this worker), and the caller does
        // not return, so the job stays alive, until this worker has incremented `left`.
        unsafe { (*job).run() };
        team.left.fetch_add(1, Ordering::Release);
    }
}

/// Spin, then sleep, until the epoch moves past `seen`; returns the new epoch.
fn wait_for_job(team: &Team, seen: u64) -> u64 {
    if team.spin {
        let start = Instant::now();
        for spins in 1u32.. {
            let now = team.epoch.load(Ordering::Acquire);
            if now != seen {
                return now;
            }
            std::hint::spin_loop();
            if spins.is_multiple_of(256) && start.elapsed() > SPIN {
                break;
            }
        }
    }
    let mut guard = team.lock.lock().unwrap_or_else(|e| e.into_inner());
    team.sleepers.fetch_add(1, Ordering::SeqCst);
    loop {
        let now = team.epoch.load(Ordering::SeqCst);
        if now != seen {
            team.sleepers.fetch_sub(1, Ordering::SeqCst);
            return now;
        }
        guard = team.wake.wait(guard).unwrap_or_else(|e| e.into_inner());
    }
}

/// Run `body` on up to `threads` threads (this one included), each claiming parts from the
/// same `parts` until none are left; returns when every part has run. Parts run in order on
/// this thread alone when `threads` or `parts` is 1, inside another job, or while the team
/// runs another thread's job.
pub(crate) fn run(threads: usize, parts: usize, body: &(dyn Fn(&Parts) + Sync)) {
    if parts == 0 {
        return;
    }
    let serial = || body(&Parts::new(parts, false));
    if threads <= 1 || parts == 1 || IN_JOB.with(Cell::get) {
        return serial();
    }
    let team = team(threads);
    if team
        .busy
        .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
        .is_err()
    {
        return serial();
    }
    let job = Job {
        body,
        parts: Parts::new(parts, true),
        panic: Mutex::new(None),
    };
    // Publish: the job, an open entry count, then the epoch the workers watch.
    team.job.store(
        std::ptr::from_ref(&job).cast_mut().cast(),
        Ordering::Release,
    );
    team.left.store(0, Ordering::Relaxed);
    team.entry.store(0, Ordering::Release);
    team.epoch.fetch_add(1, Ordering::SeqCst);
    if team.sleepers.load(Ordering::SeqCst) > 0 {
        let _guard = team.lock.lock().unwrap_or_else(|e| e.into_inner());
        team.wake.notify_all();
    }
    job.run();
    // Every part is claimed: close the job and wait for the workers that entered it.
    let entered = team.entry.fetch_or(CLOSED, Ordering::AcqRel) & !CLOSED;
    // The workers that entered are running on cores of their own: spin, and yield only if
    // one is taking long (descheduled by the system).
    let start = Instant::now();
    let mut spins = 0u32;
    while team.left.load(Ordering::Acquire) < entered {
        spins = spins.wrapping_add(1);
        if spins < 1024 || start.elapsed() < Duration::from_micros(50) {
            std::hint::spin_loop();
        } else {
            std::thread::yield_now();
        }
    }
    team.job.store(std::ptr::null_mut(), Ordering::Relaxed);
    team.busy.store(false, Ordering::Release);
    let panic = job.panic.into_inner().unwrap_or_else(|e| e.into_inner());
    if let Some(p) = panic {
        resume_unwind(p);
    }
}

/// `f(i)` for every `i < parts`, on up to `threads` threads.
pub(crate) fn for_each(threads: usize, parts: usize, f: impl Fn(usize) + Sync) {
    for_each_init(threads, parts, || (), |(), i| f(i));
}

/// `f(state, i)` for every `i < parts`, on up to `threads` threads, each thread making its
/// `state` with `init` once, when it claims its first part.
pub(crate) fn for_each_init<S>(
    threads: usize,
    parts: usize,
    init: impl Fn() -> S + Sync,
    f: impl Fn(&mut S, usize) + Sync,
) {
    run(threads, parts, &|p: &Parts| {
        let mut state = None;
        while let Some(i) = p.claim() {
            f(state.get_or_insert_with(&init), i);
        }
    });
}

/// `[f(0), …, f(parts − 1)]`, computed on up to `threads` threads.
pub(crate) fn map<R: Send>(threads: usize, parts: usize, f: impl Fn(usize) -> R + Sync) -> Vec<R> {
    map_init(threads, parts, || (), |(), i| f(i))
}

/// [`map`] with a per-thread state made by `init`, as in [`for_each_init`].
pub(crate) fn map_init<R: Send, S>(
    threads: usize,
    parts: usize,
    init: impl Fn() -> S + Sync,
    f: impl Fn(&mut S, usize) -> R + Sync,
) -> Vec<R> {
    let mut out: Vec<Option<R>> = (0..parts).map(|_| None).collect();
    for_chunks_mut_init(threads, &mut out, 1, init, |state, i, slot| {
        slot[0] = Some(f(state, i));
    });
    out.into_iter()
        .map(|r| r.expect("every part ran"))
        .collect()
}

/// `f(item)` for every item, on up to `threads` threads.
pub(crate) fn for_items<I: Send>(threads: usize, items: Vec<I>, f: impl Fn(I) + Sync) {
    for_items_init(threads, items, || (), |(), item| f(item));
}

/// `f(state, item)` for every item, on up to `threads` threads; `state` as in
/// [`for_each_init`].
pub(crate) fn for_items_init<I: Send, S>(
    threads: usize,
    items: Vec<I>,
    init: impl Fn() -> S + Sync,
    f: impl Fn(&mut S, I) + Sync,
) {
    let mut slots: Vec<Option<I>> = items.into_iter().map(Some).collect();
    for_chunks_mut_init(threads, &mut slots, 1, init, |state, _, slot| {
        if let Some(item) = slot[0].take() {
            f(state, item);
        }
    });
}

/// `f(i, chunk)` for the consecutive `chunk`-long pieces of `data` (the last may be
/// shorter), on up to `threads` threads.
pub(crate) fn for_chunks_mut<T: Send>(
    threads: usize,
    data: &mut [T],
    chunk: usize,
    f: impl Fn(usize, &mut [T]) + Sync,
) {
    for_chunks_mut_init(threads, data, chunk, || (), |(), i, c| f(i, c));
}

/// [`for_chunks_mut`] with a per-thread state made by `init`, as in [`for_each_init`].
pub(crate) fn for_chunks_mut_init<T: Send, S>(
    threads: usize,
    data: &mut [T],
    chunk: usize,
    init: impl Fn() -> S + Sync,
    f: impl Fn(&mut S, usize, &mut [T]) + Sync,
) {
    let chunk = chunk.max(1);
    let (len, base) = (data.len(), Base(data.as_mut_ptr()));
    for_each_init(threads, len.div_ceil(chunk), init, |state, i| {
        let start = i * chunk;
        let n = chunk.min(len - start);
        // SAFETY: part `i` runs exactly once, and the parts' ranges [i·chunk, i·chunk + n)
        // are disjoint and inside `data`, which stays mutably borrowed for this call.
        let piece = unsafe { std::slice::from_raw_parts_mut(base.at(start), n) };
        f(state, i, piece);
    });
}

/// `f(state, i, a_i, b_i)` for the `i`-th `alen`-long piece of `a` and `blen`-long piece of
/// `b`, for every `i` below the smaller count of whole pieces, in parts of `group`
/// consecutive pieces, on up to `threads` threads; `state` as in [`for_each_init`].
#[allow(clippy::too_many_arguments)]
pub(crate) fn for_pairs_mut<A: Send, B: Send, S>(
    threads: usize,
    (a, alen): (&mut [A], usize),
    (b, blen): (&mut [B], usize),
    group: usize,
    init: impl Fn() -> S + Sync,
    f: impl Fn(&mut S, usize, &mut [A], &mut [B]) + Sync,
) {
    assert!(alen > 0 && blen > 0, "team: empty pieces");
    let count = (a.len() / alen).min(b.len() / blen);
    let group = group.max(1);
    let (pa, pb) = (Base(a.as_mut_ptr()), Base(b.as_mut_ptr()));
    for_each_init(threads, count.div_ceil(group), init, |state, g| {
        for i in g * group..((g + 1) * group).min(count) {
            // SAFETY: piece `i` belongs to part `i / group` alone, which runs once; the
            // pieces are disjoint and inside `a` and `b`, mutably borrowed for this call.
            let (x, y) = unsafe {
                (
                    std::slice::from_raw_parts_mut(pa.at(i * alen), alen),
                    std::slice::from_raw_parts_mut(pb.at(i * blen), blen),
                )
            };
            f(state, i, x, y);
        }
    });
}

/// A slice's base pointer, shared by the threads of a job, each using its own elements.
struct Base<T>(*mut T);

impl<T> Base<T> {
    /// Element `i` (a method, so closures capture the wrapper, not the raw pointer).
    fn at(&self, i: usize) -> *mut T {
        self.0.wrapping_add(i)
    }
}

// SAFETY: the pointer is only dereferenced for disjoint pieces of a slice of `Send` elements
// that the call borrows mutably, each piece by one thread.
unsafe impl<T: Send> Send for Base<T> {}
unsafe impl<T: Send> Sync for Base<T> {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU32;

    #[test]
    fn every_part_runs_once() {
        for threads in [1, 2, 3, 8] {
            for parts in [0, 1, 2, 5, 100] {
                let hits: Vec<AtomicU32> = (0..parts).map(|_| AtomicU32::new(0)).collect();
                for_each(threads, parts, |i| {
                    hits[i].fetch_add(1, Ordering::Relaxed);
                });
                assert!(
                    hits.iter().all(|h| h.load(Ordering::Relaxed) == 1),
                    "threads {threads}, parts {parts}"
                );
            }
        }
    }

    #[test]
    fn the_caller_claims_from_the_front_and_workers_from_the_back() {
        let caller = std::thread::current().id();
        let mut worked = 0;
        // Until workers took 20 parts (one asleep, or the team busy with another test's job,
        // leaves every part to the caller), each round checked.
        for round in 0..200 {
            if worked >= 20 {
                break;
            }
            let ran = Mutex::new(Vec::new());
            for_each(2, 200, |i| {
                let mine = std::thread::current().id() == caller;
                if !mine {
                    // A call from inside a worker's part runs its parts in order.
                    let order = Mutex::new(Vec::new());
                    for_each(2, 5, |j| order.lock().unwrap().push(j));
                    assert_eq!(order.into_inner().unwrap(), [0, 1, 2, 3, 4], "part {i}");
                }
                ran.lock().unwrap().push((i, mine));
                let start = Instant::now();
                while start.elapsed() < Duration::from_micros(20) {
                    std::hint::spin_loop();
                }
            });
            let mut ran = ran.into_inner().unwrap();
            ran.sort_unstable();
            assert_eq!(ran.len(), 200, "round {round}");
            // The caller's parts are a run from the first, the worker's the rest.
            let k = ran.iter().take_while(|&&(_, mine)| mine).count();
            assert!(
                ran[k..].iter().all(|&(_, mine)| !mine),
                "round {round}: {ran:?}"
            );
            assert!(
                ran.iter().enumerate().all(|(j, &(i, _))| i == j),
                "round {round}"
            );
            worked += 200 - k;
        }
        assert!(worked >= 20, "{worked} parts ran on a worker");
    }

    #[test]
    fn chunks_pairs_and_maps_cover_their_data() {
        let mut v = vec![0usize; 1003];
        for_chunks_mut(2, &mut v, 10, |i, c| {
            for (j, e) in c.iter_mut().enumerate() {
                *e = i * 10 + j;
            }
        });
        assert!(v.iter().enumerate().all(|(i, &e)| e == i));
        let (mut a, mut b) = (vec![0u32; 40], vec![0u64; 33]);
        for_pairs_mut(
            2,
            (&mut a, 4),
            (&mut b, 3),
            3,
            || 7u32,
            |s, i, x, y| {
                x.fill(i as u32 + *s);
                y.fill(i as u64);
            },
        );
        assert!(a
            .chunks(4)
            .enumerate()
            .all(|(i, c)| c.iter().all(|&e| e == i as u32 + 7)));
        // Ten whole pieces of `a`, so the eleventh of `b` is left alone.
        assert!(b
            .chunks(3)
            .enumerate()
            .all(|(i, c)| c.iter().all(|&e| e == (i % 10) as u64)));
        assert_eq!(
            map(2, 50, |i| i * i),
            (0..50).map(|i| i * i).collect::<Vec<_>>()
        );
        let sum = AtomicUsize::new(0);
        for_items(2, (1..=20).collect(), |i: usize| {
            sum.fetch_add(i, Ordering::Relaxed);
        });
        assert_eq!(sum.into_inner(), 210);
    }

    #[test]
    fn nested_and_concurrent_calls_complete() {
        let total = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..200 {
                        for_each(2, 4, |_| {
                            for_each(2, 3, |_| {
                                total.fetch_add(1, Ordering::Relaxed);
                            });
                        });
                    }
                });
            }
        });
        assert_eq!(total.into_inner(), 4 * 200 * 4 * 3);
    }

    #[test]
    fn a_panic_reaches_the_caller_and_the_team_recovers() {
        for round in 0..3 {
            let caught = catch_unwind(|| {
                for_each(2, 64, |i| {
                    if i == 40 {
                        panic!("part {i} fails");
                    }
                });
            });
            let p = caught.expect_err("the panic must reach the caller");
            let text = p.downcast_ref::<String>().cloned().unwrap_or_default();
            assert_eq!(text, "part 40 fails", "round {round}");
            let n = AtomicUsize::new(0);
            for_each(2, 64, |_| {
                n.fetch_add(1, Ordering::Relaxed);
            });
            assert_eq!(n.into_inner(), 64);
        }
    }

    #[test]
    fn calls_after_workers_slept_complete() {
        for _ in 0..3 {
            std::thread::sleep(SPIN * 3);
            let n = AtomicUsize::new(0);
            for_each(2, 16, |_| {
                n.fetch_add(1, Ordering::Relaxed);
            });
            assert_eq!(n.into_inner(), 16);
        }
    }
}
