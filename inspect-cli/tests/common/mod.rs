//! Inputs shared by the integration tests: the format's section 9 example and ways to break it.

#![allow(dead_code)] // each test file uses its own part

use std::path::PathBuf;

/// The complete small example of the format's section 9.
pub const EXAMPLE: &str = include_str!("../../testdata/graphs/spec-example.jsonl");

/// The crate's `testdata` directory.
pub fn testdata() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata")
}

/// The captured graphs in `testdata/graphs`, sorted by name.
pub fn graph_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(testdata().join("graphs"))
        .expect("testdata/graphs")
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    files.sort();
    files
}

/// The example's lines, without their LFs.
fn lines() -> Vec<String> {
    EXAMPLE.lines().map(str::to_owned).collect()
}

fn join(lines: &[String]) -> String {
    lines.iter().map(|line| format!("{line}\n")).collect()
}

/// The example with 1-based line `n` replaced.
pub fn with_line(n: usize, text: &str) -> String {
    let mut all = lines();
    all[n - 1] = text.to_owned();
    join(&all)
}

/// The example with `from` replaced by `to` on line `n` (which must contain it).
pub fn edit(n: usize, from: &str, to: &str) -> String {
    let mut all = lines();
    assert!(all[n - 1].contains(from), "line {n} lacks {from:?}");
    all[n - 1] = all[n - 1].replacen(from, to, 1);
    join(&all)
}

/// The example without line `n`.
pub fn without_line(n: usize) -> String {
    let mut all = lines();
    all.remove(n - 1);
    join(&all)
}

/// The example with `text` inserted as line `n`.
pub fn insert_line(n: usize, text: &str) -> String {
    let mut all = lines();
    all.insert(n - 1, text.to_owned());
    join(&all)
}

/// Malformed inputs, each named, one per rule (the snapshot of their messages is a test).
pub fn malformed() -> Vec<(&'static str, Vec<u8>)> {
    let mut not_utf8 = EXAMPLE.as_bytes().to_vec();
    let at = EXAMPLE.find("\"list\"").expect("a list") + 1;
    not_utf8[at] = 0xff;
    let text = |name, s: String| (name, s.into_bytes());
    vec![
        text("empty file", String::new()),
        text(
            "truncated last line",
            EXAMPLE.trim_end_matches('\n').to_owned(),
        ),
        text("CR LF line end", EXAMPLE.replacen("\n", "\r\n", 1)),
        ("not UTF-8", not_utf8),
        text("blank line", insert_line(3, "")),
        text("bad JSON", with_line(2, r#"{"id":0,"type":"dict""#)),
        text("not an object", with_line(2, "[0, 1]")),
        text(
            "duplicate key",
            edit(2, r#""size":184"#, r#""size":184,"size":184"#),
        ),
        text("missing key", edit(3, r#""size":64,"#, "")),
        text("wrong type", edit(3, r#""tracked":true"#, r#""tracked":1"#)),
        text(
            "boolean for an integer",
            edit(3, r#""size":64"#, r#""size":true"#),
        ),
        text("fraction", edit(3, r#""size":64"#, r#""size":64.5"#)),
        text(
            "integer out of i64",
            edit(3, r#""external":0"#, r#""external":9223372036854775808"#),
        ),
        text("negative count", edit(3, r#""size":64"#, r#""size":-64"#)),
        text(
            "not a heapgraph",
            edit(1, r#""heapgraph""#, r#""heapgraf""#),
        ),
        text(
            "unknown version",
            edit(1, r#""version":1"#, r#""version":2"#),
        ),
        text(
            "too many objects",
            edit(1, r#""objects":5"#, r#""objects":4294967296"#),
        ),
        text("duplicate id", edit(3, r#""id":1"#, r#""id":0"#)),
        text("out-of-order id", edit(3, r#""id":1"#, r#""id":2"#)),
        text(
            "ref out of range",
            edit(3, r#""refs":[4]"#, r#""refs":[5]"#),
        ),
        text("negative ref", edit(3, r#""refs":[4]"#, r#""refs":[-1]"#)),
        text(
            "unknown kind",
            edit(3, r#""kind":"list""#, r#""kind":"array""#),
        ),
        text("empty type", edit(3, r#""type":"list""#, r#""type":"""#)),
        text("value on a list", edit(3, r#""len":1"#, r#""value":1"#)),
        text("len on an int", edit(6, r#""value":7"#, r#""len":7"#)),
        text("atom with refs", edit(5, r#""refs":[]"#, r#""refs":[0]"#)),
        text(
            "tracked atom",
            edit(5, r#""tracked":false"#, r#""tracked":true"#),
        ),
        text(
            "header declares too many objects",
            edit(1, r#""objects":5"#, r#""objects":6"#),
        ),
        text(
            "extra object line",
            insert_line(
                7,
                &EXAMPLE
                    .lines()
                    .nth(5)
                    .expect("line 6")
                    .replace(r#""id":4"#, r#""id":5"#),
            ),
        ),
        text(
            "trailer false",
            edit(7, r#""trailer":true"#, r#""trailer":false"#),
        ),
        text("missing trailer", without_line(7)),
        text("line after the trailer", format!("{EXAMPLE}{{}}\n")),
        text(
            "edge count mismatch",
            edit(1, r#""edges":3"#, r#""edges":4"#),
        ),
        text(
            "tracked count mismatch",
            edit(1, r#""tracked":3"#, r#""tracked":2"#),
        ),
        text(
            "clamped beyond zero externals",
            edit(1, r#""clamped":0"#, r#""clamped":3"#),
        ),
        text(
            "garbage not sorted",
            edit(7, r#""garbage":[2]"#, r#""garbage":[2,1]"#),
        ),
        text(
            "garbage repeats",
            edit(7, r#""garbage":[2]"#, r#""garbage":[2,2]"#),
        ),
        text(
            "untracked garbage",
            edit(7, r#""garbage":[2]"#, r#""garbage":[2,3]"#),
        ),
        text(
            "garbage out of range",
            edit(7, r#""garbage":[2]"#, r#""garbage":[7]"#),
        ),
        text(
            "not_saved outside garbage",
            edit(7, r#""collected":1"#, r#""collected":1,"not_saved":[1]"#),
        ),
        text(
            "saved_not_garbage in garbage",
            edit(
                7,
                r#""collected":1"#,
                r#""collected":1,"saved_not_garbage":[2]"#,
            ),
        ),
        text("trailer lacks collected", edit(7, r#""collected":1,"#, "")),
        text(
            "verify not an object",
            edit(7, r#""collected":1"#, r#""collected":1,"verify":[]"#),
        ),
        text(
            "repeated key with a line feed",
            edit(3, r#""size":64"#, r#""size":64,"a\nb":1,"a\nb":2"#),
        ),
        text(
            "unmapped type with control characters",
            edit(
                7,
                r#""collected":1"#,
                r#""collected":1,"unmapped_types":{"x\u001b[31m\ny":-3}"#,
            ),
        ),
    ]
}
