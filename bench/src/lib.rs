//! # pyheap-bench: the harness of pyheap's performance suite
//!
//! Every case of the suite compares pyheap with its peers (`shared/PEERS.md`) on the same work,
//! in the same run, on the same machine. The cases are the bench targets of this crate
//! (`benches/alloc.rs`, `refcount.rs`, `collect.rs`, `pause.rs`); this library is what they share:
//!
//! ```text
//!   bench target (parent)                          the same binary (child), or python3
//!   for round in 1..=repeats:                      --child CASE IMPLEMENTATION N ...
//!     for implementation in the case:   ── spawn ─>  build the work (not timed)
//!       run one child, 60 s timeout                  time it
//!       <─ one JSON line on stdout ──────────────    print one JSON line, exit at once
//!   median, min, max of the repeats
//!   -> one Record per (case, metric, implementation) in OUT/<bench>.jsonl
//! ```
//!
//! Implementations run round by round (every implementation once, then again), so that a
//! change in the machine's load falls on all of them alike: the ratios measured side by side
//! are what count on a shared, noisy machine. A child that overflows its stack, crashes, or
//! runs past the timeout is a row of the report (its [`Status`]), not the end of the run; an
//! implementation that fails once is not run again in that case.
//!
//! `cargo xtask bench` runs every target and turns the records into `bench/REPORT.md`.

use std::fmt;
use std::fs::File;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// How long one child may run (building its work included) before it is killed.
pub const TIMEOUT: Duration = Duration::from_secs(60);

/// The stack of a child's worker thread unless a case says otherwise: the usual main-thread
/// stack, so that a peer that recurses overflows where it would in a program.
pub const DEFAULT_STACK: usize = 8 << 20;

// ---- options ---------------------------------------------------------------------------------

/// The command line of a bench target: `[--quick] [--out DIR] [--only CASE]...`.
///
/// `cargo bench` adds `--bench`; other unknown arguments are ignored.
#[derive(Clone, Debug)]
pub struct Options {
    /// Small sizes and one repeat: the smoke test of the suite.
    pub quick: bool,
    /// Where the records go (`DIR/<bench>.jsonl`).
    pub out: PathBuf,
    /// Run only these cases (all when empty).
    pub only: Vec<String>,
}

impl Options {
    /// Reads the process's arguments.
    pub fn from_args() -> Options {
        let mut o = Options {
            quick: false,
            out: PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../target/bench-records"
            )),
            only: Vec::new(),
        };
        let mut args = std::env::args().skip(1);
        while let Some(a) = args.next() {
            match a.as_str() {
                "--quick" => o.quick = true,
                "--out" => o.out = PathBuf::from(args.next().expect("--out DIR")),
                "--only" => o.only.push(args.next().expect("--only CASE")),
                _ => {}
            }
        }
        o
    }

    /// Whether `case` is to run.
    pub fn wants(&self, case: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|c| c == case)
    }

    /// `full` in a full run, `quick` with `--quick`.
    pub fn pick<T>(&self, full: T, quick: T) -> T {
        if self.quick {
            quick
        } else {
            full
        }
    }
}

// ---- the child's side ------------------------------------------------------------------------

/// The arguments after `--child`, when this process is a child.
pub fn child_args() -> Option<Vec<String>> {
    let mut args = std::env::args().skip(1);
    (args.next().as_deref() == Some("--child")).then(|| args.collect())
}

/// Prints a child's result as one JSON line and leaves at once: no teardown (dropping a live
/// graph may itself overflow some peers' stacks, and it is not what is measured).
pub fn finish(result: Value) -> ! {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{result}").expect("stdout");
    out.flush().expect("stdout");
    std::process::exit(0)
}

/// Runs a child's case on a thread with `stack` bytes of stack and finishes with its result.
/// A panic (a failed check) exits with status 101, its message on stderr.
pub fn run_child_case(stack: usize, case: impl FnOnce() -> Value + Send + 'static) -> ! {
    let worker = std::thread::Builder::new()
        .name("case".into())
        .stack_size(stack)
        .spawn(move || finish(case()))
        .expect("a thread");
    let _ = worker.join();
    std::process::exit(101)
}

/// Nanoseconds since `t`.
pub fn ns_since(t: Instant) -> u64 {
    t.elapsed().as_nanos() as u64
}

// ---- the parent's side -----------------------------------------------------------------------

/// How a run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Status {
    /// It completed and its checks passed.
    Ok,
    /// Its stack overflowed (Rust's message, or Python's `RecursionError`).
    StackOverflow,
    /// It died of a signal.
    Crashed(String),
    /// It ran past [`TIMEOUT`].
    Timeout,
    /// It could not run (missing `python3`, a tool that is not built, ...).
    Unavailable(String),
    /// It completed with a wrong result, or exited with an error.
    Failed(String),
}

impl Status {
    /// The status word of the records: `ok`, `stack overflow`, `crashed`, `timeout`,
    /// `unavailable` or `failed`.
    pub fn word(&self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::StackOverflow => "stack overflow",
            Status::Crashed(_) => "crashed",
            Status::Timeout => "timeout",
            Status::Unavailable(_) => "unavailable",
            Status::Failed(_) => "failed",
        }
    }

    /// What else the report should say.
    pub fn detail(&self) -> String {
        match self {
            Status::Ok | Status::StackOverflow => String::new(),
            Status::Timeout => format!("over {} s", TIMEOUT.as_secs()),
            Status::Crashed(s) | Status::Unavailable(s) | Status::Failed(s) => s.clone(),
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let detail = self.detail();
        if detail.is_empty() {
            f.write_str(self.word())
        } else {
            write!(f, "{}: {detail}", self.word())
        }
    }
}

/// This bench binary with `--child` and `args`.
pub fn child_command<S: AsRef<str>>(args: &[S]) -> Command {
    let exe = std::env::current_exe().expect("the bench's own path");
    let mut cmd = Command::new(exe);
    cmd.arg("--child");
    cmd.args(args.iter().map(AsRef::as_ref));
    cmd
}

/// `python3 -c SCRIPT ARGS...`.
pub fn python_command<S: AsRef<str>>(script: &str, args: &[S]) -> Command {
    let mut cmd = Command::new("python3");
    cmd.args(["-c", script]);
    cmd.args(args.iter().map(AsRef::as_ref));
    cmd
}

/// `python3 --version`, or None without a `python3`.
pub fn python_version() -> Option<String> {
    let out = Command::new("python3").arg("--version").output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (!text.is_empty()).then_some(text)
}

/// Runs a child to completion or to `timeout`; the JSON of its last line of output, or how it
/// ended.
pub fn run_with_timeout(mut cmd: Command, timeout: Duration) -> Result<Value, Status> {
    let mut child = match cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(e) => {
            let program = cmd.get_program().to_string_lossy().into_owned();
            return Err(Status::Unavailable(format!(
                "{program} did not start ({e})"
            )));
        }
    };
    // Readers on threads, so that a chatty child cannot block on a full pipe.
    let mut out = child.stdout.take().expect("piped stdout");
    let mut err = child.stderr.take().expect("piped stderr");
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Err(e) => return Err(Status::Failed(format!("lost the child ({e})"))),
            Ok(Some(status)) => break Some(status),
            Ok(None) if start.elapsed() > timeout => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(2)),
        }
    };
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    let Some(status) = status else {
        return Err(Status::Timeout);
    };
    if !status.success() {
        return Err(failure(status, &stderr));
    }
    let line = stdout
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .ok_or_else(|| Status::Failed("no output".into()))?;
    serde_json::from_str(line).map_err(|e| Status::Failed(format!("bad output ({e}): {line}")))
}

/// What a failed child's exit status and stderr say.
fn failure(status: std::process::ExitStatus, stderr: &str) -> Status {
    use std::os::unix::process::ExitStatusExt;
    if stderr.contains("overflowed its stack") || stderr.contains("RecursionError") {
        return Status::StackOverflow;
    }
    if let Some(signal) = status.signal() {
        let name = match signal {
            11 => "SIGSEGV",
            6 => "SIGABRT",
            7 => "SIGBUS",
            9 => "SIGKILL",
            _ => "signal",
        };
        return Status::Crashed(format!("{name} ({signal})"));
    }
    let reason = stderr
        .lines()
        .rev()
        .find(|l| l.contains("wrong result"))
        .or_else(|| stderr.lines().rev().find(|l| !l.trim().is_empty()))
        .unwrap_or("no message")
        .trim()
        .to_string();
    Status::Failed(reason)
}

/// The results of one implementation over the rounds: every run's JSON, or how the first run
/// that did not complete ended.
pub type Outcome = Result<Vec<Value>, Status>;

/// Runs `repeats` rounds of every implementation, round by round. `command` makes the command
/// of one run; an implementation whose run fails is not run again.
pub fn rounds<K: Copy + fmt::Display>(
    case: &str,
    implementations: &[K],
    repeats: usize,
    mut command: impl FnMut(K) -> Command,
) -> Vec<(K, Outcome)> {
    let mut results: Vec<(K, Outcome)> = implementations
        .iter()
        .map(|&k| (k, Ok(Vec::new())))
        .collect();
    for round in 0..repeats {
        for (k, outcome) in &mut results {
            let Ok(runs) = outcome else { continue };
            eprint!("  {case:<26} {k:<18} run {}/{repeats} ... ", round + 1);
            let started = Instant::now();
            match run_with_timeout(command(*k), TIMEOUT) {
                Ok(v) => {
                    let mut shown = v.to_string();
                    if shown.len() > 100 {
                        shown.truncate(shown.floor_char_boundary(97));
                        shown.push_str("...");
                    }
                    eprintln!("{shown} ({:.1} s)", started.elapsed().as_secs_f64());
                    runs.push(v);
                }
                Err(status) => {
                    eprintln!("{status} ({:.1} s)", started.elapsed().as_secs_f64());
                    *outcome = Err(status);
                }
            }
        }
    }
    results
}

/// A number from a child's JSON.
pub fn field(v: &Value, key: &str) -> f64 {
    v[key]
        .as_f64()
        .unwrap_or_else(|| panic!("no number {key} in {v}"))
}

// ---- records ---------------------------------------------------------------------------------

/// Median, min and max of some values.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Spread {
    /// The median (the mean of the middle two of an even count).
    pub median: f64,
    /// The smallest.
    pub min: f64,
    /// The largest.
    pub max: f64,
}

impl Spread {
    /// The spread of `values` (at least one).
    pub fn of(values: &[f64]) -> Spread {
        assert!(!values.is_empty(), "a spread of nothing");
        let mut v = values.to_vec();
        v.sort_by(f64::total_cmp);
        let k = v.len();
        let median = if k % 2 == 1 {
            v[k / 2]
        } else {
            (v[k / 2 - 1] + v[k / 2]) / 2.0
        };
        Spread {
            median,
            min: v[0],
            max: v[k - 1],
        }
    }
}

/// The `q` quantile (0..=1) of some values, nearest rank.
pub fn quantile(values: &[f64], q: f64) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1]
}

/// One line of the records: one implementation on one case, one metric.
#[derive(Clone, Debug)]
pub struct Record {
    /// The bench target (`alloc`, `refcount`, `collect`, `pause`).
    pub bench: &'static str,
    /// The case (`churn_1k`, `chain_10m`, `ring`, ...).
    pub case: String,
    /// What is measured (`ns/op`, `collect ns/obj`, `drop+collect ns/obj`, `pause ns`, ...).
    pub metric: &'static str,
    /// The size of the case (live blocks, objects, steps).
    pub n: u64,
    /// `pyheap`, or the peer.
    pub implementation: String,
    /// How it ended.
    pub status: Status,
    /// Per run (per pause for `pause ns`), in the metric's unit.
    pub samples: Vec<f64>,
    /// Anything else the report may show (JSON object).
    pub extra: Value,
}

impl Record {
    /// The record as one JSON object: `ns_per_op` holds median, min and max of the samples
    /// (null unless the status is ok).
    pub fn to_json(&self) -> Value {
        let spread = (self.status == Status::Ok && !self.samples.is_empty()).then(|| {
            let s = Spread::of(&self.samples);
            json!({"median": s.median, "min": s.min, "max": s.max})
        });
        json!({
            "bench": self.bench,
            "case": self.case,
            "metric": self.metric,
            "n": self.n,
            "implementation": self.implementation,
            "status": self.status.word(),
            "detail": self.status.detail(),
            "runs": self.samples.len(),
            "ns_per_op": spread,
            "samples": self.samples,
            "extra": self.extra,
        })
    }
}

/// The record file of one bench target: `OUT/<bench>.jsonl`.
///
/// Records are written line by line to `OUT/<bench>.jsonl.<pid>` (an interrupted run keeps what
/// it measured there), which becomes `OUT/<bench>.jsonl` when the records are dropped, in one
/// rename: two runs into the same directory never mix their lines.
pub struct Records {
    bench: &'static str,
    partial: PathBuf,
    path: PathBuf,
    file: File,
}

impl Records {
    /// Starts the records of `bench` in `OUT`.
    pub fn create(options: &Options, bench: &'static str) -> Records {
        std::fs::create_dir_all(&options.out)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", options.out.display()));
        let path = options.out.join(format!("{bench}.jsonl"));
        let partial = options
            .out
            .join(format!("{bench}.jsonl.{}", std::process::id()));
        let file = File::create(&partial)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", partial.display()));
        Records {
            bench,
            partial,
            path,
            file,
        }
    }

    /// The bench target these records are of.
    pub fn bench(&self) -> &'static str {
        self.bench
    }

    /// Appends a record and prints it as a line of the log.
    pub fn push(&mut self, record: Record) {
        assert_eq!(record.bench, self.bench);
        let line = record.to_json();
        writeln!(self.file, "{line}").expect("write a record");
        self.file.flush().expect("write a record");
        let shown = match line["ns_per_op"].as_object() {
            Some(s) => format!(
                "{:.2} ({:.2}..{:.2})",
                s["median"].as_f64().unwrap_or(f64::NAN),
                s["min"].as_f64().unwrap_or(f64::NAN),
                s["max"].as_f64().unwrap_or(f64::NAN)
            ),
            None => record.status.to_string(),
        };
        println!(
            "{:<10} {:<28} {:<20} n={:<10} {:<22} {shown}",
            self.bench, record.case, record.metric, record.n, record.implementation
        );
    }

    /// Where the records will be.
    pub fn path(&self) -> &PathBuf {
        &self.path
    }
}

impl Drop for Records {
    fn drop(&mut self) {
        if let Err(e) = std::fs::rename(&self.partial, &self.path) {
            eprintln!(
                "cannot move {} to {}: {e}",
                self.partial.display(),
                self.path.display()
            );
        }
    }
}

/// A metric of a case: its name in the records, and its value in one run's JSON.
pub type Metric<'a> = (&'static str, &'a dyn Fn(&Value) -> f64);

/// Writes the records of one case from its rounds: one record per implementation and metric,
/// `metric(run)` giving the metric's value of one run.
pub fn push_outcomes<K: Copy + fmt::Display>(
    records: &mut Records,
    case: &str,
    n: u64,
    results: &[(K, Outcome)],
    metrics: &[Metric<'_>],
) {
    for (k, outcome) in results {
        for (metric, value) in metrics {
            let (status, samples, extra) = match outcome {
                Ok(runs) => (
                    Status::Ok,
                    runs.iter().map(value).collect(),
                    runs.first().cloned().unwrap_or(Value::Null),
                ),
                Err(s) => (s.clone(), Vec::new(), Value::Null),
            };
            records.push(Record {
                bench: records.bench(),
                case: case.to_string(),
                metric,
                n,
                implementation: k.to_string(),
                status,
                samples,
                extra,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_and_quantiles() {
        let s = Spread::of(&[3.0, 1.0, 2.0, 10.0]);
        assert_eq!((s.median, s.min, s.max), (2.5, 1.0, 10.0));
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile(&v, 0.99), 99.0);
        assert_eq!(quantile(&v, 1.0), 100.0);
        assert_eq!(quantile(&v, 0.5), 50.0);
    }

    #[test]
    fn a_failed_run_is_a_status() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo 'wrong result: 3 of 4' >&2; exit 1"]);
        assert_eq!(
            run_with_timeout(cmd, TIMEOUT),
            Err(Status::Failed("wrong result: 3 of 4".into()))
        );
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo '{\"ns\": 5}'"]);
        assert_eq!(run_with_timeout(cmd, TIMEOUT), Ok(json!({"ns": 5})));
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "exec sleep 5"]);
        assert_eq!(
            run_with_timeout(cmd, Duration::from_millis(50)),
            Err(Status::Timeout)
        );
        let cmd = Command::new("/nonexistent/python3");
        assert!(matches!(
            run_with_timeout(cmd, TIMEOUT),
            Err(Status::Unavailable(_))
        ));
    }
}
