//! The study's problems: the seed's three setups (presets) and the grid of n and f.

use ndarray::{ArrayD, IxDyn};
use strideconv::{ConvSpec, Layout, Options};

/// One of the seed's three comparisons.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Preset {
    /// n×n input, f×f kernel, stride 2, no padding.
    Seed2d,
    /// n×n×5 input, f×f×5 kernel (channels summed), stride 2.
    Seed3dC5S2,
    /// n×n×10 input, f×f×10 kernel (channels summed), stride 5.
    Seed3dC10S5,
}

impl Preset {
    /// Every preset, in the seed's order.
    pub const ALL: [Preset; 3] = [Preset::Seed2d, Preset::Seed3dC5S2, Preset::Seed3dC10S5];

    /// The name `--preset` takes.
    pub fn name(self) -> &'static str {
        match self {
            Preset::Seed2d => "seed-2d",
            Preset::Seed3dC5S2 => "seed-3d-c5-s2",
            Preset::Seed3dC10S5 => "seed-3d-c10-s5",
        }
    }

    /// The preset called `name`, or an error listing the valid names.
    pub fn parse(name: &str) -> Result<Self, String> {
        Preset::ALL
            .into_iter()
            .find(|p| p.name() == name)
            .ok_or_else(|| {
                let names: Vec<&str> = Preset::ALL.iter().map(|p| p.name()).collect();
                format!(
                    "invalid --preset '{name}': expected one of {}",
                    names.join(", ")
                )
            })
    }

    /// Channels of the trailing (summed) axis, or `None` for plain 2-D arrays.
    pub fn channels(self) -> Option<usize> {
        match self {
            Preset::Seed2d => None,
            Preset::Seed3dC5S2 => Some(5),
            Preset::Seed3dC10S5 => Some(10),
        }
    }

    /// Stride along both spatial axes.
    pub fn stride(self) -> usize {
        match self {
            Preset::Seed2d | Preset::Seed3dC5S2 => 2,
            Preset::Seed3dC10S5 => 5,
        }
    }

    /// One line describing the setup, for titles and the summary.
    pub fn describe(self) -> String {
        match self.channels() {
            None => format!(
                "n×n input, f×f kernel, stride {}, no padding",
                self.stride()
            ),
            Some(c) => format!(
                "n×n×{c} input, f×f×{c} kernel (channels summed), stride {}, no padding",
                self.stride()
            ),
        }
    }

    /// Input sizes n of the default grid.
    pub fn default_sizes(self) -> Vec<usize> {
        vec![16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024]
    }

    /// Kernel sizes f of the default grid: dense where the winners change (small f and f
    /// near n), sparse in between; each n also gets f = n through the size list.
    pub fn default_kernels(self) -> Vec<usize> {
        vec![
            1, 2, 3, 4, 5, 7, 9, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024,
        ]
    }
}

/// One point of the grid: input size n and kernel size f.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cell {
    /// Input size (n×n spatially).
    pub n: usize,
    /// Kernel size (f×f spatially).
    pub f: usize,
}

/// Every cell with f ≤ n, by increasing n, then increasing f (the order they are run in:
/// small cells first, so later cells can be predicted from measured ones).
pub fn cells(sizes: &[usize], kernels: &[usize]) -> Vec<Cell> {
    let mut out = Vec::new();
    for &n in sizes {
        out.extend(kernels.iter().filter(|&&f| f <= n).map(|&f| Cell { n, f }));
    }
    out
}

/// The concrete problem of one cell: shapes, layout and options.
#[derive(Clone, Debug)]
pub struct Problem {
    /// Input shape.
    pub x_shape: Vec<usize>,
    /// Kernel shape.
    pub k_shape: Vec<usize>,
    /// How the arrays map onto the library's canonical views.
    pub layout: Layout,
    /// Stride, no padding.
    pub opts: Options,
}

impl Problem {
    /// The problem of `cell` under `preset`.
    pub fn new(preset: Preset, cell: Cell) -> Self {
        let (x_shape, k_shape, channel_axis) = match preset.channels() {
            None => (vec![cell.n, cell.n], vec![cell.f, cell.f], None),
            Some(c) => (vec![cell.n, cell.n, c], vec![cell.f, cell.f, c], Some(2)),
        };
        Problem {
            x_shape,
            k_shape,
            layout: Layout::Signal {
                channel_axis,
                kernel_broadcast: false,
            },
            opts: Options::strided(preset.stride()),
        }
    }

    /// The library's resolved description of the problem.
    pub fn spec(&self) -> Result<ConvSpec, String> {
        ConvSpec::new(
            &self.x_shape,
            &self.k_shape,
            self.layout.clone(),
            &self.opts,
        )
        .map_err(|e| e.to_string())
    }

    /// Number of products summed into one output (the reduction length).
    pub fn reduction_len(&self) -> usize {
        self.k_shape.iter().product()
    }

    /// Deterministic random input and kernel, uniform in [-1, 1).
    pub fn data(&self, seed: u64) -> (ArrayD<f64>, ArrayD<f64>) {
        let mut rng = SplitMix64(seed);
        let x = ArrayD::from_shape_simple_fn(IxDyn(&self.x_shape), || rng.next_signed_unit());
        let k = ArrayD::from_shape_simple_fn(IxDyn(&self.k_shape), || rng.next_signed_unit());
        (x, k)
    }
}

/// A small, fast, deterministic generator (Steele, Lea and Flood's SplitMix64); plenty for
/// test data, and it keeps the study free of a `rand` dependency.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [-1, 1), on a grid of 2^-52.
    fn next_signed_unit(&mut self) -> f64 {
        let unit = (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64);
        2.0 * unit - 1.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_keep_only_kernels_that_fit() {
        let c = cells(&[4, 8], &[1, 5, 8]);
        assert_eq!(
            c,
            vec![
                Cell { n: 4, f: 1 },
                Cell { n: 8, f: 1 },
                Cell { n: 8, f: 5 },
                Cell { n: 8, f: 8 }
            ]
        );
    }

    #[test]
    fn presets_round_trip_by_name() {
        for p in Preset::ALL {
            assert_eq!(Preset::parse(p.name()), Ok(p));
        }
        assert!(Preset::parse("seed-4d").unwrap_err().contains("seed-2d"));
    }

    #[test]
    fn data_is_deterministic_and_in_range() {
        let p = Problem::new(Preset::Seed3dC5S2, Cell { n: 6, f: 3 });
        let (x1, k1) = p.data(7);
        let (x2, _) = p.data(7);
        assert_eq!(x1, x2);
        assert_eq!(x1.shape(), &[6, 6, 5]);
        assert_eq!(k1.shape(), &[3, 3, 5]);
        assert!(x1.iter().all(|v| (-1.0..1.0).contains(v)));
    }

    #[test]
    fn three_d_presets_resolve() {
        let p = Problem::new(Preset::Seed3dC10S5, Cell { n: 12, f: 2 });
        let spec = p.spec().unwrap();
        assert_eq!(spec.out_shape(), vec![3, 3]);
        assert_eq!(p.reduction_len(), 40);
    }
}
