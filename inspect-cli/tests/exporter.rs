//! The Python exporter, run for real when a CPython 3.11 `python3` is on the PATH.
//!
//! Each test captures a workload of `testdata/workloads` into a temporary file, reads it back,
//! and checks that section 5's garbage matches CPython's verdict, that the garbage is what the
//! workload leaves, and that the exporter's self-checks passed. Without CPython 3.11 the tests
//! print a note and pass.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use inspect_cli::heapgraph::{check, HeapGraph};

/// Whether `python3` is CPython 3.11 (the only version the format describes).
fn python311() -> bool {
    let output = Command::new("python3")
        .args([
            "-c",
            "import sys; print(sys.implementation.name, *sys.version_info[:2])",
        ])
        .output();
    match output {
        Ok(out) if String::from_utf8_lossy(&out.stdout).trim() == "cpython 3 11" => true,
        Ok(out) => {
            eprintln!(
                "note: skipped, python3 is not CPython 3.11 ({})",
                String::from_utf8_lossy(&out.stdout).trim()
            );
            false
        }
        Err(e) => {
            eprintln!("note: skipped, no python3 ({e})");
            false
        }
    }
}

/// Runs the exporter on a workload and reads the file it wrote.
fn export(workload: &str, python_flags: &[&str], exporter_flags: &[&str]) -> HeapGraph {
    let crate_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let out = std::env::temp_dir().join(format!(
        "inspect-cli-exporter-{}-{}-{}.jsonl",
        std::process::id(),
        workload,
        exporter_flags.len()
    ));
    let status = Command::new("python3")
        .args(python_flags)
        .arg(crate_dir.join("python/export_heapgraph.py"))
        .args(exporter_flags)
        .arg(crate_dir.join("testdata/workloads").join(workload))
        .arg(&out)
        .status()
        .expect("python3 runs");
    assert!(
        status.success(),
        "the exporter failed on {workload}: {status}"
    );
    let text = std::fs::read(&out).expect("the exporter wrote its file");
    let _ = std::fs::remove_file(&out);
    HeapGraph::read(text.as_slice()).unwrap_or_else(|e| panic!("{workload}: {e}"))
}

/// The trailer's garbage by type name.
fn garbage_by_type(graph: &HeapGraph) -> BTreeMap<String, usize> {
    let mut found = BTreeMap::new();
    for &id in &graph.trailer.garbage {
        *found
            .entry(graph.type_name(&graph.objects[id as usize]).to_owned())
            .or_insert(0) += 1;
    }
    found
}

/// The exporter's self-checks (section 7) all passed.
fn assert_self_checks(graph: &HeapGraph) {
    let verify = graph.trailer.verify.as_ref().expect("verify");
    assert_eq!(verify["refcounts"], "ob_refcnt");
    assert_eq!(verify["fork_consistent"], true);
    for key in [
        "reread_mismatch",
        "getrefcount_mismatch_tracked",
        "edge_drift",
        "missing_edges",
        "clamped_tracked",
        "python_sizeof_skipped",
    ] {
        assert_eq!(verify[key], 0, "verify.{key}");
    }
    assert!(verify["min_own_refs"].as_u64() >= Some(1));
    assert_eq!(
        graph.trailer.garbage_source.as_deref(),
        Some("DEBUG_COLLECTABLE+DEBUG_UNCOLLECTABLE in a forked copy")
    );
    assert_eq!(graph.trailer.unmapped_garbage, Some(0));
    assert_eq!(graph.trailer.unmapped_unreachable, Some(0));
}

fn small_garbage() -> BTreeMap<String, usize> {
    [("list", 2), ("dict", 1), ("Node", 3), ("Finalized", 1)]
        .into_iter()
        .map(|(name, n)| (name.to_owned(), n))
        .collect()
}

#[test]
fn small_workload_lean() {
    if !python311() {
        return;
    }
    let graph = export("small.py", &["-I", "-S"], &["--lean"]);
    let report = check(&graph);
    assert!(report.is_match(), "{}", report.render(&graph));
    assert_eq!(garbage_by_type(&graph), small_garbage());
    assert_eq!(graph.trailer.collected, 7);
    assert_eq!(graph.trailer.not_saved.as_deref(), Some(&[][..]));
    assert_self_checks(&graph);
}

#[test]
fn small_workload_through_runpy() {
    if !python311() {
        return;
    }
    let graph = export("small.py", &[], &[]);
    let report = check(&graph);
    assert!(report.is_match(), "{}", report.render(&graph));
    assert_eq!(garbage_by_type(&graph), small_garbage());
    assert_self_checks(&graph);
}

#[test]
fn cycles_workload() {
    if !python311() {
        return;
    }
    let graph = export("cycles.py", &["-I", "-S"], &["--lean"]);
    let report = check(&graph);
    assert!(report.is_match(), "{}", report.render(&graph));
    let expected: BTreeMap<String, usize> = [("list", 120), ("Pair", 60), ("dict", 90)]
        .into_iter()
        .map(|(name, n)| (name.to_owned(), n))
        .collect();
    assert_eq!(garbage_by_type(&graph), expected);
    assert_self_checks(&graph);
}
