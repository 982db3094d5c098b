//! Why a heapgraph file was rejected, and on which line.

use std::borrow::Cow;
use std::io;

use thiserror::Error;

use super::model::Kind;

/// A heapgraph file that breaks a rule of the format (sections 1 to 4), or that could not be
/// read. `line` is 1-based: line 1 is the header. Errors found only once the whole file is
/// read (a header count that does not match the objects) name the line that declared the
/// wrong value.
#[derive(Debug, Error)]
#[error("line {line}: {kind}")]
pub struct ReadError {
    /// The 1-based line the error is about.
    pub line: u64,
    /// What is wrong.
    pub kind: ErrorKind,
}

/// `text` from a file or a command line, fit for a one-line message: control characters
/// (line feeds, escape sequences) are written as Rust escapes (`\n`, `\u{1b}`), and so are
/// the bidirectional formatting characters, which would reorder what the terminal shows
/// (`\u{202e}`).
pub(crate) fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_debug());
        } else if is_bidi_control(c) {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    out
}

/// The most characters of a string of the file that an error message quotes.
const QUOTED_CHARS: usize = 60;

/// `text`, a string of the file that an error message quotes, cut to its first
/// [`QUOTED_CHARS`] characters with `…` after them when it is longer: a file's strings may be
/// of any length, and a message is one line someone reads.
pub(crate) fn excerpt(text: &str) -> Cow<'_, str> {
    match text.char_indices().nth(QUOTED_CHARS) {
        None => Cow::Borrowed(text),
        Some((end, _)) => Cow::Owned(format!("{}…", &text[..end])),
    }
}

/// The characters that change the direction of the text around them (Unicode's
/// `Bidi_Control`): marks, embeddings, overrides and isolates.
pub(crate) fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

impl ReadError {
    /// An error on `line`.
    pub fn new(line: u64, kind: ErrorKind) -> Self {
        Self { line, kind }
    }
}

/// What is wrong with a heapgraph file. Each variant's message reads after `line N: `.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The input could not be read.
    #[error("cannot read the input: {0}")]
    Io(#[source] io::Error),
    /// The file has no line at all.
    #[error("the file is empty: line 1 must be the header")]
    Empty,
    /// The last line has no line feed: the file was cut short.
    #[error("the last line does not end with a line feed (truncated file?)")]
    Unterminated,
    /// A line ends with CR LF.
    #[error("the line ends with CR LF: lines end with LF alone")]
    CarriageReturn,
    /// The line is not UTF-8.
    #[error("not valid UTF-8 (byte {offset} of the line)")]
    NotUtf8 {
        /// Byte offset of the first invalid byte within the line.
        offset: usize,
    },
    /// A line longer than the reader accepts ([`MAX_LINE`](super::read::MAX_LINE)).
    #[error("the line is longer than {limit} bytes (not a heapgraph file?)")]
    LineTooLong {
        /// The longest line accepted, in bytes.
        limit: u64,
    },
    /// The file starts with a byte order mark, which section 1 leaves out (and which JSON
    /// parsers take for an unexpected character).
    #[error(
        "the file starts with a byte order mark (U+FEFF): heapgraph files are UTF-8 without one"
    )]
    ByteOrderMark,
    /// An empty or all-blank line.
    #[error("blank line: every line must be one JSON object")]
    BlankLine,
    /// The line is not valid JSON.
    #[error("invalid JSON: {message}")]
    Json {
        /// The JSON parser's message, with the column.
        message: String,
    },
    /// The line is valid JSON but not an object.
    #[error("the line is {found}, not a JSON object")]
    NotAnObject {
        /// The JSON type found.
        found: &'static str,
    },
    /// The same key twice in one object of a line.
    #[error("key `{key}` appears twice")]
    DuplicateKey {
        /// The repeated key, with the path of the object it repeats in (`unmapped_types.list`;
        /// control characters escaped and each key cut to its first 60 characters, as the
        /// message shows it).
        key: String,
    },
    /// A required key is absent.
    #[error("missing required key `{key}`")]
    MissingKey {
        /// The missing key.
        key: &'static str,
    },
    /// A key holds a value of the wrong JSON type.
    #[error("`{key}` must be {expected}, found {found}")]
    WrongType {
        /// The key (with an index for an array element, as in `refs[2]`).
        key: String,
        /// The type the format requires.
        expected: &'static str,
        /// The type found.
        found: &'static str,
    },
    /// An integer beyond the signed 64-bit range.
    #[error("`{key}` is outside the signed 64-bit integer range")]
    OutOfRange {
        /// The key (with an index for an array element).
        key: String,
    },
    /// A count, size or timing below zero.
    #[error("`{key}` is {value}: counts are never negative")]
    Negative {
        /// The key (with an index for an array element).
        key: String,
        /// The value found.
        value: i64,
    },
    /// The header's `format` is not `"heapgraph"`.
    #[error("`format` is {found:?}, expected \"heapgraph\"")]
    NotHeapgraph {
        /// The format named (its first 60 characters, then `…`, when longer).
        found: String,
    },
    /// A version this reader does not know.
    #[error("unsupported version {found}: this reader knows version 1")]
    UnsupportedVersion {
        /// The version named.
        found: i64,
    },
    /// More objects or references than ids of 32 bits can name.
    #[error("{what} exceeds this reader's limit of {limit}")]
    TooLarge {
        /// What is too large.
        what: &'static str,
        /// The largest supported value.
        limit: u64,
    },
    /// An object line whose id is not the next one.
    #[error("id {found} where id {expected} was expected (ids are 0, 1, 2, ... in file order: a duplicate, missing or out-of-order line?)")]
    IdOutOfOrder {
        /// The id found.
        found: i64,
        /// The id this line must have.
        expected: u32,
    },
    /// An id that names no object of the file.
    #[error("`{key}` is {id}, not the id of one of the file's {objects} objects")]
    IdOutOfRange {
        /// The key, with the index in its array (`refs[3]`, `garbage[0]`).
        key: String,
        /// The id found.
        id: i64,
        /// The number of objects of the file.
        objects: u32,
    },
    /// A `kind` that is not one of the format's ten.
    #[error("unknown kind {found:?} (expected int, float, str, bytes, tuple, list, dict, set, instance or other)")]
    UnknownKind {
        /// The kind named (its first 60 characters, then `…`, when longer).
        found: String,
    },
    /// An empty `type`.
    #[error("`type` is empty")]
    EmptyTypeName,
    /// A `value` or `len` on an object of a kind that has none.
    #[error("`{key}` is not allowed on an object of kind {kind}")]
    NotAllowedForKind {
        /// `value` or `len`.
        key: &'static str,
        /// The object's kind.
        kind: Kind,
    },
    /// An atom (int, float, str, bytes) with references.
    #[error("an object of kind {kind} is an atom: its `refs` must be empty")]
    AtomWithRefs {
        /// The object's kind.
        kind: Kind,
    },
    /// An atom marked as tracked.
    #[error("an object of kind {kind} is an atom: it cannot be tracked")]
    AtomTracked {
        /// The object's kind.
        kind: Kind,
    },
    /// A trailer where an object line was expected.
    #[error("the trailer comes where object {expected} was expected: the header declares {declared} objects")]
    EarlyTrailer {
        /// The id of the missing object.
        expected: u32,
        /// The header's `objects`.
        declared: u32,
    },
    /// An object line where the trailer was expected.
    #[error("an object line comes where the trailer was expected: the header declares {declared} objects")]
    ExpectedTrailer {
        /// The header's `objects`.
        declared: u32,
    },
    /// `"trailer": false`.
    #[error("`trailer` must be true")]
    TrailerNotTrue,
    /// The file ends before its trailer.
    #[error("the file ends before the trailer: the header declares {declared} objects, {read} object lines were read")]
    MissingTrailer {
        /// The header's `objects`.
        declared: u32,
        /// The object lines read.
        read: u32,
    },
    /// Something after the trailer.
    #[error("a line after the trailer: the trailer must be the last line")]
    AfterTrailer,
    /// An optional header count that disagrees with the objects.
    #[error("the header declares `{key}` = {declared}, but the objects give {actual}")]
    CountMismatch {
        /// The header key.
        key: &'static str,
        /// The header's value.
        declared: u64,
        /// The value computed from the object lines.
        actual: u64,
    },
    /// More clamped objects than objects whose `external` is 0.
    #[error("the header declares `clamped` = {declared}, but only {zero_external} objects have external 0")]
    ClampedTooMany {
        /// The header's value.
        declared: u64,
        /// Objects with `external` 0, the most that can have been clamped.
        zero_external: u64,
    },
    /// `garbage` is not strictly ascending.
    #[error(
        "`garbage` must be sorted ascending with each id once: {previous} is followed by {next}"
    )]
    GarbageNotSorted {
        /// The earlier id.
        previous: u32,
        /// The id that follows it.
        next: u32,
    },
    /// An untracked object in `garbage`.
    #[error("`garbage` lists object {id}, which is not tracked")]
    GarbageUntracked {
        /// The object.
        id: u32,
    },
    /// An id of `not_saved` that is not in `garbage`.
    #[error("`not_saved` lists object {id}, which is not in `garbage`")]
    NotSavedOutsideGarbage {
        /// The object.
        id: u32,
    },
    /// An id of `saved_not_garbage` that is in `garbage`.
    #[error("`saved_not_garbage` lists object {id}, which is in `garbage`")]
    SavedNotGarbageInGarbage {
        /// The object.
        id: u32,
    },
}
