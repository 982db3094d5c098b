//! `heap-inspect check GRAPH.jsonl`: the file's own consistency, without pyheap.

use std::fmt;
use std::io::Write;

use serde::Serialize;

use super::{read_graph, Outcome};
use crate::cli::CheckArgs;
use crate::error::CliError;
use crate::heapgraph::{check as check_graph, HeapGraph};
use crate::output::{emit, OutputArgs};

/// What `check` found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CheckResult {
    /// The file, as given.
    pub file: String,
    /// Its objects.
    pub objects: u64,
    /// Whether section 5's garbage is the trailer's.
    pub matches: bool,
    /// Section 5's garbage, computed from the object lines.
    pub expected_garbage: u64,
    /// The trailer's garbage.
    pub trailer_garbage: u64,
    /// Ids in section 5's garbage the trailer lacks.
    pub missing_from_trailer: Vec<u32>,
    /// Ids of the trailer's garbage that section 5 finds reachable.
    pub not_expected: Vec<u32>,
    /// The text report (`match`, or the differences with types).
    #[serde(skip)]
    text: String,
}

impl CheckResult {
    /// The result for `graph`, read from `file`.
    pub fn of(graph: &HeapGraph, file: String) -> Self {
        let report = check_graph(graph);
        let text = report.render(graph).to_string();
        CheckResult {
            file,
            objects: graph.len() as u64,
            matches: report.is_match(),
            expected_garbage: report.expected.len() as u64,
            trailer_garbage: report.trailer_len as u64,
            missing_from_trailer: report.missing_from_trailer.clone(),
            not_expected: report.not_expected.clone(),
            text,
        }
    }
}

impl fmt::Display for CheckResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.text)
    }
}

/// Validates the file and compares section 5's garbage with the trailer's: `match` (exit 0)
/// or the differences (exit 1).
pub fn check(args: &CheckArgs, out: &mut dyn Write) -> Result<Outcome, CliError> {
    let (graph, _) = read_graph(&args.graph)?;
    let result = CheckResult::of(&graph, args.graph.display().to_string());
    let options = OutputArgs {
        format: args.format,
        no_timings: true,
    };
    emit(out, &options, "check", &result, None)?;
    Ok(if result.matches {
        Outcome::Success
    } else {
        Outcome::Mismatch
    })
}
