//! `cargo xtask`: the one entry point for the project's checks.
//!
//! ```text
//! cargo xtask ci        fmt check, clippy, build, tests, docs, a quick bench round, then Miri
//!                       and the sanitizers (ASan, valgrind) when installed
//! cargo xtask bench     pyheap against its peers: bench/REPORT.md (--quick: a smoke round)
//! cargo xtask miri      the tier crates' tests under Miri (needs the nightly miri component)
//! cargo xtask fuzz      the differential fuzzer for --minutes N; a failure becomes a file
//! cargo xtask sanitize  tests and fuzzer under AddressSanitizer (both backends) and valgrind
//! ```
//!
//! Every step prints the command it runs; the first failure stops the run with its exit code.

mod bench;
mod reliability;

use std::process::{Command, ExitCode};
use std::time::Instant;

/// One command of a check, as it will be printed and run.
struct Step {
    title: &'static str,
    program: &'static str,
    args: Vec<&'static str>,
    env: Vec<(&'static str, &'static str)>,
}

impl Step {
    fn cargo(title: &'static str, args: &[&'static str]) -> Step {
        Step {
            title,
            program: "cargo",
            args: args.to_vec(),
            env: Vec::new(),
        }
    }

    fn env(mut self, key: &'static str, value: &'static str) -> Step {
        self.env.push((key, value));
        self
    }

    fn run(&self) -> Result<(), String> {
        let env: String = self.env.iter().map(|(k, v)| format!("{k}={v} ")).collect();
        println!(
            "\n==> {}: {env}{} {}",
            self.title,
            self.program,
            self.args.join(" ")
        );
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
}

/// The tier crates: the ones Miri runs.
const TIERS: [&str; 4] = ["raw-alloc", "obj-alloc", "refcount", "gengc"];

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

fn miri_steps() -> Vec<Step> {
    // nextest runs the test binaries two at a time (Miri interprets each on one core);
    // without it, cargo's own runner goes one by one.
    let nextest = Command::new("cargo")
        .args(["nextest", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    let runner = if nextest {
        vec!["+nightly", "miri", "nextest", "run", "-j", "2"]
    } else {
        vec!["+nightly", "miri", "test"]
    };
    // Tests too slow for the interpreter (property tests, millions of objects, /proc reads,
    // insta's snapshot files) are `#[cfg(not(miri))]` or `#[cfg_attr(miri, ignore)]`.
    //
    // Tree Borrows, not Stacked Borrows: a variable-size object's items are read through a
    // pointer derived from a reference to its fixed-size payload (and a payload finds its
    // header just before it), container_of-style accesses that Stacked Borrows forbids and
    // Tree Borrows allows. Dynamically sized payloads would satisfy both; see ARCHITECTURE.md.
    let env = vec![("MIRIFLAGS", "-Zmiri-strict-provenance -Zmiri-tree-borrows")];
    let mut tiers = runner.clone();
    for t in TIERS {
        tiers.extend(["-p", t]);
    }
    // The façade's unsafe code (lists' raw parts, dicts' tables, instances' attributes,
    // opaque objects' cells) through its scenarios and traverse checks: a few minutes, unlike
    // its fuzzer and hostile suites, which ASan and valgrind cover.
    let mut facade = runner;
    facade.extend([
        "-p",
        "pyheap",
        "--test",
        "scenarios",
        "--test",
        "traverse_completeness",
    ]);
    vec![
        Step {
            title: "miri",
            program: "cargo",
            args: tiers,
            env: env.clone(),
        },
        Step {
            title: "miri, the façade's scenarios",
            program: "cargo",
            args: facade,
            env,
        },
    ]
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
                    run(&miri_steps())
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
                run(&miri_steps())
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
