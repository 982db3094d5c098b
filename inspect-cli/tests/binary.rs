//! The `heap-inspect` binary: exit statuses, one-line errors, `--help` everywhere.

mod common;

use std::path::PathBuf;
use std::process::{Command, Output};

fn heap_inspect(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_heap-inspect"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("heap-inspect runs")
}

fn temp_file(name: &str, text: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!(
        "inspect-cli-binary-{}-{name}.jsonl",
        std::process::id()
    ));
    std::fs::write(&path, text).expect("temporary file");
    path
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// One line on stderr, starting with the tool's name.
fn assert_one_line_error(output: &Output) -> String {
    assert_eq!(output.status.code(), Some(2), "{}", stderr(output));
    let text = stderr(output);
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(text.starts_with("heap-inspect: "), "{text}");
    text
}

#[test]
fn the_shipped_graphs_replay_to_a_match() {
    for name in ["small", "cycles", "spec-example"] {
        let output = heap_inspect(&["replay", &format!("testdata/graphs/{name}.jsonl")]);
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert_eq!(
            output.status.code(),
            Some(0),
            "{name}: {stdout}{}",
            stderr(&output)
        );
        assert!(stdout.contains("verdict: match"), "{stdout}");
        assert!(stderr(&output).is_empty(), "no progress bar off a terminal");
    }
}

#[test]
fn a_wrong_verdict_exits_1_naming_the_differences() {
    let path = temp_file(
        "wrong",
        &common::edit(7, r#""garbage":[2]"#, r#""garbage":[]"#),
    );
    let output = heap_inspect(&["replay", path.to_str().expect("UTF-8")]);
    let _ = std::fs::remove_file(&path);
    assert_eq!(output.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("verdict: mismatch (CPython found 0 garbage objects, pyheap 1)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("in pyheap's garbage, not CPython's: 1 (first: 2 list)"),
        "{stdout}"
    );
}

#[test]
fn a_malformed_file_is_one_line_naming_the_file_and_line() {
    let path = temp_file(
        "malformed",
        &common::edit(4, r#""refs":[2]"#, r#""refs":[7]"#),
    );
    let file = path.to_str().expect("UTF-8");
    for command in ["replay", "check"] {
        let output = heap_inspect(&[command, file]);
        let text = assert_one_line_error(&output);
        assert!(
            text.contains(&format!("{file}: line 4: `refs[0]` is 7")),
            "{text}"
        );
    }
    let output = heap_inspect(&["map", "--svg", "/dev/null", "--graph", file]);
    assert_one_line_error(&output);
    let _ = std::fs::remove_file(&path);
}

#[test]
fn a_missing_file_is_one_line() {
    for args in [
        &["replay", "/nonexistent/graph.jsonl"][..],
        &["check", "/nonexistent/graph.jsonl"],
        &["capture", "/nonexistent/workload.py", "-o", "/tmp/x.jsonl"],
    ] {
        let text = assert_one_line_error(&heap_inspect(args));
        assert!(text.contains("/nonexistent/"), "{text}");
    }
}

#[test]
fn a_file_name_with_a_line_feed_is_shown_on_one_line() {
    let output = heap_inspect(&["check", "/nonexistent/two\nlines.jsonl"]);
    let text = assert_one_line_error(&output);
    assert!(text.contains("/nonexistent/two\\nlines.jsonl"), "{text}");
}

#[test]
fn capture_to_an_unwritable_file_is_one_line_before_python_runs() {
    // The exporter used to run the whole workload, then die with a Python traceback.
    let script = "testdata/workloads/small.py";
    let python = ["--python", "/nonexistent/python"];
    for (output, why) in [
        ("/nonexistent/dir/x.jsonl", "No such file or directory"),
        ("testdata", "Is a directory"),
        (script, "it is the workload script"),
    ] {
        let output = heap_inspect(&[&["capture", script, "-o", output], &python[..]].concat());
        let text = assert_one_line_error(&output);
        assert!(
            text.contains("cannot write ") && text.contains(why),
            "{text}"
        );
    }
    let kept = std::fs::read_to_string(script).expect("the script");
    assert!(kept.contains("def build"), "the script is untouched");
}

#[test]
fn an_unwritable_picture_is_one_line() {
    let output = heap_inspect(&["run", "cycles", "--n", "10"]);
    assert_eq!(output.status.code(), Some(0));
    let output = heap_inspect(&[
        "timeline",
        "--svg",
        "/nonexistent/dir/t.svg",
        "cycles",
        "--n",
        "10",
    ]);
    let text = assert_one_line_error(&output);
    assert!(
        text.contains("cannot write /nonexistent/dir/t.svg"),
        "{text}"
    );
}

#[test]
fn bad_arguments_exit_2() {
    for args in [
        &["run", "nosuchworkload"][..],
        &["run", "churn", "--n", "many"],
        &["run", "churn", "--n", "-3"],
        &["replay"],
        &["timeline", "--svg", "/tmp/x.svg", "--every", "0"],
        &["demo", "--format", "xml"],
    ] {
        let output = heap_inspect(args);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert!(
            stderr(&output).starts_with("error: "),
            "{args:?}: {}",
            stderr(&output)
        );
    }
}

#[test]
fn every_subcommand_has_help() {
    for command in [
        "demo", "run", "replay", "capture", "map", "timeline", "check",
    ] {
        let output = heap_inspect(&[command, "--help"]);
        assert_eq!(output.status.code(), Some(0), "{command}");
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(text.contains("Usage: heap-inspect"), "{command}: {text}");
    }
    let output = heap_inspect(&["--help"]);
    let text = String::from_utf8_lossy(&output.stdout);
    for command in [
        "demo", "run", "replay", "capture", "map", "timeline", "check",
    ] {
        assert!(text.contains(command), "{text}");
    }
}

/// A replay's heap has a limit (a file may claim objects of any size): past it, one line that
/// names the limit and the option that sets it.
#[test]
fn a_replay_over_its_heap_limit_stops_with_one_line() {
    for command in [
        &[
            "replay",
            "testdata/graphs/small.jsonl",
            "--heap-limit",
            "2M",
        ][..],
        &[
            "map",
            "--graph",
            "testdata/graphs/small.jsonl",
            "--svg",
            "/dev/null",
            "--heap-limit",
            "2M",
        ],
    ] {
        let text = assert_one_line_error(&heap_inspect(command));
        assert!(text.contains("limit 2097152"), "{text}");
        assert!(text.contains("--heap-limit"), "{text}");
    }
    let output = heap_inspect(&[
        "replay",
        "testdata/graphs/small.jsonl",
        "--heap-limit",
        "64M",
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
}

#[test]
fn heap_limits_are_bytes_with_an_optional_binary_suffix() {
    use inspect_cli::cli::parse_bytes;
    assert_eq!(parse_bytes("4096"), Ok(4096));
    assert_eq!(parse_bytes("2K"), Ok(2048));
    assert_eq!(parse_bytes("3m"), Ok(3 << 20));
    assert_eq!(parse_bytes("1G"), Ok(1 << 30));
    assert!(parse_bytes("").is_err());
    assert!(parse_bytes("G").is_err());
    assert!(parse_bytes("-1M").is_err());
    assert!(parse_bytes("1.5G").is_err());
    assert_eq!(
        parse_bytes("99999999999999999999"),
        Err("`99999999999999999999` is too large".into())
    );
    assert_eq!(
        parse_bytes("18446744073709551615G"),
        Err("`18446744073709551615G` is too large".into())
    );
    assert_eq!(
        parse_bytes("1.5G"),
        Err("`1.5G` is not a byte count (digits, then K, M or G)".into())
    );
}

/// An object that claims more bytes than the replayed heap may hold (2^60, beyond any
/// machine) is refused before the build, naming the file, its line and the size: it was
/// replayed as a 256 MiB stand-in, and a hundred of them took 12 GB and 40 s to reach the
/// limit.
#[test]
fn an_object_larger_than_the_heap_limit_is_refused_before_the_build() {
    let size = 1u64 << 60;
    let text = common::EXAMPLE.replacen(r#""size":88"#, &format!(r#""size":{size}"#), 1);
    let path = temp_file("huge-object", &text);
    let path = path.to_str().expect("UTF-8 path");
    for command in [
        &["replay", path][..],
        &["map", "--graph", path, "--svg", "/dev/null"],
    ] {
        let text = assert_one_line_error(&heap_inspect(command));
        assert!(
            text.starts_with(&format!(
                "heap-inspect: {path}: line 4: object 2 claims {size} bytes"
            )),
            "{text}"
        );
        assert!(text.contains("--heap-limit"), "{text}");
    }
}
