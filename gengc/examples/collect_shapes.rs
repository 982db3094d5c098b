//! A profiling driver for the collector: builds one of the collect benchmark's shapes, then
//! times the drop of the handles and one full collection.
//!
//! `cargo run --release -p gengc --example collect_shapes -- SHAPE N [REPEATS]` with SHAPE one of
//! `pairs`, `ring`, `random`, `live`, or `chain` (each object references the one made before
//! it: dropping the handles in order frees nothing until the last, which frees the whole chain
//! in one cascade, a profile of reference counting's deaths with no collection work).
//!
//! Under `perf stat|record --control fd:CTL,ACK -D -1`, set `PERF_CTL_FD=CTL PERF_ACK_FD=ACK` and
//! only the timed part is counted; `PERF_PHASE=drop` or `PERF_PHASE=collect` counts only that
//! half of it.

use std::io::{Read, Write};
use std::os::fd::FromRawFd;
use std::time::Instant;

use gengc::GcHeap;
use refcount::{Object, Ref, RefCell1, Trace, TypeInfo, Visit};

struct Node<'h> {
    a: RefCell1<'h>,
    b: RefCell1<'h>,
}

impl Trace for Node<'_> {
    fn trace(&self, v: &mut Visit<'_>) {
        self.a.trace(v);
        self.b.trace(v);
    }
    fn clear(&self) {
        self.a.set(None);
        self.b.set(None);
    }
}

// SAFETY: the trace reports each reference the payload holds, once, and dropping it only
// drops references.
static NODE: TypeInfo = unsafe {
    TypeInfo::new::<Node<'static>>("node")
        .assume_exact_trace()
        .drop_only_releases_refs()
};

impl Object for Node<'_> {
    const CONTAINER: bool = true;
    fn type_info() -> &'static TypeInfo {
        &NODE
    }
}

/// perf's control pipes, when run under `perf --control fd:...`.
struct PerfControl(Option<(std::fs::File, std::fs::File)>);

impl PerfControl {
    fn from_env() -> Self {
        let fd = |name: &str| std::env::var(name).ok()?.parse::<i32>().ok();
        PerfControl(fd("PERF_CTL_FD").zip(fd("PERF_ACK_FD")).map(|(c, a)| {
            // SAFETY: perf passes these descriptors open to the child, for this use only.
            unsafe { (std::fs::File::from_raw_fd(c), std::fs::File::from_raw_fd(a)) }
        }))
    }

    fn send(&mut self, cmd: &str) {
        if let Some((ctl, ack)) = &mut self.0 {
            ctl.write_all(cmd.as_bytes()).expect("perf control");
            let mut buf = [0u8; 5];
            let _ = ack.read(&mut buf);
        }
    }
}

fn edges(shape: &str, n: u32) -> Vec<[Option<u32>; 2]> {
    let mut x: u64 = 0x5eed_0005;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        ((x >> 16) % u64::from(n)) as u32
    };
    (0..n)
        .map(|i| match shape {
            "pairs" => [Some(i ^ 1).filter(|&p| p < n), None],
            "ring" => [Some((i + 1) % n), None],
            "chain" => [i.checked_sub(1), None],
            _ => [Some(next()), Some(next())],
        })
        .collect()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let shape = args.first().map_or("pairs", String::as_str).to_string();
    let n: u32 = args.get(1).map_or(1_000_000, |s| s.parse().expect("N"));
    let repeats: usize = args.get(2).map_or(1, |s| s.parse().expect("REPEATS"));
    let mut perf = PerfControl::from_env();
    let edges = edges(&shape, n);
    let heap = GcHeap::new(Default::default()).expect("a heap");
    heap.disable();
    for _ in 0..repeats {
        let nodes: Vec<Ref<'_, Node<'_>>> = edges
            .iter()
            .map(|_| {
                heap.alloc(Node {
                    a: RefCell1::default(),
                    b: RefCell1::default(),
                })
                .expect("memory")
            })
            .collect();
        for (node, e) in nodes.iter().zip(&edges) {
            node.a.set(e[0].map(|j| nodes[j as usize].clone().erase()));
            node.b.set(e[1].map(|j| nodes[j as usize].clone().erase()));
        }
        let live = shape == "live";
        let phase = std::env::var("PERF_PHASE").unwrap_or_default();
        if phase != "collect" {
            perf.send("enable\n");
        }
        let t = Instant::now();
        let kept = if live {
            Some(nodes)
        } else {
            drop(nodes);
            None
        };
        let dropped = t.elapsed();
        match phase.as_str() {
            "drop" => perf.send("disable\n"),
            "collect" => perf.send("enable\n"),
            _ => {}
        }
        let found = heap.collect(2).expect("generation 2");
        let total = t.elapsed();
        if phase != "drop" {
            perf.send("disable\n");
        }
        let per = |d: std::time::Duration| d.as_nanos() as f64 / f64::from(n);
        println!(
            "{shape} N={n}: drop {:.1} ns/obj, collect {:.1} ns/obj, drop+collect {:.1} ns/obj, found {found}",
            per(dropped),
            per(total - dropped),
            per(total)
        );
        drop(kept);
        heap.collect(2).expect("generation 2");
    }
}
