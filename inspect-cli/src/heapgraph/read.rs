//! The streaming reader: one line in memory at a time, every rule of sections 1 to 4 checked.
//!
//! The reader walks the file as the format lays it out: the header (line 1) says how many
//! object lines follow (N), lines 2 to N+1 are the objects in id order, line N+2 is the
//! trailer and nothing may follow it. Each line is checked as it is read (its JSON, its keys,
//! their types, ids and references in range); what needs the whole file (the header's counts,
//! `garbage` naming tracked objects) is checked once the trailer is read.

use std::io::{BufRead, Read};

use super::error::{excerpt, printable, ErrorKind, ReadError};
use super::json::{Fields, Json};
use super::model::{Detail, Header, HeapGraph, Kind, ObjectLine, RefSpan, Trailer, TypeNames};

/// The only version this reader knows.
pub const VERSION: i64 = 1;

/// At most this many objects are reserved before they are read: a header may lie.
const MAX_RESERVE: usize = 1 << 20;

/// The longest line this reader accepts (1 GiB, without its LF): an input that never ends a
/// line (`/dev/zero`, a stray binary) is refused once this much is read, not held whole.
/// A list of some hundred million references fits.
pub const MAX_LINE: u64 = 1 << 30;

impl HeapGraph {
    /// Reads and checks a whole file, line by line.
    ///
    /// Never panics: every malformed input gives a [`ReadError`] naming its line.
    pub fn read<R: BufRead>(input: R) -> Result<HeapGraph, ReadError> {
        read(input)
    }
}

/// Reads and checks a whole file, line by line (see [`HeapGraph::read`]).
pub fn read<R: BufRead>(input: R) -> Result<HeapGraph, ReadError> {
    read_with_line_limit(input, MAX_LINE)
}

/// [`read`], refusing lines longer than `max_line` bytes.
fn read_with_line_limit<R: BufRead>(input: R, max_line: u64) -> Result<HeapGraph, ReadError> {
    let mut lines = Lines::new(input, max_line);
    let Some((_, text)) = lines.next()? else {
        return Err(ReadError::new(1, ErrorKind::Empty));
    };
    if text.starts_with('\u{feff}') {
        return Err(ReadError::new(1, ErrorKind::ByteOrderMark));
    }
    let (header, declared) = parse_header(&Fields::parse(text, 1)?)?;

    let mut graph = HeapGraph {
        header,
        objects: Vec::with_capacity((declared as usize).min(MAX_RESERVE)),
        refs: Vec::new(),
        type_names: TypeNames::new(),
        trailer: Trailer::default(),
    };
    for id in 0..declared {
        let Some((line, text)) = lines.next()? else {
            return Err(ReadError::new(
                lines.line + 1,
                ErrorKind::MissingTrailer { declared, read: id },
            ));
        };
        let fields = Fields::parse(text, line)?;
        // A line with `trailer` and no `id` is the trailer come early; `trailer` on a line
        // with an `id` is a key object lines do not know, and is ignored (section 1).
        if fields.get("trailer").is_some() && fields.get("id").is_none() {
            return Err(fields.error(ErrorKind::EarlyTrailer {
                expected: id,
                declared,
            }));
        }
        parse_object(&fields, id, declared, &mut graph)?;
    }

    let Some((line, text)) = lines.next()? else {
        return Err(ReadError::new(
            lines.line + 1,
            ErrorKind::MissingTrailer {
                declared,
                read: declared,
            },
        ));
    };
    let fields = Fields::parse(text, line)?;
    if fields.get("trailer").is_none() && fields.get("id").is_some() {
        return Err(fields.error(ErrorKind::ExpectedTrailer { declared }));
    }
    graph.trailer = parse_trailer(&fields, &graph.objects)?;
    if lines.next()?.is_some() {
        return Err(ReadError::new(lines.line, ErrorKind::AfterTrailer));
    }
    check_declared_counts(&graph)?;
    Ok(graph)
}

/// Lines of a `BufRead`, each checked for its LF, UTF-8 and blankness.
struct Lines<R> {
    input: R,
    buffer: Vec<u8>,
    /// The longest line accepted, without its LF.
    max_line: u64,
    /// The number of the line last returned (0 before the first).
    line: u64,
}

impl<R: BufRead> Lines<R> {
    fn new(input: R, max_line: u64) -> Self {
        Self {
            input,
            buffer: Vec::new(),
            max_line,
            line: 0,
        }
    }

    /// The next line's number and text (without its LF), or `None` at the end of the input.
    fn next(&mut self) -> Result<Option<(u64, &str)>, ReadError> {
        self.buffer.clear();
        let read = (&mut self.input)
            .take(self.max_line.saturating_add(1))
            .read_until(b'\n', &mut self.buffer)
            .map_err(|e| ReadError::new(self.line + 1, ErrorKind::Io(e)))?;
        if read == 0 {
            return Ok(None);
        }
        self.line += 1;
        let error = |kind| Err(ReadError::new(self.line, kind));
        if read as u64 > self.max_line && self.buffer.last() != Some(&b'\n') {
            return error(ErrorKind::LineTooLong {
                limit: self.max_line,
            });
        }
        if self.buffer.pop() != Some(b'\n') {
            return error(ErrorKind::Unterminated);
        }
        if self.buffer.last() == Some(&b'\r') {
            return error(ErrorKind::CarriageReturn);
        }
        let text = match std::str::from_utf8(&self.buffer) {
            Ok(text) => text,
            Err(e) => {
                return error(ErrorKind::NotUtf8 {
                    offset: e.valid_up_to(),
                })
            }
        };
        if text.bytes().all(|b| matches!(b, b' ' | b'\t' | b'\r')) {
            return error(ErrorKind::BlankLine);
        }
        Ok(Some((self.line, text)))
    }
}

/// Line 1: the header and the number of object lines it declares.
fn parse_header(fields: &Fields<'_>) -> Result<(Header, u32), ReadError> {
    let format = fields.string("format")?;
    if format != "heapgraph" {
        return Err(fields.error(ErrorKind::NotHeapgraph {
            found: excerpt(format).into_owned(),
        }));
    }
    let version = fields.int("version")?;
    if version != VERSION {
        return Err(fields.error(ErrorKind::UnsupportedVersion { found: version }));
    }
    let header = Header {
        producer: fields.string("producer")?.to_owned(),
        python: fields.string("python")?.to_owned(),
        workload: fields.opt_string("workload")?.map(str::to_owned),
        edges: fields.opt_count("edges")?,
        tracked: fields.opt_count("tracked")?,
        externally_held: fields.opt_count("externally_held")?,
        clamped: fields.opt_count("clamped")?,
        untracked_to_tracked: fields.opt_count("untracked_to_tracked")?,
    };
    let objects = fields.count("objects")?;
    let declared = u32::try_from(objects).map_err(|_| {
        fields.error(ErrorKind::TooLarge {
            what: "the number of objects",
            limit: u64::from(u32::MAX),
        })
    })?;
    Ok((header, declared))
}

/// An object line; appends the object and its references to `graph`.
fn parse_object(
    fields: &Fields<'_>,
    expected: u32,
    declared: u32,
    graph: &mut HeapGraph,
) -> Result<(), ReadError> {
    let id = fields.int("id")?;
    if id != i64::from(expected) {
        return Err(fields.error(ErrorKind::IdOutOfOrder {
            found: id,
            expected,
        }));
    }
    let type_name = fields.string("type")?;
    if type_name.is_empty() {
        return Err(fields.error(ErrorKind::EmptyTypeName));
    }
    let kind_name = fields.string("kind")?;
    let kind = Kind::from_name(kind_name).ok_or_else(|| {
        fields.error(ErrorKind::UnknownKind {
            found: excerpt(kind_name).into_owned(),
        })
    })?;
    let size = fields.count("size")?;
    let refs = fields.array("refs")?;
    let external = fields.count("external")?;
    let tracked = fields.boolean("tracked")?;
    let detail = parse_detail(fields, kind)?;
    if kind.is_atom() && !refs.is_empty() {
        return Err(fields.error(ErrorKind::AtomWithRefs { kind }));
    }
    if kind.is_atom() && tracked {
        return Err(fields.error(ErrorKind::AtomTracked { kind }));
    }

    let too_many_refs = || {
        fields.error(ErrorKind::TooLarge {
            what: "the total number of references",
            limit: u64::from(u32::MAX),
        })
    };
    let start = u32::try_from(graph.refs.len()).map_err(|_| too_many_refs())?;
    let len = u32::try_from(refs.len()).map_err(|_| too_many_refs())?;
    start.checked_add(len).ok_or_else(too_many_refs)?;
    graph.refs.reserve(refs.len());
    for (i, target) in refs.iter().enumerate() {
        let key = || format!("refs[{i}]");
        graph.refs.push(id_in_range(fields, target, declared, key)?);
    }
    let type_name = graph.type_names.intern(type_name);
    graph.objects.push(ObjectLine {
        type_name,
        kind,
        tracked,
        refs: RefSpan { start, len },
        size,
        external,
        detail,
    });
    Ok(())
}

/// The optional `value` (ints and floats) or `len` (str, bytes and containers).
fn parse_detail(fields: &Fields<'_>, kind: Kind) -> Result<Detail, ReadError> {
    if let Some(value) = fields.get("value") {
        if !kind.has_value() {
            return Err(fields.error(ErrorKind::NotAllowedForKind { key: "value", kind }));
        }
        if fields.get("len").is_some() {
            return Err(fields.error(ErrorKind::NotAllowedForKind { key: "len", kind }));
        }
        return match (kind, value) {
            (Kind::Float, Json::Float(f)) => Ok(Detail::Float(*f)),
            // A float that happens to be integral may be written as an integer.
            (Kind::Float, Json::Int(i)) => Ok(Detail::Float(*i as f64)),
            (Kind::Float, Json::BigInt(u)) => Ok(Detail::Float(*u as f64)),
            (Kind::Float, other) => Err(fields.error(ErrorKind::WrongType {
                key: "value".into(),
                expected: "a number",
                found: other.describe(),
            })),
            _ => Ok(Detail::Int(fields.as_int(value, "value")?)),
        };
    }
    match fields.opt_count("len")? {
        None => Ok(Detail::None),
        Some(_) if !kind.has_len() => {
            Err(fields.error(ErrorKind::NotAllowedForKind { key: "len", kind }))
        }
        Some(len) => Ok(Detail::Len(len)),
    }
}

/// An id: an integer naming one of the `objects` objects of the file.
fn id_in_range(
    fields: &Fields<'_>,
    value: &Json<'_>,
    objects: u32,
    key: impl Fn() -> String,
) -> Result<u32, ReadError> {
    let id = fields.as_int(value, &key())?;
    match u32::try_from(id) {
        Ok(id) if id < objects => Ok(id),
        _ => Err(fields.error(ErrorKind::IdOutOfRange {
            key: key(),
            id,
            objects,
        })),
    }
}

/// A list of ids, each in range.
fn id_list(
    fields: &Fields<'_>,
    key: &'static str,
    items: &[Json<'_>],
    objects: u32,
) -> Result<Vec<u32>, ReadError> {
    items
        .iter()
        .enumerate()
        .map(|(i, item)| id_in_range(fields, item, objects, || format!("{key}[{i}]")))
        .collect()
}

/// The last line; `objects` are the objects read before it.
fn parse_trailer(fields: &Fields<'_>, objects: &[ObjectLine]) -> Result<Trailer, ReadError> {
    if !fields.boolean("trailer")? {
        return Err(fields.error(ErrorKind::TrailerNotTrue));
    }
    // `objects` came from a file whose header fits in u32.
    let count = u32::try_from(objects.len()).unwrap_or(u32::MAX);
    let garbage = id_list(fields, "garbage", fields.array("garbage")?, count)?;
    for pair in garbage.windows(2) {
        if pair[0] >= pair[1] {
            return Err(fields.error(ErrorKind::GarbageNotSorted {
                previous: pair[0],
                next: pair[1],
            }));
        }
    }
    if let Some(&id) = garbage
        .iter()
        .find(|&&id| !objects.get(id as usize).is_some_and(|o| o.tracked))
    {
        return Err(fields.error(ErrorKind::GarbageUntracked { id }));
    }
    let in_garbage = |id: &u32| garbage.binary_search(id).is_ok();
    let optional_ids = |key| {
        fields
            .opt_array(key)?
            .map(|items| id_list(fields, key, items, count))
            .transpose()
    };
    let not_saved = optional_ids("not_saved")?;
    if let Some(&id) = not_saved.iter().flatten().find(|id| !in_garbage(id)) {
        return Err(fields.error(ErrorKind::NotSavedOutsideGarbage { id }));
    }
    let saved_not_garbage = optional_ids("saved_not_garbage")?;
    if let Some(&id) = saved_not_garbage.iter().flatten().find(|id| in_garbage(id)) {
        return Err(fields.error(ErrorKind::SavedNotGarbageInGarbage { id }));
    }
    let live_collect_ns_repeats = fields
        .opt_array("live_collect_ns_repeats")?
        .map(|items| {
            items
                .iter()
                .enumerate()
                .map(|(i, item)| fields.as_count(item, &format!("live_collect_ns_repeats[{i}]")))
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()?;
    let unmapped_types = fields
        .opt_object("unmapped_types")?
        .map(|entries| {
            entries
                .iter()
                .map(|(name, n)| {
                    let n = fields
                        .as_count(n, &format!("unmapped_types.{}", printable(&excerpt(name))))?;
                    Ok((name.to_string(), n))
                })
                .collect::<Result<Vec<_>, ReadError>>()
        })
        .transpose()?;
    let verify = fields.opt_object("verify")?.map(|entries| {
        entries
            .iter()
            .map(|(key, value)| (key.to_string(), value.to_value()))
            .collect()
    });
    Ok(Trailer {
        garbage,
        collected: fields.count("collected")?,
        collect_ns: fields.count("collect_ns")?,
        live_collect_ns: fields.count("live_collect_ns")?,
        garbage_source: fields.opt_string("garbage_source")?.map(str::to_owned),
        saved: fields.opt_count("saved")?,
        not_saved,
        saved_not_garbage,
        free_collect_ns: fields.opt_count("free_collect_ns")?,
        freed: fields.opt_count("freed")?,
        live_collected: fields.opt_count("live_collected")?,
        live_collect_ns_repeats,
        unmapped_garbage: fields.opt_count("unmapped_garbage")?,
        unmapped_types,
        unmapped_unreachable: fields.opt_count("unmapped_unreachable")?,
        verify,
    })
}

/// The header's optional counts against the objects (section 2: a mismatch is invalid).
fn check_declared_counts(graph: &HeapGraph) -> Result<(), ReadError> {
    let counts = graph.counts();
    let header = &graph.header;
    let declared = [
        ("edges", header.edges, counts.edges),
        ("tracked", header.tracked, counts.tracked),
        (
            "externally_held",
            header.externally_held,
            counts.externally_held,
        ),
        (
            "untracked_to_tracked",
            header.untracked_to_tracked,
            counts.untracked_to_tracked,
        ),
    ];
    for (key, declared, actual) in declared {
        if let Some(declared) = declared.filter(|&d| d != actual) {
            return Err(ReadError::new(
                1,
                ErrorKind::CountMismatch {
                    key,
                    declared,
                    actual,
                },
            ));
        }
    }
    if let Some(declared) = header.clamped.filter(|&c| c > counts.zero_external) {
        return Err(ReadError::new(
            1,
            ErrorKind::ClampedTooMany {
                declared,
                zero_external: counts.zero_external,
            },
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_endless_line_is_refused_at_the_limit() {
        // `check /dev/zero` read until memory ran out, then aborted.
        let error = read_with_line_limit(std::io::BufReader::new(std::io::repeat(0)), 1000)
            .expect_err("too long");
        assert_eq!(error.line, 1);
        assert!(
            matches!(error.kind, ErrorKind::LineTooLong { limit: 1000 }),
            "{error}"
        );
        let file = include_str!("../../testdata/graphs/spec-example.jsonl");
        let longest = file.lines().map(str::len).max().expect("lines") as u64;
        read_with_line_limit(file.as_bytes(), longest).expect("lines of the limit are read");
        let error = read_with_line_limit(file.as_bytes(), longest - 1).expect_err("one too long");
        assert!(
            matches!(error.kind, ErrorKind::LineTooLong { .. }),
            "{error}"
        );
    }
}
