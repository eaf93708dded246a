//! The fuzz targets in `fuzz/` (one per parser of untrusted bytes): `cargo xtask fuzz
//! [TARGET] [SECONDS]` by hand, and a bounded run of every target at the end of `cargo
//! xtask test`, so CI fails when a parser panics or breaks a checked invariant.
//!
//! Only stable Rust is available, so the targets build without a sanitizer (`-s none`:
//! AddressSanitizer needs nightly); `-a` keeps debug assertions and overflow checks on,
//! which is what turns a silently wrapping parser into a finding. Each run writes what it
//! discovers to a scratch corpus under `fuzz/target/`, reading the committed seeds beside
//! it, so the committed corpora stay the curated seed set.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use anyhow::{bail, Context, Result};

use crate::{root, status};

/// One target per parser family; each file in `fuzz/fuzz_targets/` says what it checks.
pub const TARGETS: [&str; 6] = ["query", "php", "platform24", "stripe", "netflix", "config"];

/// Pinned so a clean clone builds with the cargo-fuzz these targets were written for.
const CARGO_FUZZ_VERSION: &str = "0.13.2";

/// Seconds per target in `cargo xtask test`: six targets, two at a time, take about
/// a minute and a half after the build.
pub const CI_SECONDS: u64 = 30;

/// A single input slower than this is reported as a hang.
const INPUT_TIMEOUT_SECONDS: u64 = 10;

/// `cargo xtask fuzz [TARGET] [SECONDS]`: one target (or all) for SECONDS each (default
/// `CI_SECONDS`).
pub fn by_hand(args: &[String]) -> Result<()> {
    let (targets, seconds) = match args {
        [] => (TARGETS.to_vec(), CI_SECONDS),
        [one] if one.parse::<u64>().is_ok() => (TARGETS.to_vec(), one.parse()?),
        [target] => (vec![known(target)?], CI_SECONDS),
        [target, seconds] => {
            let seconds = seconds.parse().with_context(|| format!("SECONDS `{seconds}` is not a number"))?;
            (vec![known(target)?], seconds)
        }
        _ => bail!("usage: cargo xtask fuzz [TARGET] [SECONDS] (targets: {})", TARGETS.join(", ")),
    };
    fuzz(&targets, seconds)
}

/// The step `cargo xtask test` ends with: every target for `CI_SECONDS`.
pub fn all_bounded() -> Result<()> {
    fuzz(&TARGETS, CI_SECONDS)
}

fn known(target: &str) -> Result<&'static str> {
    TARGETS
        .iter()
        .copied()
        .find(|t| *t == target)
        .with_context(|| format!("no fuzz target `{target}` (targets: {})", TARGETS.join(", ")))
}

fn fuzz(targets: &[&str], seconds: u64) -> Result<()> {
    let started = Instant::now();
    install_cargo_fuzz()?;
    let build = Instant::now();
    status(&mut cargo_fuzz("build"))?;
    eprintln!("xtask: fuzz targets built in {:.0} s", build.elapsed().as_secs_f64());
    let failed = run_all(targets, seconds);
    eprintln!("xtask: fuzz step took {:.0} s", started.elapsed().as_secs_f64());
    if !failed.is_empty() {
        bail!(
            "fuzz targets failed: {} (the crashing input is under fuzz/artifacts/; replay it with \
             `cargo fuzz run -s none -a TARGET fuzz/artifacts/TARGET/crash-...`)",
            failed.join(", ")
        );
    }
    Ok(())
}

/// Runs the targets, as many at once as there are cores (each fuzzer is one process on
/// one core: on the 2-core CI machine the step takes half the time), and names those
/// that failed, in `targets` order.
fn run_all<'a>(targets: &[&'a str], seconds: u64) -> Vec<&'a str> {
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, targets.len().max(1));
    let next = AtomicUsize::new(0);
    let failed = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                while let Some(&target) = targets.get(next.fetch_add(1, Ordering::SeqCst)) {
                    match run(target, seconds) {
                        Ok(stats) => eprintln!("xtask: fuzz {target}: {stats}"),
                        Err(e) => {
                            eprintln!("xtask: fuzz {target} FAILED: {e:#}");
                            failed.lock().unwrap_or_else(|e| e.into_inner()).push(target);
                        }
                    }
                }
            });
        }
    });
    let failed = failed.into_inner().unwrap_or_else(|e| e.into_inner());
    targets.iter().copied().filter(|t| failed.contains(t)).collect()
}

/// `cargo install` of the pinned cargo-fuzz unless that version is already there.
fn install_cargo_fuzz() -> Result<()> {
    let installed = Command::new(cargo_bin())
        .args(["fuzz", "--version"])
        .stderr(Stdio::null())
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    if installed == format!("cargo-fuzz {CARGO_FUZZ_VERSION}") {
        return Ok(());
    }
    eprintln!("xtask: installing cargo-fuzz {CARGO_FUZZ_VERSION} (found: {installed:?})");
    status(Command::new(cargo_bin()).args(["install", "cargo-fuzz", "--locked", "--version", CARGO_FUZZ_VERSION]))
}

fn cargo_bin() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

/// `cargo fuzz SUBCOMMAND -s none -a` in the repository root (it finds `fuzz/` itself).
fn cargo_fuzz(subcommand: &str) -> Command {
    let mut cmd = Command::new(cargo_bin());
    cmd.current_dir(root()).args(["fuzz", subcommand, "--sanitizer", "none", "--debug-assertions"]);
    cmd
}

/// Runs one target for `seconds`; its libFuzzer output goes to a log file, and the
/// summary (or the log's end, on a crash) to the terminal.
fn run(target: &str, seconds: u64) -> Result<String> {
    let scratch = root().join("fuzz/target/corpus").join(target);
    std::fs::create_dir_all(&scratch).with_context(|| format!("cannot create {}", scratch.display()))?;
    let seeds = root().join("fuzz/corpus").join(target);
    let log_path = root().join("fuzz/target/logs").join(format!("{target}.log"));
    std::fs::create_dir_all(log_path.parent().expect("a log folder")).context("cannot create fuzz/target/logs")?;
    let log = std::fs::File::create(&log_path).with_context(|| format!("cannot create {}", log_path.display()))?;
    let mut cmd = cargo_fuzz("run");
    cmd.arg(target)
        .arg(&scratch)
        .arg(&seeds)
        .arg("--")
        .arg(format!("-max_total_time={seconds}"))
        .arg(format!("-timeout={INPUT_TIMEOUT_SECONDS}"))
        .arg("-print_final_stats=1")
        .stdout(log.try_clone()?)
        .stderr(log);
    let outcome = cmd.status().with_context(|| format!("cannot run cargo fuzz run {target}"))?;
    let text = std::fs::read_to_string(&log_path).unwrap_or_default();
    if !outcome.success() {
        let tail: Vec<&str> = text.lines().rev().take(40).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        bail!("{outcome}; the end of {}:\n{}", shown(&log_path), tail.join("\n"));
    }
    Ok(summary(&text, &scratch))
}

/// `N runs, X exec/s, K inputs in the scratch corpus` from libFuzzer's final statistics.
fn summary(log: &str, scratch: &Path) -> String {
    let stat = |name: &str| {
        log.lines()
            .find_map(|l| l.strip_prefix(&format!("stat::{name}:")))
            .map(|v| v.trim().to_string())
            .unwrap_or_else(|| "?".into())
    };
    let inputs = std::fs::read_dir(scratch).map(|d| d.count()).unwrap_or(0);
    format!(
        "{} runs, {} exec/s, {} new inputs this run, {inputs} in {}",
        stat("number_of_executed_units"),
        stat("average_exec_per_sec"),
        stat("new_units_added"),
        shown(scratch)
    )
}

/// A path relative to the repository, for messages.
fn shown(path: &Path) -> String {
    path.strip_prefix(root()).map(PathBuf::from).unwrap_or_else(|_| path.to_path_buf()).display().to_string()
}
