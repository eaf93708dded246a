//! Builds the plugins (for `wasm32-wasip2`) and the host binary once per test process,
//! with the same cargo and target directory the tests were built with.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ sits in the workspace").to_path_buf()
}

pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|p| if p.is_relative() { workspace_root().join(p) } else { p })
        .unwrap_or_else(|| workspace_root().join("target"))
}

fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(workspace_root());
    cmd
}

fn build_all() {
    // `cargo xtask test` builds the plugins before running `cargo test --workspace`, which
    // builds the payhost binary itself (with the workspace's test feature set); building
    // it here again with `-p payhost` would unify features differently and recompile the
    // whole dependency tree.
    if std::env::var_os("PAYHOST_TEST_PREBUILT").is_some() {
        return;
    }
    // `cargo xtask build-plugins` knows which crates are plugins and installs the target.
    let status = cargo().args(["xtask", "build-plugins"]).status().expect("run cargo xtask build-plugins");
    assert!(status.success(), "building the plugins failed (see the cargo output above)");
    let status = cargo().args(["build", "--quiet", "-p", "payhost", "--bin", "payhost"]).status().expect("run cargo to build payhost");
    assert!(status.success(), "building the payhost binary failed");
}

static BUILT: OnceLock<()> = OnceLock::new();

fn ensure_built() {
    BUILT.get_or_init(build_all);
}

/// Path of a plugin's component, e.g. `plugin_wasm("webtv")` for `plugins/webtv`.
pub fn plugin_wasm(name: &str) -> PathBuf {
    ensure_built();
    let file = format!("payhost_plugin_{}.wasm", name.replace('-', "_"));
    let path = target_dir().join("wasm32-wasip2").join("plugin").join(file);
    assert!(path.is_file(), "plugin component {} was not built", path.display());
    path
}

/// Path of the `payhost` binary: the debug build, or the one `PAYHOST_TEST_BINARY` names
/// (a release build, for the ignored measurements).
pub fn payhost_binary() -> PathBuf {
    ensure_built();
    let path = std::env::var_os("PAYHOST_TEST_BINARY").map(PathBuf::from).unwrap_or_else(|| target_dir().join("debug").join("payhost"));
    assert!(path.is_file(), "payhost binary {} was not built", path.display());
    path
}
