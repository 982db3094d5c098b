//! [`ReplayReport`]: everything `heap-inspect replay` prints, as text or JSON.

use std::fmt;

use serde::Serialize;

use super::{BuildReport, Bytes, Collections, Difference, Measured, Sizes, Verdict};
use crate::heapgraph::printable;
use crate::output::{Nanos, Ratio};

/// The result of a replay.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ReplayReport {
    /// The file, as given.
    pub file: String,
    /// The workload the header names.
    pub workload: Option<String>,
    /// The CPython version of the heap.
    pub python: String,
    /// Objects in the file.
    pub objects: u64,
    /// References (the total length of all `refs`).
    pub references: u64,
    /// Tracked objects.
    pub tracked: u64,
    /// Objects held from outside (`external > 0`).
    pub externally_held: u64,
    /// Wall-clock nanoseconds of the build (absent with `--no-timings`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub build_ns: Option<u64>,
    /// What the build did beyond the file's objects.
    pub build: BuildReport,
    /// pyheap's garbage against CPython's.
    pub verdict: Verdict,
    /// The three collections, against CPython's.
    pub collections: Collections,
    /// Bytes per kind, against CPython's.
    pub sizes: Sizes,
}

impl fmt::Display for ReplayReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Strings from the file and the command line, escaped (see `printable`).
        let python = printable(&self.python);
        write!(f, "replay of {}", printable(&self.file))?;
        match &self.workload {
            Some(workload) => writeln!(f, " (workload {}, CPython {python})", printable(workload))?,
            None => writeln!(f, " (CPython {python})")?,
        }
        writeln!(
            f,
            "  {} objects, {} references, {} tracked, {} held from outside",
            self.objects, self.references, self.tracked, self.externally_held
        )?;
        let b = &self.build;
        write!(
            f,
            "  built with {} root handles, {} classes, {} dicts with their own keys, {} dict keys made; {} containers untracked, {} tuples and {} dicts tracked again, {} tuples in tuple cycles made opaque",
            b.roots, b.classes, b.dicts_with_file_keys, b.dict_keys_made, b.containers_untracked, b.tuples_tracked_again, b.dicts_tracked_again, b.tuples_made_opaque
        )?;
        if b.unowned_untracked + b.unowned_tracked > 0 {
            write!(
                f,
                "; objects with a count of 0 held: {} untracked, {} tracked (as garbage)",
                b.unowned_untracked, b.unowned_tracked
            )?;
        }
        if let Some(ns) = self.build_ns {
            write!(f, " ({})", Nanos(ns))?;
        }
        writeln!(f)?;
        writeln!(f)?;
        write!(f, "{}", VerdictText(&self.verdict))?;
        writeln!(f)?;
        write!(f, "{}", CollectionsText(&self.collections))?;
        writeln!(f)?;
        write!(f, "{}", SizesText(&self.sizes))
    }
}

struct VerdictText<'a>(&'a Verdict);

impl fmt::Display for VerdictText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = self.0;
        if v.matches {
            return writeln!(
                f,
                "verdict: match ({} garbage objects, exactly CPython's)",
                v.cpython_garbage
            );
        }
        writeln!(
            f,
            "verdict: mismatch (CPython found {} garbage objects, pyheap {})",
            v.cpython_garbage, v.pyheap_garbage
        )?;
        let sides = [
            ("in CPython's garbage, not pyheap's", &v.missing),
            ("in pyheap's garbage, not CPython's", &v.unexpected),
        ];
        for (title, side) in sides {
            if side.count > 0 {
                writeln!(f, "  {title}: {}{}", side.count, first(side))?;
            }
        }
        if v.unmapped > 0 {
            writeln!(
                f,
                "  saved by pyheap but no object of the file: {}",
                v.unmapped
            )?;
        }
        Ok(())
    }
}

/// `, first: 12 list, 13 dict, ...`
fn first(side: &Difference) -> String {
    let names: Vec<String> = side
        .first
        .iter()
        .map(|n| format!("{} {}", n.id, printable(&n.type_name)))
        .collect();
    if names.is_empty() {
        String::new()
    } else {
        format!(" (first: {})", names.join(", "))
    }
}

struct CollectionsText<'a>(&'a Collections);

impl fmt::Display for CollectionsText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = self.0;
        let timed = c.find.pyheap_ns.is_some();
        write!(
            f,
            "{:<36} {:>8} {:>8}",
            "full collection", "pyheap", "CPython"
        )?;
        if timed {
            write!(f, " {:>10} {:>10} {:>7}", "pyheap", "CPython", "ratio")?;
        }
        writeln!(f)?;
        let rows = [
            ("find, DEBUG_SAVEALL (collect_ns)", &c.find),
            ("free, after clearing garbage", &c.free),
            ("live heap (live_collect_ns)", &c.live),
        ];
        for (name, m) in rows {
            write!(
                f,
                "{name:<36} {:>8} {:>8}",
                m.pyheap_found,
                opt(m.cpython_found)
            )?;
            if timed {
                write!(f, "{}", Times(m))?;
            }
            writeln!(f)?;
        }
        if let (Some(p), Some(c)) = (c.live.pyheap_best_ns, c.live.cpython_best_ns) {
            writeln!(
                f,
                "{:<36} {:>8} {:>8} {:>10} {:>10} {:>7}",
                "live heap, best of 6",
                "",
                "",
                Nanos(p),
                Nanos(c),
                Ratio(p as f64, c as f64)
            )?;
        }
        Ok(())
    }
}

struct Times<'a>(&'a Measured);

impl fmt::Display for Times<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        let ns = |v: Option<u64>| v.map_or("-".to_owned(), |v| Nanos(v).to_string());
        let ratio = match (m.pyheap_ns, m.cpython_ns) {
            (Some(p), Some(c)) => Ratio(p as f64, c as f64).to_string(),
            _ => "-".to_owned(),
        };
        write!(
            f,
            " {:>10} {:>10} {:>7}",
            ns(m.pyheap_ns),
            ns(m.cpython_ns),
            ratio
        )
    }
}

fn opt(value: Option<u64>) -> String {
    value.map_or("-".to_owned(), |v| v.to_string())
}

struct SizesText<'a>(&'a Sizes);

impl fmt::Display for SizesText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0;
        let header = |f: &mut fmt::Formatter<'_>, title: &str| {
            writeln!(
                f,
                "{title:<26} {:>8} {:>13} {:>14} {:>13} {:>7} {:>9}",
                "objects", "CPython size", "CPython blocks", "pyheap bytes", "ratio", "vs blocks"
            )
        };
        let row = |f: &mut fmt::Formatter<'_>, b: &Bytes| {
            writeln!(
                f,
                "{:<26} {:>8} {:>13} {:>14} {:>13} {:>7} {:>9}",
                printable(&b.name),
                b.objects,
                b.cpython_bytes,
                b.cpython_block_bytes,
                b.pyheap_bytes,
                Ratio(b.pyheap_bytes as f64, b.cpython_bytes as f64),
                Ratio(b.pyheap_bytes as f64, b.cpython_block_bytes as f64)
            )
        };
        header(f, "bytes by kind")?;
        for b in &s.by_kind {
            row(f, b)?;
        }
        row(f, &s.total)?;
        writeln!(f)?;
        header(f, "largest differences")?;
        for b in &s.largest_differences {
            row(f, b)?;
        }
        writeln!(f)?;
        writeln!(
            f,
            "pyheap heap after the build: {} bytes in blocks, {} in direct blocks, {} from the OS",
            s.heap.bytes_in_blocks, s.heap.direct_bytes, s.heap.bytes_from_os
        )
    }
}
