//! `cargo xtask`: the one entry point for the project's checks.
//!
//! ```text
//! cargo xtask ci        fmt check, clippy, build, tests, docs, a quick bench round, then Miri
//!                       and the sanitizers (ASan, valgrind) when installed
//! cargo xtask bench     pyheap against its peers: bench/REPORT.md (--quick: a smoke round)
//! cargo xtask miri      the tier crates' tests and the façade's scenarios under Miri, a run
//!                       per core (needs the nightly miri component)
//! cargo xtask fuzz      the differential fuzzer for --minutes N; a failure becomes a file
//! cargo xtask sanitize  tests and fuzzer under AddressSanitizer (both backends) and valgrind
//! ```
//!
//! Every step prints the command it runs; the first failure stops the run with its exit code.

mod bench;
mod reliability;

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

/// One command of a check, as it will be printed and run.
struct Step {
    title: String,
    program: &'static str,
    args: Vec<&'static str>,
    env: Vec<(&'static str, &'static str)>,
}

impl Step {
    fn cargo(title: &str, args: &[&'static str]) -> Step {
        Step {
            title: title.to_string(),
            program: "cargo",
            args: args.to_vec(),
            env: Vec::new(),
        }
    }

    fn env(mut self, key: &'static str, value: &'static str) -> Step {
        self.env.push((key, value));
        self
    }

    /// Prints the command as it will run: `==> title: ENV=.. program args`.
    fn announce(&self) {
        let env: String = self.env.iter().map(|(k, v)| format!("{k}={v} ")).collect();
        println!(
            "\n==> {}: {env}{} {}",
            self.title,
            self.program,
            self.args.join(" ")
        );
    }

    fn run(&self) -> Result<(), String> {
        self.announce();
        let start = Instant::now();
        let status = Command::new(self.program)
            .args(&self.args)
            .envs(self.env.iter().copied())
            .status()
            .map_err(|e| format!("{}: cannot start {}: {e}", self.title, self.program))?;
        println!("<== {} ({:.1}s)", self.title, start.elapsed().as_secs_f64());
        if status.success() {
            Ok(())
        } else {
            Err(format!("{} failed ({status})", self.title))
        }
    }

    /// Runs it beside others: each line of its output (stdout and stderr) printed as it comes,
    /// prefixed with the title. Returns its time in seconds.
    fn run_prefixed(&self) -> Result<f64, String> {
        self.announce();
        let start = Instant::now();
        let mut child = Command::new(self.program)
            .args(&self.args)
            .envs(self.env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", self.program))?;
        let (out, err) = (child.stdout.take(), child.stderr.take());
        std::thread::scope(|s| {
            if let Some(out) = out {
                s.spawn(|| self.echo(out));
            }
            if let Some(err) = err {
                s.spawn(|| self.echo(err));
            }
        });
        let status = child
            .wait()
            .map_err(|e| format!("waiting for {}: {e}", self.program))?;
        let took = start.elapsed().as_secs_f64();
        println!("<== {} ({took:.1}s): {status}", self.title);
        if status.success() {
            Ok(took)
        } else {
            Err(format!("{status}"))
        }
    }

    /// Prints each line of `from` prefixed with the title.
    fn echo(&self, from: impl Read) {
        for line in BufReader::new(from).split(b'\n') {
            let Ok(line) = line else { break };
            println!("[{}] {}", self.title, String::from_utf8_lossy(&line));
        }
    }
}

fn ci_steps() -> Vec<Step> {
    vec![
        Step::cargo("format", &["fmt", "--all", "--", "--check"]),
        Step::cargo(
            "clippy",
            &[
                "clippy",
                "--workspace",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ],
        ),
        Step::cargo("build", &["build", "--workspace", "--all-targets"]),
        Step::cargo("test", &["test", "--workspace"]).env("INSTA_UPDATE", "no"),
        Step::cargo("docs", &["doc", "--workspace", "--no-deps"])
            .env("RUSTDOCFLAGS", "-D warnings"),
    ]
}

/// Whether `cargo +nightly miri` is installed (it is optional: a fresh machine may lack it).
fn miri_available() -> bool {
    Command::new("cargo")
        .args(["+nightly", "miri", "--version"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The Miri runs, the longest first (they are started in this order): each is one `cargo miri
/// test`, whose test binaries run their tests in one interpreted process each. (A process per
/// test, as `cargo miri nextest` runs them, costs the interpreter's start-up of about 1.4 s per
/// test: over two minutes of the step on two cores.)
///
/// The façade's unsafe code (lists' raw parts, dicts' tables, instances' attributes, opaque
/// objects' cells) runs through its scenarios and traverse checks, unlike its fuzzer and
/// hostile suites, which ASan and valgrind cover.
const MIRI_RUNS: [(&str, &[&str]); 6] = [
    ("gengc", &["-p", "gengc", "--tests"]),
    (
        "the façade's scenarios",
        &["-p", "pyheap", "--test", "scenarios"],
    ),
    (
        "the façade's traverse checks",
        &["-p", "pyheap", "--test", "traverse_completeness"],
    ),
    ("obj-alloc", &["-p", "obj-alloc", "--tests"]),
    ("refcount", &["-p", "refcount", "--tests"]),
    ("raw-alloc", &["-p", "raw-alloc", "--tests"]),
];

/// The Miri step: each run of `MIRI_RUNS` built first, one after the other, then run as many at
/// a time as there are cores (Miri interprets a program on one core).
fn miri() -> Result<(), String> {
    // Tests too slow for the interpreter (property tests, millions of objects, /proc reads,
    // insta's snapshot files) are `#[cfg(not(miri))]` or `#[cfg_attr(miri, ignore)]`.
    //
    // Tree Borrows, not Stacked Borrows: a variable-size object's items are read through a
    // pointer derived from a reference to its fixed-size payload (and a payload finds its
    // header just before it), container_of-style accesses that Stacked Borrows forbids and
    // Tree Borrows allows. Dynamically sized payloads would satisfy both; see ARCHITECTURE.md.
    let flags = ("MIRIFLAGS", "-Zmiri-strict-provenance -Zmiri-tree-borrows");
    let step = |title: String, extra: &[&'static str], args: &[&'static str]| {
        let mut all = vec!["+nightly", "miri", "test"];
        all.extend(extra);
        all.extend(args);
        Step {
            title,
            program: "cargo",
            args: all,
            env: vec![flags],
        }
    };
    let builds: Vec<Step> = MIRI_RUNS
        .iter()
        .map(|(name, args)| step(format!("miri build: {name}"), &["--no-run"], args))
        .collect();
    run(&builds)?;
    let runs: Vec<Step> = MIRI_RUNS
        .iter()
        .map(|(name, args)| step(format!("miri: {name}"), &["--no-fail-fast"], args))
        .collect();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    run_parallel(&runs, cores)
}

/// Runs `steps` `jobs` at a time, each line of their output prefixed with the step's title;
/// every step runs, whatever another found, and a summary lists each one's time and result.
fn run_parallel(steps: &[Step], jobs: usize) -> Result<(), String> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(usize, Result<f64, String>)>> = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..jobs.clamp(1, steps.len().max(1)) {
            s.spawn(|| {
                let mut i = next.fetch_add(1, Ordering::Relaxed);
                while let Some(step) = steps.get(i) {
                    let r = step.run_prefixed();
                    results.lock().unwrap().push((i, r));
                    i = next.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    });
    let mut results = results.into_inner().unwrap();
    results.sort_by_key(|(i, _)| *i);
    println!("\nsummary:");
    let mut failed = Vec::new();
    for (i, r) in &results {
        let title = &steps[*i].title;
        match r {
            Ok(secs) => println!("  ok      {secs:>6.1}s  {title}"),
            Err(e) => {
                println!("  FAILED           {title}: {e}");
                failed.push(title.as_str());
            }
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!("failed: {}", failed.join("; ")))
    }
}

fn run(steps: &[Step]) -> Result<(), String> {
    steps.iter().try_for_each(Step::run)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let start = Instant::now();
    let result = match args.first().map(String::as_str) {
        Some("ci") => run(&ci_steps())
            .and_then(|()| {
                // The benchmarks never run in the test pass; a quick round keeps them building
                // and running (its report goes to target/bench-quick/).
                println!("\n==> bench smoke: cargo xtask bench --quick");
                bench::run(&["--quick".to_string()])
            })
            .and_then(|()| {
                if miri_available() {
                    miri()
                } else {
                    println!("\n==> miri: skipped (the nightly miri component is not installed)");
                    Ok(())
                }
            })
            .and_then(|()| {
                // AddressSanitizer (both backends) and valgrind memcheck: about 5 minutes warm.
                if reliability::sanitize_available() {
                    reliability::sanitize(&[])
                } else {
                    println!(
                        "\n==> sanitize: skipped (AddressSanitizer needs a nightly toolchain \
                         with rust-src)"
                    );
                    Ok(())
                }
            }),
        Some("bench") => bench::run(&args[1..]),
        Some("fuzz") => reliability::fuzz(&args[1..]),
        Some("sanitize") => reliability::sanitize(&args[1..]),
        Some("miri") => {
            if miri_available() {
                miri()
            } else {
                Err(
                    "miri is not installed: rustup component add --toolchain nightly miri rust-src"
                        .into(),
                )
            }
        }
        _ => {
            eprintln!("usage: cargo xtask <ci|bench [--quick]|miri|fuzz --minutes N|sanitize>");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => {
            println!(
                "\nxtask: all steps passed in {:.0}s",
                start.elapsed().as_secs_f64()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("\nxtask: {e}");
            ExitCode::FAILURE
        }
    }
}
