//! The results table, written row by row as cells finish (an interrupted study keeps what
//! it measured).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use super::grid::Preset;
use super::measure::Record;

/// Column names, in order.
pub const HEADER: &str =
    "preset,n,f,c,stride,method,seconds,peak_bytes,status,chosen,runs,max_abs_err,predicted_seconds,threads,note";

/// A CSV file of [`Record`]s.
#[derive(Debug)]
pub struct CsvWriter {
    file: BufWriter<File>,
    preset: Preset,
    threads: String,
}

impl CsvWriter {
    /// Create `path` and write the header. `threads` is what the calls ran on.
    pub fn create(path: &Path, preset: Preset, threads: usize) -> Result<Self, String> {
        let file =
            File::create(path).map_err(|e| format!("cannot create {}: {e}", path.display()))?;
        let mut w = CsvWriter {
            file: BufWriter::new(file),
            preset,
            threads: threads.to_string(),
        };
        w.line(HEADER)?;
        Ok(w)
    }

    /// Append the rows of one cell and flush them to disk.
    pub fn write(&mut self, records: &[Record]) -> Result<(), String> {
        for r in records {
            let row = self.row(r);
            self.line(&row)?;
        }
        self.file
            .flush()
            .map_err(|e| format!("cannot write the CSV: {e}"))
    }

    fn line(&mut self, s: &str) -> Result<(), String> {
        writeln!(self.file, "{s}").map_err(|e| format!("cannot write the CSV: {e}"))
    }

    fn row(&self, r: &Record) -> String {
        let p = self.preset;
        let fields = [
            p.name().to_string(),
            r.cell.n.to_string(),
            r.cell.f.to_string(),
            p.channels().unwrap_or(1).to_string(),
            p.stride().to_string(),
            r.method.name().to_string(),
            opt(r.seconds.map(|s| format!("{s:.6e}"))),
            opt(r.peak_bytes.map(|b| b.to_string())),
            r.status.name().to_string(),
            opt(r.chosen.map(|m| m.name().to_string())),
            r.runs.to_string(),
            opt(r.max_abs_err.map(|e| format!("{e:.3e}"))),
            opt(r.predicted.map(|s| format!("{s:.3e}"))),
            self.threads.clone(),
            quote(&r.note),
        ];
        fields.join(",")
    }
}

fn opt(v: Option<String>) -> String {
    v.unwrap_or_default()
}

/// RFC 4180 quoting where needed.
fn quote(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_with_commas_are_quoted() {
        assert_eq!(quote("plain"), "plain");
        assert_eq!(quote("a, \"b\""), "\"a, \"\"b\"\"\"");
    }
}
