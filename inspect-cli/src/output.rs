//! How results are printed: text for people, or one JSON document of a stable schema.
//!
//! Every command that prints builds a typed result (a struct that is both `Serialize` and
//! `Display`) and hands it to [`emit`] with the heap's [`HeapStats`] when it has a heap:
//!
//! * `--format text`: the result's `Display`, then a blank line and the stats' `Display`
//!   (shaped like `sys._debugmallocstats()`, then reference counting and the collector);
//! * `--format json`: the [`Envelope`], `{"schema": "pyheap-inspect/1", "command": ...,
//!   "result": {...}, "stats": {...} | null}`, documented in `inspect-cli/SCHEMA.md`.
//!
//! `--no-timings` drops every wall-clock figure, so that the rest of the output is the same on
//! every run and machine (the tests pin it with snapshots): results keep timings in `Option`
//! fields that are then `None` (absent from JSON, not printed as text), and the stats'
//! `gc.last_pause_ns` becomes 0.

use std::fmt;
use std::io::Write;

use clap::{Args, ValueEnum};
use pyheap::HeapStats;
use serde::Serialize;

use crate::error::CliError;

/// The `schema` of every JSON document this tool prints. A change of meaning of any field
/// would be a new version; new fields may be added within version 1.
pub const SCHEMA: &str = "pyheap-inspect/1";

/// How to print.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Text for people.
    #[default]
    Text,
    /// One JSON document (the `pyheap-inspect/1` envelope, see SCHEMA.md).
    Json,
}

/// The output options every printing command takes.
#[derive(Clone, Copy, Debug, Default, Args)]
pub struct OutputArgs {
    /// Print text for people or one JSON document (schema `pyheap-inspect/1`, see SCHEMA.md).
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Leave out every wall-clock figure, so that the output is the same on every run.
    #[arg(long)]
    pub no_timings: bool,
}

impl OutputArgs {
    /// Whether timings are printed.
    pub fn timings(&self) -> bool {
        !self.no_timings
    }

    /// `value` when timings are printed, `None` otherwise.
    pub fn timed(&self, value: u64) -> Option<u64> {
        self.timings().then_some(value)
    }
}

/// The JSON document: the same envelope for every command.
#[derive(Debug, Serialize)]
pub struct Envelope<'a, R> {
    /// Always [`SCHEMA`].
    pub schema: &'static str,
    /// The subcommand that printed it (`"demo"`, `"run"`, `"replay"`, ...).
    pub command: &'static str,
    /// The command's own result.
    pub result: &'a R,
    /// The heap's statistics at the end of the command, or `null` for commands without a heap.
    pub stats: Option<&'a HeapStats>,
}

/// Prints a result (and the heap's stats) in the chosen format.
pub fn emit<R: Serialize + fmt::Display>(
    out: &mut dyn Write,
    options: &OutputArgs,
    command: &'static str,
    result: &R,
    stats: Option<HeapStats>,
) -> Result<(), CliError> {
    let stats = stats.map(|mut stats| {
        if options.no_timings {
            stats.gc.last_pause_ns = 0;
        }
        stats
    });
    match options.format {
        Format::Text => {
            write!(out, "{result}").map_err(CliError::output)?;
            if let Some(stats) = &stats {
                write!(out, "\n{stats}").map_err(CliError::output)?;
            }
        }
        Format::Json => {
            let envelope = Envelope {
                schema: SCHEMA,
                command,
                result,
                stats: stats.as_ref(),
            };
            serde_json::to_writer_pretty(&mut *out, &envelope)
                .map_err(|e| CliError::output(e.into()))?;
            writeln!(out).map_err(CliError::output)?;
        }
    }
    out.flush().map_err(CliError::output)
}

/// A duration in nanoseconds, printed with a unit that suits it (`850 ns`, `12.3 µs`,
/// `4.56 ms`, `1.23 s`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Nanos(pub u64);

impl fmt::Display for Nanos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ns = self.0 as f64;
        let text = if self.0 >= 1_000_000_000 {
            format!("{:.2} s", ns / 1e9)
        } else if self.0 >= 1_000_000 {
            format!("{:.2} ms", ns / 1e6)
        } else if self.0 >= 1_000 {
            format!("{:.1} µs", ns / 1e3)
        } else {
            format!("{} ns", self.0)
        };
        f.pad(&text)
    }
}

/// `a / b` as a ratio printed like `0.42x`, or `-` when `b` is 0.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Ratio(pub f64, pub f64);

impl Ratio {
    /// The ratio, or `None` when the denominator is 0.
    pub fn value(self) -> Option<f64> {
        (self.1 != 0.0).then(|| self.0 / self.1)
    }
}

impl fmt::Display for Ratio {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.value() {
            Some(r) => f.pad(&format!("{r:.2}x")),
            None => f.pad("-"),
        }
    }
}

/// Rounds a ratio to 4 decimals for JSON (so that the documents stay readable and stable).
pub fn ratio4(numerator: f64, denominator: f64) -> Option<f64> {
    Ratio(numerator, denominator)
        .value()
        .map(|r| (r * 10_000.0).round() / 10_000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_pick_their_unit() {
        assert_eq!(Nanos(850).to_string(), "850 ns");
        assert_eq!(Nanos(12_345).to_string(), "12.3 µs");
        assert_eq!(Nanos(4_560_000).to_string(), "4.56 ms");
        assert_eq!(Nanos(1_230_000_000).to_string(), "1.23 s");
        assert_eq!(format!("{:>8}", Nanos(5)), "    5 ns");
    }

    #[test]
    fn ratios_of_zero_are_dashes() {
        assert_eq!(Ratio(1.0, 4.0).to_string(), "0.25x");
        assert_eq!(Ratio(1.0, 0.0).to_string(), "-");
        assert_eq!(ratio4(1.0, 3.0), Some(0.3333));
    }
}
