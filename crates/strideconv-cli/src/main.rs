//! `strideconv`: the command line of the strideconv library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use ndarray::{array, Array2};
use strideconv::{wisdom, ConvSpec, Layout, Method, Options, Plan, Planning, Run};

/// Counts heap bytes so that `compare` can report each method's peak extra memory.
#[global_allocator]
static ALLOC: strideconv::memory::CountingAllocator = strideconv::memory::CountingAllocator::new();

mod args;
mod compare;
mod npy;

#[derive(Parser, Debug)]
#[command(
    name = "strideconv",
    version,
    about = "Strided convolution and cross-correlation, by every method"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// The seed's 7×7 example at stride 2, by every method, and whether each agrees.
    Demo,
    /// Correlate X.npy with K.npy and write OUT.npy.
    Conv {
        /// Input array (.npy).
        x: PathBuf,
        /// Kernel array (.npy), same number of axes and dtype as X.
        k: PathBuf,
        /// Where to write the result (.npy).
        #[arg(short, long)]
        out: PathBuf,
        #[command(flatten)]
        opts: args::ConvArgs,
    },
    /// Print the method `auto` chooses for a problem, and every method's cost estimate.
    Plan {
        /// Input shape, e.g. 512,512.
        #[arg(long)]
        x_shape: String,
        /// Kernel shape, e.g. 5,5.
        #[arg(long)]
        k_shape: String,
        /// Element type: float64, float32, complex128, complex64 or int64.
        #[arg(long, default_value = "float64")]
        dtype: String,
        /// Time the cheapest candidates instead of trusting the cost model alone.
        #[arg(long)]
        measure: bool,
        #[command(flatten)]
        opts: args::ConvArgs,
    },
    /// Measure every method on a set of problems and fit the cost model to this machine;
    /// the result is saved as wisdom (JSON) and used when STRIDECONV_WISDOM names the file.
    Calibrate {
        /// Where to save the wisdom.
        #[arg(long, default_value = "strideconv-wisdom.json")]
        out: PathBuf,
    },
    /// The seed's comparison study: every method over a grid of n and f; CSV and heatmaps.
    Compare(compare::CompareArgs),
}

fn seed() -> (Array2<i64>, Array2<i64>, Array2<i64>) {
    let x = array![
        [2, 3, 7, 4, 6, 2, 9],
        [6, 6, 9, 8, 7, 4, 3],
        [3, 4, 8, 3, 8, 9, 7],
        [7, 8, 3, 6, 6, 3, 4],
        [4, 2, 1, 8, 3, 4, 6],
        [3, 2, 4, 1, 9, 8, 3],
        [0, 1, 3, 9, 2, 1, 4]
    ];
    let k = array![[3, 4, 4], [1, 0, 2], [-1, 0, 3]];
    (x, k, array![[91, 100, 88], [69, 91, 117], [44, 72, 74]])
}

fn demo() -> Result<(), String> {
    let (x, k, want) = seed();
    let layout = Layout::Signal {
        channel_axis: None,
        kernel_broadcast: false,
    };
    let opts = Options::strided(2);
    println!("The seed's example: correlate a 7x7 array with a 3x3 kernel at stride 2.");
    println!("x =\n{x}\nk =\n{k}\nexpected =\n{want}\n");
    let mut all_agree = true;
    for m in std::iter::once(Method::Auto).chain(Method::ALL) {
        let run = Run {
            method: m,
            threads: None,
        };
        // Exact methods run on the integers; FFT methods on float64, rounded for comparison.
        let int = strideconv::compute(
            x.view().into_dyn(),
            k.view().into_dyn(),
            layout.clone(),
            &opts,
            run,
        );
        let (line, agrees) = match int {
            Ok(y) => {
                let ok = y == want.clone().into_dyn();
                (
                    format!("{:?} (int64, exact)", y.into_raw_vec_and_offset().0),
                    ok,
                )
            }
            Err(strideconv::Error::MethodRefused { reason, .. }) => {
                let (xf, kf) = (x.mapv(|v| v as f64), k.mapv(|v| v as f64));
                match strideconv::compute(
                    xf.view().into_dyn(),
                    kf.view().into_dyn(),
                    layout.clone(),
                    &opts,
                    run,
                ) {
                    Ok(y) => {
                        let err = y
                            .iter()
                            .zip(&want)
                            .map(|(a, &b)| (a - b as f64).abs())
                            .fold(0.0, f64::max);
                        let rounded: Vec<i64> = y.iter().map(|v| v.round() as i64).collect();
                        (
                            format!(
                                "{rounded:?} (float64, max error {err:.1e}; integers refused: \
                                 {reason})"
                            ),
                            err < 1e-9,
                        )
                    }
                    // Refused for floats too (winograd: stride 1 only).
                    Err(e) => (format!("not run: {e}"), true),
                }
            }
            Err(e) => (format!("not run: {e}"), true),
        };
        all_agree &= agrees;
        println!(
            "{:<10} {:<5} {}",
            m.name(),
            if agrees { "ok" } else { "WRONG" },
            line
        );
    }
    if all_agree {
        println!("\nEvery method that ran agrees with [[91,100,88],[69,91,117],[44,72,74]].");
        Ok(())
    } else {
        Err("some method disagrees with the expected result".into())
    }
}

fn plan_cmd(
    x_shape: &str,
    k_shape: &str,
    dtype: &str,
    measure: bool,
    opts: &args::ConvArgs,
) -> Result<(), String> {
    let xs = args::usize_list("x-shape", x_shape)?;
    let ks = args::usize_list("k-shape", k_shape)?;
    let (o, method) = opts.resolve()?;
    let layout = Layout::Signal {
        channel_axis: None,
        kernel_broadcast: false,
    };
    let spec = ConvSpec::new(&xs, &ks, layout, &o).map_err(|e| e.to_string())?;
    let planning = if measure {
        Planning::Measure
    } else {
        Planning::Estimate
    };
    let t = opts.threads;
    let text = match dtype {
        "float64" => Plan::<f64>::with_planning(spec, method, t, planning).map(|p| p.explain()),
        "float32" => Plan::<f32>::with_planning(spec, method, t, planning).map(|p| p.explain()),
        "complex128" => Plan::<num_complex::Complex64>::with_planning(spec, method, t, planning).map(|p| p.explain()),
        "complex64" => Plan::<num_complex::Complex32>::with_planning(spec, method, t, planning).map(|p| p.explain()),
        "int64" | "int32" | "int16" | "int8" | "uint8" | "uint16" | "uint32" | "uint64" | "bool" => {
            Plan::<i128>::with_planning(spec, method, t, planning).map(|p| p.explain())
        }
        other => return Err(format!("invalid dtype '{other}': expected float64, float32, complex128, complex64 or an integer type")),
    }
    .map_err(|e| e.to_string())?;
    print!("{text}");
    Ok(())
}

fn calibrate(out: &std::path::Path) -> Result<(), String> {
    println!(
        "Calibrating the cost model on this machine ({}); this takes a minute.",
        wisdom::cpu_key()
    );
    let w = wisdom::calibrate(|what| println!("  measuring {what}")).map_err(|e| e.to_string())?;
    for s in &w.scales {
        println!(
            "  {:<10} {:<8} measured/estimated = {:.2}",
            s.method, s.kind, s.scale
        );
    }
    let path = out.to_string_lossy();
    wisdom::save(&path).map_err(|e| e.to_string())?;
    println!("saved {path}; use it with STRIDECONV_WISDOM={path}");
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo => demo(),
        Command::Conv { x, k, out, opts } => (|| {
            let (o, method) = opts.resolve()?;
            let xa = npy::read(&x)?;
            let ka = npy::read(&k)?;
            let shape = npy::conv(
                &xa,
                &ka,
                &o,
                Run {
                    method,
                    threads: opts.threads,
                },
                &out,
            )?;
            eprintln!("wrote {} {:?}", out.display(), shape);
            Ok(())
        })(),
        Command::Plan {
            x_shape,
            k_shape,
            dtype,
            measure,
            opts,
        } => plan_cmd(&x_shape, &k_shape, &dtype, measure, &opts),
        Command::Calibrate { out } => calibrate(&out),
        Command::Compare(a) => compare::run(&a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("strideconv: error: {e}");
            ExitCode::FAILURE
        }
    }
}
