//! Pauses: how long an automatic generation-0 collection stops the program under a steady
//! allocation load, pyheap's façade against CPython 3.11 doing the same loop.
//!
//! ```text
//!   window = [None] * 100            the load: every step makes a two-list cycle and puts it
//!   for i in range(steps):           in a window of 100 slots, dropping the cycle that was
//!       a = []                       there; so most cycles die young, as in real programs,
//!       b = [a]                      and each generation-0 collection (every 700 net
//!       a.append(b)                  container allocations, the default thresholds) finds
//!       window[i % 100] = a          garbage as well as survivors to promote
//! ```
//!
//! A `gc.callbacks` function (`GcHeap::add_callback` in pyheap) notes the clock at the start
//! and the stop of every collection; a pause is the time between the two, for generation 0
//! only. The pauses of all rounds are pooled: the record holds their median, 99th percentile
//! and maximum, in nanoseconds (CPython's include calling its Python callback, a microsecond
//! or so).
//!
//! Run: `cargo bench -p pyheap-bench --bench pause -- [--quick] [--out DIR]`.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::rc::Rc;
use std::time::Instant;

use pyheap::gengc::{CallbackInfo, Phase};
use pyheap::object::List;
use pyheap::{Config, Heap, Ref};
use pyheap_bench::{
    child_args, child_command, python_command, quantile, rounds, run_child_case, Options, Record,
    Records, Status, DEFAULT_STACK,
};
use serde_json::{json, Value};

/// Slots of the window of live cycles.
const WINDOW: usize = 100;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Impl {
    Pyheap,
    CPython,
}

impl fmt::Display for Impl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            Impl::Pyheap => "pyheap",
            Impl::CPython => "cpython",
        })
    }
}

/// The load in pyheap; the generation-0 pauses in ns, and how many collections of each
/// generation ran.
fn pyheap_load(steps: usize) -> Value {
    let heap = Heap::new(Config::default()).expect("the default configuration");
    let pauses = Rc::new(RefCell::new(Vec::new()));
    let counts = Rc::new(RefCell::new([0u64; 3]));
    let started = Rc::new(Cell::new(None::<Instant>));
    {
        let (pauses, counts) = (pauses.clone(), counts.clone());
        heap.gc().add_callback(Box::new(
            move |phase: Phase, info: &CallbackInfo| match phase {
                Phase::Start => started.set(Some(Instant::now())),
                Phase::Stop => {
                    let t = started.take().expect("a start before every stop");
                    counts.borrow_mut()[info.generation] += 1;
                    if info.generation == 0 {
                        pauses.borrow_mut().push(t.elapsed().as_nanos() as u64);
                    }
                }
            },
        ));
    }
    let mut window: Vec<Option<Ref<'_, List<'_>>>> = (0..WINDOW).map(|_| None).collect();
    let start = Instant::now();
    for i in 0..steps {
        let a = heap.list(Vec::new()).expect("memory");
        let b = heap.list(vec![a.clone().erase()]).expect("memory");
        a.append(b.erase()).expect("same heap");
        window[i % WINDOW] = Some(a);
    }
    let total_ns = start.elapsed().as_nanos() as u64;
    let pauses = pauses.borrow().clone();
    let counts = *counts.borrow();
    json!({ "pauses_ns": pauses, "collections": counts, "total_ns": total_ns })
}

const CPYTHON_LOAD: &str = r#"
import gc, json, sys, time
steps, window_len = int(sys.argv[1]), int(sys.argv[2])
clock = time.perf_counter_ns
pauses, counts, started = [], [0, 0, 0], [0]
def callback(phase, info):
    if phase == "start":
        started[0] = clock()
    else:
        t = clock() - started[0]
        counts[info["generation"]] += 1
        if info["generation"] == 0:
            pauses.append(t)
gc.collect()
gc.freeze()
gc.callbacks.append(callback)
window = [None] * window_len
t0 = clock()
for i in range(steps):
    a = []
    b = [a]
    a.append(b)
    window[i % window_len] = a
total = clock() - t0
gc.callbacks.remove(callback)
print(json.dumps({"pauses_ns": pauses, "collections": counts, "total_ns": total}))
"#;

fn main() {
    if let Some(args) = child_args() {
        let steps: usize = args[0].parse().expect("--child STEPS");
        run_child_case(DEFAULT_STACK, move || pyheap_load(steps));
    }
    let o = Options::from_args();
    let mut records = Records::create(&o, "pause");
    if !o.wants("gen0_pause") {
        return;
    }
    let steps = o.pick(1_000_000, 20_000);
    let results = rounds(
        "gen0_pause",
        &[Impl::Pyheap, Impl::CPython],
        o.pick(3, 1),
        |k| {
            let steps = steps.to_string();
            match k {
                Impl::Pyheap => child_command(&[steps]),
                Impl::CPython => python_command(CPYTHON_LOAD, &[steps, WINDOW.to_string()]),
            }
        },
    );
    for (k, outcome) in results {
        let (status, samples, extra) = match outcome {
            Ok(runs) => {
                let pauses: Vec<f64> = runs
                    .iter()
                    .flat_map(|r| r["pauses_ns"].as_array().cloned().unwrap_or_default())
                    .filter_map(|p| p.as_f64())
                    .collect();
                let total: Vec<f64> = runs.iter().filter_map(|r| r["total_ns"].as_f64()).collect();
                let status = if pauses.is_empty() {
                    Status::Failed("no generation-0 collection ran".into())
                } else {
                    Status::Ok
                };
                let extra = json!({
                    "pauses": pauses.len(),
                    "p99": (!pauses.is_empty()).then(|| quantile(&pauses, 0.99)),
                    "collections_per_run": runs.first().map(|r| r["collections"].clone()),
                    "loop_ns_per_step": total.iter().sum::<f64>() / (total.len() * steps) as f64,
                    "window": WINDOW,
                });
                (status, pauses, extra)
            }
            Err(s) => (s, Vec::new(), Value::Null),
        };
        records.push(Record {
            bench: "pause",
            case: "gen0_pause".into(),
            metric: "pause ns",
            n: steps as u64,
            implementation: k.to_string(),
            status,
            samples,
            extra,
        });
    }
    eprintln!("records: {}", records.path().display());
    drop(records);
}
