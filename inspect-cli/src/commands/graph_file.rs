//! Reading a heapgraph file from disk, with a progress bar for large files on a terminal.

use std::fs::File;
use std::io::{BufReader, IsTerminal};
use std::path::Path;

use indicatif::{ProgressBar, ProgressStyle};

use crate::error::CliError;
use crate::heapgraph::HeapGraph;

/// Files at least this large get a progress bar (when stderr is a terminal).
const PROGRESS_FROM: u64 = 4 << 20;

/// Reads and checks a heapgraph file. A missing file or a malformed one is an error that names
/// the file (and the line and problem). On a terminal, a file of more than a few MB shows a
/// progress bar on stderr; the bar is returned (hidden otherwise) for the build that follows.
pub fn read_graph(path: &Path) -> Result<(HeapGraph, ProgressBar), CliError> {
    let file = File::open(path).map_err(|source| CliError::Open {
        path: path.to_owned(),
        source,
    })?;
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let bar = if len >= PROGRESS_FROM && std::io::stderr().is_terminal() {
        let bar = ProgressBar::new(len);
        bar.set_style(style("{msg:>8} [{bar:40}] {bytes}/{total_bytes} ({eta})"));
        bar.set_message("reading");
        bar
    } else {
        ProgressBar::hidden()
    };
    let graph = HeapGraph::read(BufReader::with_capacity(1 << 16, bar.wrap_read(file))).map_err(
        |source| {
            bar.finish_and_clear();
            CliError::Malformed {
                path: path.to_owned(),
                source,
            }
        },
    )?;
    if !bar.is_hidden() {
        bar.set_style(style("{msg:>8} [{bar:40}] {pos}/{len} objects"));
        bar.set_message("building");
        bar.set_position(0);
        bar.set_length(graph.len() as u64);
    }
    Ok((graph, bar))
}

/// A bar style (templates are constants: a bad one falls back to the default style).
fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}
