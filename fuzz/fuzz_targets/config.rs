//! The operator's `config.toml` through `Config::parse`, the host's own parser and
//! validator.
//!
//! Checks: no input panics; a config that parses validates again as it stands, and holds
//! what validation promises the rest of the host (addresses that parse, distinct
//! well-formed instance names, mounts that are plain prefixes and never overlap, limits
//! in range, known storage schemes, payment systems that exist).
#![no_main]

// The host crate links wasmtime, far too heavy to build with coverage instrumentation,
// and `config.rs` needs only std, anyhow, serde, toml, url and an HTTP header-name type,
// so the very same source file is compiled here (its `#[cfg(test)]` tests are not).
#[allow(dead_code)]
#[path = "../../host/src/config.rs"]
mod config;

use config::{mounts_overlap, Config, MAX_MEMORY_MB, MAX_REUSE};
use libfuzzer_sys::fuzz_target;
use std::net::SocketAddr;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    // Relative component paths resolve against this crate's folder, so seeds can name
    // `Cargo.toml` as a component file that exists.
    let base = Path::new(env!("CARGO_MANIFEST_DIR"));
    let Ok(config) = Config::parse(text, base) else { return };
    config.validate().expect("a parsed config validates again");
    assert!(config.listen.parse::<SocketAddr>().is_ok());
    assert!(config.admin.listen.parse::<SocketAddr>().is_ok());
    let url = &config.storage.url;
    assert!(["sqlite://", "postgres://", "postgresql://"].iter().any(|s| url.starts_with(s)), "{url}");
    assert!(config.runtime.cache_dir.is_absolute(), "relative paths are resolved");
    for (i, p) in config.plugins.iter().enumerate() {
        assert!(!p.name.is_empty() && p.name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert!(!["balance", "admin"].contains(&p.name.as_str()), "{} is reserved", p.name);
        assert!(p.mount.starts_with('/') && p.mount.len() > 1 && !p.mount.ends_with('/'), "{}", p.mount);
        assert!(!p.mount.contains("//") && !p.mount.contains(['?', '#']), "{}", p.mount);
        assert!(p.component.is_absolute() && p.component.is_file());
        assert!((1..=MAX_MEMORY_MB).contains(&p.limits.memory_mb));
        assert!((1..=600_000).contains(&p.limits.deadline_ms) && p.limits.http_timeout_ms > 0);
        assert!((1..=MAX_REUSE).contains(&p.limits.reuse));
        for secret in p.secrets.values() {
            assert!(secret.env.is_some() != secret.file.is_some());
        }
        for other in &config.plugins[i + 1..] {
            assert_ne!(p.name, other.name);
            assert!(!mounts_overlap(&p.mount, &other.mount), "{} and {}", p.mount, other.mount);
        }
        for system in &p.payment_systems {
            assert!(system == "balance" || config.plugin(system).is_some(), "{system}");
        }
        assert!(config.plugin(&p.name).is_some_and(|found| std::ptr::eq(found, p)));
    }
});
