//! The writer: a [`HeapGraph`] as heapgraph text, one line at a time.
//!
//! Keys come in the order of the format's tables, optional keys only when present, no spaces.
//! What the reader accepted the writer gives back: `read(write(g)) == g` for every graph read
//! from a file (unknown keys, which the reader ignores, are not kept). The writer does not
//! check the graph; reading its output back does.

use std::fmt::Display;
use std::io::{self, Write};

use serde::Serialize;

use super::model::{Detail, HeapGraph, ObjectLine};
use super::read::VERSION;

impl HeapGraph {
    /// Writes the graph as a heapgraph file. Wrap files in a `BufWriter`: the writer issues one
    /// `write_all` per line.
    ///
    /// Fails only if `out` fails, or on a `Detail::Float` that is not finite (JSON has no
    /// such number).
    pub fn write<W: Write>(&self, out: W) -> io::Result<()> {
        write(self, out)
    }

    /// The graph as the text of a heapgraph file.
    pub fn to_text(&self) -> io::Result<String> {
        let mut bytes = Vec::new();
        self.write(&mut bytes)?;
        String::from_utf8(bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }
}

/// Writes `graph` as a heapgraph file (see [`HeapGraph::write`]).
pub fn write<W: Write>(graph: &HeapGraph, mut out: W) -> io::Result<()> {
    let mut line = Vec::with_capacity(256);
    write_header(graph, &mut line)?;
    out.write_all(&line)?;
    for (id, object) in graph.objects.iter().enumerate() {
        line.clear();
        write_object(graph, id, object, &mut line)?;
        out.write_all(&line)?;
    }
    line.clear();
    write_trailer(graph, &mut line)?;
    out.write_all(&line)
}

/// A line under construction: `{"a":1,"b":"x"}` with keys in call order.
struct Line<'a> {
    out: &'a mut Vec<u8>,
    first: bool,
}

impl<'a> Line<'a> {
    fn start(out: &'a mut Vec<u8>) -> Self {
        out.push(b'{');
        Self { out, first: true }
    }

    fn key(&mut self, key: &str) {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        self.out.push(b'"');
        self.out.extend_from_slice(key.as_bytes());
        self.out.extend_from_slice(b"\":");
    }

    fn int(&mut self, key: &str, value: impl Display) {
        self.key(key);
        append(self.out, value);
    }

    fn opt_int(&mut self, key: &str, value: Option<u64>) {
        if let Some(value) = value {
            self.int(key, value);
        }
    }

    fn boolean(&mut self, key: &str, value: bool) {
        self.key(key);
        self.out
            .extend_from_slice(if value { b"true" } else { b"false" });
    }

    fn json(&mut self, key: &str, value: &(impl Serialize + ?Sized)) -> io::Result<()> {
        self.key(key);
        serde_json::to_writer(&mut *self.out, value).map_err(io::Error::from)
    }

    fn opt_json(&mut self, key: &str, value: Option<&(impl Serialize + ?Sized)>) -> io::Result<()> {
        match value {
            Some(value) => self.json(key, value),
            None => Ok(()),
        }
    }

    fn ids(&mut self, key: &str, ids: &[u32]) {
        self.key(key);
        self.out.push(b'[');
        for (i, id) in ids.iter().enumerate() {
            if i > 0 {
                self.out.push(b',');
            }
            append(self.out, id);
        }
        self.out.push(b']');
    }

    fn end(self) {
        self.out.extend_from_slice(b"}\n");
    }
}

/// Appends a number's decimal form.
fn append(out: &mut Vec<u8>, value: impl Display) {
    // Writing to a Vec cannot fail.
    let _ = write!(out, "{value}");
}

fn write_header(graph: &HeapGraph, out: &mut Vec<u8>) -> io::Result<()> {
    let header = &graph.header;
    let mut line = Line::start(out);
    line.json("format", "heapgraph")?;
    line.int("version", VERSION);
    line.json("producer", &header.producer)?;
    line.json("python", &header.python)?;
    line.opt_json("workload", header.workload.as_deref())?;
    line.int("objects", graph.objects.len() as u64);
    line.opt_int("edges", header.edges);
    line.opt_int("tracked", header.tracked);
    line.opt_int("externally_held", header.externally_held);
    line.opt_int("clamped", header.clamped);
    line.opt_int("untracked_to_tracked", header.untracked_to_tracked);
    line.end();
    Ok(())
}

fn write_object(
    graph: &HeapGraph,
    id: usize,
    object: &ObjectLine,
    out: &mut Vec<u8>,
) -> io::Result<()> {
    let mut line = Line::start(out);
    line.int("id", id as u64);
    line.json("type", graph.type_name(object))?;
    line.json("kind", object.kind.name())?;
    line.int("size", object.size);
    line.ids("refs", graph.refs_of(object));
    line.int("external", object.external);
    line.boolean("tracked", object.tracked);
    match object.detail {
        Detail::None => {}
        Detail::Int(value) => line.int("value", value),
        Detail::Float(value) if value.is_finite() => line.json("value", &value)?,
        Detail::Float(value) => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("object {id}: float value {value} has no JSON form"),
            ))
        }
        Detail::Len(len) => line.int("len", len),
    }
    line.end();
    Ok(())
}

fn write_trailer(graph: &HeapGraph, out: &mut Vec<u8>) -> io::Result<()> {
    let trailer = &graph.trailer;
    let mut line = Line::start(out);
    line.boolean("trailer", true);
    line.ids("garbage", &trailer.garbage);
    line.opt_json("garbage_source", trailer.garbage_source.as_deref())?;
    line.int("collected", trailer.collected);
    line.opt_int("saved", trailer.saved);
    if let Some(ids) = &trailer.not_saved {
        line.ids("not_saved", ids);
    }
    if let Some(ids) = &trailer.saved_not_garbage {
        line.ids("saved_not_garbage", ids);
    }
    line.int("collect_ns", trailer.collect_ns);
    line.opt_int("free_collect_ns", trailer.free_collect_ns);
    line.opt_int("freed", trailer.freed);
    line.int("live_collect_ns", trailer.live_collect_ns);
    line.opt_int("live_collected", trailer.live_collected);
    line.opt_json(
        "live_collect_ns_repeats",
        trailer.live_collect_ns_repeats.as_deref(),
    )?;
    line.opt_int("unmapped_garbage", trailer.unmapped_garbage);
    if let Some(types) = &trailer.unmapped_types {
        // Written by hand to keep the file's order (a JSON map would sort the names).
        line.key("unmapped_types");
        line.out.push(b'{');
        for (i, (name, n)) in types.iter().enumerate() {
            if i > 0 {
                line.out.push(b',');
            }
            serde_json::to_writer(&mut *line.out, name).map_err(io::Error::from)?;
            line.out.push(b':');
            append(line.out, n);
        }
        line.out.push(b'}');
    }
    line.opt_int("unmapped_unreachable", trailer.unmapped_unreachable);
    line.opt_json("verify", trailer.verify.as_ref())?;
    line.end();
    Ok(())
}
