//! Loading a component: read, hash, compile once (or load the cached compilation keyed
//! by content hash and engine settings), and check which world and WIT version it was
//! built against before anything instantiates it.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::Engine;

pub use crate::wit::{Contract, WIT_PACKAGE};

/// Which world a component implements, judged by its exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum WorldKind {
    Provider,
    PaymentSystem,
}

/// A compiled component and what is known about it.
#[derive(Clone)]
pub struct LoadedComponent {
    pub component: Component,
    /// Hex SHA-256 of the `.wasm` bytes.
    pub hash: String,
    pub wit_version: String,
    /// The served contract that version runs on.
    pub contract: Contract,
    pub world: WorldKind,
    pub path: PathBuf,
    /// Whether the compilation came from the on-disk cache.
    pub from_cache: bool,
}

/// Reads and compiles `path`, using `cache_dir` for compiled artifacts.
pub fn load(engine: &Engine, path: &Path, cache_dir: &Path) -> Result<LoadedComponent> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read component {}", path.display()))?;
    let hash = hex::encode(Sha256::digest(&bytes));
    let cache_file = cache_dir.join(format!("{hash}-{}.cwasm", engine_fingerprint(engine)));
    let (component, from_cache) = match load_cached(engine, &cache_file) {
        Some(c) => (c, true),
        None => {
            let component = Component::new(engine, &bytes)
                .map_err(anyhow::Error::from)
                .with_context(|| format!("{} is not a valid WebAssembly component", path.display()))?;
            store_cached(&component, cache_dir, &cache_file);
            (component, false)
        }
    };
    let (world, wit_version, contract) = inspect(engine, &component)?;
    Ok(LoadedComponent { component, hash, wit_version, contract, world, path: path.to_path_buf(), from_cache })
}

/// Hex SHA-256 of a component file, to tell whether it changed.
pub fn file_hash(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read component {}", path.display()))?;
    Ok(hex::encode(Sha256::digest(&bytes)))
}

fn engine_fingerprint(engine: &Engine) -> String {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut h);
    format!("{:016x}", h.finish())
}

fn load_cached(engine: &Engine, file: &Path) -> Option<Component> {
    if !file.is_file() {
        return None;
    }
    // SAFETY: the file was written by `Component::serialize` of this engine
    // configuration (its name carries the engine's compatibility hash) into the cache
    // directory the operator gave us; wasmtime also checks the header and refuses
    // artifacts from another engine version or configuration.
    match unsafe { Component::deserialize_file(engine, file) } {
        Ok(c) => Some(c),
        Err(e) => {
            tracing::warn!(file = %file.display(), error = %e, "ignoring unusable cached compilation");
            None
        }
    }
}

fn store_cached(component: &Component, dir: &Path, file: &Path) {
    let result = (|| -> Result<()> {
        std::fs::create_dir_all(dir)?;
        let bytes = component.serialize()?;
        // Write then rename, so a crash never leaves a half-written artifact behind.
        let tmp = file.with_extension(format!("tmp{}", std::process::id()));
        std::fs::write(&tmp, bytes)?;
        std::fs::rename(&tmp, file)?;
        Ok(())
    })();
    if let Err(e) = result {
        tracing::warn!(dir = %dir.display(), error = %e, "could not cache compiled component; it will be compiled again next start");
    }
}

/// Finds the world and the `payhost:gateway` version from the component's interface names.
fn inspect(engine: &Engine, component: &Component) -> Result<(WorldKind, String, Contract)> {
    let ty = component.component_type();
    let mut versions = Vec::new();
    let mut world = None;
    for (name, _) in ty.imports(engine).chain(ty.exports(engine)) {
        let Some(rest) = name.strip_prefix(&format!("{WIT_PACKAGE}/")) else { continue };
        let (iface, version) = rest.split_once('@').unwrap_or((rest, ""));
        versions.push(version.to_string());
        match iface {
            "plugin" => world = Some(WorldKind::Provider),
            "processor" => world = Some(WorldKind::PaymentSystem),
            _ => {}
        }
    }
    let Some(version) = versions.first().cloned() else {
        bail!("the component uses no {WIT_PACKAGE} interface: it is not a payhost plugin");
    };
    if versions.iter().any(|v| v != &version) {
        bail!("the component mixes several {WIT_PACKAGE} versions ({versions:?}); rebuild it against one");
    }
    let Some(contract) = Contract::for_version(&version) else {
        bail!("{}", Contract::unsupported(&version));
    };
    let world = world.with_context(|| {
        format!("the component exports neither {WIT_PACKAGE}/plugin nor {WIT_PACKAGE}/processor")
    })?;
    Ok((world, version, contract))
}
