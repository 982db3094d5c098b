//! The differential fuzzer of the whole heap.
//!
//! Programs of random operations (objects of every kind made, linked and unlinked, handles
//! cloned and dropped, weakrefs with callbacks, classes whose finalizers log, resurrect their
//! object, allocate or collect, thresholds set, freezes, collections of every generation,
//! `DEBUG_SAVEALL`, `gc.garbage` cleared) run against pyheap and against a reference model on
//! std collections (`fuzz/model.rs`). After every step both must agree on everything
//! observable (`fuzz/real.rs`): the objects alive and each one's count, kind, references,
//! generation and weakref state; the events (finalizers, weakref callbacks, collections, nested
//! collections) in exact order; handles, kept objects and `gc.garbage`; every counter of the
//! refcount tier and the collector; and the allocator's accounting must add up. A program ends
//! by releasing everything, then the heap must hold only its immortals (`support::finish`).
//!
//! Modes:
//! - `cargo test --test fuzz` (CI): a bounded run with a fixed seed. `PYHEAP_FUZZ_CASES`
//!   and `PYHEAP_FUZZ_SEED` change them; a failure is shrunk by proptest and printed as JSON
//!   (and written to `PYHEAP_FUZZ_OUT` if set).
//! - `long_fuzz` (ignored; `cargo xtask fuzz --minutes N`): fresh seeds until
//!   `PYHEAP_FUZZ_MINUTES` have passed, each program in a child process (`fuzz_child`), so
//!   that a crash is a failure like any other; the first failure is shrunk to a minimal
//!   program and written to `PYHEAP_FUZZ_OUT`. `PYHEAP_FUZZ_ISOLATE=1` runs the bounded mode
//!   that way too.
//! - `replay_fuzz_program` (ignored): runs the program in the file `PYHEAP_FUZZ_REPLAY`; if it
//!   fails and `PYHEAP_FUZZ_OUT` is set, removes every operation it can while it still fails
//!   and writes the result there.
//! - `saved_programs_still_pass`: every program under `tests/fuzz_regressions/`.

#![cfg(not(miri))] // thousands of programs: too slow for the interpreter

mod support;

#[path = "fuzz/model.rs"]
mod model;
#[path = "fuzz/program.rs"]
mod program;
#[path = "fuzz/real.rs"]
mod real;

use std::mem::ManuallyDrop;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use proptest::test_runner::{Config as PropConfig, RngSeed, TestCaseError, TestError, TestRunner};
use pyheap::{Config, FreeLists, Heap};

use model::{Model, Step};
use program::{Program, Setup};
use real::Real;

/// Programs in the CI run (a debug build: under a minute on 2 cores).
const CI_CASES: u32 = 1000;
/// The CI run's seed.
const CI_SEED: u64 = 0x7079_6865_6170; // "pyheap"
/// The longest program generated.
const MAX_OPS: usize = 150;

static PROGRAMS: AtomicU64 = AtomicU64::new(0);
static STEPS: AtomicU64 = AtomicU64::new(0);
static OPS: AtomicU64 = AtomicU64::new(0);

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    Some(
        v.parse()
            .unwrap_or_else(|_| panic!("{name}={v}: expected a number")),
    )
}

/// The heap configuration of a setup (the backend from the environment).
fn config_of(s: &Setup) -> Config {
    let mut c = support::config();
    if s.small_arenas {
        c.arena_size = 64 << 10;
        c.pool_size = 4 << 10;
    }
    c.debug = s.debug;
    if let Some(cap) = s.free_list_capacity {
        let cap = usize::from(cap);
        c.free_lists = FreeLists {
            float: cap,
            list: cap,
            dict: cap,
            tuple_max_len: cap,
            tuple_per_length: cap,
        };
    }
    let (a, b, t) = s.thresholds;
    c.gc_thresholds = (a.into(), b.into(), t.into());
    c
}

/// Runs one program against a fresh heap and the model. Returns the number of steps run.
fn run(program: &Program) -> Result<u64, String> {
    let heap = ManuallyDrop::new(support::heap_with(config_of(&program.setup)));
    match catch_unwind(AssertUnwindSafe(|| run_on(&heap, program))) {
        Ok(Ok(steps)) => {
            let heap = ManuallyDrop::into_inner(heap);
            catch_unwind(AssertUnwindSafe(|| support::finish(heap)))
                .map_err(|p| format!("after the program, the leak check: {}", panic_text(&p)))?;
            Ok(steps)
        }
        Ok(Err(mismatch)) => {
            // The heap disagrees with the model but kept its invariants: drop it normally.
            let heap = ManuallyDrop::into_inner(heap);
            let _ = catch_unwind(AssertUnwindSafe(|| drop(heap)));
            Err(mismatch)
        }
        // A panic inside the heap: its state is unknown, so it is leaked, not dropped.
        Err(panic) => Err(format!("panic: {}", panic_text(&panic))),
    }
}

fn panic_text(p: &Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a non-string panic".into())
}

fn run_on(heap: &Heap, program: &Program) -> Result<u64, String> {
    let mut real = Real::new(heap);
    let t = program.setup.thresholds;
    let mut model = Model::new([t.0.into(), t.1.into(), t.2.into()]);
    let mut steps = 0;
    let at =
        |i: usize, what: &str, step: &Step, e: String| format!("step {i} ({what}: {step:?}): {e}");
    for (i, op) in program.ops.iter().enumerate() {
        OPS.fetch_add(1, Ordering::Relaxed);
        let Some(step) = model.resolve(op) else {
            continue;
        };
        one_step(&mut real, &mut model, &step).map_err(|e| at(i, &format!("{op:?}"), &step, e))?;
        steps += 1;
    }
    // Tear down through both sides, checked like any step, until nothing is left.
    for round in 0.. {
        let mut teardown: Vec<Step> = (0..model.handles.len()).rev().map(Step::Drop).collect();
        // After a first round with finalizers on (they may resurrect), the heap is torn down
        // as a dropped heap is: user code off, legacy cycles ordinary garbage.
        teardown.push(Step::UserCode(round == 0));
        teardown.extend([
            Step::ReleaseKept,
            Step::SaveAll(false),
            Step::Unfreeze,
            Step::ClearGarbage,
            Step::Collect(2),
        ]);
        for step in &teardown {
            one_step(&mut real, &mut model, step).map_err(|e| at(round, "teardown", step, e))?;
            steps += 1;
        }
        let done = model.handles.is_empty() && model.kept.is_empty() && model.garbage.is_empty();
        if done && model.alive().next().is_none() {
            break;
        }
        if round > 8 {
            return Err(format!(
                "teardown: objects still alive after {round} rounds: {:?}",
                model.alive().collect::<Vec<_>>()
            ));
        }
    }
    real.release();
    STEPS.fetch_add(steps, Ordering::Relaxed);
    Ok(steps)
}

fn one_step(real: &mut Real<'_>, model: &mut Model, step: &Step) -> Result<(), String> {
    let (ptr, got) = real.apply(step)?;
    let want = model.apply(step, ptr);
    if got != want {
        return Err(format!("gc.collect returned {got:?}, the model {want:?}"));
    }
    let (got, want) = (real.take_events(), std::mem::take(&mut model.events));
    if got != want {
        return Err(format!(
            "events differ:\n  heap:  {got:?}\n  model: {want:?}"
        ));
    }
    model.self_check()?;
    real.compare(model)
}

/// A proptest runner for `cases` programs from `seed`.
fn runner(cases: u32, seed: u64) -> TestRunner {
    TestRunner::new(PropConfig {
        cases,
        rng_seed: RngSeed::Fixed(seed),
        failure_persistence: None,
        max_shrink_iters: 4096,
        ..PropConfig::default()
    })
}

/// Where programs run: in this process (fast; a crash ends the run unshrunk), or each in a
/// child process running [`fuzz_child`] (a crash, an abort or a sanitizer report is a failure
/// like any other, and is shrunk).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Isolation {
    InProcess,
    Child,
}

/// Runs one program in a child process: this test binary, running `fuzz_child`.
fn run_in_child(program: &Program, file: &Path) -> Result<u64, String> {
    std::fs::write(file, serde_json::to_string(program).expect("serializable"))
        .map_err(|e| format!("cannot write {}: {e}", file.display()))?;
    let exe = std::env::current_exe().expect("the test binary's path");
    let out = std::process::Command::new(exe)
        .args([
            "fuzz_child",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("PYHEAP_FUZZ_CHILD", file)
        .output()
        .map_err(|e| format!("cannot run a child: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if out.status.success() {
        let steps = stdout
            .lines()
            .find_map(|l| l.split("fuzz-child-steps ").nth(1))
            .and_then(|n| n.split_whitespace().next()?.parse().ok())
            .unwrap_or(0);
        return Ok(steps);
    }
    // The child's report, without the test harness's chatter and backtraces.
    let text = String::from_utf8_lossy(&out.stderr) + stdout;
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| {
            let t = l.trim_start();
            !(t.is_empty()
                || t.starts_with("at ")
                || t.split_once(':')
                    .is_some_and(|(n, _)| n.parse::<u32>().is_ok())
                || t.starts_with("note:")
                || t.starts_with("running ")
                || t.starts_with("test ")
                || t.starts_with("failures")
                || t.starts_with("stack backtrace"))
        })
        .collect();
    let tail = lines[lines.len().saturating_sub(16)..].join("\n");
    Err(format!("the child failed ({}):\n{tail}", out.status))
}

/// Runs `cases` programs from `seed`; on failure returns the reason and the minimal program.
fn fuzz(cases: u32, seed: u64, isolation: Isolation) -> Result<(), (String, Program)> {
    let child_file = std::env::temp_dir().join(format!("pyheap-fuzz-{}.json", std::process::id()));
    let result = runner(cases, seed).run(&program::program(MAX_OPS), |p| {
        PROGRAMS.fetch_add(1, Ordering::Relaxed);
        let outcome = match isolation {
            Isolation::InProcess => run(&p),
            Isolation::Child => run_in_child(&p, &child_file).inspect(|&steps| {
                OPS.fetch_add(p.ops.len() as u64, Ordering::Relaxed);
                STEPS.fetch_add(steps, Ordering::Relaxed);
            }),
        };
        outcome.map(drop).map_err(TestCaseError::fail)
    });
    let outcome = match result {
        Ok(()) => Ok(()),
        Err(TestError::Fail(reason, minimal)) => {
            let fails = |p: &Program| match isolation {
                Isolation::InProcess => run(p).err(),
                Isolation::Child => run_in_child(p, &child_file).err(),
            };
            let (reason, minimal) = tighten(reason.to_string(), minimal, fails);
            Err((reason, minimal))
        }
        Err(TestError::Abort(reason)) => panic!("the fuzzer aborted: {reason}"),
    };
    let _ = std::fs::remove_file(&child_file);
    outcome
}

/// After proptest's shrinking: the shortest failing prefix, then every operation whose removal
/// keeps the program failing removed, one at a time from the end.
fn tighten(
    mut reason: String,
    mut program: Program,
    fails: impl Fn(&Program) -> Option<String>,
) -> (String, Program) {
    let with_ops = |p: &Program, ops: Vec<program::Op>| Program {
        setup: p.setup.clone(),
        ops,
    };
    for k in 1..program.ops.len() {
        let shorter = with_ops(&program, program.ops[..k].to_vec());
        if let Some(r) = fails(&shorter) {
            (reason, program) = (r, shorter);
            break;
        }
    }
    let mut i = program.ops.len();
    while i > 0 {
        i -= 1;
        let mut ops = program.ops.clone();
        ops.remove(i);
        let smaller = with_ops(&program, ops);
        if let Some(r) = fails(&smaller) {
            (reason, program) = (r, smaller);
        }
    }
    (reason, program)
}

fn report(label: &str, seeds: &str, start: Instant) {
    eprintln!(
        "fuzz {label}: {} programs ({} operations generated, {} steps run and checked), seeds {seeds}, {:.1}s",
        PROGRAMS.load(Ordering::Relaxed),
        OPS.load(Ordering::Relaxed),
        STEPS.load(Ordering::Relaxed),
        start.elapsed().as_secs_f64()
    );
}

/// Writes a failing program where `PYHEAP_FUZZ_OUT` says, and fails the test with it.
fn fail_with(reason: String, minimal: Program) -> ! {
    let json = serde_json::to_string_pretty(&minimal).expect("serializable");
    if let Some(out) = std::env::var_os("PYHEAP_FUZZ_OUT") {
        std::fs::write(&out, &json).expect("the output file is writable");
        eprintln!(
            "minimal failing program written to {}",
            PathBuf::from(out).display()
        );
    }
    panic!("{reason}\nminimal failing program:\n{json}");
}

#[test]
fn the_heap_and_the_model_agree_after_every_step_of_random_programs() {
    let start = Instant::now();
    let cases = env_u64("PYHEAP_FUZZ_CASES").map_or(CI_CASES, |c| c as u32);
    let seed = env_u64("PYHEAP_FUZZ_SEED").unwrap_or(CI_SEED);
    let isolation = match std::env::var("PYHEAP_FUZZ_ISOLATE").as_deref() {
        Ok("1") => Isolation::Child,
        _ => Isolation::InProcess,
    };
    if let Err((reason, minimal)) = fuzz(cases, seed, isolation) {
        fail_with(reason, minimal);
    }
    report("(bounded)", &format!("{seed:#x}"), start);
}

#[test]
#[ignore = "the long mode: cargo xtask fuzz --minutes N"]
fn long_fuzz() {
    let start = Instant::now();
    let minutes = env_u64("PYHEAP_FUZZ_MINUTES").unwrap_or(1);
    let deadline = start + Duration::from_secs(minutes * 60);
    // A fresh first seed per run, from the clock; then consecutive seeds.
    let first = env_u64("PYHEAP_FUZZ_SEED").unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("after 1970")
            .as_nanos() as u64
    });
    let mut seed = first;
    while Instant::now() < deadline {
        if let Err((reason, minimal)) = fuzz(64, seed, Isolation::Child) {
            eprintln!("seed {seed:#x} failed");
            report("(long)", &format!("{first:#x}..={seed:#x}"), start);
            fail_with(reason, minimal);
        }
        seed = seed.wrapping_add(1);
    }
    report(
        "(long)",
        &format!("{first:#x}..{seed:#x} (64 programs each)"),
        start,
    );
}

#[test]
#[ignore = "runs one program for a parent fuzzer: PYHEAP_FUZZ_CHILD=program.json"]
fn fuzz_child() {
    let path =
        std::env::var_os("PYHEAP_FUZZ_CHILD").expect("PYHEAP_FUZZ_CHILD=path/to/program.json");
    let text = std::fs::read_to_string(&path).expect("a readable program");
    let program: Program = serde_json::from_str(&text).expect("a program in JSON");
    match run(&program) {
        Ok(steps) => println!("fuzz-child-steps {steps}"),
        Err(e) => panic!("{e}"),
    }
}

#[test]
#[ignore = "replays the program in the file PYHEAP_FUZZ_REPLAY"]
fn replay_fuzz_program() {
    let path =
        std::env::var_os("PYHEAP_FUZZ_REPLAY").expect("PYHEAP_FUZZ_REPLAY=path/to/program.json");
    let text = std::fs::read_to_string(&path).expect("a readable program");
    let program: Program = serde_json::from_str(&text).expect("a program in JSON");
    if let Err(e) = run(&program) {
        if std::env::var_os("PYHEAP_FUZZ_OUT").is_some() {
            let (reason, minimal) = tighten(e, program, |p| run(p).err());
            fail_with(reason, minimal);
        }
        panic!("{e}");
    }
}

#[test]
fn saved_programs_still_pass() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_regressions");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|d| d.map(|e| e.expect("a directory entry").path()).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|e| e == "json"));
    files.sort();
    for path in files {
        let text = std::fs::read_to_string(&path).expect("readable");
        let program: Program = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{}: not a program: {e}", path.display()));
        if let Err(e) = run(&program) {
            panic!("{}: {e}", path.display());
        }
    }
}
