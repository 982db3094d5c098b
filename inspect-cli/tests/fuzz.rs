//! Fuzzing with a fixed seed: the shipped graphs, damaged thousands of ways (bytes, lines,
//! numbers replaced by extremes, keys changed), must each be read into a graph or refused
//! with a typed error naming a line of the file; never a panic. What is accepted is then
//! checked, written back and replayed (on a small heap limit: a damaged size may be huge),
//! and the replay must agree with section 5. A sample is given to the binary, which must
//! print one line naming the file and the line, and exit 2.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use inspect_cli::heapgraph::{check, expected_garbage, HeapGraph};
use inspect_cli::replay::Replayed;
use inspect_cli::rng::Rng;
use pyheap::{Config, Heap};

/// Cases per captured graph (each twice: as shipped and without its declared counts), and
/// 60 times as many for the section 9 example; `FUZZ_CASES` sets another number (the default
/// keeps the tests to some seconds in debug builds, where a captured graph takes tens of
/// milliseconds to read and replay).
fn cases() -> usize {
    std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(25)
}

/// Integers that break rules or limits when they replace a number of a file.
const EXTREMES: &[&str] = &[
    "0",
    "-0",
    "1",
    "-1",
    "2",
    "4294967295",
    "4294967296",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775808",
    "-9223372036854775809",
    "18446744073709551615",
    "18446744073709551616",
    "1152921504606846976",
    "1e308",
    "1e400",
    "0.5",
    "99999999999999999999999999999999999999999",
    "true",
    "null",
    "\"7\"",
    "[]",
    "{}",
];

/// Strings that replace a string of a file.
const STRINGS: &[&str] = &[
    "",
    "list",
    "tuple",
    "dict",
    "int",
    "str",
    "other",
    "instance",
    "\\u0000",
    "\\u001b[31m",
    "\\u202e",
    "a\\nb",
    "\\ud800",
    "é",
    "heapgraph",
    "trailer",
];

/// Byte ranges (start, end) of tokens.
type Ranges = Vec<(usize, usize)>;

/// Byte ranges of the numbers (and `true`, `false`, `null`) in `bytes`, and of the strings'
/// contents.
fn tokens(bytes: &[u8]) -> (Ranges, Ranges) {
    let (mut numbers, mut strings) = (Vec::new(), Vec::new());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                let start = i + 1;
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                strings.push((start, i.min(bytes.len())));
                i += 1;
            }
            b'-' | b'0'..=b'9' | b't' | b'f' | b'n' => {
                let start = i;
                while i < bytes.len() && matches!(bytes[i], b'-' | b'0'..=b'9' | b'a'..=b'z') {
                    i += 1;
                }
                numbers.push((start, i));
            }
            _ => i += 1,
        }
    }
    (numbers, strings)
}

/// Damages `bytes` once.
fn mutate(bytes: &mut Vec<u8>, rng: &mut Rng) {
    let len = bytes.len().max(1);
    match rng.below(12) {
        0 => bytes.truncate(rng.index(len)),
        1 if !bytes.is_empty() => {
            let at = rng.index(len);
            bytes[at] ^= 1 << rng.below(8);
        }
        2 if !bytes.is_empty() => {
            let at = rng.index(len);
            bytes[at] = rng.below(256) as u8;
        }
        3 => {
            let at = rng.index(bytes.len() + 1);
            let byte = *b"{}[]\",:\n\r\t\\ 0-e\xff\xef"
                .get(rng.index(19))
                .unwrap_or(&b'x');
            bytes.insert(at, byte);
        }
        4 | 5 => {
            let mut lines: Vec<Vec<u8>> = bytes
                .split_inclusive(|&b| b == b'\n')
                .map(<[u8]>::to_vec)
                .collect();
            if lines.is_empty() {
                return;
            }
            let a = rng.index(lines.len());
            match rng.below(4) {
                0 => {
                    lines.remove(a);
                }
                1 => {
                    let line = lines[a].clone();
                    lines.insert(a, line);
                }
                2 => {
                    let b = rng.index(lines.len());
                    lines.swap(a, b);
                }
                _ => {
                    // CR LF, or a byte order mark at the start.
                    if rng.one_in(2) {
                        let line = &mut lines[a];
                        if line.last() == Some(&b'\n') {
                            line.insert(line.len() - 1, b'\r');
                        }
                    } else {
                        lines[0].splice(0..0, *b"\xef\xbb\xbf");
                    }
                }
            }
            *bytes = lines.concat();
        }
        6..=8 => {
            let (numbers, _) = tokens(bytes);
            if numbers.is_empty() {
                return;
            }
            let (start, end) = numbers[rng.index(numbers.len())];
            let new = if rng.one_in(3) {
                // A nearby value: an id that names another object, a count off by one.
                let old: i64 = std::str::from_utf8(&bytes[start..end])
                    .ok()
                    .and_then(|t| t.parse().ok())
                    .unwrap_or(0);
                (old + rng.below(5) as i64 - 2).to_string()
            } else {
                EXTREMES[rng.index(EXTREMES.len())].to_owned()
            };
            bytes.splice(start..end, new.into_bytes());
        }
        9 | 10 => {
            let (_, strings) = tokens(bytes);
            if strings.is_empty() {
                return;
            }
            let (start, end) = strings[rng.index(strings.len())];
            let new = STRINGS[rng.index(STRINGS.len())];
            bytes.splice(start..end, new.bytes());
        }
        _ => {
            // `true` and `false` swapped: tracking, the trailer's mark.
            let (numbers, _) = tokens(bytes);
            let bools: Vec<_> = numbers
                .into_iter()
                .filter(|&(s, _)| matches!(bytes[s], b't' | b'f'))
                .collect();
            if bools.is_empty() {
                return;
            }
            let (start, end) = bools[rng.index(bools.len())];
            let new: &[u8] = if bytes[start] == b't' {
                b"false"
            } else {
                b"true"
            };
            bytes.splice(start..end, new.iter().copied());
        }
    }
}

/// `text` without the header's optional counts, so that damaged object lines are not all
/// refused for disagreeing with them, and reach the replay.
fn without_declared_counts(text: &str) -> String {
    let (header, rest) = text.split_once('\n').expect("a header");
    let mut header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(header).expect("JSON");
    for key in [
        "edges",
        "tracked",
        "externally_held",
        "clamped",
        "untracked_to_tracked",
    ] {
        header.remove(key);
    }
    format!("{}\n{rest}", serde_json::Value::Object(header))
}

/// The base files: the shipped graphs, each also without its declared counts.
fn bases() -> Vec<(String, Vec<u8>)> {
    let mut bases = Vec::new();
    for path in common::graph_files() {
        let text = std::fs::read_to_string(&path).expect("a shipped graph");
        let name = path
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        bases.push((
            format!("{name} without counts"),
            without_declared_counts(&text).into_bytes(),
        ));
        bases.push((name, text.into_bytes()));
    }
    bases
}

/// Replays `graph` on a heap of at most 256 MiB: an error, or section 5's verdict.
fn replay_agrees_with_section_5(mut graph: HeapGraph, name: &str) {
    graph.trailer.garbage = expected_garbage(&graph);
    let heap = Heap::new(Config {
        gc_enabled: false,
        limit: Some(256 << 20),
        ..Config::default()
    })
    .expect("heap");
    let Ok(replayed) = Replayed::load(&heap, &graph, &mut || {}) else {
        return;
    };
    if let Ok((verdict, _)) = replayed.collect(&graph, false) {
        assert!(verdict.matches, "{name}: {verdict:?}");
    }
}

/// Reads one damaged file: a graph that survives the checker, the writer and the replay, or
/// an error naming a line of the file (or the one after its end).
fn read_damaged(bytes: &[u8], name: &str, replay: bool) -> Option<u64> {
    let lines = bytes.split(|&b| b == b'\n').count() as u64;
    match HeapGraph::read(bytes) {
        Ok(graph) => {
            let _ = check(&graph);
            let text = graph.to_text().expect("a read graph can be written");
            let again = HeapGraph::read(text.as_bytes()).expect("what was written reads back");
            assert_eq!(again, graph, "{name}");
            if replay {
                replay_agrees_with_section_5(graph, name);
            }
            None
        }
        Err(error) => {
            assert!(
                (1..=lines + 1).contains(&error.line),
                "{name}: line {} of {lines}: {error}",
                error.line
            );
            let message = error.to_string();
            assert!(
                message.starts_with(&format!("line {}: ", error.line)),
                "{name}"
            );
            assert!(!message.contains(char::is_control), "{name}: {message:?}");
            assert!(message.len() < 1000, "{name}: {} bytes", message.len());
            Some(error.line)
        }
    }
}

/// Damaged files, each with the name of its base and case, and the files themselves.
fn damaged(seed: u64, per_base: usize) -> Vec<(String, Vec<u8>)> {
    let mut rng = Rng::new(seed);
    let mut files = Vec::new();
    for (base_name, base) in bases() {
        // The example is small: it gets many more cases than the captured graphs.
        let n = if base.len() < 4096 {
            per_base * 60
        } else {
            per_base
        };
        for case in 0..n {
            let mut bytes = base.clone();
            for _ in 0..=rng.below(3) {
                mutate(&mut bytes, &mut rng);
            }
            files.push((format!("{base_name}, case {case}"), bytes));
        }
    }
    files
}

#[test]
fn damaged_graphs_are_read_or_refused_with_a_line_never_a_panic() {
    let files = damaged(1, cases());
    let mut refused = 0;
    for (name, bytes) in &files {
        refused += usize::from(read_damaged(bytes, name, true).is_some());
    }
    // Most damage is caught; some (a changed size, a swapped flag) makes another valid file.
    assert!(refused > files.len() / 2, "{refused} of {}", files.len());
}

fn heap_inspect(args: &[&std::ffi::OsStr]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_heap-inspect"))
        .args(args)
        .output()
        .expect("the binary runs")
}

fn temp_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("heap-inspect-fuzz-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// `check` and `replay` of a damaged file: exit 2 with one line naming the file and the line
/// the library names, or a verdict (0 or 1) and nothing on stderr.
fn run_damaged(dir: &Path, index: usize, name: &str, bytes: &[u8]) {
    let path = dir.join(format!("case-{index}.jsonl"));
    std::fs::write(&path, bytes).expect("write a case");
    let line = HeapGraph::read(bytes).err().map(|e| e.line);
    for command in ["check", "replay"] {
        let mut args = vec![command.as_ref(), path.as_os_str()];
        if command == "replay" {
            args.extend(["--heap-limit", "256M", "--no-timings"].map(std::ffi::OsStr::new));
        }
        let output = heap_inspect(&args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        match line {
            Some(line) => {
                assert_eq!(output.status.code(), Some(2), "{name}: {command}: {stderr}");
                assert_eq!(stderr.lines().count(), 1, "{name}: {command}: {stderr}");
                let prefix = format!("heap-inspect: {}: line {line}: ", path.display());
                assert!(stderr.starts_with(&prefix), "{name}: {command}: {stderr}");
            }
            None => {
                let code = output.status.code();
                assert!(
                    matches!(code, Some(0 | 1)) || (code == Some(2) && stderr.lines().count() == 1),
                    "{name}: {command}: {code:?} {stderr}"
                );
            }
        }
    }
}

#[test]
fn the_binary_refuses_damaged_graphs_with_one_line_naming_file_and_line() {
    let dir = temp_dir();
    let files = damaged(2, cases());
    let mut rng = Rng::new(3);
    // About 40 of them (as many as the captured graphs' cases, plus 15).
    let step = (files.len() / (cases() + 15)).max(1);
    for (index, (name, bytes)) in files.iter().enumerate() {
        if index % step == rng.index(step) {
            run_damaged(&dir, index, name, bytes);
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
