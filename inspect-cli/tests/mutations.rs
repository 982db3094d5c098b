//! Damaged files: the reader returns a graph or a typed error, and never panics.

mod common;

use inspect_cli::heapgraph::{check, HeapGraph};
use proptest::prelude::*;

/// One way to damage a file. Positions are taken modulo the file's size.
#[derive(Clone, Debug)]
enum Mutation {
    DeleteLine(usize),
    DuplicateLine(usize),
    SwapLines(usize, usize),
    Truncate(usize),
    FlipBit(usize, u8),
    SetByte(usize, u8),
    InsertByte(usize, u8),
    DeleteByte(usize),
    /// Replaces a digit with another character that often keeps the line valid JSON.
    ChangeDigit(usize, char),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<usize>().prop_map(Mutation::DeleteLine),
        any::<usize>().prop_map(Mutation::DuplicateLine),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::SwapLines(a, b)),
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), 0u8..8).prop_map(|(at, bit)| Mutation::FlipBit(at, bit)),
        (any::<usize>(), any::<u8>()).prop_map(|(at, b)| Mutation::SetByte(at, b)),
        (any::<usize>(), any::<u8>()).prop_map(|(at, b)| Mutation::InsertByte(at, b)),
        any::<usize>().prop_map(Mutation::DeleteByte),
        (
            any::<usize>(),
            prop::sample::select(vec!['0', '1', '9', '-', '.', 'e', ' ', ']', '"'])
        )
            .prop_map(|(at, c)| Mutation::ChangeDigit(at, c)),
    ]
}

fn apply(bytes: &mut Vec<u8>, mutation: &Mutation) {
    let mut lines: Vec<Vec<u8>> = bytes
        .split_inclusive(|&b| b == b'\n')
        .map(<[u8]>::to_vec)
        .collect();
    let len = bytes.len().max(1);
    match *mutation {
        Mutation::DeleteLine(i) if !lines.is_empty() => {
            let n = lines.len();
            lines.remove(i % n);
        }
        Mutation::DuplicateLine(i) if !lines.is_empty() => {
            let line = lines[i % lines.len()].clone();
            lines.insert(i % lines.len(), line);
        }
        Mutation::SwapLines(a, b) if !lines.is_empty() => {
            let n = lines.len();
            lines.swap(a % n, b % n);
        }
        Mutation::Truncate(at) => bytes.truncate(at % len),
        Mutation::FlipBit(at, bit) if !bytes.is_empty() => bytes[at % len] ^= 1 << bit,
        Mutation::SetByte(at, b) if !bytes.is_empty() => bytes[at % len] = b,
        Mutation::InsertByte(at, b) => bytes.insert(at % (bytes.len() + 1), b),
        Mutation::DeleteByte(at) if !bytes.is_empty() => {
            bytes.remove(at % len);
        }
        Mutation::ChangeDigit(at, c) => {
            let digits: Vec<usize> = (0..bytes.len())
                .filter(|&i| bytes[i].is_ascii_digit())
                .collect();
            if !digits.is_empty() {
                bytes[digits[at % digits.len()]] = c as u8;
            }
        }
        _ => {}
    }
    if matches!(
        mutation,
        Mutation::DeleteLine(_) | Mutation::DuplicateLine(_) | Mutation::SwapLines(..)
    ) {
        *bytes = lines.concat();
    }
}

/// Reads a damaged file: an error names a line of the file (or the one after its end).
fn read_damaged(bytes: &[u8]) -> Result<(), TestCaseError> {
    let lines = bytes.split(|&b| b == b'\n').count() as u64;
    match HeapGraph::read(bytes) {
        Ok(graph) => {
            // Whatever was accepted is a graph the checker and the writer can handle.
            let _ = check(&graph);
            let text = graph
                .to_text()
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(HeapGraph::read(text.as_bytes()).ok(), Some(graph));
        }
        Err(error) => {
            prop_assert!(
                error.line >= 1 && error.line <= lines + 1,
                "line {} of {}",
                error.line,
                lines
            );
            prop_assert!(error.to_string().starts_with("line "));
        }
    }
    Ok(())
}

fn check_mutations(base: &[u8], mutations: &[Mutation]) -> Result<(), TestCaseError> {
    let mut bytes = base.to_vec();
    for mutation in mutations {
        apply(&mut bytes, mutation);
    }
    read_damaged(&bytes)
}

proptest! {
    #[test]
    fn damaged_example(mutations in prop::collection::vec(mutation(), 1..4)) {
        check_mutations(common::EXAMPLE.as_bytes(), &mutations)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn damaged_capture(mutations in prop::collection::vec(mutation(), 1..4)) {
        let base = std::fs::read(common::testdata().join("graphs/small.jsonl")).expect("small.jsonl");
        check_mutations(&base, &mutations)?;
    }
}
