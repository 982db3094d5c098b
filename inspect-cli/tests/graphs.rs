//! The checker on real files: the format's example and the captures in `testdata/graphs`.

mod common;

use std::fs::File;
use std::io::BufReader;

use inspect_cli::heapgraph::{check, expected_garbage, Detail, HeapGraph, Kind};

fn read_file(path: &std::path::Path) -> HeapGraph {
    let file = File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    HeapGraph::read(BufReader::new(file)).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn section_9_example() {
    let graph = HeapGraph::read(common::EXAMPLE.as_bytes()).expect("valid");
    assert_eq!(graph.header.producer, "example");
    assert_eq!(graph.header.python, "3.11.7");
    assert_eq!(graph.header.edges, Some(3));
    let dict = &graph.objects[0];
    assert_eq!((dict.kind, dict.size, dict.external), (Kind::Dict, 184, 1));
    assert_eq!(graph.refs_of(dict), [1]);
    assert_eq!(dict.detail, Detail::Len(1));
    assert_eq!(graph.type_name(&graph.objects[3]), "str");
    let seven = &graph.objects[4];
    assert_eq!(seven.detail, Detail::Int(7));
    assert_eq!(seven.external, 1_000_000_022);
    assert!(!seven.tracked);
    assert_eq!(graph.trailer.collect_ns, 2100);
    assert_eq!(graph.trailer.live_collect_ns, 1900);
    assert_eq!(expected_garbage(&graph), [2]);
    let report = check(&graph);
    assert!(report.is_match());
    assert_eq!(report.render(&graph).to_string(), "match");
}

#[test]
fn a_wrong_verdict_is_reported_with_types() {
    let input = common::edit(7, r#""garbage":[2]"#, r#""garbage":[1]"#);
    let graph = HeapGraph::read(input.as_bytes()).expect("valid");
    let report = check(&graph);
    assert!(!report.is_match());
    assert_eq!(report.missing_from_trailer, [2]);
    assert_eq!(report.not_expected, [1]);
    let text = report.render(&graph).to_string();
    assert!(
        text.contains("section 5 gives 1 garbage objects, the trailer lists 1"),
        "{text}"
    );
    assert!(text.contains("  2 list"), "{text}");
}

#[test]
fn captured_graphs_match() {
    let files = common::graph_files();
    assert!(
        files.len() >= 3,
        "testdata/graphs holds the example and two captures"
    );
    for path in files {
        let graph = read_file(&path);
        let report = check(&graph);
        assert!(
            report.is_match(),
            "{}: {}",
            path.display(),
            report.render(&graph)
        );
    }
}

#[test]
fn captured_graphs_are_small() {
    for path in common::graph_files() {
        let size = std::fs::metadata(&path).expect("metadata").len();
        assert!(size < 1_000_000, "{} is {size} bytes", path.display());
    }
}

/// What the workloads' docstrings promise, by type name.
#[test]
fn captured_garbage_is_what_the_workloads_leave() {
    let expectations: [(&str, &[(&str, usize)]); 2] = [
        (
            "small.jsonl",
            &[("list", 2), ("dict", 1), ("Node", 3), ("Finalized", 1)],
        ),
        ("cycles.jsonl", &[("list", 120), ("Pair", 60), ("dict", 90)]),
    ];
    for (file, expected) in expectations {
        let graph = read_file(&common::testdata().join("graphs").join(file));
        let mut found = std::collections::BTreeMap::new();
        for &id in &graph.trailer.garbage {
            *found
                .entry(graph.type_name(&graph.objects[id as usize]))
                .or_insert(0) += 1;
        }
        let expected: std::collections::BTreeMap<&str, usize> = expected.iter().copied().collect();
        assert_eq!(found, expected, "{file}");
    }
}
