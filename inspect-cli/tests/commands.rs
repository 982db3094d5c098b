//! Every subcommand's output, text and JSON, pinned by snapshots.
//!
//! Commands run in-process through `commands::execute` with a buffer as standard output, and
//! with `--no-timings`, so that everything printed is deterministic (timings and addresses are
//! the only figures that change between runs, and the output has no addresses).

mod common;

use std::path::PathBuf;

use clap::Parser;
use inspect_cli::cli::Cli;
use inspect_cli::commands::{execute, Outcome};

/// Runs `heap-inspect ARGS...` in-process: its outcome and what it printed.
fn run(args: &[&str]) -> (Outcome, String) {
    let cli = Cli::try_parse_from(std::iter::once("heap-inspect").chain(args.iter().copied()))
        .unwrap_or_else(|e| panic!("{args:?}: {e}"));
    let mut out = Vec::new();
    let outcome = execute(&cli.command, &mut out).unwrap_or_else(|e| panic!("{args:?}: {e}"));
    (outcome, String::from_utf8(out).expect("UTF-8 output"))
}

/// Runs a command that must succeed; its output.
fn ok(args: &[&str]) -> String {
    let (outcome, out) = run(args);
    assert_eq!(outcome, Outcome::Success, "{args:?}\n{out}");
    out
}

/// A fresh path in the temporary directory.
fn temp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!(
        "inspect-cli-commands-{}-{name}",
        std::process::id()
    ))
}

/// Checks the JSON envelope and returns the document.
fn envelope(text: &str, command: &str) -> serde_json::Value {
    let doc: serde_json::Value = serde_json::from_str(text).expect("one JSON document");
    assert_eq!(doc["schema"], "pyheap-inspect/1");
    assert_eq!(doc["command"], command);
    assert!(doc["result"].is_object());
    doc
}

#[test]
fn demo_text() {
    insta::assert_snapshot!(ok(&["demo", "--no-timings"]));
}

#[test]
fn demo_json() {
    let out = ok(&["demo", "--no-timings", "--format", "json"]);
    let doc = envelope(&out, "demo");
    assert_eq!(doc["result"]["phases"].as_array().map(Vec::len), Some(7));
    assert_eq!(doc["stats"]["gc"]["last_pause_ns"], 0);
    insta::assert_snapshot!(out);
}

#[test]
fn run_each_workload() {
    for workload in ["churn", "cycles", "deep-chain", "mixed"] {
        let text = ok(&["run", workload, "--n", "1500", "--no-timings"]);
        insta::assert_snapshot!(format!("run_{workload}_text"), text);
        let json = ok(&[
            "run",
            workload,
            "--n",
            "1500",
            "--no-timings",
            "--format",
            "json",
        ]);
        let doc = envelope(&json, "run");
        assert_eq!(doc["result"]["workload"], workload);
        insta::assert_snapshot!(format!("run_{workload}_json"), json);
    }
}

#[test]
fn runs_are_reproducible_and_seeds_matter() {
    let a = ok(&["run", "churn", "--n", "800", "--seed", "7", "--no-timings"]);
    let b = ok(&["run", "churn", "--n", "800", "--seed", "7", "--no-timings"]);
    let c = ok(&["run", "churn", "--n", "800", "--seed", "8", "--no-timings"]);
    assert_eq!(a, b);
    assert_ne!(a, c);
}

#[test]
fn timings_are_printed_unless_left_out() {
    let out = ok(&["run", "cycles", "--n", "50"]);
    assert!(
        out.lines().next().is_some_and(|l| l.ends_with('s')),
        "{out}"
    );
    let json = ok(&["run", "cycles", "--n", "50", "--format", "json"]);
    assert!(envelope(&json, "run")["result"]["elapsed_ns"].is_u64());
}

#[test]
fn replay_of_the_shipped_graphs_matches() {
    for name in ["small", "cycles"] {
        let path = format!("testdata/graphs/{name}.jsonl");
        // The default limit is half of the machine's memory: a fixed one keeps the
        // statistics' "heap limit" line the same everywhere.
        let limit = ["--heap-limit", "1G"];
        let text = ok(&[&["replay", &path, "--no-timings"][..], &limit].concat());
        assert!(text.contains("verdict: match"), "{text}");
        insta::assert_snapshot!(format!("replay_{name}_text"), text);
        let json = ok(&[
            &["replay", &path, "--no-timings", "--format", "json"][..],
            &limit,
        ]
        .concat());
        let doc = envelope(&json, "replay");
        assert_eq!(doc["result"]["verdict"]["matches"], true);
        insta::assert_snapshot!(format!("replay_{name}_json"), json);
    }
}

#[test]
fn replay_of_a_file_without_workload_names_its_python_alone() {
    let text = ok(&[
        "replay",
        "testdata/graphs/spec-example.jsonl",
        "--no-timings",
    ]);
    let first = text.lines().next().unwrap_or_default();
    assert_eq!(
        first,
        "replay of testdata/graphs/spec-example.jsonl (CPython 3.11.7)"
    );
}

#[test]
fn replay_with_timings_compares_with_the_trailer() {
    let json = ok(&["replay", "testdata/graphs/small.jsonl", "--format", "json"]);
    let doc = envelope(&json, "replay");
    let find = &doc["result"]["collections"]["find"];
    assert!(find["pyheap_ns"].is_u64());
    assert_eq!(find["cpython_ns"], 5949087);
    assert!(find["ratio"].is_f64());
}

#[test]
fn check_text_and_json() {
    let text = ok(&["check", "testdata/graphs/spec-example.jsonl"]);
    assert_eq!(text, "match\n");
    let json = ok(&[
        "check",
        "testdata/graphs/spec-example.jsonl",
        "--format",
        "json",
    ]);
    let doc = envelope(&json, "check");
    assert!(doc["stats"].is_null());
    insta::assert_snapshot!(json);
}

#[test]
fn map_of_a_small_workload() {
    let svg = temp("map.svg");
    let path = svg.to_str().expect("UTF-8 temp path");
    let text = ok(&[
        "map",
        "--svg",
        path,
        "--workload",
        "churn",
        "--n",
        "3000",
        "--no-timings",
    ]);
    insta::assert_snapshot!("map_text", text);
    let picture = std::fs::read_to_string(&svg).expect("the SVG was written");
    let _ = std::fs::remove_file(&svg);
    assert!(picture.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
    assert!(picture.trim_end().ends_with("</svg>"));
    insta::assert_snapshot!("map_svg", picture);

    let json = ok(&[
        "map",
        "--svg",
        path,
        "--workload",
        "churn",
        "--n",
        "3000",
        "--no-timings",
        "--format",
        "json",
    ]);
    let _ = std::fs::remove_file(&svg);
    let doc = envelope(&json, "map");
    assert_eq!(doc["result"]["source"], "churn, n = 3000, seed 1");
    assert!(doc["result"]["arenas"].as_u64() >= Some(1));
}

#[test]
fn map_of_a_replayed_graph() {
    let svg = temp("replay-map.svg");
    let path = svg.to_str().expect("UTF-8 temp path");
    let text = ok(&[
        "map",
        "--svg",
        path,
        "--graph",
        "testdata/graphs/small.jsonl",
        "--no-timings",
    ]);
    let picture = std::fs::read_to_string(&svg).expect("the SVG was written");
    let _ = std::fs::remove_file(&svg);
    assert!(text.starts_with("heap map of small.jsonl\n"), "{text}");
    // Every arena is a row; the replayed heap has direct blocks (objects over 512 bytes).
    let arenas = picture.matches(">arena ").count();
    assert!(arenas >= 1, "{picture}");
    assert!(picture.contains("direct blocks, "));
}

#[test]
fn timeline_of_a_small_workload() {
    let svg = temp("timeline.svg");
    let path = svg.to_str().expect("UTF-8 temp path");
    let text = ok(&[
        "timeline",
        "--svg",
        path,
        "mixed",
        "--n",
        "6000",
        "--no-timings",
    ]);
    insta::assert_snapshot!("timeline_text", text);
    let picture = std::fs::read_to_string(&svg).expect("the SVG was written");
    let _ = std::fs::remove_file(&svg);
    // Three stacked bands, one bar per collection, labelled axes.
    assert_eq!(picture.matches("<polygon").count(), 3);
    assert!(picture.contains(">operations</text>"));
    assert!(picture.contains(">tracked objects, stacked by generation</text>"));
    insta::assert_snapshot!("timeline_svg", picture);
}

#[test]
fn replay_writes_a_picture_of_the_heap_before_collection() {
    let svg = temp("replay.svg");
    let path = svg.to_str().expect("UTF-8 temp path");
    ok(&[
        "replay",
        "testdata/graphs/cycles.jsonl",
        "--svg",
        path,
        "--no-timings",
    ]);
    let picture = std::fs::read_to_string(&svg).expect("the SVG was written");
    let _ = std::fs::remove_file(&svg);
    assert!(picture.contains("pyheap heap map: cycles.jsonl"));
}

#[test]
fn errors_name_the_file_and_line_in_one_line() {
    let dir = std::env::temp_dir();
    let mut messages = Vec::new();
    for (i, (name, input)) in common::malformed().into_iter().enumerate() {
        let path = temp(&format!("malformed-{i}.jsonl"));
        std::fs::write(&path, &input).expect("temporary file");
        let file = path.to_str().expect("UTF-8 temp path");
        let cli = Cli::try_parse_from(["heap-inspect", "replay", file]).expect("arguments");
        let error = execute(&cli.command, &mut Vec::new()).expect_err(name);
        let _ = std::fs::remove_file(&path);
        let message = error.to_string();
        assert_eq!(message.lines().count(), 1, "{message}");
        let shown = message.replace(dir.to_str().unwrap_or("/tmp"), "<tmp>");
        messages.push(format!("{name}: {shown}"));
    }
    let cli = Cli::try_parse_from(["heap-inspect", "replay", "no/such/file.jsonl"]).expect("args");
    let error = execute(&cli.command, &mut Vec::new()).expect_err("missing");
    messages.push(format!("missing file: {error}"));
    let pid = std::process::id().to_string();
    insta::assert_snapshot!(messages.join("\n").replace(&pid, "<pid>"));
}

/// Strings from the file reach the text reports escaped, as they reach error lines: a type
/// name, workload or version with control characters (an escape sequence, a line feed) would
/// otherwise drive the terminal or forge report lines.
#[test]
fn control_characters_from_the_file_are_escaped_in_the_text_reports() {
    let text = std::fs::read_to_string("testdata/graphs/spec-example.jsonl")
        .expect("the shipped example")
        .replace(
            r#""producer":"example","python":"3.11.7""#,
            r#""producer":"example","workload":"w\u001b[2J","python":"3.11\n7""#,
        )
        .replace(
            r#""id":2,"type":"list""#,
            r#""id":2,"type":"li\u001b[31mst\nforged line\u202e""#,
        )
        // A wrong trailer, so both reports list the garbage with its type names.
        .replace(r#""garbage":[2]"#, r#""garbage":[]"#);
    let path = temp("control-characters.jsonl");
    std::fs::write(&path, text).expect("temporary file");
    let path = path.to_str().expect("a UTF-8 path").to_owned();
    let (_, check) = run(&["check", &path]);
    let (_, replay) = run(&["replay", &path, "--no-timings", "--heap-limit", "1G"]);
    let _ = std::fs::remove_file(&path);
    for (command, out) in [("check", &check), ("replay", &replay)] {
        assert!(
            !out.contains(|c: char| c.is_control() && c != '\n'),
            "{command}: {out:?}"
        );
        assert!(
            out.contains(r"li\u{1b}[31mst\nforged line\u{202e}"),
            "{command} names the type, escaped (a right-to-left override too): {out}"
        );
        assert!(!out.lines().any(|l| l.starts_with("forged line")), "{out}");
    }
    assert!(
        replay.starts_with(&format!(
            r"replay of {path} (workload w\u{{1b}}[2J, CPython 3.11\n7)"
        )),
        "{replay}"
    );
}
