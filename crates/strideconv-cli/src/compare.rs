//! `strideconv compare`: the seed's comparison study (filled in by the compare issue).

/// Options of `compare`.
#[derive(clap::Args, Debug)]
pub struct CompareArgs {
    /// Preset: seed-2d, seed-3d-c5-s2 or seed-3d-c10-s5.
    #[arg(long, default_value = "seed-2d")]
    pub preset: String,
}

/// Run the study.
pub fn run(_args: &CompareArgs) -> Result<(), String> {
    Err("compare is not built yet".into())
}
