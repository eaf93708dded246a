//! Project tasks that need more than one cargo command: installing the wasm target,
//! building the plugins for it, running the server, running every test, benchmarks,
//! fuzzing.
//!
//! `cargo xtask run` and `cargo xtask test` are the two commands the README opens with;
//! each does every install step itself, so a fresh machine needs only a Rust toolchain.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{bail, Context, Result};

mod contract_doc;
mod fuzz;

const WASM_TARGET: &str = "wasm32-wasip2";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("setup") => setup(),
        Some("build-plugins") => setup().and_then(|_| build_plugins()),
        Some("run") => run(&args[1..]),
        Some("test") => test(&args[1..]),
        Some("bench") => bench(&args[1..]),
        Some("contract-doc") => contract_doc(),
        Some("fuzz") => fuzz::by_hand(&args[1..]),
        _ => {
            eprintln!(
                "usage: cargo xtask <command>\n\n\
                 setup          install the {WASM_TARGET} target\n\
                 build-plugins  build every plugin component (the `plugin` profile)\n\
                 run [ARGS]     set up, build, and serve config.toml (ARGS go to `payhost serve`)\n\
                 test [ARGS]    set up, build the plugins, run every test (ARGS go to `cargo test`), then fuzz\n\
                                every target for 30 s\n\
                 bench [ARGS]   set up, build, and run `payhost bench` (ARGS go to it)\n\
                 contract-doc   regenerate docs/contract.md from the WIT doc comments\n\
                 fuzz [TARGET] [SECONDS]  run the fuzz targets in fuzz/ (default: all, 30 s each)"
            );
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask sits in the workspace").to_path_buf()
}

fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(root());
    cmd
}

fn status(cmd: &mut Command) -> Result<()> {
    let shown = format!("{cmd:?}");
    let status = cmd.status().with_context(|| format!("cannot run {shown}"))?;
    if !status.success() {
        bail!("{shown} failed ({status})");
    }
    Ok(())
}

/// Installs the wasm target through rustup when it is missing.
fn setup() -> Result<()> {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .current_dir(root())
        .output()
        .context("rustup is needed to install the wasm32-wasip2 target (https://rustup.rs)")?;
    let list = String::from_utf8_lossy(&installed.stdout);
    if !list.lines().any(|l| l.trim() == WASM_TARGET) {
        eprintln!("xtask: installing the {WASM_TARGET} target");
        status(Command::new("rustup").args(["target", "add", WASM_TARGET]).current_dir(root()))?;
    }
    Ok(())
}

/// Plugin crates: every `plugins/*` (and test-only `tests/plugins/*`) that builds a `cdylib`.
fn plugin_packages() -> Result<Vec<String>> {
    let mut names = Vec::new();
    let dirs = ["plugins", "tests/plugins"]
        .iter()
        .flat_map(|d| std::fs::read_dir(root().join(d)).into_iter().flatten())
        .filter_map(|e| e.ok().map(|e| e.path()));
    for dir in dirs {
        let Ok(manifest) = std::fs::read_to_string(dir.join("Cargo.toml")) else { continue };
        if !manifest.contains("cdylib") {
            continue;
        }
        if let Some(name) = manifest
            .lines()
            .find(|l| l.trim_start().starts_with("name"))
            .and_then(|l| l.split('"').nth(1))
        {
            names.push(name.to_string());
        }
    }
    names.sort();
    Ok(names)
}

fn build_plugins() -> Result<()> {
    let mut cmd = cargo();
    cmd.args(["build", "--target", WASM_TARGET, "--profile", "plugin"]);
    for p in plugin_packages()? {
        cmd.args(["-p", &p]);
    }
    status(&mut cmd)
}

fn run(args: &[String]) -> Result<()> {
    setup()?;
    build_plugins()?;
    status(cargo().args(["build", "--release", "-p", "payhost", "--bin", "payhost"]))?;
    let mut cmd = Command::new(root().join("target/release/payhost"));
    cmd.current_dir(root()).arg("serve");
    if !args.iter().any(|a| a == "--config") {
        cmd.args(["--config", "config.toml"]);
    }
    cmd.args(args);
    if std::env::var_os("PAYHOST_ADMIN_TOKEN").is_none() {
        let token = format!("{:032x}", random_u128());
        eprintln!("xtask: PAYHOST_ADMIN_TOKEN was not set; this run's admin token is {token}");
        cmd.env("PAYHOST_ADMIN_TOKEN", token);
    }
    status(&mut cmd)
}

fn test(args: &[String]) -> Result<()> {
    setup()?;
    browser_tools()?;
    build_plugins()?;
    // Plugins' pure logic is tested natively; the host, the e2e suite and every plugin
    // crate run in one cargo invocation so the workspace compiles once.
    let mut cmd = cargo();
    cmd.args(["test", "--workspace", "--no-fail-fast"]);
    cmd.args(args);
    // The plugins are built above and `cargo test --workspace` builds the payhost binary:
    // the e2e harness must not rebuild them with another feature set.
    cmd.env("PAYHOST_TEST_PREBUILT", "1");
    status(&mut cmd)?;
    fuzz::all_bounded()
}

/// Debian packages the console's browser tests drive: Chromium and its WebDriver.
const BROWSER_PACKAGES: [&str; 2] = ["chromium", "chromium-driver"];
const BROWSER_TOOLS: [&str; 2] = ["/usr/bin/chromium", "/usr/bin/chromedriver"];

/// Installs Chromium and chromedriver from Debian's packages when they are missing
/// (CI starts from a clean machine); does nothing when both are there.
fn browser_tools() -> Result<()> {
    if BROWSER_TOOLS.iter().all(|t| Path::new(t).exists()) {
        return Ok(());
    }
    eprintln!("xtask: installing {} for the console's browser tests", BROWSER_PACKAGES.join(" and "));
    let apt = |args: &[&str]| -> Result<()> {
        let mut cmd = Command::new("apt-get");
        // Waits for another apt run to finish instead of failing on its lock.
        cmd.args(["-o", "DPkg::Lock::Timeout=600"]).args(args).env("DEBIAN_FRONTEND", "noninteractive");
        status(&mut cmd).context("installing the browser tests' Debian packages needs apt-get as root")
    };
    apt(&["update", "-q"])?;
    let mut install = vec!["install", "-y", "-q"];
    install.extend(BROWSER_PACKAGES);
    apt(&install)?;
    for tool in BROWSER_TOOLS {
        if !Path::new(tool).exists() {
            bail!("{tool} is still missing after installing {}", BROWSER_PACKAGES.join(" "));
        }
    }
    Ok(())
}

fn bench(args: &[String]) -> Result<()> {
    setup()?;
    build_plugins()?;
    status(cargo().args(["build", "--release", "-p", "payhost", "--bin", "payhost"]))?;
    let mut cmd = Command::new(root().join("target/release/payhost"));
    cmd.current_dir(root()).arg("bench").args(args);
    status(&mut cmd)
}

fn contract_doc() -> Result<()> {
    let text = contract_doc::render(&root().join("wit"))?;
    std::fs::write(root().join("docs/contract.md"), text).context("cannot write docs/contract.md")
}

/// Randomness without a dependency: the OS's.
fn random_u128() -> u128 {
    use std::io::Read;
    let mut buf = [0u8; 16];
    match std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut buf)) {
        Ok(()) => u128::from_le_bytes(buf),
        Err(_) => std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0),
    }
}
