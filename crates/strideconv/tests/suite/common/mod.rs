//! Shared by the integration tests: a small deterministic generator (splitmix64).
// Each test file uses a different part of it.
#![allow(dead_code)]

/// Cases and values derived from one seed, the same on every machine.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }

    /// A small integer in `-9..=9`.
    pub fn value(&mut self) -> i64 {
        self.range(0, 18) as i64 - 9
    }

    /// Uniform in `[-1, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 52) as f64 - 1.0
    }
}

/// The shape of a batched input: `(N, C, *n)`, or `(N, *n, C)` with channels last.
pub fn batched_shape(
    batch: usize,
    channels: usize,
    n: &[usize],
    channels_last: bool,
) -> Vec<usize> {
    let mut xs = vec![batch];
    if channels_last {
        xs.extend(n);
        xs.push(channels);
    } else {
        xs.push(channels);
        xs.extend(n);
    }
    xs
}

/// Values in `[-1, 1)` of the given shape, from `seed`.
pub fn values(shape: &[usize], seed: u64) -> ndarray::ArrayD<f64> {
    let mut rng = Rng(seed);
    ndarray::ArrayD::from_shape_simple_fn(ndarray::IxDyn(shape), || rng.unit())
}

/// `method` on `threads` threads.
pub fn on(method: strideconv::Method, threads: usize) -> strideconv::Run {
    strideconv::Run {
        method,
        threads: Some(threads),
    }
}

/// Largest absolute difference of two results of equal shape.
pub fn worst<T: Copy + Into<f64>>(got: &ndarray::ArrayD<T>, want: &ndarray::ArrayD<T>) -> f64 {
    assert_eq!(got.shape(), want.shape());
    got.iter()
        .zip(want.iter())
        .map(|(&a, &b)| (a.into() - b.into()).abs())
        .fold(0.0, f64::max)
}
