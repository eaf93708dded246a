//! Schemathesis, the property-based API tester, installed from PyPI into a virtualenv
//! under `target/` the first time a test needs it (so the README's test command is the
//! whole install step), pinned to one version.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

pub const VERSION: &str = "4.32.5";

/// One install at a time across the tests of this process.
static INSTALL: Mutex<()> = Mutex::new(());

fn venv() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace").join("target").join(format!("schemathesis-{VERSION}"))
}

/// The `schemathesis` executable, installing it first when missing.
pub fn executable() -> PathBuf {
    let _guard = INSTALL.lock().unwrap_or_else(|p| p.into_inner());
    let venv = venv();
    let exe = venv.join("bin").join("schemathesis");
    if exe.is_file() {
        return exe;
    }
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let run = |cmd: &mut Command| {
        let shown = format!("{cmd:?}");
        let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {shown}: {e} (python3 with venv is needed)"));
        assert!(out.status.success(), "{shown} failed:\n{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    };
    run(Command::new(&python).arg("-m").arg("venv").arg(&venv));
    run(Command::new(venv.join("bin").join("pip")).args(["install", "--quiet", "--disable-pip-version-check", &format!("schemathesis=={VERSION}")]));
    assert!(exe.is_file(), "pip installed schemathesis but {} is missing", exe.display());
    exe
}
