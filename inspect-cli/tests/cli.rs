//! `heap-inspect check`: its output and exit status.

mod common;

use std::path::PathBuf;
use std::process::{Command, Output};

fn heap_inspect(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_heap-inspect"))
        .args(args)
        .output()
        .expect("heap-inspect runs")
}

fn check_text(name: &str, text: &str) -> Output {
    let path = std::env::temp_dir().join(format!(
        "inspect-cli-cli-{}-{name}.jsonl",
        std::process::id()
    ));
    std::fs::write(&path, text).expect("temporary file");
    let output = heap_inspect(&["check".as_ref(), path.as_os_str()]);
    let _ = std::fs::remove_file(&path);
    output
}

#[test]
fn a_good_file_matches() {
    let path: PathBuf = common::testdata().join("graphs/spec-example.jsonl");
    let output = heap_inspect(&["check".as_ref(), path.as_os_str()]);
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&output.stdout), "match\n");
}

#[test]
fn a_wrong_verdict_exits_1() {
    let output = check_text(
        "mismatch",
        &common::edit(7, r#""garbage":[2]"#, r#""garbage":[]"#),
    );
    assert_eq!(output.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.starts_with("mismatch: section 5 gives 1 garbage objects, the trailer lists 0"),
        "{stdout}"
    );
}

#[test]
fn a_malformed_file_exits_2_naming_the_line() {
    let output = check_text(
        "malformed",
        &common::edit(4, r#""refs":[2]"#, r#""refs":[7]"#),
    );
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("line 4: `refs[0]` is 7"), "{stderr}");
}

#[test]
fn a_missing_file_exits_2() {
    let output = heap_inspect(&["check".as_ref(), "/nonexistent/graph.jsonl".as_ref()]);
    assert_eq!(output.status.code(), Some(2));
}
