//! Parsing of the options shared by `conv` and `plan`.

use strideconv::{Method, Options, PadMode, Padding};

/// A comma-separated list of positive integers, e.g. `2` or `2,1`.
pub fn usize_list(arg: &str, s: &str) -> Result<Vec<usize>, String> {
    let v: Result<Vec<usize>, _> = s.split(',').map(|p| p.trim().parse::<usize>()).collect();
    match v {
        Ok(v) if !v.is_empty() => Ok(v),
        _ => Err(format!(
            "invalid {arg} '{s}': expected comma-separated non-negative integers"
        )),
    }
}

/// `valid`, `same`, `full`, `same_tf`, one integer for every side, one integer per axis
/// (`1,2`), or one `before:after` pair per axis (`1:0,2:2`).
pub fn padding(s: &str) -> Result<Padding, String> {
    match s {
        "valid" => return Ok(Padding::Valid),
        "same" => return Ok(Padding::Same),
        "full" => return Ok(Padding::Full),
        "same_tf" => return Ok(Padding::SameTf),
        _ => {}
    }
    let bad =
        || format!("invalid padding '{s}': expected valid, same, full, same_tf, N, N,N or B:A,B:A");
    let mut pairs = Vec::new();
    for part in s.split(',') {
        let pair = match part.split_once(':') {
            Some((b, a)) => (
                b.trim().parse().map_err(|_| bad())?,
                a.trim().parse().map_err(|_| bad())?,
            ),
            None => {
                let v: usize = part.trim().parse().map_err(|_| bad())?;
                (v, v)
            }
        };
        pairs.push(pair);
    }
    Ok(if pairs.len() == 1 {
        Padding::Uniform(pairs[0].0, pairs[0].1)
    } else {
        Padding::Explicit(pairs)
    })
}

/// Options of one request, from the command line's spelling.
#[derive(clap::Args, Debug, Clone)]
pub struct ConvArgs {
    /// Stride: one value, or one per convolved axis (comma-separated).
    #[arg(long, default_value = "1")]
    pub stride: String,
    /// Padding: valid, same, full, same_tf, N, N,N (per axis) or B:A,B:A (per axis).
    #[arg(long, default_value = "valid")]
    pub padding: String,
    /// Pad mode: constant, reflect, symmetric, edge, wrap (or zeros, replicate, circular).
    #[arg(long, default_value = "constant")]
    pub pad_mode: String,
    /// Value of constant padding.
    #[arg(long, default_value_t = 0.0)]
    pub cval: f64,
    /// Dilation: one value, or one per convolved axis.
    #[arg(long, default_value = "1")]
    pub dilation: String,
    /// Method: auto, naive, im2col, shift_add, fft_full, fft, direct, winograd.
    #[arg(long, default_value = "auto")]
    pub method: String,
    /// Convolve (flip the kernel) instead of correlating.
    #[arg(long)]
    pub convolve: bool,
    /// Threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
}

impl ConvArgs {
    /// The request's options and method.
    pub fn resolve(&self) -> Result<(Options, Method), String> {
        if self.pad_mode == "zeros" && self.cval != 0.0 {
            return Err(format!(
                "invalid --cval {}: --pad-mode zeros pads with zeros; pass --pad-mode constant \
                 to pad with another value",
                self.cval
            ));
        }
        let opts = Options {
            op: if self.convolve {
                strideconv::Op::Convolve
            } else {
                strideconv::Op::Correlate
            },
            stride: usize_list("stride", &self.stride)?,
            dilation: usize_list("dilation", &self.dilation)?,
            padding: padding(&self.padding)?,
            pad_mode: self
                .pad_mode
                .parse::<PadMode>()
                .map_err(|e| e.to_string())?,
            cval: self.cval,
            groups: 1,
        };
        let method = self.method.parse::<Method>().map_err(|e| e.to_string())?;
        Ok((opts, method))
    }
}
