//! `heap-inspect capture` for real, when CPython 3.11 is installed: a tiny workload captured
//! and replayed, and pyheap finds exactly CPython's garbage. Without CPython 3.11 the tests
//! print a note and pass.

use std::process::Command;

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

/// A directory of its own for one test, removed when dropped; not the crate's (the exporter
/// is embedded in the binary).
fn scratch() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("inspect-cli-capture-")
        .tempdir()
        .expect("temporary directory")
}

fn heap_inspect(args: &[&str], dir: &std::path::Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_heap-inspect"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("heap-inspect runs")
}

#[test]
fn capture_then_replay_matches() {
    if !python311() {
        return;
    }
    let scratch = scratch();
    let dir = scratch.path();
    let script = dir.join("tiny.py");
    std::fs::write(
        &script,
        concat!(
            "class Node:\n",
            "    pass\n",
            "\n",
            "def build():\n",
            "    a, b = Node(), Node()\n",
            "    a.peer, b.peer = b, a\n",
            "    loop = []\n",
            "    loop.append((loop, 1))\n",
            "    print('a line the workload prints')\n",
            "    keep = Node()\n",
            "    keep.self = keep\n",
            "    return keep\n",
        ),
    )
    .expect("workload");
    let output = heap_inspect(&["capture", "tiny.py", "-o", "tiny.jsonl", "--lean"], dir);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.starts_with("captured tiny.py into tiny.jsonl: "),
        "{stdout}"
    );
    assert!(
        stdout.contains("4 garbage objects; check: match"),
        "{stdout}"
    );
    assert!(
        !stdout.contains("a line the workload prints"),
        "the workload's prints go to stderr"
    );

    let output = heap_inspect(&["replay", "tiny.jsonl", "--no-timings"], dir);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("verdict: match (4 garbage objects, exactly CPython's)"),
        "{stdout}"
    );
}

#[test]
fn a_missing_interpreter_is_one_line() {
    let dir = std::env::temp_dir();
    let script = dir.join(format!(
        "inspect-cli-capture-missing-{}.py",
        std::process::id()
    ));
    std::fs::write(&script, "def build():\n    return 1\n").expect("workload");
    let output = heap_inspect(
        &[
            "capture",
            script.to_str().expect("UTF-8"),
            "-o",
            "/tmp/never.jsonl",
            "--python",
            "no-such-python-3.11",
        ],
        &dir,
    );
    let _ = std::fs::remove_file(&script);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("heap-inspect: `no-such-python-3.11` was not found"),
        "{stderr}"
    );
}

#[test]
fn a_workload_that_exits_the_interpreter_leaves_no_empty_file() {
    if !python311() {
        return;
    }
    let scratch = scratch();
    let dir = scratch.path();
    std::fs::write(dir.join("quits.py"), "import sys\nsys.exit(0)\n").expect("script");
    let out = heap_inspect(&["capture", "quits.py", "-o", "quits.jsonl"], dir);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        !dir.join("quits.jsonl").exists(),
        "the empty heapgraph file was left behind: {stderr}"
    );
}
