//! `cargo xtask bench [--quick] [--report-only]`: the performance suite and its report.
//!
//! ```text
//!   1. cargo bench -p pyheap-bench --benches -- --out RECORDS [--quick]
//!        alloc, refcount, collect, pause: every case, pyheap and its peers side by side,
//!        each run a child process with a 60 s timeout -> RECORDS/<bench>.jsonl
//!   2. the real-heap case: heap-inspect capture stdlib.py and replay it, 3 rounds
//!        -> RECORDS/replay.jsonl ("unavailable: why" when the tool is not ready)
//!   3. the report: the machine, a table per case, the tier targets with PASS/SHORT, and the
//!        pictures (SVG drawn here) -> bench/REPORT.md, bench/report.json, bench/*.svg
//! ```
//!
//! `--quick` runs every case at small sizes, once, and writes under `target/bench-quick/`, so
//! that the smoke test never overwrites the real report. `--report-only` skips steps 1 and 2
//! and renders the records already there.
//!
//! The records are JSON lines (`bench/src/lib.rs`, `Record`): `bench`, `case`, `metric`, `n`,
//! `implementation`, `status` (ok, stack overflow, crashed, timeout, unavailable, failed),
//! `detail`, `ns_per_op` {median, min, max}, `samples`, `extra`. std only: a small JSON reader
//! and writer live at the end of this file.

use std::fmt::Write as _;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use json::Json;

/// The size at which the collector's targets are measured (the full run's, and `--quick`'s).
const TARGET_N: (u64, u64) = (1_000_000, 10_000);
/// The real-heap case: the workload, the rounds (capture + replay), and the timeouts.
const WORKLOAD: &str = "inspect-cli/testdata/workloads/stdlib.py";
const REPLAYS: (usize, usize) = (3, 1);
const CAPTURE_TIMEOUT: Duration = Duration::from_secs(600);
const REPLAY_TIMEOUT: Duration = Duration::from_secs(300);

/// Runs the suite (or only renders its records) and writes the report.
pub fn run(args: &[String]) -> Result<(), String> {
    let quick = args.iter().any(|a| a == "--quick");
    let report_only = args.iter().any(|a| a == "--report-only");
    if let Some(a) = args
        .iter()
        .find(|a| !matches!(a.as_str(), "--quick" | "--report-only" | "bench"))
    {
        return Err(format!(
            "unknown argument {a}: cargo xtask bench [--quick] [--report-only]"
        ));
    }
    let paths = Paths::new(quick);
    let started = Instant::now();
    let load_at_start = loadavg();
    let mut timings = Vec::new();
    if !report_only {
        let _ = std::fs::remove_dir_all(&paths.records);
        std::fs::create_dir_all(&paths.records)
            .map_err(|e| format!("cannot create {}: {e}", paths.records.display()))?;
        let t = Instant::now();
        run_benches(&paths, quick)?;
        timings.push(("the bench targets".to_string(), t.elapsed()));
        let t = Instant::now();
        let replay = replay_case(&paths, quick);
        write_lines(&paths.records.join("replay.jsonl"), &replay)?;
        timings.push(("the real-heap case".to_string(), t.elapsed()));
    }
    // The run's times and starting load live beside its records, so that --report-only
    // rewrites the report of the same run with them.
    let run_facts = paths.records.join("run.txt");
    let mut machine = Machine::probe();
    let facts = if report_only {
        let facts = RunFacts::read(&run_facts);
        for (key, value) in &facts.machine_rows {
            if let Some(row) = machine.rows.iter_mut().find(|r| r.0 == key) {
                row.1 = value.clone();
            }
        }
        facts
    } else {
        let facts = RunFacts {
            timings,
            load_at_start,
            elapsed: started.elapsed(),
            machine_rows: machine
                .rows
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        };
        facts.write(&run_facts)?;
        facts
    };
    let records = read_records(&paths.records)?;
    if records.is_empty() {
        return Err(format!("no records in {}", paths.records.display()));
    }
    let end = machine.rows.len() - 1;
    machine.rows.insert(
        end,
        (
            "load average at the start",
            facts.load_at_start.unwrap_or_else(|| "unknown".into()),
        ),
    );
    let report = Report::new(records, quick, machine, facts.timings, facts.elapsed);
    std::fs::create_dir_all(&paths.out)
        .map_err(|e| format!("cannot create {}: {e}", paths.out.display()))?;
    let mut written = Vec::new();
    for (name, svg) in report.pictures() {
        let path = paths.out.join(name);
        write(&path, &svg)?;
        written.push(path);
    }
    let md = paths.out.join("REPORT.md");
    write(&md, &report.markdown())?;
    let js = paths.out.join("report.json");
    write(&js, &(report.json().to_string() + "\n"))?;
    written.push(md);
    written.push(js);
    println!("\n{}", report.targets_text());
    for p in written {
        println!("wrote {}", p.display());
    }
    println!(
        "bench: {} in {:.0}s",
        if quick { "quick run" } else { "full run" },
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// What a full run keeps beside its records (`run.txt`), for `--report-only`.
#[derive(Debug, Default, PartialEq)]
struct RunFacts {
    /// The time of each step.
    timings: Vec<(String, Duration)>,
    load_at_start: Option<String>,
    elapsed: Duration,
    /// The machine rows the run printed (its date, its load at the end, ...).
    machine_rows: Vec<(String, String)>,
}

impl RunFacts {
    /// Writes lines `row<TAB>key<TAB>value`, `time<TAB>what<TAB>seconds`, `load<TAB>...` and
    /// `elapsed<TAB>seconds`.
    fn write(&self, path: &Path) -> Result<(), String> {
        let mut text = String::new();
        for (key, value) in &self.machine_rows {
            text += &format!("row\t{key}\t{value}\n");
        }
        for (what, d) in &self.timings {
            text += &format!("time\t{what}\t{}\n", d.as_secs_f64());
        }
        if let Some(load) = &self.load_at_start {
            text += &format!("load\t{load}\n");
        }
        text += &format!("elapsed\t{}\n", self.elapsed.as_secs_f64());
        write(path, &text)
    }

    /// Reads what [`RunFacts::write`] wrote; what is missing or unreadable is left out.
    fn read(path: &Path) -> RunFacts {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let secs = |s: &str| s.parse::<f64>().ok().map(Duration::from_secs_f64);
        let mut facts = RunFacts::default();
        for line in text.lines() {
            let fields: Vec<&str> = line.split('\t').collect();
            match fields.as_slice() {
                ["time", what, s] => facts.timings.extend(secs(s).map(|d| (what.to_string(), d))),
                ["load", load] => facts.load_at_start = Some(load.to_string()),
                ["elapsed", s] => facts.elapsed = secs(s).unwrap_or_default(),
                ["row", key, value] => facts
                    .machine_rows
                    .push((key.to_string(), value.to_string())),
                _ => {}
            }
        }
        facts
    }
}

// ---- paths and steps -------------------------------------------------------------------------

struct Paths {
    root: PathBuf,
    target: PathBuf,
    /// Where the records go.
    records: PathBuf,
    /// Where the report goes.
    out: PathBuf,
}

impl Paths {
    fn new(quick: bool) -> Paths {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("xtask lives in the workspace")
            .to_path_buf();
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join("target"));
        let (records, out) = if quick {
            let dir = target.join("bench-quick");
            (dir.join("records"), dir)
        } else {
            (target.join("bench").join("records"), root.join("bench"))
        };
        Paths {
            root,
            target,
            records,
            out,
        }
    }
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

fn write_lines(path: &Path, lines: &[Json]) -> Result<(), String> {
    let text: String = lines.iter().map(|l| l.to_string() + "\n").collect();
    write(path, &text)
}

/// Step 1: every bench target of pyheap-bench, optimized (the `bench` profile), in one go.
fn run_benches(paths: &Paths, quick: bool) -> Result<(), String> {
    let mut cmd = Command::new("cargo");
    cmd.current_dir(&paths.root)
        .args(["bench", "-p", "pyheap-bench", "--benches", "--", "--out"])
        .arg(&paths.records);
    if quick {
        cmd.arg("--quick");
    }
    println!(
        "\n==> bench: cargo bench -p pyheap-bench --benches -- --out {}{}",
        paths.records.display(),
        if quick { " --quick" } else { "" }
    );
    let status = cmd
        .status()
        .map_err(|e| format!("cannot start cargo: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("the bench targets failed ({status})"))
    }
}

/// The outcome of a command run with a timeout: exit code (None: killed by a signal), stdout,
/// stderr; or why it did not run to the end.
fn run_timed(mut cmd: Command, timeout: Duration) -> Result<(Option<i32>, String, String), String> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("did not start ({e})"))?;
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
        match child.try_wait().map_err(|e| format!("lost ({e})"))? {
            Some(status) => break Some(status),
            None if start.elapsed() > timeout => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            None => std::thread::sleep(Duration::from_millis(20)),
        }
    };
    let (stdout, stderr) = (
        out.join().unwrap_or_default(),
        err.join().unwrap_or_default(),
    );
    match status {
        None => Err(format!("timeout (over {} s)", timeout.as_secs())),
        Some(status) => Ok((status.code(), stdout, stderr)),
    }
}

/// The last non-empty line of some output, for a one-line reason.
fn last_line(text: &str) -> String {
    text.lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("no message")
        .to_string()
}

/// Step 2: the real-heap case, `REPLAYS` rounds: CPython's heap after `stdlib.py` is captured
/// (with its own collection times in the trailer), then replayed in pyheap, which reports its
/// full collection against the trailer's `collect_ns` and its bytes against CPython's sizes for
/// the same objects.
fn replay_case(paths: &Paths, quick: bool) -> Vec<Json> {
    println!("\n==> bench: the real-heap case (heap-inspect capture {WORKLOAD}, replay)");
    match replay_runs(paths, quick) {
        Ok(lines) => lines,
        Err(reason) => {
            println!("    unavailable: {reason}");
            ["full collection ns", "bytes"]
                .into_iter()
                .flat_map(|metric| {
                    ["pyheap", "cpython"].map(|imp| {
                        record(
                            "stdlib",
                            metric,
                            0,
                            imp,
                            Err(("unavailable", reason.clone())),
                            Json::Null,
                        )
                    })
                })
                .collect()
        }
    }
}

/// One record line, as the bench targets write them.
fn record(
    case: &str,
    metric: &str,
    n: u64,
    implementation: &str,
    samples: Result<Vec<f64>, (&str, String)>,
    extra: Json,
) -> Json {
    let (status, detail, samples) = match samples {
        Ok(s) => ("ok", String::new(), s),
        Err((status, detail)) => (status, detail, Vec::new()),
    };
    let spread = Spread::of(&samples).map_or(Json::Null, |s| {
        Json::object([
            ("median", Json::Num(s.median)),
            ("min", Json::Num(s.min)),
            ("max", Json::Num(s.max)),
        ])
    });
    Json::object([
        ("bench", Json::str("replay")),
        ("case", Json::str(case)),
        ("metric", Json::str(metric)),
        ("n", Json::Num(n as f64)),
        ("implementation", Json::str(implementation)),
        ("status", Json::str(status)),
        ("detail", Json::Str(detail)),
        ("runs", Json::Num(samples.len() as f64)),
        ("ns_per_op", spread),
        (
            "samples",
            Json::Arr(samples.iter().map(|&v| Json::Num(v)).collect()),
        ),
        ("extra", extra),
    ])
}

fn replay_runs(paths: &Paths, quick: bool) -> Result<Vec<Json>, String> {
    let mut build = Command::new("cargo");
    build.current_dir(&paths.root).args([
        "build",
        "--release",
        "-p",
        "inspect-cli",
        "--bin",
        "heap-inspect",
    ]);
    let (code, _, stderr) = run_timed(build, CAPTURE_TIMEOUT)?;
    if code != Some(0) {
        let error = stderr
            .lines()
            .find(|l| l.starts_with("error"))
            .map(str::to_string)
            .unwrap_or_else(|| last_line(&stderr));
        return Err(format!("heap-inspect does not build ({error})"));
    }
    let exe = paths.target.join("release").join("heap-inspect");
    let graph = paths.records.join("stdlib.jsonl");
    let rounds = if quick { REPLAYS.1 } else { REPLAYS.0 };
    let mut runs = Vec::new();
    for i in 0..rounds {
        // A fresh capture each round: CPython's figure is a measurement too.
        let mut capture = Command::new(&exe);
        capture
            .current_dir(&paths.root)
            .arg("capture")
            .arg(paths.root.join(WORKLOAD))
            .arg("-o")
            .arg(&graph);
        let t = Instant::now();
        match run_timed(capture, CAPTURE_TIMEOUT)? {
            (Some(0), _, _) => {}
            (_, stdout, stderr) => {
                return Err(format!(
                    "heap-inspect capture failed ({})",
                    last_line(&(stdout + &stderr))
                ))
            }
        }
        let captured = t.elapsed();
        let mut replay = Command::new(&exe);
        replay
            .current_dir(&paths.root)
            .arg("replay")
            .arg(&graph)
            .args(["--format", "json"]);
        let (code, stdout, stderr) = run_timed(replay, REPLAY_TIMEOUT)?;
        // 0: pyheap found CPython's garbage; 1: it did not (still a measurement).
        if !matches!(code, Some(0 | 1)) {
            return Err(format!(
                "heap-inspect replay failed ({})",
                last_line(&(stdout + &stderr))
            ));
        }
        let doc = json::parse(&stdout)
            .map_err(|e| format!("heap-inspect replay printed no JSON ({e})"))?;
        let result = doc.get("result").cloned().unwrap_or(doc);
        let run = ReplayRun::read(&result)?;
        println!(
            "    round {}/{rounds}: captured in {:.1}s; full collection: pyheap {:.2} ms, CPython \
             {:.2} ms",
            i + 1,
            captured.as_secs_f64(),
            run.pyheap_ns / 1e6,
            run.cpython_ns / 1e6,
        );
        runs.push(run);
    }
    let first = &runs[0];
    let extra = Json::object([
        ("objects", Json::Num(first.objects)),
        ("match", Json::Bool(runs.iter().all(|r| r.matches))),
        ("workload", Json::str(WORKLOAD)),
        ("free_ratio", first.free_ratio.map_or(Json::Null, Json::Num)),
        ("live_ratio", first.live_ratio.map_or(Json::Null, Json::Num)),
    ]);
    let n = first.objects as u64;
    let all = |f: fn(&ReplayRun) -> f64| Ok(runs.iter().map(f).collect());
    let line = |metric, imp, f: fn(&ReplayRun) -> f64| {
        record("stdlib", metric, n, imp, all(f), extra.clone())
    };
    Ok(vec![
        line("full collection ns", "pyheap", |r| r.pyheap_ns),
        line("full collection ns", "cpython", |r| r.cpython_ns),
        line("bytes", "pyheap", |r| r.pyheap_bytes),
        line("bytes", "cpython", |r| r.cpython_bytes),
    ])
}

/// What the report takes from one `heap-inspect replay --format json`.
struct ReplayRun {
    objects: f64,
    matches: bool,
    pyheap_ns: f64,
    cpython_ns: f64,
    pyheap_bytes: f64,
    cpython_bytes: f64,
    free_ratio: Option<f64>,
    live_ratio: Option<f64>,
}

impl ReplayRun {
    fn read(r: &Json) -> Result<ReplayRun, String> {
        let num = |path: &[&str]| {
            r.path(path)
                .and_then(Json::as_f64)
                .ok_or_else(|| format!("heap-inspect replay's JSON has no {}", path.join(".")))
        };
        Ok(ReplayRun {
            objects: num(&["objects"])?,
            matches: r
                .path(&["verdict", "matches"])
                .and_then(Json::as_bool)
                .ok_or("heap-inspect replay's JSON has no verdict.matches")?,
            pyheap_ns: num(&["collections", "find", "pyheap_ns"])?,
            cpython_ns: num(&["collections", "find", "cpython_ns"])?,
            pyheap_bytes: num(&["sizes", "total", "pyheap_bytes"])?,
            cpython_bytes: num(&["sizes", "total", "cpython_bytes"])?,
            free_ratio: num(&["collections", "free", "ratio"]).ok(),
            live_ratio: num(&["collections", "live", "ratio"]).ok(),
        })
    }
}

// ---- the machine -----------------------------------------------------------------------------

struct Machine {
    rows: Vec<(&'static str, String)>,
}

fn command_line(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let text = if text.is_empty() {
        String::from_utf8_lossy(&out.stderr).trim().to_string()
    } else {
        text
    };
    (out.status.success() && !text.is_empty()).then_some(text)
}

/// The load averages over 1, 5 and 15 minutes: how busy the shared machine was.
fn loadavg() -> Option<String> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    Some(
        text.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
    )
}

impl Machine {
    fn probe() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split(':').nth(1))
            .map(|s| s.trim().to_string());
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let memory = meminfo
            .lines()
            .find(|l| l.starts_with("MemTotal:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map(|kb| format!("{:.1} GiB", kb / (1024.0 * 1024.0)));
        let unknown = || "unknown".to_string();
        Machine {
            rows: vec![
                (
                    "cores (nproc)",
                    command_line("nproc", &[]).unwrap_or_else(unknown),
                ),
                ("CPU", cpu.unwrap_or_else(unknown)),
                ("memory", memory.unwrap_or_else(unknown)),
                (
                    "kernel",
                    command_line("uname", &["-sr"]).unwrap_or_else(unknown),
                ),
                (
                    "rustc",
                    command_line("rustc", &["--version"]).unwrap_or_else(unknown),
                ),
                (
                    "python3",
                    command_line("python3", &["--version"]).unwrap_or_else(|| "none".into()),
                ),
                (
                    "date",
                    command_line("date", &["-u", "+%Y-%m-%d %H:%M UTC"]).unwrap_or_else(unknown),
                ),
                ("load average at the end", loadavg().unwrap_or_else(unknown)),
            ],
        }
    }
}

// ---- records ---------------------------------------------------------------------------------

/// Median, min and max.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Spread {
    median: f64,
    min: f64,
    max: f64,
}

impl Spread {
    fn of(values: &[f64]) -> Option<Spread> {
        if values.is_empty() {
            return None;
        }
        let mut v = values.to_vec();
        v.sort_by(f64::total_cmp);
        let k = v.len();
        let median = if k % 2 == 1 {
            v[k / 2]
        } else {
            (v[k / 2 - 1] + v[k / 2]) / 2.0
        };
        Some(Spread {
            median,
            min: v[0],
            max: v[k - 1],
        })
    }
}

/// One record line, read back.
#[derive(Clone, Debug)]
struct Rec {
    bench: String,
    case: String,
    metric: String,
    n: u64,
    implementation: String,
    status: String,
    detail: String,
    runs: usize,
    value: Option<Spread>,
    extra: Json,
    raw: Json,
}

impl Rec {
    fn read(j: Json) -> Option<Rec> {
        let s = |k: &str| j.get(k).and_then(Json::as_str).unwrap_or("").to_string();
        let v = j.get("ns_per_op");
        let value = v.and_then(|v| {
            Some(Spread {
                median: v.get("median")?.as_f64()?,
                min: v.get("min")?.as_f64()?,
                max: v.get("max")?.as_f64()?,
            })
        });
        Some(Rec {
            bench: s("bench"),
            case: s("case"),
            metric: s("metric"),
            n: j.get("n").and_then(Json::as_f64)? as u64,
            implementation: s("implementation"),
            status: s("status"),
            detail: s("detail"),
            runs: j.get("runs").and_then(Json::as_f64).unwrap_or(0.0) as usize,
            value,
            extra: j.get("extra").cloned().unwrap_or(Json::Null),
            raw: j,
        })
    }

    /// The median, or what happened instead.
    fn median(&self) -> Result<f64, String> {
        match (self.status.as_str(), self.value) {
            ("ok", Some(s)) => Ok(s.median),
            _ => Err(self.status_text()),
        }
    }

    fn status_text(&self) -> String {
        match (self.status.as_str(), self.detail.as_str()) {
            ("timeout", _) => "timeout (over 60 s)".into(),
            (s, "") => s.into(),
            (s, d) => format!("{s}: {d}"),
        }
    }

    fn extra_f64(&self, key: &str) -> Option<f64> {
        self.extra.get(key).and_then(Json::as_f64)
    }
}

fn read_records(dir: &Path) -> Result<Vec<Rec>, String> {
    let mut out = Vec::new();
    for bench in ["alloc", "refcount", "collect", "pause", "replay"] {
        let path = dir.join(format!("{bench}.jsonl"));
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        for (i, line) in text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            let j = json::parse(line)
                .map_err(|e| format!("{}:{}: bad record ({e})", path.display(), i + 1))?;
            out.push(
                Rec::read(j).ok_or_else(|| format!("{}:{}: bad record", path.display(), i + 1))?,
            );
        }
    }
    Ok(out)
}

/// The records, looked up by what they measure.
struct Records(Vec<Rec>);

impl Records {
    fn find(
        &self,
        bench: &str,
        case: &str,
        n: Option<u64>,
        metric: &str,
        imp: &str,
    ) -> Option<&Rec> {
        self.0.iter().find(|r| {
            r.bench == bench
                && r.case == case
                && n.is_none_or(|n| r.n == n)
                && r.metric == metric
                && r.implementation == imp
        })
    }

    fn median(
        &self,
        bench: &str,
        case: &str,
        n: Option<u64>,
        metric: &str,
        imp: &str,
    ) -> Result<f64, String> {
        self.find(bench, case, n, metric, imp)
            .ok_or_else(|| "not measured".to_string())
            .and_then(Rec::median)
    }

    /// The records of one case, one size, one metric, in the order they were written.
    fn of(&self, bench: &str, case: &str, n: Option<u64>, metric: &str) -> Vec<&Rec> {
        self.0
            .iter()
            .filter(|r| {
                r.bench == bench
                    && r.case == case
                    && n.is_none_or(|n| r.n == n)
                    && r.metric == metric
            })
            .collect()
    }

    /// The sizes a case was run at, ascending.
    fn sizes(&self, bench: &str, case: &str) -> Vec<u64> {
        let mut v: Vec<u64> = self
            .0
            .iter()
            .filter(|r| r.bench == bench && r.case == case)
            .map(|r| r.n)
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    }
}

// ---- targets ---------------------------------------------------------------------------------

/// One target of a tier issue: pyheap's ratio to a peer against a bound.
struct Target {
    tier: &'static str,
    what: String,
    peer: String,
    bound: f64,
    /// "faster than" (ratio < bound) rather than "at most" (ratio <= bound).
    strict: bool,
    /// pyheap / peer, or why there is none.
    ratio: Result<f64, String>,
    /// Whether the missing ratio is pyheap's fault (SHORT) or the peer's (n/a).
    ours_failed: bool,
    note: String,
}

impl Target {
    fn verdict(&self) -> &'static str {
        match &self.ratio {
            Ok(r) if (self.strict && *r < self.bound) || (!self.strict && *r <= self.bound) => {
                "PASS"
            }
            Ok(_) => "SHORT",
            Err(_) if self.ours_failed => "SHORT",
            Err(_) => "n/a",
        }
    }

    /// "by how much": the margin of a pass, or how far over the bound a shortfall is.
    fn by(&self) -> String {
        match &self.ratio {
            Ok(r) if r / self.bound > 100.0 => "over 100 times the bound".into(),
            Ok(r) => {
                let over = (r / self.bound - 1.0) * 100.0;
                if self.verdict() == "PASS" {
                    format!("{:.0}% under the bound", -over)
                } else {
                    format!("{over:.0}% over the bound")
                }
            }
            Err(e) => e.clone(),
        }
    }

    fn bound_text(&self) -> String {
        format!("{} {:.2}x", if self.strict { "<" } else { "≤" }, self.bound)
    }
}

/// pyheap's median over a peer's, with whose fault a missing one is.
fn ratio_of(ours: Result<f64, String>, theirs: Result<f64, String>) -> (Result<f64, String>, bool) {
    match (ours, theirs) {
        (Ok(a), Ok(b)) if b > 0.0 => (Ok(a / b), false),
        (Ok(_), Ok(_)) => (Err("the peer measured 0".into()), false),
        (Err(e), _) => (Err(format!("pyheap: {e}")), true),
        (_, Err(e)) => (Err(format!("peer: {e}")), false),
    }
}

const RUST_PEERS: [&str; 4] = ["bacon_rajan_cc", "dumpster", "gc", "rust-cc"];

fn targets(r: &Records, quick: bool) -> Vec<Target> {
    let mut out = Vec::new();
    let mut simple = |tier, what: &str, bench, case, metric, peer: &str, bound| {
        let ours = r.find(bench, case, None, metric, "pyheap");
        let n = ours.map_or("N".to_string(), |x| thousands(x.n));
        let (ratio, ours_failed) = ratio_of(
            r.median(bench, case, None, metric, "pyheap"),
            r.median(bench, case, None, metric, peer),
        );
        out.push(Target {
            tier,
            what: what.replace("{n}", &n),
            peer: peer.to_string(),
            bound,
            strict: false,
            ratio,
            ours_failed,
            note: String::new(),
        });
    };
    let (alloc, rc) = ("obj-alloc", "refcount");
    #[rustfmt::skip]
    let simple_targets = [
        (alloc, "churn with {n} live blocks of 16..=512 B, ns/op", "alloc", "churn_1k", "ns/op", "mimalloc", 0.7),
        (alloc, "churn with {n} live blocks, ns/op", "alloc", "churn_100k", "ns/op", "mimalloc", 0.9),
        (alloc, "allocate {n} blocks then free all, ns/block", "alloc", "alloc_10m_free_all", "ns/op", "mimalloc", 0.9),
        (rc, "clone + drop, ns/op", "refcount", "clone_drop", "ns/op", "Rc", 1.2),
        (rc, "build + drop a {n} chain, ns/object", "refcount", "chain_100k", "build+drop ns/obj", "Rc", 1.0),
        (rc, "drop a {n} chain, ns/object", "refcount", "chain_10m", "drop ns/obj", "cpython", 1.0),
    ];
    for (tier, what, bench, case, metric, peer, bound) in simple_targets {
        simple(tier, what, bench, case, metric, peer, bound);
    }

    let n = Some(if quick { TARGET_N.1 } else { TARGET_N.0 });
    let shown_n = n.map(thousands).unwrap_or_default();
    for (shape, bound) in [
        ("pairs", 0.35),
        ("ring", 0.35),
        ("random", 0.35),
        // The issue's shape (4), "a full collection timed (traversal with nothing to free)",
        // is `live-touched`: the kept graph after a pass that cloned and dropped every root
        // handle, so that every collector that can skip its work (pyheap included, see
        // `scans_skipped`) has to trace it. In `live` no collector traverses anything: it has
        // no target, and `idle_live_md` says what it shows.
        ("live-touched", 0.5),
    ] {
        let dropped = !shape.starts_with("live");
        let metrics: &[&str] = if dropped {
            &["collect ns/obj", "drop+collect ns/obj"]
        } else {
            &["collect ns/obj"]
        };
        for &metric in metrics {
            let (ratio, ours_failed) = ratio_of(
                r.median("collect", shape, n, metric, "pyheap"),
                r.median("collect", shape, n, metric, "cpython"),
            );
            out.push(Target {
                tier: "gengc",
                what: format!(
                    "{shape}, {shown_n} objects, {}",
                    metric.trim_end_matches(" ns/obj")
                ),
                peer: "cpython".into(),
                bound,
                strict: false,
                ratio,
                ours_failed,
                note: String::new(),
            });
        }
        // Faster than every Rust peer that completes the shape: on drop + collection for the
        // dropped shapes (trial deletion works when counts fall), on the collection when live.
        let metric = if dropped {
            "drop+collect ns/obj"
        } else {
            "collect ns/obj"
        };
        let ours = r.median("collect", shape, n, metric, "pyheap");
        let mut worst: Option<(f64, &str)> = None;
        let mut skipped = Vec::new();
        let mut idle = Vec::new();
        for peer in RUST_PEERS {
            match r.median("collect", shape, n, metric, peer) {
                Ok(theirs) => {
                    if theirs < 1.0 {
                        idle.push(peer);
                    }
                    if let Ok(o) = ours {
                        let q = o / theirs.max(f64::MIN_POSITIVE);
                        if worst.is_none_or(|(w, _)| q > w) {
                            worst = Some((q, peer));
                        }
                    }
                }
                Err(e) => skipped.push(format!("{peer}: {e}")),
            }
        }
        let mut note = Vec::new();
        if !idle.is_empty() {
            note.push(format!("{} did no work", idle.join(", ")));
        }
        if !skipped.is_empty() {
            note.push(format!("did not complete: {}", skipped.join("; ")));
        }
        let (ratio, ours_failed, peer) = match (ours, worst) {
            (Err(e), _) => (Err(format!("pyheap: {e}")), true, "Rust peers".to_string()),
            (Ok(_), None) => (
                Err("no Rust peer completed".into()),
                false,
                "Rust peers".into(),
            ),
            (Ok(_), Some((q, p))) => (Ok(q), false, format!("Rust peers (worst ratio: {p})")),
        };
        out.push(Target {
            tier: "gengc",
            what: format!(
                "{shape}, {shown_n} objects, {}: faster than every Rust peer that completes",
                metric.trim_end_matches(" ns/obj")
            ),
            peer,
            bound: 1.0,
            strict: true,
            ratio,
            ours_failed,
            note: note.join("; "),
        });
    }

    for (what, metric, bound) in [
        (
            "replay of the stdlib capture: full collection vs trailer collect_ns",
            "full collection ns",
            0.5,
        ),
        (
            "replay of the stdlib capture: bytes vs CPython's sizes",
            "bytes",
            0.9,
        ),
    ] {
        let ours = r.median("replay", "stdlib", None, metric, "pyheap");
        let theirs = r.median("replay", "stdlib", None, metric, "cpython");
        let unavailable = matches!(&ours, Err(e) if e.starts_with("unavailable"));
        let (ratio, ours_failed) = ratio_of(ours, theirs);
        out.push(Target {
            tier: "inspect-cli",
            what: what.into(),
            peer: "cpython".into(),
            bound,
            strict: false,
            ratio,
            // A CLI that is not ready yet is not a measured shortfall.
            ours_failed: ours_failed && !unavailable,
            note: String::new(),
        });
    }
    out
}

/// 1234567 -> "1,234,567".
fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn show_ratio(r: f64) -> String {
    if r >= 100.0 {
        ">100x".into()
    } else if r < 0.01 {
        "<0.01x".into()
    } else {
        format!("{r:.2}x")
    }
}

fn show_ns(v: f64) -> String {
    if v >= 1000.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else if v >= 0.1 || v <= 0.0 {
        format!("{v:.2}")
    } else {
        // A collection that did no work per object: three significant digits, not "0.00".
        let decimals = (-v.log10().floor()) as usize + 2;
        format!("{v:.decimals$}")
    }
}

fn show_spread(rec: &Rec) -> String {
    match (rec.status.as_str(), rec.value) {
        ("ok", Some(s)) if rec.runs > 1 => {
            format!(
                "{} ({}..{})",
                show_ns(s.median),
                show_ns(s.min),
                show_ns(s.max)
            )
        }
        ("ok", Some(s)) => show_ns(s.median),
        _ => format!("**{}**", rec.status_text()),
    }
}

// ---- the report ------------------------------------------------------------------------------

struct Report {
    records: Records,
    quick: bool,
    machine: Machine,
    timings: Vec<(String, Duration)>,
    elapsed: Duration,
    targets: Vec<Target>,
}

impl Report {
    fn new(
        records: Vec<Rec>,
        quick: bool,
        machine: Machine,
        timings: Vec<(String, Duration)>,
        elapsed: Duration,
    ) -> Report {
        let records = Records(records);
        let targets = targets(&records, quick);
        Report {
            records,
            quick,
            machine,
            timings,
            elapsed,
            targets,
        }
    }

    fn targets_text(&self) -> String {
        let mut s = String::from("targets:\n");
        for t in &self.targets {
            let ratio = t.ratio.as_ref().map_or("-".into(), |r| show_ratio(*r));
            let _ = writeln!(
                s,
                "  {:<5} {:<11} {:<78} {:>8} {:>8}  {}",
                t.verdict(),
                t.tier,
                format!("{} vs {}", t.what, t.peer),
                ratio,
                t.bound_text(),
                t.by()
            );
        }
        s
    }

    fn markdown(&self) -> String {
        let mut s = String::new();
        s.push_str("# pyheap performance report\n\n");
        if self.quick {
            s.push_str(
                "> **Quick mode** (`cargo xtask bench --quick`): small sizes, one run each. This \
                 is the suite's smoke test; its figures are not measurements of record.\n\n",
            );
        }
        s.push_str(
            "Written by `cargo xtask bench` (`xtask/src/bench.rs`), which runs the bench targets \
             of `bench/` (the crate `pyheap-bench`) and the real-heap replay. pyheap and its \
             peers (`shared/PEERS.md`) run **in the same run, on the same machine, on the same \
             work**; absolute times move from one machine to the next, the ratios measured side \
             by side do not.\n\n\
             How to read it: every run is a fresh child process with a 60 s timeout, and the \
             implementations of a case take turns round by round, so that a change in the \
             machine's load falls on all of them alike. Figures are the median of the runs with \
             (min..max) when there were several; a ratio is pyheap's median over the peer's \
             (below 1: pyheap is faster). A peer that overflowed its stack, crashed or ran past \
             60 s is reported as such in its row.\n\n",
        );
        s.push_str("## Machine\n\n| | |\n| --- | --- |\n");
        for (k, v) in &self.machine.rows {
            let _ = writeln!(s, "| {k} | {v} |");
        }
        let _ = writeln!(
            s,
            "| mode | {} |",
            if self.quick {
                "quick (small N, 1 run)"
            } else {
                "full"
            }
        );
        for (what, d) in &self.timings {
            let _ = writeln!(s, "| time: {what} | {:.0} s |", d.as_secs_f64());
        }
        let _ = writeln!(
            s,
            "| time: in all | {:.0} s |\n",
            self.elapsed.as_secs_f64()
        );

        self.targets_md(&mut s);
        self.alloc_md(&mut s);
        self.refcount_md(&mut s);
        self.collect_md(&mut s);
        self.replay_md(&mut s);
        self.scaling_md(&mut s);
        self.pause_md(&mut s);
        s
    }

    fn targets_md(&self, s: &mut String) {
        let pass = self
            .targets
            .iter()
            .filter(|t| t.verdict() == "PASS")
            .count();
        let short = self
            .targets
            .iter()
            .filter(|t| t.verdict() == "SHORT")
            .count();
        let _ = writeln!(
            s,
            "## Targets\n\nThe targets of the tier issues: {pass} PASS, {short} SHORT, {} n/a \
             (a peer or a tool did not run), of {}.\n",
            self.targets.len() - pass - short,
            self.targets.len()
        );
        s.push_str("| tier | target | vs | pyheap / peer | bound | verdict | by how much |\n");
        s.push_str("| --- | --- | --- | --- | --- | --- | --- |\n");
        for t in &self.targets {
            let ratio = t.ratio.as_ref().map_or("-".into(), |r| show_ratio(*r));
            let by = if t.note.is_empty() {
                t.by()
            } else {
                format!("{} ({})", t.by(), t.note)
            };
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | **{}** | {} |",
                t.tier,
                t.what,
                t.peer,
                ratio,
                t.bound_text(),
                t.verdict(),
                by
            );
        }
        s.push_str(
            "\n![pyheap / peer per target, log scale, with each target's bound](ratios.svg)\n\n",
        );
        self.idle_live_md(s);
    }

    /// Why `live` carries no target, with what it measured: a full collection of the kept
    /// graph when no count fell since it was built, where no collector traverses anything.
    fn idle_live_md(&self, s: &mut String) {
        let n = if self.quick { TARGET_N.1 } else { TARGET_N.0 };
        let r = &self.records;
        // One collection's time, in µs or ms.
        let time = |imp: &str| {
            r.median("collect", "live", Some(n), "collect ns/obj", imp)
                .map(|v| match v * n as f64 / 1000.0 {
                    us if us >= 1000.0 => format!("{:.0} ms", us / 1000.0),
                    us => format!("{us:.1} µs"),
                })
        };
        let Ok(ours) = time("pyheap") else {
            return;
        };
        let mut peers = Vec::new();
        for peer in ["cpython"].into_iter().chain(RUST_PEERS) {
            match time(peer) {
                Ok(t) => peers.push(format!("{} {t}", label(peer))),
                Err(e) => peers.push(format!("{} ({e})", label(peer))),
            }
        }
        let _ = writeln!(
            s,
            "Not a target: `live`, {} objects. The issue's shape (4) is a full collection that \
             traverses a live graph with nothing to free, and its targets are checked on \
             `live-touched`. In `live` no count fell since the graph was built: the trial-deletion \
             collectors have no candidate to trace, and pyheap skips its scan (`scans_skipped`), \
             so every figure but CPython's and gc's is the fixed cost of a collection that does \
             nothing, in a process whose caches the build has just filled. pyheap {ours}; \
             {}.\n",
            thousands(n),
            peers.join(", ")
        );
    }

    /// A table of one case: one row per implementation, its figure and pyheap's ratio to it.
    fn case_table(&self, s: &mut String, recs: &[&Rec], unit: &str) {
        let ours = recs
            .iter()
            .find(|r| r.implementation == "pyheap")
            .and_then(|r| r.median().ok());
        let _ = writeln!(
            s,
            "| implementation | {unit} | pyheap / it |\n| --- | --- | --- |"
        );
        for rec in recs {
            let ratio = match (ours, rec.median()) {
                (Some(o), Ok(t)) if rec.implementation != "pyheap" && t > 0.0 => show_ratio(o / t),
                _ => "".into(),
            };
            let _ = writeln!(
                s,
                "| {} | {} | {ratio} |",
                label(&rec.implementation),
                show_spread(rec)
            );
        }
        s.push('\n');
    }

    fn alloc_md(&self, s: &mut String) {
        let r = &self.records;
        s.push_str(
            "## Allocation (obj-alloc)\n\nBlocks of uniform random sizes 16..=512 bytes, the same \
             sequence for every allocator; obj-alloc's size-class path against glibc malloc \
             (`std::alloc::System`), mimalloc (`MiMalloc` through `GlobalAlloc`) and bump \
             allocation (`bumpalo`, allocate only and drop the arena: the floor).\n\n",
        );
        for (case, title) in [
            ("churn_1k", "Churn, few live blocks: free a random block, allocate a new one in its place (ns per step)"),
            ("churn_100k", "Churn, many live blocks (ns per step)"),
            ("alloc_10m_free_all", "Allocate N blocks, then free them all in allocation order (ns per block)"),
        ] {
            let recs = r.of("alloc", case, None, "ns/op");
            if recs.is_empty() {
                continue;
            }
            let _ = writeln!(s, "### {title}\n\nN = {}.\n", thousands(recs[0].n));
            self.case_table(s, &recs, "ns/op");
        }
        if let (Ok(ours), Ok(floor)) = (
            r.median("alloc", "alloc_10m_free_all", None, "ns/op", "pyheap"),
            r.median("alloc", "alloc_10m_free_all", None, "ns/op", "bumpalo"),
        ) {
            let _ = writeln!(
                s,
                "The floor: pyheap allocates and frees at {:.1}x the cost of bump allocation \
                 alone ({} vs {} ns per block); bump allocation never frees a block.\n",
                ours / floor,
                show_ns(ours),
                show_ns(floor)
            );
        }
    }

    fn refcount_md(&self, s: &mut String) {
        let r = &self.records;
        s.push_str(
            "## Reference counting (refcount)\n\nrefcount's node is list-like (a container with \
             one slot: a 48-byte block with the collector's pre-header), on a bare `RcHeap`; \
             `Rc`'s is `RefCell<Option<Rc<Node>>>` in the system allocator. The 100,000 chain \
             runs on a 256 MiB stack (so that `Rc`'s recursive drop completes), the 10,000,000 \
             chain on the usual 8 MiB. CPython builds `head = [head]` with gc disabled and times \
             `del head`.\n\n",
        );
        for (case, metric, title) in [
            (
                "clone_drop",
                "ns/op",
                "Clone a handle and drop the clone (ns per clone + drop)",
            ),
            (
                "chain_100k",
                "build+drop ns/obj",
                "Build and drop a 100,000-long chain (ns per object)",
            ),
            (
                "chain_100k",
                "drop ns/obj",
                "The drop alone of the 100,000-long chain (ns per object; for information)",
            ),
            (
                "chain_10m",
                "drop ns/obj",
                "Drop a 10,000,000-long chain (ns per object)",
            ),
        ] {
            let recs = r.of("refcount", case, None, metric);
            if recs.is_empty() {
                continue;
            }
            let _ = writeln!(s, "### {title}\n\nN = {}.\n", thousands(recs[0].n));
            self.case_table(s, &recs, metric);
        }
    }

    fn collect_md(&self, s: &mut String) {
        let r = &self.records;
        s.push_str(
            "## Collection (gengc)\n\nN objects with two reference slots each: `pairs` (N/2 \
             two-object cycles), `ring` (one cycle through all), `random` (two out-edges to \
             uniformly random objects, fixed seed), all dropped then collected; `live` (the \
             random graph kept alive: a full collection that frees nothing; no count fell \
             since the graph was built, so pyheap skips its scan, as the trial-deletion \
             collectors skip theirs); `live-touched` (the live graph after a pass that cloned \
             and dropped every root handle: every collector traces the whole graph). pyheap's \
             `collect(2)` (its node type, two `RefCell1` slots, declares that its drop only \
             releases references: `TypeInfo::drop_only_releases_refs`) against CPython 3.11's `gc.collect()` (lists `[None, None]`, gc \
             disabled while building, the interpreter's own objects frozen), bacon_rajan_cc \
             (`collect_cycles`), dumpster (`collect`), gc (`force_collect`), rust-cc \
             (`collect_cycles`) and gc-arena (`finish_cycle`, the tracing floor). ns per \
             object: the collection alone, and the drop of the last handles plus the collection \
             (trial-deletion collectors work when counts fall: only the sum is fair to them). \
             `pyheap, huge pages` is the same collector in 2 MiB arenas that ask for \
             transparent huge pages (`RawConfig::huge_pages`, not the default): shown beside \
             the default, never used for a target.\n\n",
        );
        let sizes = r.sizes("collect", "pairs");
        for shape in ["pairs", "ring", "random", "live", "live-touched"] {
            for &n in &sizes {
                let collect = r.of("collect", shape, Some(n), "collect ns/obj");
                if collect.is_empty() {
                    continue;
                }
                let sum = r.of("collect", shape, Some(n), "drop+collect ns/obj");
                let _ = writeln!(s, "### {shape}, N = {}\n", thousands(n));
                let ours = |metric| r.median("collect", shape, Some(n), metric, "pyheap").ok();
                let (oc, os) = (ours("collect ns/obj"), ours("drop+collect ns/obj"));
                if sum.is_empty() {
                    s.push_str(
                        "| collector | collect ns/obj | pyheap / it |\n| --- | --- | --- |\n",
                    );
                } else {
                    s.push_str(
                        "| collector | collect ns/obj | drop+collect ns/obj | pyheap / it (collect) | pyheap / it (drop+collect) |\n\
                         | --- | --- | --- | --- | --- |\n",
                    );
                }
                for rec in &collect {
                    let ratio = |o: Option<f64>, t: Result<f64, String>| match (o, t) {
                        (Some(o), Ok(t))
                            if !rec.implementation.starts_with("pyheap") && t > 0.0 =>
                        {
                            show_ratio(o / t)
                        }
                        _ => String::new(),
                    };
                    let rc = ratio(oc, rec.median());
                    if sum.is_empty() {
                        let _ = writeln!(
                            s,
                            "| {} | {} | {rc} |",
                            label(&rec.implementation),
                            show_spread(rec)
                        );
                    } else {
                        let srec = sum.iter().find(|x| x.implementation == rec.implementation);
                        let (ss, rs) = match srec {
                            Some(x) => (show_spread(x), ratio(os, x.median())),
                            None => (String::new(), String::new()),
                        };
                        let _ = writeln!(
                            s,
                            "| {} | {} | {ss} | {rc} | {rs} |",
                            label(&rec.implementation),
                            show_spread(rec)
                        );
                    }
                }
                s.push('\n');
            }
        }
    }

    fn replay_md(&self, s: &mut String) {
        let r = &self.records;
        s.push_str(
            "## Real heaps (heap-inspect replay)\n\nCPython 3.11's heap after `inspect-cli/testdata/\
             workloads/stdlib.py` is captured (`heap-inspect capture`, with CPython's own \
             collection time in the file's trailer), then replayed in pyheap \
             (`heap-inspect replay --format json`): pyheap's full collection of the same objects \
             against CPython's `collect_ns`, and pyheap's bytes against `sys.getsizeof` of the \
             same objects; three rounds of capture and replay (one with `--quick`).\n\n",
        );
        let time = r.of("replay", "stdlib", None, "full collection ns");
        let bytes = r.of("replay", "stdlib", None, "bytes");
        if time.iter().chain(&bytes).all(|x| x.status != "ok") {
            let why = time.first().map_or("not run".into(), |x| x.status_text());
            let _ = writeln!(s, "**{why}**\n");
            return;
        }
        if let Some(first) = time.first() {
            let matched = first.extra.get("match").and_then(Json::as_bool);
            let _ = writeln!(
                s,
                "{} objects; pyheap's verdict {} CPython's garbage.\n",
                thousands(first.n),
                match matched {
                    Some(true) => "matches",
                    Some(false) => "**does not match**",
                    None => "vs",
                }
            );
        }
        s.push_str(
            "| measure | pyheap | CPython 3.11 | pyheap / CPython |\n| --- | --- | --- | --- |\n",
        );
        for (name, recs, scale, unit) in [
            ("full collection", &time, 1e-6, "ms"),
            ("bytes of the objects", &bytes, 1.0, "B"),
        ] {
            let get = |imp| recs.iter().find(|x| x.implementation == imp);
            let (Some(p), Some(c)) = (get("pyheap"), get("cpython")) else {
                continue;
            };
            let show = |x: &Rec| match x.median() {
                Ok(v) if unit == "B" => format!("{} B", thousands(v as u64)),
                Ok(v) => format!("{:.2} {unit}", v * scale),
                Err(e) => e,
            };
            let ratio = match (p.median(), c.median()) {
                (Ok(a), Ok(b)) if b > 0.0 => show_ratio(a / b),
                _ => "-".into(),
            };
            let _ = writeln!(s, "| {name} | {} | {} | {ratio} |", show(p), show(c));
        }
        if let Some(first) = time.first() {
            for (key, what) in [
                ("free_ratio", "the collection that frees the garbage"),
                ("live_ratio", "a collection of the live heap"),
            ] {
                if let Some(v) = first.extra_f64(key) {
                    let _ = writeln!(s, "| {what}, pyheap / CPython | | | {} |", show_ratio(v));
                }
            }
        }
        s.push('\n');
    }

    fn scaling_md(&self, s: &mut String) {
        let r = &self.records;
        s.push_str(
            "## Scaling\n\npyheap's full collection, ns per object, at every size the shape ran \
             (10^4 to 10^7 in the full run: the runs above at 10^6 and 10^7, 5 rounds at 10^4 and \
             10^5), with CPython and the Rust peers at the same sizes. A collector linear in the heap's size keeps \
             a flat line; the slope is the least-squares fit of log(time) against log(N) (1 is \
             linear), over every size and over the last two. The random graph's edges jump \
             anywhere in memory: its ns per object rise where the graph outgrows the CPU's \
             caches (between 10^5 and 10^6 objects), for every collector that follows them; \
             past that point the slope is the algorithm's again.\n\n",
        );
        for shape in ["ring", "random"] {
            let sizes = r.sizes("collect", shape);
            if sizes.is_empty() {
                continue;
            }
            let _ = writeln!(s, "### {shape}: collect ns/object\n");
            s.push_str("| collector |");
            for n in &sizes {
                let _ = write!(s, " N = {} |", thousands(*n));
            }
            s.push_str(" slope | slope, last two sizes |\n| --- |");
            for _ in &sizes {
                s.push_str(" --- |");
            }
            s.push_str(" --- | --- |\n");
            for imp in COLLECTORS {
                let _ = write!(s, "| {} |", label(imp));
                let mut points = Vec::new();
                for &n in &sizes {
                    match r.find("collect", shape, Some(n), "collect ns/obj", imp) {
                        Some(rec) => {
                            if let Ok(v) = rec.median() {
                                points.push((n as f64, v));
                                let _ = write!(s, " {} |", show_ns(v));
                            } else {
                                let _ = write!(s, " {} |", rec.status);
                            }
                        }
                        None => s.push_str(" |"),
                    }
                }
                let largest = sizes.last().map(|&n| n as f64);
                let last_two = (points.len() >= 2 && points.last().map(|p| p.0) == largest)
                    .then(|| slope(&points[points.len() - 2..]))
                    .flatten();
                let show = |k: Option<f64>| k.map_or(String::new(), |k| format!("{k:.2}"));
                let _ = writeln!(s, " {} | {} |", show(slope(&points)), show(last_two));
            }
            let _ = writeln!(
                s,
                "\n![{shape}: ns per object against N, log-log](scaling-{shape}.svg)\n"
            );
        }
    }

    fn pause_md(&self, s: &mut String) {
        let r = &self.records;
        let recs = r.of("pause", "gen0_pause", None, "pause ns");
        if recs.is_empty() {
            return;
        }
        let _ = writeln!(
            s,
            "## Pauses of automatic generation-0 collections\n\nA steady allocation load: {} \
             steps, each making a two-list cycle (`a = []; b = [a]; a.append(b)`) and putting it \
             in a window of 100 slots (dropping the cycle there before), with the default \
             thresholds (700, 10, 10), so that every generation-0 collection finds young garbage \
             and survivors to promote. A `gc.callbacks` function (`GcHeap::add_callback`) notes \
             the clock at the start and the stop of each collection; the pauses of every round \
             are pooled. CPython's include the call of its Python callback (about a microsecond). \
             CPython collects about a tenth less often on this load: a list taken from its \
             list free list (80 slots, refilled by each collection's garbage) is tracked \
             without counting as an allocation (`_PyObject_GC_Link` is not called), so a \
             generation-0 collection comes about every 781 lists rather than 701 (the counts \
             of pauses below); pyheap counts every tracked allocation, as \
             `shared/gc-scenarios.md` (21) asks.\n",
            thousands(recs[0].n)
        );
        s.push_str("| implementation | gen-0 pauses | median µs | p99 µs | max µs | pyheap / it (median) | loop ns/step |\n");
        s.push_str("| --- | --- | --- | --- | --- | --- | --- |\n");
        let ours = r
            .median("pause", "gen0_pause", None, "pause ns", "pyheap")
            .ok();
        for rec in &recs {
            match (rec.median(), rec.value) {
                (Ok(m), Some(v)) => {
                    let ratio = match ours {
                        Some(o) if rec.implementation != "pyheap" => show_ratio(o / m),
                        _ => String::new(),
                    };
                    let _ = writeln!(
                        s,
                        "| {} | {} | {:.1} | {:.1} | {:.1} | {ratio} | {:.0} |",
                        label(&rec.implementation),
                        rec.extra_f64("pauses").unwrap_or(0.0),
                        m / 1e3,
                        rec.extra_f64("p99").unwrap_or(f64::NAN) / 1e3,
                        v.max / 1e3,
                        rec.extra_f64("loop_ns_per_step").unwrap_or(f64::NAN)
                    );
                }
                _ => {
                    let e = rec.median().err().unwrap_or_default();
                    let _ = writeln!(s, "| {} | **{e}** | | | | | |", label(&rec.implementation));
                }
            }
        }
        s.push('\n');
    }

    fn json(&self) -> Json {
        Json::object([
            ("quick", Json::Bool(self.quick)),
            (
                "machine",
                Json::Obj(
                    self.machine
                        .rows
                        .iter()
                        .map(|(k, v)| (k.to_string(), Json::Str(v.clone())))
                        .collect(),
                ),
            ),
            ("elapsed_s", Json::Num(self.elapsed.as_secs_f64().round())),
            (
                "targets",
                Json::Arr(
                    self.targets
                        .iter()
                        .map(|t| {
                            Json::object([
                                ("tier", Json::str(t.tier)),
                                ("target", Json::Str(t.what.clone())),
                                ("peer", Json::Str(t.peer.clone())),
                                ("bound", Json::Num(t.bound)),
                                ("strict", Json::Bool(t.strict)),
                                (
                                    "ratio",
                                    t.ratio.as_ref().map_or(Json::Null, |r| Json::Num(*r)),
                                ),
                                ("verdict", Json::str(t.verdict())),
                                ("by", Json::Str(t.by())),
                                ("note", Json::Str(t.note.clone())),
                            ])
                        })
                        .collect(),
                ),
            ),
            (
                "records",
                Json::Arr(
                    self.records
                        .0
                        .iter()
                        .map(|r| {
                            // The pause samples are thousands of pauses: the spread and p99
                            // say what the report needs.
                            let mut raw = r.raw.clone();
                            if r.bench == "pause" {
                                raw.set("samples", Json::Null);
                            }
                            raw
                        })
                        .collect(),
                ),
            ),
        ])
    }

    fn pictures(&self) -> Vec<(String, String)> {
        let mut out = vec![("ratios.svg".to_string(), svg::ratios(&self.targets))];
        for shape in ["ring", "random"] {
            let series: Vec<svg::Series> = COLLECTORS
                .iter()
                .map(|imp| svg::Series {
                    name: label(imp),
                    strong: matches!(*imp, "pyheap" | "cpython"),
                    points: self
                        .records
                        .sizes("collect", shape)
                        .into_iter()
                        .filter_map(|n| {
                            let v = self
                                .records
                                .median("collect", shape, Some(n), "collect ns/obj", imp)
                                .ok()?;
                            Some((n as f64, v))
                        })
                        .collect(),
                })
                .filter(|s| !s.points.is_empty())
                .collect();
            out.push((
                format!("scaling-{shape}.svg"),
                svg::scaling(&format!("{shape}: full collection, ns per object"), &series),
            ));
        }
        out
    }
}

const COLLECTORS: [&str; 8] = [
    "pyheap",
    "pyheap-huge-pages",
    "cpython",
    "bacon_rajan_cc",
    "dumpster",
    "gc",
    "rust-cc",
    "gc-arena",
];

fn label(implementation: &str) -> String {
    match implementation {
        "cpython" => "CPython 3.11".into(),
        "gc-arena" => "gc-arena (floor)".into(),
        "pyheap-huge-pages" => "pyheap, huge pages".into(),
        "bumpalo" => "bumpalo (floor)".into(),
        "Rc" => "std::rc::Rc".into(),
        other => other.into(),
    }
}

/// The least-squares slope of log(N · ns/object) against log(N), from (N, ns/object) points.
fn slope(points: &[(f64, f64)]) -> Option<f64> {
    if points.len() < 2 {
        return None;
    }
    let xy: Vec<(f64, f64)> = points
        .iter()
        .map(|&(n, v)| (n.ln(), (n * v).ln()))
        .collect();
    let k = xy.len() as f64;
    let mx = xy.iter().map(|p| p.0).sum::<f64>() / k;
    let my = xy.iter().map(|p| p.1).sum::<f64>() / k;
    let sxy: f64 = xy.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let sxx: f64 = xy.iter().map(|p| (p.0 - mx).powi(2)).sum();
    (sxx > 0.0).then(|| sxy / sxx)
}

// ---- pictures --------------------------------------------------------------------------------

mod svg {
    //! Hand-written SVG: a log-log line chart and a log-scale bar chart.

    use std::fmt::Write as _;

    use super::{show_ratio, thousands, Target};

    /// One line of a chart.
    pub(super) struct Series {
        pub(super) name: String,
        /// pyheap and CPython are drawn bold; the other peers thin.
        pub(super) strong: bool,
        /// (N, ns per object).
        pub(super) points: Vec<(f64, f64)>,
    }

    const COLORS: [&str; 7] = [
        "#1f5fbf", "#e07b00", "#8c8c8c", "#a05a2c", "#2ca02c", "#9467bd", "#17becf",
    ];

    fn esc(s: &str) -> String {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    }

    fn head(w: f64, h: f64) -> String {
        format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" \
             viewBox=\"0 0 {w} {h}\" font-family=\"sans-serif\" font-size=\"12\">\n\
             <rect width=\"{w}\" height=\"{h}\" fill=\"white\"/>\n"
        )
    }

    /// Ticks on a log axis: 1, 2, 5 times the powers of ten inside [lo, hi].
    fn log_ticks(lo: f64, hi: f64, steps: &[f64]) -> Vec<f64> {
        let mut out = Vec::new();
        let mut p = 10f64.powi(lo.log10().floor() as i32);
        while p <= hi * 1.0001 {
            for &m in steps {
                let v = p * m;
                if v >= lo * 0.9999 && v <= hi * 1.0001 {
                    out.push(v);
                }
            }
            p *= 10.0;
        }
        out
    }

    /// ns per object against N, both on log scales.
    pub(super) fn scaling(title: &str, series: &[Series]) -> String {
        let (w, h) = (720.0, 420.0);
        let (left, right, top, bottom) = (70.0, 170.0, 40.0, 50.0);
        let pts = series.iter().flat_map(|s| s.points.iter());
        let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
        for &(x, y) in pts {
            x0 = x0.min(x);
            x1 = x1.max(x);
            y0 = y0.min(y);
            y1 = y1.max(y);
        }
        let mut s = head(w, h);
        let _ = writeln!(
            s,
            "<text x=\"{left}\" y=\"22\" font-size=\"15\" font-weight=\"bold\">{}</text>",
            esc(title)
        );
        if x0 > x1 {
            s.push_str("<text x=\"70\" y=\"80\">no data</text>\n</svg>\n");
            return s;
        }
        // Whole decades in x; y from a 1-2-5 step below the minimum to one above the maximum.
        let x0 = 10f64.powf(x0.log10().floor());
        let x1 = 10f64.powf(x1.log10().ceil()).max(x0 * 10.0);
        let y0 = (y0 * 0.8).max(0.01);
        let y1 = (y1 * 1.25).max(y0 * 10.0);
        let (pw, ph) = (w - left - right, h - top - bottom);
        let px = |x: f64| left + (x.log10() - x0.log10()) / (x1.log10() - x0.log10()) * pw;
        let py = |y: f64| top + ph - (y.log10() - y0.log10()) / (y1.log10() - y0.log10()) * ph;
        for t in log_ticks(x0, x1, &[1.0]) {
            let x = px(t);
            let _ = writeln!(
                s,
                "<line x1=\"{x:.1}\" y1=\"{top}\" x2=\"{x:.1}\" y2=\"{:.1}\" stroke=\"#e4e4e4\"/>\n\
                 <text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">10<tspan dy=\"-6\" font-size=\"9\">{}</tspan></text>",
                top + ph,
                top + ph + 18.0,
                t.log10().round()
            );
        }
        for t in log_ticks(y0, y1, &[1.0, 2.0, 5.0]) {
            let y = py(t);
            let _ = writeln!(
                s,
                "<line x1=\"{left}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"#e4e4e4\"/>\n\
                 <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
                left + pw,
                left - 6.0,
                y + 4.0,
                if t >= 1.0 { format!("{t:.0}") } else { format!("{t}") }
            );
        }
        let _ = writeln!(
            s,
            "<rect x=\"{left}\" y=\"{top}\" width=\"{pw}\" height=\"{ph}\" fill=\"none\" stroke=\"#888\"/>\n\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">objects (N)</text>\n\
             <text x=\"16\" y=\"{:.1}\" transform=\"rotate(-90 16 {:.1})\" text-anchor=\"middle\">ns per object</text>",
            left + pw / 2.0,
            h - 10.0,
            top + ph / 2.0,
            top + ph / 2.0
        );
        for (i, line) in series.iter().enumerate() {
            let color = COLORS[i % COLORS.len()];
            let width = if line.strong { 3.0 } else { 1.3 };
            let path: Vec<String> = line
                .points
                .iter()
                .map(|&(x, y)| format!("{:.1},{:.1}", px(x), py(y)))
                .collect();
            let _ = writeln!(
                s,
                "<polyline points=\"{}\" fill=\"none\" stroke=\"{color}\" stroke-width=\"{width}\"/>",
                path.join(" ")
            );
            for &(x, y) in &line.points {
                let _ = writeln!(
                    s,
                    "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"{}\" fill=\"{color}\"><title>{}: N = {}, {:.1} ns/object</title></circle>",
                    px(x),
                    py(y),
                    if line.strong { 4 } else { 3 },
                    esc(&line.name),
                    thousands(x as u64),
                    y
                );
            }
            let ly = top + 10.0 + i as f64 * 20.0;
            let lx = left + pw + 14.0;
            let _ = writeln!(
                s,
                "<line x1=\"{lx}\" y1=\"{ly}\" x2=\"{:.1}\" y2=\"{ly}\" stroke=\"{color}\" stroke-width=\"{width}\"/>\n\
                 <text x=\"{:.1}\" y=\"{:.1}\"{}>{}</text>",
                lx + 22.0,
                lx + 28.0,
                ly + 4.0,
                if line.strong { " font-weight=\"bold\"" } else { "" },
                esc(&line.name)
            );
        }
        s.push_str("</svg>\n");
        s
    }

    /// One bar per target: pyheap / peer on a log scale, the target's bound as a mark on the
    /// bar's row, green when it passes, red when short, grey when there is no ratio.
    pub(super) fn ratios(targets: &[Target]) -> String {
        let row = 24.0;
        let (left, right, top, bottom) = (430.0, 90.0, 50.0, 40.0);
        let pw = 420.0;
        let w = left + pw + right;
        let h = top + bottom + row * targets.len() as f64;
        let (lo, hi) = (0.01f64, 100.0f64);
        let px =
            |r: f64| left + (r.clamp(lo, hi).log10() - lo.log10()) / (hi.log10() - lo.log10()) * pw;
        let mut s = head(w, h);
        let _ = writeln!(
            s,
            "<text x=\"10\" y=\"22\" font-size=\"15\" font-weight=\"bold\">pyheap / peer per \
             target (log scale; the black mark is the target's bound; left of 1 is faster)</text>"
        );
        for t in [0.01, 0.1, 1.0, 10.0, 100.0] {
            let x = px(t);
            let _ = writeln!(
                s,
                "<line x1=\"{x:.1}\" y1=\"{top}\" x2=\"{x:.1}\" y2=\"{:.1}\" stroke=\"{}\"/>\n\
                 <text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{t}x</text>",
                h - bottom,
                if t == 1.0 { "#999" } else { "#e4e4e4" },
                h - bottom + 16.0
            );
        }
        for (i, t) in targets.iter().enumerate() {
            let y = top + i as f64 * row;
            let name = format!("{}: {} vs {}", t.tier, t.what, t.peer);
            let name = if name.chars().count() > 70 {
                format!("{}...", name.chars().take(67).collect::<String>())
            } else {
                name
            };
            let _ = writeln!(
                s,
                "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" font-size=\"11\">{}</text>",
                left - 8.0,
                y + row * 0.65,
                esc(&name)
            );
            let color = match t.verdict() {
                "PASS" => "#3a9a3a",
                "SHORT" => "#d04040",
                _ => "#bbbbbb",
            };
            match &t.ratio {
                Ok(r) => {
                    let x = px(*r);
                    let _ = writeln!(
                        s,
                        "<rect x=\"{left}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{color}\"><title>{}</title></rect>\n\
                         <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\">{} {}</text>",
                        y + 4.0,
                        (x - left).max(1.0),
                        row - 8.0,
                        esc(&t.by()),
                        x.max(left) + 4.0,
                        y + row * 0.65,
                        show_ratio(*r),
                        t.verdict()
                    );
                }
                Err(e) => {
                    let _ = writeln!(
                        s,
                        "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" fill=\"#777\">{}: {}</text>",
                        left + 4.0,
                        y + row * 0.65,
                        t.verdict(),
                        esc(&e.chars().take(60).collect::<String>())
                    );
                }
            }
            let bx = px(t.bound);
            let _ = writeln!(
                s,
                "<line x1=\"{bx:.1}\" y1=\"{:.1}\" x2=\"{bx:.1}\" y2=\"{:.1}\" stroke=\"black\" stroke-width=\"2\"/>",
                y + 1.0,
                y + row - 1.0
            );
        }
        s.push_str("</svg>\n");
        s
    }
}

// ---- JSON ------------------------------------------------------------------------------------

mod json {
    //! A small JSON reader and writer: enough for the records and heap-inspect's output.

    use std::fmt;

    /// A JSON value; objects keep their keys in order.
    #[derive(Clone, Debug, PartialEq)]
    pub(super) enum Json {
        Null,
        Bool(bool),
        Num(f64),
        Str(String),
        Arr(Vec<Json>),
        Obj(Vec<(String, Json)>),
    }

    impl Json {
        pub(super) fn str(s: &str) -> Json {
            Json::Str(s.to_string())
        }

        pub(super) fn object<const N: usize>(fields: [(&str, Json); N]) -> Json {
            Json::Obj(
                fields
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v))
                    .collect(),
            )
        }

        pub(super) fn get(&self, key: &str) -> Option<&Json> {
            match self {
                Json::Obj(fields) => fields.iter().find(|(k, _)| k == key).map(|(_, v)| v),
                _ => None,
            }
        }

        pub(super) fn path(&self, keys: &[&str]) -> Option<&Json> {
            keys.iter().try_fold(self, |j, k| j.get(k))
        }

        pub(super) fn set(&mut self, key: &str, value: Json) {
            if let Json::Obj(fields) = self {
                match fields.iter_mut().find(|(k, _)| k == key) {
                    Some((_, v)) => *v = value,
                    None => fields.push((key.to_string(), value)),
                }
            }
        }

        pub(super) fn as_f64(&self) -> Option<f64> {
            match self {
                Json::Num(v) => Some(*v),
                _ => None,
            }
        }

        pub(super) fn as_bool(&self) -> Option<bool> {
            match self {
                Json::Bool(b) => Some(*b),
                _ => None,
            }
        }

        pub(super) fn as_str(&self) -> Option<&str> {
            match self {
                Json::Str(s) => Some(s),
                _ => None,
            }
        }
    }

    fn write_str(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
        f.write_str("\"")?;
        for c in s.chars() {
            match c {
                '"' => f.write_str("\\\"")?,
                '\\' => f.write_str("\\\\")?,
                '\n' => f.write_str("\\n")?,
                '\r' => f.write_str("\\r")?,
                '\t' => f.write_str("\\t")?,
                c if (c as u32) < 0x20 => write!(f, "\\u{:04x}", c as u32)?,
                c => write!(f, "{c}")?,
            }
        }
        f.write_str("\"")
    }

    impl fmt::Display for Json {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            match self {
                Json::Null => f.write_str("null"),
                Json::Bool(b) => write!(f, "{b}"),
                Json::Num(v) if !v.is_finite() => f.write_str("null"),
                Json::Num(v) if v.fract() == 0.0 && v.abs() < 1e15 => write!(f, "{}", *v as i64),
                Json::Num(v) => write!(f, "{v}"),
                Json::Str(s) => write_str(f, s),
                Json::Arr(items) => {
                    f.write_str("[")?;
                    for (i, v) in items.iter().enumerate() {
                        if i > 0 {
                            f.write_str(",")?;
                        }
                        write!(f, "{v}")?;
                    }
                    f.write_str("]")
                }
                Json::Obj(fields) => {
                    f.write_str("{")?;
                    for (i, (k, v)) in fields.iter().enumerate() {
                        if i > 0 {
                            f.write_str(",")?;
                        }
                        write_str(f, k)?;
                        write!(f, ":{v}")?;
                    }
                    f.write_str("}")
                }
            }
        }
    }

    /// Parses one JSON document.
    pub(super) fn parse(text: &str) -> Result<Json, String> {
        let mut p = Parser {
            s: text.as_bytes(),
            i: 0,
        };
        let v = p.value(0)?;
        p.ws();
        if p.i != p.s.len() {
            return Err(format!("trailing characters at byte {}", p.i));
        }
        Ok(v)
    }

    struct Parser<'a> {
        s: &'a [u8],
        i: usize,
    }

    /// Deeper nesting than any record has is refused rather than recursed into.
    const MAX_DEPTH: usize = 128;

    impl Parser<'_> {
        fn ws(&mut self) {
            while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
                self.i += 1;
            }
        }

        fn err<T>(&self, what: &str) -> Result<T, String> {
            Err(format!("{what} at byte {}", self.i))
        }

        fn eat(&mut self, lit: &str) -> Result<(), String> {
            if self.s[self.i..].starts_with(lit.as_bytes()) {
                self.i += lit.len();
                Ok(())
            } else {
                self.err(&format!("expected {lit}"))
            }
        }

        fn value(&mut self, depth: usize) -> Result<Json, String> {
            if depth > MAX_DEPTH {
                return self.err("nested too deep");
            }
            self.ws();
            match self.s.get(self.i) {
                None => self.err("unexpected end"),
                Some(b'n') => self.eat("null").map(|()| Json::Null),
                Some(b't') => self.eat("true").map(|()| Json::Bool(true)),
                Some(b'f') => self.eat("false").map(|()| Json::Bool(false)),
                Some(b'"') => self.string().map(Json::Str),
                Some(b'[') => {
                    self.i += 1;
                    let mut items = Vec::new();
                    self.ws();
                    if self.s.get(self.i) == Some(&b']') {
                        self.i += 1;
                        return Ok(Json::Arr(items));
                    }
                    loop {
                        items.push(self.value(depth + 1)?);
                        self.ws();
                        match self.s.get(self.i) {
                            Some(b',') => self.i += 1,
                            Some(b']') => {
                                self.i += 1;
                                return Ok(Json::Arr(items));
                            }
                            _ => return self.err("expected , or ]"),
                        }
                    }
                }
                Some(b'{') => {
                    self.i += 1;
                    let mut fields = Vec::new();
                    self.ws();
                    if self.s.get(self.i) == Some(&b'}') {
                        self.i += 1;
                        return Ok(Json::Obj(fields));
                    }
                    loop {
                        self.ws();
                        if self.s.get(self.i) != Some(&b'"') {
                            return self.err("expected a key");
                        }
                        let k = self.string()?;
                        self.ws();
                        self.eat(":")?;
                        let v = self.value(depth + 1)?;
                        fields.push((k, v));
                        self.ws();
                        match self.s.get(self.i) {
                            Some(b',') => self.i += 1,
                            Some(b'}') => {
                                self.i += 1;
                                return Ok(Json::Obj(fields));
                            }
                            _ => return self.err("expected , or }"),
                        }
                    }
                }
                Some(_) => self.number(),
            }
        }

        fn number(&mut self) -> Result<Json, String> {
            let start = self.i;
            while self.i < self.s.len()
                && matches!(
                    self.s[self.i],
                    b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'
                )
            {
                self.i += 1;
            }
            std::str::from_utf8(&self.s[start..self.i])
                .ok()
                .and_then(|t| t.parse::<f64>().ok())
                .map(Json::Num)
                .map_or_else(|| self.err("bad number"), Ok)
        }

        fn hex4(&mut self) -> Result<u32, String> {
            let t = self
                .s
                .get(self.i..self.i + 4)
                .and_then(|b| std::str::from_utf8(b).ok())
                .and_then(|t| u32::from_str_radix(t, 16).ok());
            match t {
                Some(v) => {
                    self.i += 4;
                    Ok(v)
                }
                None => self.err("bad \\u escape"),
            }
        }

        fn string(&mut self) -> Result<String, String> {
            self.i += 1; // the opening quote
            let mut out = String::new();
            loop {
                let start = self.i;
                while self.i < self.s.len() && !matches!(self.s[self.i], b'"' | b'\\') {
                    self.i += 1;
                }
                out.push_str(
                    std::str::from_utf8(&self.s[start..self.i]).map_err(|e| e.to_string())?,
                );
                match self.s.get(self.i) {
                    None => return self.err("unterminated string"),
                    Some(b'"') => {
                        self.i += 1;
                        return Ok(out);
                    }
                    _ => {
                        self.i += 1;
                        let Some(&c) = self.s.get(self.i) else {
                            return self.err("unterminated escape");
                        };
                        self.i += 1;
                        match c {
                            b'"' => out.push('"'),
                            b'\\' => out.push('\\'),
                            b'/' => out.push('/'),
                            b'b' => out.push('\u{8}'),
                            b'f' => out.push('\u{c}'),
                            b'n' => out.push('\n'),
                            b'r' => out.push('\r'),
                            b't' => out.push('\t'),
                            b'u' => {
                                let mut cp = self.hex4()?;
                                if (0xd800..0xdc00).contains(&cp)
                                    && self.s[self.i..].starts_with(b"\\u")
                                {
                                    self.i += 2;
                                    let lo = self.hex4()?;
                                    cp = 0x10000
                                        + ((cp - 0xd800) << 10)
                                        + (lo.wrapping_sub(0xdc00) & 0x3ff);
                                }
                                out.push(char::from_u32(cp).unwrap_or('\u{fffd}'));
                            }
                            _ => return self.err("bad escape"),
                        }
                    }
                }
            }
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn round_trip() {
            let text = r#"{"a":[1,2.5,-3e2,true,false,null],"b":"x\"y\\z\n\u00e9","c":{}}"#;
            let v = parse(text).unwrap();
            assert_eq!(
                v.path(&["a"]).and_then(|a| match a {
                    Json::Arr(items) => items[2].as_f64(),
                    _ => None,
                }),
                Some(-300.0)
            );
            assert_eq!(v.get("b").and_then(Json::as_str), Some("x\"y\\z\né"));
            assert_eq!(parse(&v.to_string()).unwrap(), v);
            assert!(parse("{\"a\":1,}").is_err());
            assert!(parse("[1] x").is_err());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slope_of_a_linear_collector_is_one() {
        let flat = [(1e4, 50.0), (1e5, 50.0), (1e6, 50.0)];
        assert!((slope(&flat).unwrap() - 1.0).abs() < 1e-9);
        let quadratic = [(1e4, 1.0), (1e5, 10.0), (1e6, 100.0)];
        assert!((slope(&quadratic).unwrap() - 2.0).abs() < 1e-9);
    }

    #[test]
    fn verdicts() {
        let t = |ratio: Result<f64, String>, strict, ours_failed| Target {
            tier: "t",
            what: "w".into(),
            peer: "p".into(),
            bound: 0.5,
            strict,
            ratio,
            ours_failed,
            note: String::new(),
        };
        assert_eq!(t(Ok(0.5), false, false).verdict(), "PASS");
        assert_eq!(t(Ok(0.5), true, false).verdict(), "SHORT");
        assert_eq!(t(Ok(0.6), false, false).by(), "20% over the bound");
        assert_eq!(t(Err("x".into()), false, true).verdict(), "SHORT");
        assert_eq!(t(Err("x".into()), false, false).verdict(), "n/a");
        assert_eq!(thousands(10_000_000), "10,000,000");
        assert_eq!(thousands(999), "999");
    }

    #[test]
    fn a_runs_facts_read_back_as_written() {
        let path = std::env::temp_dir().join(format!("xtask-run-facts-{}", std::process::id()));
        let facts = RunFacts {
            timings: vec![("the bench targets".into(), Duration::from_secs(525))],
            load_at_start: Some("0.03 0.60 1.15".into()),
            elapsed: Duration::from_secs(539),
            machine_rows: vec![("date".into(), "2026-11-26 11:00 UTC".into())],
        };
        facts.write(&path).unwrap();
        assert_eq!(RunFacts::read(&path), facts);
        std::fs::remove_file(&path).unwrap();
        assert_eq!(RunFacts::read(&path), RunFacts::default());
    }

    /// One `collect` record at the targets' size, as the bench writes it.
    fn collect_rec(case: &str, imp: &str, metric: &str, ns_per_obj: f64) -> Rec {
        let line = format!(
            r#"{{"bench":"collect","case":"{case}","implementation":"{imp}","metric":"{metric}","n":{},"ns_per_op":{{"median":{ns_per_obj},"min":{ns_per_obj},"max":{ns_per_obj}}},"runs":3,"status":"ok","detail":""}}"#,
            TARGET_N.0
        );
        Rec::read(json::parse(&line).unwrap()).unwrap()
    }

    #[test]
    fn the_live_graphs_targets_are_on_live_touched_and_live_is_explained() {
        let mut recs = Vec::new();
        for (case, imp, ns) in [
            ("live", "pyheap", 0.0045),
            ("live", "dumpster", 0.002),
            ("live", "cpython", 150.0),
            ("live-touched", "pyheap", 40.0),
            ("live-touched", "cpython", 140.0),
            ("live-touched", "rust-cc", 120.0),
        ] {
            recs.push(collect_rec(case, imp, "collect ns/obj", ns));
        }
        let machine = Machine { rows: Vec::new() };
        let report = Report::new(recs, false, machine, Vec::new(), Duration::ZERO);
        let live: Vec<_> = report
            .targets
            .iter()
            .filter(|t| t.what.starts_with("live"))
            .map(|t| (t.what.as_str(), t.verdict()))
            .collect();
        assert_eq!(
            live,
            [
                ("live-touched, 1,000,000 objects, collect", "PASS"),
                (
                    "live-touched, 1,000,000 objects, collect: faster than every Rust peer \
                     that completes",
                    "PASS"
                ),
            ]
        );
        let mut text = String::new();
        report.targets_md(&mut text);
        assert!(
            text.contains("Not a target: `live`, 1,000,000 objects."),
            "{text}"
        );
        assert!(
            text.contains("pyheap 4.5 µs; CPython 3.11 150 ms"),
            "{text}"
        );
        assert!(text.contains("dumpster 2.0 µs"), "{text}");
        assert!(text.contains("gc (not measured)"), "{text}");
    }

    #[test]
    fn figures_under_a_tenth_keep_three_significant_digits() {
        assert_eq!(show_ns(0.004521), "0.00452");
        assert_eq!(show_ns(0.0004588), "0.000459");
        assert_eq!(show_ns(0.05), "0.0500");
        assert_eq!(
            (show_ns(0.0), show_ns(0.25), show_ns(47.31)),
            ("0.00".into(), "0.25".into(), "47.3".into())
        );
    }
}
