//! Every rule the reader enforces, broken once, with the line the error must name.

mod common;

use std::io::{self, BufRead, Read};

use common::{edit, insert_line, with_line, without_line, EXAMPLE};
use inspect_cli::heapgraph::{ErrorKind, HeapGraph, Kind, ReadError};

fn read(input: impl AsRef<[u8]>) -> Result<HeapGraph, ReadError> {
    HeapGraph::read(input.as_ref())
}

/// `$input` is rejected on line `$line` with an error matching `$kind`.
macro_rules! rejects {
    ($name:ident, $input:expr, $line:expr, $kind:pat $(if $guard:expr)?) => {
        #[test]
        fn $name() {
            let error = read($input).expect_err("must be rejected");
            assert_eq!(error.line, $line, "wrong line: {error}");
            assert!(matches!(error.kind, $kind $(if $guard)?), "wrong error: {error}");
        }
    };
}

#[test]
fn the_example_is_valid() {
    let graph = read(EXAMPLE).expect("the section 9 example");
    assert_eq!(graph.len(), 5);
}

#[test]
fn unknown_keys_are_ignored() {
    let input = edit(3, r#""size":64"#, r#""size":64,"colour":[1,{"a":null}]"#);
    let input = input.replacen(r#""python":"3.11.7""#, r#""python":"3.11.7","note":"x""#, 1);
    assert_eq!(read(input).expect("valid"), read(EXAMPLE).expect("valid"));
}

#[test]
fn trailer_is_an_unknown_key_on_an_object_line() {
    // Object lines have no `trailer` key, so a reader must ignore one; the object line was
    // taken for an early trailer.
    for value in ["false", "true", "null"] {
        let input = edit(4, r#""id":2"#, &format!(r#""id":2,"trailer":{value}"#));
        assert_eq!(read(input).expect("valid"), read(EXAMPLE).expect("valid"));
    }
}

#[test]
fn keys_may_come_in_any_order() {
    let line = r#"{"tracked":true,"len":1,"external":0,"refs":[4],"size":64,"kind":"list","type":"list","id":1}"#;
    assert_eq!(
        read(with_line(3, line)).expect("valid"),
        read(EXAMPLE).expect("valid")
    );
}

// Section 1: layout.
rejects!(empty_file, "", 1, ErrorKind::Empty);
rejects!(
    truncated_last_line,
    EXAMPLE.trim_end_matches('\n'),
    7,
    ErrorKind::Unterminated
);
rejects!(
    truncated_in_an_object,
    &EXAMPLE[..EXAMPLE.find("\"external\":0").unwrap()],
    3,
    ErrorKind::Unterminated
);
rejects!(
    crlf,
    EXAMPLE.replace('\n', "\r\n"),
    1,
    ErrorKind::CarriageReturn
);
rejects!(blank_line, insert_line(4, ""), 4, ErrorKind::BlankLine);
rejects!(
    whitespace_line,
    insert_line(4, "  \t"),
    4,
    ErrorKind::BlankLine
);
rejects!(
    bad_json,
    with_line(2, r#"{"id":0,"type""#),
    2,
    ErrorKind::Json { .. }
);
rejects!(
    trailing_text,
    edit(2, "}", "} {}"),
    2,
    ErrorKind::Json { .. }
);
rejects!(
    array_line,
    with_line(3, "[1]"),
    3,
    ErrorKind::NotAnObject { found: "an array" }
);
rejects!(duplicate_key_with_a_line_feed, edit(4, r#""size":88"#, r#""size":88,"a\nb":1,"a\nb":2"#), 4, ErrorKind::DuplicateKey { ref key } if key == "a\\nb");
rejects!(duplicate_key, edit(4, r#""size":88"#, r#""size":88,"size":88"#), 4, ErrorKind::DuplicateKey { ref key } if key == "size");
// Nested objects too (regression: only a line's own keys were checked; with two counts for
// one type in `unmapped_types`, which one won was the parser's choice).
rejects!(duplicate_key_in_a_nested_object, edit(7, r#""collected":1"#, r#""collected":1,"unmapped_types":{"list":1,"list":2}"#), 7, ErrorKind::DuplicateKey { ref key } if key == "unmapped_types.list");
rejects!(duplicate_key_in_an_object_in_an_array, edit(4, r#""size":88"#, r#""size":88,"future":[1,{"k":1,"k":2}]"#), 4, ErrorKind::DuplicateKey { ref key } if key == "future[1].k");
rejects!(
    missing_trailer,
    without_line(7),
    7,
    ErrorKind::MissingTrailer {
        declared: 5,
        read: 5
    }
);
rejects!(
    file_ends_among_objects,
    EXAMPLE
        .lines()
        .take(3)
        .map(|l| format!("{l}\n"))
        .collect::<String>(),
    4,
    ErrorKind::MissingTrailer {
        declared: 5,
        read: 2
    }
);
rejects!(
    line_after_trailer,
    format!("{EXAMPLE}{{\"trailer\":true}}\n"),
    8,
    ErrorKind::AfterTrailer
);
rejects!(
    blank_line_after_trailer,
    format!("{EXAMPLE}\n"),
    8,
    ErrorKind::BlankLine
);

#[test]
fn not_utf8() {
    let mut bytes = EXAMPLE.as_bytes().to_vec();
    let at = EXAMPLE.find("\"str\"").unwrap() + 1;
    bytes[at] = 0xc3;
    let error = read(bytes).expect_err("invalid UTF-8");
    assert_eq!(error.line, 5);
    assert!(
        matches!(error.kind, ErrorKind::NotUtf8 { offset: 16 }),
        "{error}"
    );
}

/// A reader that fails after `ok` bytes.
struct Failing {
    data: &'static [u8],
    ok: usize,
}

impl Read for Failing {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.fill_buf()?.len().min(buf.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for Failing {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.ok == 0 {
            return Err(io::Error::other("disk on fire"));
        }
        Ok(&self.data[..self.ok.min(self.data.len())])
    }
    fn consume(&mut self, n: usize) {
        self.data = &self.data[n..];
        self.ok -= n;
    }
}

#[test]
fn io_errors_name_the_line_being_read() {
    let ok = EXAMPLE.find("{\"id\":2").unwrap() + 5;
    let error = HeapGraph::read(Failing {
        data: EXAMPLE.as_bytes(),
        ok,
    })
    .expect_err("I/O error");
    assert_eq!(error.line, 4);
    assert!(matches!(error.kind, ErrorKind::Io(_)), "{error}");
    assert!(std::error::Error::source(&error.kind).is_some());
}

// Section 1: integers, booleans, counts.
rejects!(
    integer_as_boolean,
    edit(3, r#""tracked":true"#, r#""tracked":1"#),
    3,
    ErrorKind::WrongType {
        expected: "a boolean",
        found: "an integer",
        ..
    }
);
rejects!(
    boolean_as_integer,
    edit(3, r#""size":64"#, r#""size":true"#),
    3,
    ErrorKind::WrongType {
        expected: "an integer",
        found: "a boolean",
        ..
    }
);
rejects!(
    string_as_integer,
    edit(3, r#""size":64"#, r#""size":"64""#),
    3,
    ErrorKind::WrongType {
        found: "a string",
        ..
    }
);
rejects!(
    fraction,
    edit(3, r#""size":64"#, r#""size":64.0"#),
    3,
    ErrorKind::WrongType {
        found: "a number with a fraction or an exponent",
        ..
    }
);
rejects!(
    exponent,
    edit(3, r#""size":64"#, r#""size":6e1"#),
    3,
    ErrorKind::WrongType { .. }
);
rejects!(
    exponent_within_i64,
    edit(3, r#""size":64"#, r#""size":9.2e18"#),
    3,
    ErrorKind::WrongType {
        found: "a number with a fraction or an exponent",
        ..
    }
);
rejects!(above_i64, edit(3, r#""external":0"#, r#""external":9223372036854775808"#), 3, ErrorKind::OutOfRange { ref key } if key == "external");
rejects!(
    far_above_u64,
    edit(
        3,
        r#""external":0"#,
        r#""external":123456789012345678901234567890"#
    ),
    3,
    ErrorKind::OutOfRange { .. }
);
rejects!(
    below_i64,
    edit(3, r#""size":64"#, r#""size":-9223372036854775809"#),
    3,
    ErrorKind::OutOfRange { .. }
);
rejects!(
    negative_size,
    edit(3, r#""size":64"#, r#""size":-1"#),
    3,
    ErrorKind::Negative { value: -1, .. }
);
rejects!(
    negative_external,
    edit(3, r#""external":0"#, r#""external":-2"#),
    3,
    ErrorKind::Negative { value: -2, .. }
);
rejects!(
    null_value,
    edit(3, r#""size":64"#, r#""size":null"#),
    3,
    ErrorKind::WrongType { found: "null", .. }
);

// Section 2: the header.
rejects!(
    not_heapgraph,
    edit(1, r#""format":"heapgraph""#, r#""format":"graph""#),
    1,
    ErrorKind::NotHeapgraph { .. }
);
rejects!(
    unknown_version,
    edit(1, r#""version":1"#, r#""version":2"#),
    1,
    ErrorKind::UnsupportedVersion { found: 2 }
);
rejects!(
    version_as_string,
    edit(1, r#""version":1"#, r#""version":"1""#),
    1,
    ErrorKind::WrongType { .. }
);
rejects!(
    header_lacks_python,
    edit(1, r#""python":"3.11.7","#, ""),
    1,
    ErrorKind::MissingKey { key: "python" }
);
rejects!(
    header_lacks_objects,
    edit(1, r#""objects":5,"#, ""),
    1,
    ErrorKind::MissingKey { key: "objects" }
);
rejects!(
    negative_objects,
    edit(1, r#""objects":5"#, r#""objects":-5"#),
    1,
    ErrorKind::Negative { .. }
);
rejects!(
    too_many_objects,
    edit(1, r#""objects":5"#, r#""objects":4294967296"#),
    1,
    ErrorKind::TooLarge { .. }
);
rejects!(
    workload_not_a_string,
    edit(
        1,
        r#""producer":"example""#,
        r#""producer":"example","workload":3"#
    ),
    1,
    ErrorKind::WrongType { .. }
);
rejects!(
    edges_mismatch,
    edit(1, r#""edges":3"#, r#""edges":4"#),
    1,
    ErrorKind::CountMismatch {
        key: "edges",
        declared: 4,
        actual: 3
    }
);
rejects!(
    tracked_mismatch,
    edit(1, r#""tracked":3"#, r#""tracked":2"#),
    1,
    ErrorKind::CountMismatch { key: "tracked", .. }
);
rejects!(
    externally_held_mismatch,
    edit(1, r#""externally_held":3"#, r#""externally_held":0"#),
    1,
    ErrorKind::CountMismatch {
        key: "externally_held",
        ..
    }
);
rejects!(
    untracked_to_tracked_mismatch,
    edit(
        1,
        r#""untracked_to_tracked":0"#,
        r#""untracked_to_tracked":1"#
    ),
    1,
    ErrorKind::CountMismatch {
        key: "untracked_to_tracked",
        ..
    }
);
rejects!(
    clamped_beyond_zero_externals,
    edit(1, r#""clamped":0"#, r#""clamped":3"#),
    1,
    ErrorKind::ClampedTooMany {
        declared: 3,
        zero_external: 2
    }
);
rejects!(
    header_objects_too_large,
    edit(1, r#""objects":5"#, r#""objects":6"#),
    7,
    ErrorKind::EarlyTrailer {
        expected: 5,
        declared: 6
    }
);

// Section 3: object lines.
rejects!(
    duplicate_id,
    edit(3, r#""id":1"#, r#""id":0"#),
    3,
    ErrorKind::IdOutOfOrder {
        found: 0,
        expected: 1
    }
);
rejects!(
    skipped_id,
    edit(3, r#""id":1"#, r#""id":2"#),
    3,
    ErrorKind::IdOutOfOrder {
        found: 2,
        expected: 1
    }
);
rejects!(
    missing_object_line,
    without_line(3),
    3,
    ErrorKind::IdOutOfOrder {
        found: 2,
        expected: 1
    }
);
rejects!(
    duplicated_object_line,
    insert_line(3, EXAMPLE.lines().nth(1).unwrap()),
    3,
    ErrorKind::IdOutOfOrder {
        found: 0,
        expected: 1
    }
);
rejects!(
    extra_object_line,
    insert_line(
        7,
        &EXAMPLE
            .lines()
            .nth(5)
            .unwrap()
            .replace(r#""id":4"#, r#""id":5"#)
    ),
    7,
    ErrorKind::ExpectedTrailer { declared: 5 }
);
rejects!(
    missing_type,
    edit(4, r#""type":"list","#, ""),
    4,
    ErrorKind::MissingKey { key: "type" }
);
rejects!(
    missing_kind,
    edit(4, r#""kind":"list","#, ""),
    4,
    ErrorKind::MissingKey { key: "kind" }
);
rejects!(
    missing_refs,
    edit(4, r#""refs":[2],"#, ""),
    4,
    ErrorKind::MissingKey { key: "refs" }
);
rejects!(
    missing_external,
    edit(4, r#""external":0,"#, ""),
    4,
    ErrorKind::MissingKey { key: "external" }
);
rejects!(
    missing_tracked,
    edit(4, r#","tracked":true"#, ""),
    4,
    ErrorKind::MissingKey { key: "tracked" }
);
rejects!(
    empty_type,
    edit(4, r#""type":"list""#, r#""type":"""#),
    4,
    ErrorKind::EmptyTypeName
);
rejects!(
    unknown_kind,
    edit(4, r#""kind":"list""#, r#""kind":"List""#),
    4,
    ErrorKind::UnknownKind { .. }
);
rejects!(
    refs_not_an_array,
    edit(4, r#""refs":[2]"#, r#""refs":2"#),
    4,
    ErrorKind::WrongType {
        expected: "an array",
        ..
    }
);
rejects!(ref_out_of_range, edit(4, r#""refs":[2]"#, r#""refs":[2,5]"#), 4, ErrorKind::IdOutOfRange { id: 5, objects: 5, ref key } if key == "refs[1]");
rejects!(
    negative_ref,
    edit(4, r#""refs":[2]"#, r#""refs":[-1]"#),
    4,
    ErrorKind::IdOutOfRange { id: -1, .. }
);
rejects!(ref_not_an_integer, edit(4, r#""refs":[2]"#, r#""refs":["2"]"#), 4, ErrorKind::WrongType { ref key, .. } if key == "refs[0]");
rejects!(
    value_on_a_list,
    edit(4, r#""len":1"#, r#""value":1"#),
    4,
    ErrorKind::NotAllowedForKind {
        key: "value",
        kind: Kind::List
    }
);
rejects!(
    len_on_an_int,
    edit(6, r#""value":7"#, r#""len":7"#),
    6,
    ErrorKind::NotAllowedForKind {
        key: "len",
        kind: Kind::Int
    }
);
rejects!(
    value_and_len,
    edit(6, r#""value":7"#, r#""value":7,"len":1"#),
    6,
    ErrorKind::NotAllowedForKind { key: "len", .. }
);
rejects!(
    int_value_with_fraction,
    edit(6, r#""value":7"#, r#""value":7.5"#),
    6,
    ErrorKind::WrongType { .. }
);
rejects!(
    negative_len,
    edit(4, r#""len":1"#, r#""len":-1"#),
    4,
    ErrorKind::Negative { .. }
);
rejects!(
    atom_with_refs,
    edit(5, r#""refs":[]"#, r#""refs":[0]"#),
    5,
    ErrorKind::AtomWithRefs { kind: Kind::Str }
);
rejects!(
    tracked_atom,
    edit(6, r#""tracked":false"#, r#""tracked":true"#),
    6,
    ErrorKind::AtomTracked { kind: Kind::Int }
);
rejects!(
    trailer_among_objects,
    with_line(
        4,
        r#"{"trailer":true,"garbage":[],"collected":0,"collect_ns":0,"live_collect_ns":0}"#
    ),
    4,
    ErrorKind::EarlyTrailer {
        expected: 2,
        declared: 5
    }
);

#[test]
fn float_values_may_be_integers() {
    let graph = read(with_line(6, r#"{"id":4,"type":"float","kind":"float","size":24,"refs":[],"external":1000000022,"tracked":false,"value":2}"#)).expect("valid");
    assert_eq!(
        graph.objects[4].detail,
        inspect_cli::heapgraph::Detail::Float(2.0)
    );
}

// Section 4: the trailer.
rejects!(
    trailer_false,
    edit(7, r#""trailer":true"#, r#""trailer":false"#),
    7,
    ErrorKind::TrailerNotTrue
);
rejects!(
    trailer_not_boolean,
    edit(7, r#""trailer":true"#, r#""trailer":1"#),
    7,
    ErrorKind::WrongType { .. }
);
rejects!(
    trailer_lacks_its_mark,
    edit(7, r#""trailer":true,"#, ""),
    7,
    ErrorKind::MissingKey { key: "trailer" }
);
rejects!(
    trailer_lacks_garbage,
    edit(7, r#""garbage":[2],"#, ""),
    7,
    ErrorKind::MissingKey { key: "garbage" }
);
rejects!(
    trailer_lacks_collected,
    edit(7, r#""collected":1,"#, ""),
    7,
    ErrorKind::MissingKey { key: "collected" }
);
rejects!(
    trailer_lacks_collect_ns,
    edit(7, r#""collect_ns":2100,"#, ""),
    7,
    ErrorKind::MissingKey { key: "collect_ns" }
);
rejects!(
    trailer_lacks_live_collect_ns,
    edit(7, r#","live_collect_ns":1900"#, ""),
    7,
    ErrorKind::MissingKey {
        key: "live_collect_ns"
    }
);
rejects!(
    garbage_unsorted,
    edit(7, r#""garbage":[2]"#, r#""garbage":[2,1]"#),
    7,
    ErrorKind::GarbageNotSorted {
        previous: 2,
        next: 1
    }
);
rejects!(
    garbage_repeated,
    edit(7, r#""garbage":[2]"#, r#""garbage":[2,2]"#),
    7,
    ErrorKind::GarbageNotSorted {
        previous: 2,
        next: 2
    }
);
rejects!(
    garbage_untracked,
    edit(7, r#""garbage":[2]"#, r#""garbage":[2,4]"#),
    7,
    ErrorKind::GarbageUntracked { id: 4 }
);
rejects!(
    garbage_out_of_range,
    edit(7, r#""garbage":[2]"#, r#""garbage":[2,9]"#),
    7,
    ErrorKind::IdOutOfRange { id: 9, .. }
);
rejects!(
    not_saved_outside_garbage,
    edit(7, r#""collected":1"#, r#""collected":1,"not_saved":[1]"#),
    7,
    ErrorKind::NotSavedOutsideGarbage { id: 1 }
);
rejects!(
    saved_not_garbage_in_garbage,
    edit(
        7,
        r#""collected":1"#,
        r#""collected":1,"saved_not_garbage":[2]"#
    ),
    7,
    ErrorKind::SavedNotGarbageInGarbage { id: 2 }
);
rejects!(negative_repeat, edit(7, r#""collected":1"#, r#""collected":1,"live_collect_ns_repeats":[5,-5]"#), 7, ErrorKind::Negative { ref key, .. } if key == "live_collect_ns_repeats[1]");
rejects!(
    unmapped_types_not_counts,
    edit(
        7,
        r#""collected":1"#,
        r#""collected":1,"unmapped_types":{"list":"3"}"#
    ),
    7,
    ErrorKind::WrongType { .. }
);
rejects!(
    verify_not_an_object,
    edit(7, r#""collected":1"#, r#""collected":1,"verify":[]"#),
    7,
    ErrorKind::WrongType {
        expected: "an object",
        ..
    }
);
rejects!(
    garbage_source_not_a_string,
    edit(
        7,
        r#""collected":1"#,
        r#""collected":1,"garbage_source":null"#
    ),
    7,
    ErrorKind::WrongType { .. }
);

#[test]
fn optional_trailer_keys_are_read() {
    let input = edit(
        7,
        r#""collected":1"#,
        r#""collected":1,"saved":1,"not_saved":[2],"saved_not_garbage":[],"freed":1,"live_collect_ns_repeats":[1,2],"unmapped_types":{"b":1,"a":2},"verify":{"fork_consistent":true,"refcounts":"ob_refcnt"}"#,
    );
    let trailer = read(input).expect("valid").trailer;
    assert_eq!(trailer.not_saved, Some(vec![2]));
    assert_eq!(trailer.live_collect_ns_repeats, Some(vec![1, 2]));
    assert_eq!(
        trailer.unmapped_types,
        Some(vec![("b".into(), 1), ("a".into(), 2)])
    );
    assert_eq!(trailer.verify.expect("verify")["refcounts"], "ob_refcnt");
}

#[test]
fn every_error_message_is_one_line_starting_with_its_line() {
    for (name, input) in common::malformed() {
        let error = read(&input).expect_err(name);
        let message = error.to_string();
        assert!(
            message.starts_with(&format!("line {}: ", error.line)),
            "{name}"
        );
        assert!(
            !message.contains(char::is_control),
            "{name}: one line, no control characters: {message:?}"
        );
    }
}

/// A line of many keys (all unknown, so ignored): the check for repeated keys must not be
/// quadratic (a 2.5 MB line of 200,000 keys took 47 s to read).
fn many_keys(n: usize, last: &str) -> String {
    let keys: String = (0..n).map(|i| format!(",\"k{i}\":0")).collect();
    edit(3, r#""size":64"#, &format!(r#""size":64{keys},"{last}":0"#))
}

#[test]
fn a_line_of_many_keys_is_read_in_linear_time() {
    let start = std::time::Instant::now();
    let graph = read(many_keys(200_000, "last")).expect("distinct keys");
    assert_eq!(graph, read(EXAMPLE).expect("valid"));
    let error = read(many_keys(200_000, "k0")).expect_err("a repeated key");
    assert_eq!(error.line, 3);
    assert!(
        matches!(error.kind, ErrorKind::DuplicateKey { ref key } if key == "k0"),
        "{error}"
    );
    assert!(start.elapsed().as_secs() < 20, "{:?}", start.elapsed());
}

#[test]
fn long_strings_from_the_file_are_cut_in_error_messages() {
    // An error quoted a string of the file whole: a `kind` of 50 MB gave a 50 MB message (one
    // line, but no one reads it). Each message quotes the string's start, and says it is cut.
    let long = "x".repeat(1 << 20);
    let cases = [
        ("format", edit(1, r#""heapgraph""#, &format!(r#""{long}""#))),
        (
            "kind",
            edit(3, r#""kind":"list""#, &format!(r#""kind":"{long}""#)),
        ),
        (
            "repeated key",
            edit(
                3,
                r#""size":64"#,
                &format!(r#""size":64,"{long}":1,"{long}":2"#),
            ),
        ),
        (
            "repeated nested key",
            edit(
                3,
                r#""size":64"#,
                &format!(r#""size":64,"{long}":{{"{long}":{{"a":1,"a":2}}}}"#),
            ),
        ),
        (
            "unmapped type",
            edit(
                7,
                r#""collected":1"#,
                &format!(r#""collected":1,"unmapped_types":{{"{long}":-1}}"#),
            ),
        ),
    ];
    for (name, input) in cases {
        let message = read(input).expect_err(name).to_string();
        assert!(message.len() < 400, "{name}: {} bytes", message.len());
        assert!(message.contains("xxxx…"), "{name}: {message}");
    }
}

#[test]
fn a_byte_order_mark_is_named() {
    // An editor's UTF-8 byte order mark was "invalid JSON: expected value at column 1", on a
    // line whose first visible character is `{`.
    let error = read(format!("\u{feff}{EXAMPLE}")).expect_err("a byte order mark");
    assert_eq!(error.line, 1);
    assert_eq!(
        error.to_string(),
        "line 1: the file starts with a byte order mark (U+FEFF): heapgraph files are UTF-8 without one"
    );
}
