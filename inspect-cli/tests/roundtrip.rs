//! The writer against the reader, and section 5 against CPython's own algorithm.

mod common;

use inspect_cli::heapgraph::{
    check, expected_garbage, Detail, Header, HeapGraph, Kind, NewObject, Trailer,
};
use proptest::prelude::*;

fn write(graph: &HeapGraph) -> String {
    graph.to_text().expect("writable")
}

#[test]
fn the_example_round_trips_byte_for_byte() {
    let graph = HeapGraph::read(common::EXAMPLE.as_bytes()).expect("valid");
    assert_eq!(write(&graph), common::EXAMPLE);
}

#[test]
fn captured_graphs_round_trip() {
    for path in common::graph_files() {
        let text = std::fs::read_to_string(&path).expect("readable");
        let graph = HeapGraph::read(text.as_bytes()).expect("valid");
        let written = write(&graph);
        let again = HeapGraph::read(written.as_bytes()).expect("the writer's output is valid");
        assert_eq!(again, graph, "{}", path.display());
        assert_eq!(write(&again), written, "{}", path.display());
    }
}

#[test]
fn non_finite_floats_are_refused() {
    let mut graph = HeapGraph::new(Header::new("test", "3.11.7"));
    graph.push(NewObject {
        type_name: "float",
        kind: Kind::Float,
        size: 24,
        refs: &[],
        external: 1,
        tracked: false,
        detail: Detail::Float(f64::NAN),
    });
    assert!(graph.to_text().is_err());
}

/// One object of a random graph: (kind, refs as fractions of n, external, tracked, detail seed).
type Spec = (usize, Vec<u32>, u64, bool, i64);

/// A valid graph from random parts: atoms hold nothing and are untracked, details fit kinds,
/// the header declares its counts and the trailer holds section 5's garbage.
fn graph_from(specs: &[Spec], names: &[String]) -> HeapGraph {
    let mut header = Header::new("proptest \"quoted\" \u{e9}", "3.11.7");
    header.workload = Some("random.py".into());
    let mut graph = HeapGraph::new(header);
    let n = specs.len() as u32;
    for (i, (kind, refs, external, tracked, seed)) in specs.iter().enumerate() {
        let kind = Kind::ALL[*kind % Kind::ALL.len()];
        let refs: Vec<u32> = if kind.is_atom() {
            Vec::new()
        } else {
            refs.iter().map(|r| r % n).collect()
        };
        let detail = match kind {
            Kind::Int => Detail::Int(*seed),
            Kind::Float => Detail::Float(*seed as f64 / 7.0),
            k if k.has_len() && seed % 2 == 0 => Detail::Len(seed.unsigned_abs()),
            _ => Detail::None,
        };
        graph.push(NewObject {
            type_name: &names[i % names.len()],
            kind,
            size: seed.unsigned_abs() % 1000,
            refs: &refs,
            external: if external % 3 == 0 { 0 } else { *external },
            tracked: *tracked && !kind.is_atom(),
            detail,
        });
    }
    let counts = graph.counts();
    graph.header.declare(&counts);
    graph.header.clamped = Some(counts.zero_external / 2);
    graph.trailer = Trailer {
        garbage: expected_garbage(&graph),
        collected: 3,
        collect_ns: 1000,
        live_collect_ns: 900,
        garbage_source: Some("DEBUG_SAVEALL".into()),
        not_saved: Some(Vec::new()),
        live_collect_ns_repeats: Some(vec![1, 2, 3]),
        unmapped_types: Some(vec![("z".into(), 1), ("a".into(), 2)]),
        verify: Some(serde_json::from_str(r#"{"fork_consistent":true,"n":[1,2.5]}"#).unwrap()),
        ..Trailer::default()
    };
    graph
}

/// CPython 3.11's collector on the graph: gc_refs start at the refcount (external + indegree)
/// of each tracked object, references from tracked objects are subtracted, the objects left
/// above zero are roots, and reachability runs through tracked objects only.
fn cpython_garbage(graph: &HeapGraph) -> Vec<u32> {
    let objects = &graph.objects;
    let mut gc_refs: Vec<i128> = objects.iter().map(|o| i128::from(o.external)).collect();
    for object in objects {
        for &target in graph.refs_of(object) {
            gc_refs[target as usize] += 1;
        }
    }
    for object in objects.iter().filter(|o| o.tracked) {
        for &target in graph.refs_of(object) {
            gc_refs[target as usize] -= 1;
        }
    }
    let mut reachable = vec![false; objects.len()];
    let mut stack: Vec<usize> = (0..objects.len())
        .filter(|&i| objects[i].tracked && gc_refs[i] > 0)
        .collect();
    for &i in &stack {
        reachable[i] = true;
    }
    while let Some(i) = stack.pop() {
        for &target in graph.refs_of(&objects[i]) {
            let t = target as usize;
            if objects[t].tracked && !reachable[t] {
                reachable[t] = true;
                stack.push(t);
            }
        }
    }
    (0..objects.len() as u32)
        .filter(|&i| objects[i as usize].tracked && !reachable[i as usize])
        .collect()
}

fn specs() -> impl Strategy<Value = Vec<Spec>> {
    prop::collection::vec(
        (
            0usize..10,
            prop::collection::vec(any::<u32>(), 0..4),
            prop_oneof![Just(0u64), 1u64..3, Just(999_999_999), Just(u64::MAX / 2)],
            any::<bool>(),
            any::<i64>(),
        ),
        1..40,
    )
}

fn names() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec("[a-zA-Z_\u{e9}\"\\\\\n]{1,8}", 1..5)
}

proptest! {
    #[test]
    fn written_graphs_read_back_equal(specs in specs(), names in names()) {
        let graph = graph_from(&specs, &names);
        let text = write(&graph);
        let again = HeapGraph::read(text.as_bytes()).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        prop_assert_eq!(&again, &graph);
        prop_assert_eq!(write(&again), text);
        prop_assert!(check(&again).is_match());
    }

    #[test]
    fn section_5_is_cpythons_algorithm(specs in specs()) {
        let graph = graph_from(&specs, &["t".to_owned()]);
        prop_assert_eq!(expected_garbage(&graph), cpython_garbage(&graph));
    }
}
