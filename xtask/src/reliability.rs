//! The reliability checks: the differential fuzzer's long mode, and the test suite under
//! AddressSanitizer and valgrind.
//!
//! ```text
//! cargo xtask fuzz [--minutes N] [--out FILE] [--seed S]   fresh seeds for N minutes (default 10);
//!                                                          a failure is shrunk and written to FILE
//! cargo xtask fuzz --replay FILE [--out FILE2]             runs a saved program; if it fails, the
//!                                                          smallest failing version goes to FILE2
//! cargo xtask sanitize [--asan] [--valgrind]               both by default (5 to 10 minutes)
//! ```
//!
//! `sanitize` runs, printing each command and its time:
//! 1. ASan, arena backend: the tier crates' and the façade's tests (the fuzzer with a small
//!    case count), built with `-Zsanitizer=address`, so obj-alloc poisons free blocks and pool
//!    slack (`obj-alloc/src/asan.rs`; `tests/asan_poisoning.rs` checks that ASan reports reads
//!    of them) and LeakSanitizer checks the exit;
//! 2. ASan, system backend (`PYHEAP_TEST_BACKEND=system`): the façade's tests, every block a
//!    `malloc` that ASan watches (the same build: the backend is chosen at run time), less the
//!    two fault-injection tests whose heaps ignore the variable, which pass 1 ran alike;
//! 3. valgrind memcheck, system backend: the façade's reliability tests built normally, with
//!    `--leak-check=full` (definite leaks are errors).
//!
//! Left out under the sanitizers, by name: tests of a million objects or more (their stack
//! depth and time are for plain builds), the four-node exhaustive graphs (the three-node ones
//! and random graphs run), a test that reads a freed block on purpose (obj-alloc's
//! DEADBYTE check: ASan rightly reports it), tests that measure the process's own mappings
//! or `malloc` (the sanitizers' allocators are not glibc's), and the two tests that leak a panic
//! payload on purpose (one whose own drop panics: the heap and the collector leak it rather
//! than abort; LeakSanitizer rightly reports it).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The workspace root: where `cargo locate-project --workspace` says (from the current
/// directory), else the folder above xtask's own.
fn root() -> PathBuf {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        let located = output(
            "cargo",
            &["locate-project", "--workspace", "--message-format", "plain"],
        );
        match Path::new(located.trim()).parent() {
            Some(dir) if !located.trim().is_empty() => dir.to_path_buf(),
            _ => Path::new(env!("CARGO_MANIFEST_DIR"))
                .parent()
                .expect("xtask is inside the workspace")
                .to_path_buf(),
        }
    })
    .clone()
}

/// The target the sanitizer builds use: with `--target`, RUSTFLAGS reach only the target's
/// artifacts (not build scripts and proc macros), and the builds go to their own folder.
const TARGET: &str = "x86_64-unknown-linux-gnu";

/// One command, as it is printed and run.
struct Cmd {
    title: String,
    program: String,
    args: Vec<String>,
    env: Vec<(String, String)>,
}

impl Cmd {
    fn new(title: impl Into<String>, program: &str) -> Cmd {
        Cmd {
            title: title.into(),
            program: program.into(),
            args: Vec::new(),
            env: Vec::new(),
        }
    }

    fn args<S: AsRef<str>>(mut self, args: impl IntoIterator<Item = S>) -> Cmd {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_string()));
        self
    }

    fn env(mut self, key: &str, value: impl Into<String>) -> Cmd {
        self.env.push((key.into(), value.into()));
        self
    }

    fn command(&self) -> Command {
        let mut c = Command::new(&self.program);
        c.args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .current_dir(root());
        c
    }

    fn print(&self) {
        let env: String = self.env.iter().map(|(k, v)| format!("{k}={v} ")).collect();
        println!(
            "\n==> {}: {env}{} {}",
            self.title,
            self.program,
            self.args.join(" ")
        );
    }

    /// Runs it with the terminal as its output; returns how long it took.
    fn run(&self) -> Result<Duration, String> {
        self.print();
        let start = Instant::now();
        let status = self
            .command()
            .status()
            .map_err(|e| format!("{}: cannot start {}: {e}", self.title, self.program))?;
        let took = start.elapsed();
        println!("<== {} ({:.1}s): {status}", self.title, took.as_secs_f64());
        if status.success() {
            Ok(took)
        } else {
            Err(format!("{} failed ({status})", self.title))
        }
    }
}

/// Whether a command runs and succeeds (its output discarded).
fn succeeds(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .output()
        .is_ok_and(|o| o.status.success())
}

fn output(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

/// Whether the AddressSanitizer pass can run: a nightly toolchain with `rust-src`.
pub fn sanitize_available() -> bool {
    let nightly = output("rustup", &["toolchain", "list"])
        .lines()
        .any(|l| l.starts_with("nightly"));
    nightly
        && output(
            "rustup",
            &["component", "list", "--toolchain", "nightly", "--installed"],
        )
        .lines()
        .any(|l| l.starts_with("rust-src"))
        && succeeds("cargo", &["+nightly", "--version"])
}

/// The value after `--flag` in `args`, if present.
fn flag(args: &[String], name: &str) -> Result<Option<String>, String> {
    match args.iter().position(|a| a == name) {
        Some(i) => args
            .get(i + 1)
            .cloned()
            .map(Some)
            .ok_or_else(|| format!("{name} needs a value")),
        None => Ok(None),
    }
}

fn check_args(args: &[String], known: &[&str], with_value: &[&str]) -> Result<(), String> {
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_str();
        if with_value.contains(&a) {
            i += 2;
        } else if known.contains(&a) {
            i += 1;
        } else {
            return Err(format!("unknown argument `{a}`"));
        }
    }
    Ok(())
}

// ---- cargo xtask fuzz ---------------------------------------------------------------------

/// `cargo xtask fuzz`: the fuzzer's long mode (or the replay of a saved program).
pub fn fuzz(args: &[String]) -> Result<(), String> {
    check_args(args, &[], &["--minutes", "--out", "--seed", "--replay"])?;
    let out = match flag(args, "--out")? {
        Some(o) => PathBuf::from(o),
        None => root().join("target/fuzz/failure.json"),
    };
    if let Some(parent) = out.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    }
    let out_text = out.display().to_string();
    let replay = flag(args, "--replay")?;
    // A stale failure must not outlive a new run; a replay keeps it (it may be what it reads,
    // as the failure message suggests).
    if replay.is_none() {
        let _ = std::fs::remove_file(&out);
    }
    let fuzz_test = |test: &str| {
        Cmd::new(format!("fuzz ({test})"), "cargo")
            .args([
                "test",
                "--release",
                "-p",
                "pyheap",
                "--test",
                "fuzz",
                "--",
                "--ignored",
                "--exact",
                test,
                "--nocapture",
            ])
            .env("PYHEAP_FUZZ_OUT", out_text.clone())
    };
    let cmd = match replay {
        Some(file) => {
            let file = std::fs::canonicalize(&file).map_err(|e| format!("{file}: {e}"))?;
            fuzz_test("replay_fuzz_program").env("PYHEAP_FUZZ_REPLAY", file.display().to_string())
        }
        None => {
            let minutes = flag(args, "--minutes")?.unwrap_or_else(|| "10".into());
            minutes
                .parse::<u64>()
                .map_err(|_| format!("--minutes {minutes}: not a number"))?;
            let mut cmd = fuzz_test("long_fuzz").env("PYHEAP_FUZZ_MINUTES", minutes);
            if let Some(seed) = flag(args, "--seed")? {
                cmd = cmd.env("PYHEAP_FUZZ_SEED", seed);
            }
            cmd
        }
    };
    match cmd.run() {
        Ok(_) => Ok(()),
        Err(e) if out.exists() => Err(format!(
            "{e}: the smallest failing program is in {out_text}; replay it with \
             `cargo xtask fuzz --replay {out_text}`"
        )),
        Err(e) => Err(e),
    }
}

// ---- cargo xtask sanitize -----------------------------------------------------------------

/// Tests left out under the sanitizers (substrings of their names; see the module docs).
const SANITIZER_SKIPS: [&str; 7] = [
    "million",
    "every_graph_of_four_nodes",
    "freed_user_bytes_are_filled_with_deadbyte",
    "mapping_and_unmapping_ten_thousand_arenas",
    "dropping_a_heap_frees_every_block_it_took_from_the_system_allocator",
    "a_panic_payload_that_panics_in_its_drop_is_leaked",
    "a_second_panic_whose_payload_panics_on_drop",
];

/// Fuzz programs and random graphs under the sanitizers.
const ASAN_FUZZ_CASES: &str = "200";
const ASAN_GRAPH_CASES: &str = "1000";
const VALGRIND_FUZZ_CASES: &str = "30";
const VALGRIND_GRAPH_CASES: &str = "60";

fn skips() -> Vec<String> {
    SANITIZER_SKIPS
        .iter()
        .flat_map(|s| ["--skip".to_string(), s.to_string()])
        .collect()
}

/// Left out of the system-backend ASan pass only: the fault-injection tests of
/// `tests/faults.rs` that build their heaps with an exact configuration (the system backend in
/// one, small arenas in the other) whatever `PYHEAP_TEST_BACKEND` says, so the arena-backend
/// pass has already run them exactly as this one would (the arena one is over two minutes).
const SYSTEM_PASS_SKIPS: [&str; 2] = [
    "every_refused_allocation_is_an_error_the_heap_survives_with_the_system_backend",
    "every_refused_arena_is_an_error_the_heap_survives_with_small_arenas",
];

/// `cargo +nightly test` of `packages` under AddressSanitizer, with the given test backend,
/// leaving out the sanitizers' skips and `more_skips`.
fn asan(title: &str, packages: &[&str], backend: &str, more_skips: &[&str]) -> Cmd {
    let mut args = vec![
        "+nightly".to_string(),
        "test".into(),
        "--target".into(),
        TARGET.into(),
        "--tests".into(),
        // Every test binary runs, whatever an earlier one found.
        "--no-fail-fast".into(),
    ];
    for p in packages {
        args.push("-p".into());
        args.push(p.to_string());
    }
    args.push("--".into());
    args.extend(skips());
    for s in more_skips {
        args.push("--skip".into());
        args.push(s.to_string());
    }
    Cmd::new(title, "cargo")
        .args(args)
        .env("RUSTFLAGS", "-Zsanitizer=address")
        // Leaks are errors; a report ends the test binary with a failure. A request the
        // system allocator cannot serve (tests ask for 2^62 bytes) returns null, as malloc
        // does, so that the heap's out-of-memory path runs: ASan aborts on it by default.
        .env(
            "ASAN_OPTIONS",
            "detect_leaks=1:halt_on_error=1:allocator_may_return_null=1",
        )
        .env("PYHEAP_TEST_BACKEND", backend)
        .env("PYHEAP_FUZZ_CASES", ASAN_FUZZ_CASES)
        .env("PYHEAP_GRAPH_CASES", ASAN_GRAPH_CASES)
        // tests/asan_poisoning.rs checks that ASan reports reads of what obj-alloc poisons.
        .env("PYHEAP_ASAN", "1")
}

/// The façade's test binaries valgrind runs: (name, extra harness arguments).
const VALGRIND_TESTS: [(&str, &[&str]); 7] = [
    ("fuzz", &[]),
    ("hostile", &[]),
    ("traverse_completeness", &[]),
    ("leaks", &[]),
    ("faults", &["--skip", "small_arenas"]),
    ("exhaustive_graphs", &["--skip", "every_graph_of"]),
    ("scenarios", &[]),
];

/// Makes sure valgrind is there: installs it with apt-get when missing (as root).
fn ensure_valgrind() -> bool {
    if succeeds("valgrind", &["--version"]) {
        return true;
    }
    println!("\n==> valgrind is missing: apt-get install -y valgrind");
    succeeds("apt-get", &["install", "-y", "valgrind"]) && succeeds("valgrind", &["--version"])
}

/// The test executables of the façade's test targets, built normally: name -> path.
fn facade_test_binaries() -> Result<Vec<(String, PathBuf)>, String> {
    let build = Cmd::new("build the façade's tests", "cargo")
        .args(["test", "-p", "pyheap", "--tests", "--no-run"]);
    build.print();
    let out = build
        .command()
        .output()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    let text = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        return Err(format!("building the tests failed:\n{text}"));
    }
    // "  Executable tests/hostile.rs (target/debug/deps/hostile-0123abcd)"
    Ok(text
        .lines()
        .filter_map(|l| {
            let rest = l.trim().strip_prefix("Executable ")?;
            let (source, path) = rest.split_once(" (")?;
            let name = Path::new(source).file_stem()?.to_str()?.to_string();
            Some((name, root().join(path.trim_end_matches(')'))))
        })
        .collect())
}

fn valgrind_steps() -> Result<Vec<Cmd>, String> {
    let binaries = facade_test_binaries()?;
    VALGRIND_TESTS
        .iter()
        .map(|(name, extra)| {
            let (_, path) = binaries
                .iter()
                .find(|(n, _)| n == name)
                .ok_or_else(|| format!("no test binary `{name}`"))?;
            let mut args: Vec<String> = [
                "--error-exitcode=1",
                "--leak-check=full",
                "--show-leak-kinds=definite",
                "--errors-for-leak-kinds=definite",
                "--quiet",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect();
            args.push(path.display().to_string());
            args.extend(extra.iter().map(|s| s.to_string()));
            args.extend(skips());
            Ok(Cmd::new(format!("valgrind: tests/{name}.rs"), "valgrind")
                .args(args)
                .env("PYHEAP_TEST_BACKEND", "system")
                .env("PYHEAP_FUZZ_CASES", VALGRIND_FUZZ_CASES)
                .env("PYHEAP_GRAPH_CASES", VALGRIND_GRAPH_CASES))
        })
        .collect()
}

/// `cargo xtask sanitize`: ASan (arena backend with poisoning, then the system backend) and
/// valgrind memcheck. Every step runs; the summary lists each one's time and result.
pub fn sanitize(args: &[String]) -> Result<(), String> {
    check_args(args, &["--asan", "--valgrind"], &[])?;
    let only_asan = args.iter().any(|a| a == "--asan");
    let only_valgrind = args.iter().any(|a| a == "--valgrind");
    let (do_asan, do_valgrind) = match (only_asan, only_valgrind) {
        (false, false) => (true, true),
        other => other,
    };
    let start = Instant::now();
    let mut results: Vec<(String, Result<Duration, String>)> = Vec::new();
    if do_asan {
        if !sanitize_available() {
            return Err("AddressSanitizer needs a nightly toolchain with rust-src: \
                        rustup toolchain install nightly --component rust-src"
                .into());
        }
        for cmd in [
            asan(
                "asan, arena backend (poisoned free blocks)",
                &["raw-alloc", "obj-alloc", "refcount", "gengc", "pyheap"],
                "arena",
                &[],
            ),
            asan(
                "asan, system backend",
                &["pyheap"],
                "system",
                &SYSTEM_PASS_SKIPS,
            ),
        ] {
            let r = cmd.run();
            results.push((cmd.title, r));
        }
    }
    if do_valgrind {
        if ensure_valgrind() {
            match valgrind_steps() {
                Ok(steps) => {
                    for cmd in steps {
                        let r = cmd.run();
                        results.push((cmd.title, r));
                    }
                }
                Err(e) => results.push(("valgrind".into(), Err(e))),
            }
        } else {
            println!("\n==> valgrind: skipped (not installed, and apt-get could not install it)");
        }
    }
    println!(
        "\nsanitize summary ({:.0}s):",
        start.elapsed().as_secs_f64()
    );
    for (title, r) in &results {
        match r {
            Ok(d) => println!("  ok      {:>6.1}s  {title}", d.as_secs_f64()),
            Err(e) => println!("  FAILED           {title}: {e}"),
        }
    }
    let failed: Vec<&str> = results
        .iter()
        .filter(|(_, r)| r.is_err())
        .map(|(t, _)| t.as_str())
        .collect();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!("sanitize: failed: {}", failed.join("; ")))
    }
}
