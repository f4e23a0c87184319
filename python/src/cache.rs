//! Recently made core plans, so that repeated one-shot calls of one request (a loop calling
//! `correlate` on equal shapes) skip planning, which costs as much as computing a small
//! problem. Plans are immutable and shared (`Arc`), so a hit is safe from any thread.

use std::sync::{Arc, Mutex};

use strideconv::{ConvSpec, Layout, Method, Options};

use crate::operands::Family;
use crate::request::AnyPlan;

/// How many plans are kept; the least recently used is dropped first.
const CAPACITY: usize = 32;

/// Everything a core plan depends on.
struct Key {
    family: Family,
    x_shape: Vec<usize>,
    k_shape: Vec<usize>,
    layout: Layout,
    opts: Options,
    method: Method,
    threads: usize,
}

impl Key {
    fn matches(
        &self,
        family: Family,
        xs: &[usize],
        ks: &[usize],
        layout: &Layout,
        opts: &Options,
        method: Method,
        threads: usize,
    ) -> bool {
        self.family == family
            && self.x_shape == xs
            && self.k_shape == ks
            && self.layout == *layout
            && self.opts == *opts
            && self.method == method
            && self.threads == threads
    }
}

/// Most recently used last.
static PLANS: Mutex<Vec<(Key, Arc<AnyPlan>)>> = Mutex::new(Vec::new());

/// The plan for this request: a kept one, or a new one (kept if planning succeeds).
pub(crate) fn plan(
    family: Family,
    x_shape: &[usize],
    k_shape: &[usize],
    layout: Layout,
    opts: &Options,
    method: Method,
    threads: usize,
) -> strideconv::Result<Arc<AnyPlan>> {
    {
        let mut plans = PLANS.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(i) = plans
            .iter()
            .rposition(|(k, _)| k.matches(family, x_shape, k_shape, &layout, opts, method, threads))
        {
            let entry = plans.remove(i);
            let plan = entry.1.clone();
            plans.push(entry);
            return Ok(plan);
        }
    }
    // Plan without holding the lock: another thread may plan the same request meanwhile,
    // which costs a little time and nothing else.
    let spec = ConvSpec::new(x_shape, k_shape, layout.clone(), opts)?;
    let plan = Arc::new(AnyPlan::new(spec, family, method, threads)?);
    let key = Key {
        family,
        x_shape: x_shape.to_vec(),
        k_shape: k_shape.to_vec(),
        layout,
        opts: opts.clone(),
        method,
        threads,
    };
    let mut plans = PLANS.lock().unwrap_or_else(|e| e.into_inner());
    if plans.len() >= CAPACITY {
        plans.remove(0);
    }
    plans.push((key, plan.clone()));
    Ok(plan)
}
