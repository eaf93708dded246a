//! `payhost plugin new`: writes a plugin crate that lives outside this repository's
//! workspace, builds to a component with one command and tests natively.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::runtime::component::WorldKind;

/// Where the new crate gets `payhost-sdk` from.
#[derive(Debug, Clone)]
pub enum SdkSource {
    Path(PathBuf),
    Git { url: String, rev: Option<String> },
}

impl SdkSource {
    /// The SDK in the source tree this binary was built from, when it is still there.
    pub fn from_build_tree() -> Option<Self> {
        let sdk = Path::new(env!("CARGO_MANIFEST_DIR")).parent()?.join("plugins/sdk");
        sdk.join("Cargo.toml").is_file().then_some(Self::Path(sdk))
    }

    fn dependency(&self) -> String {
        match self {
            Self::Path(p) => format!("payhost-sdk = {{ path = {:?} }}", p.display().to_string()),
            Self::Git { url, rev: Some(rev) } => format!("payhost-sdk = {{ git = {url:?}, rev = {rev:?} }}"),
            Self::Git { url, rev: None } => format!("payhost-sdk = {{ git = {url:?} }}"),
        }
    }

    fn how(&self) -> &'static str {
        match self {
            Self::Path(_) => "by path, on a checkout of the payhost repository",
            Self::Git { .. } => "by git, from the payhost repository",
        }
    }
}

const COMMON: &[(&str, &str)] = &[
    ("Cargo.toml", include_str!("template/common/Cargo.toml")),
    (".cargo/config.toml", include_str!("template/common/cargo-config.toml")),
    (".gitignore", include_str!("template/common/gitignore")),
    ("README.md", include_str!("template/common/README.md")),
];
const PROVIDER: &[(&str, &str)] = &[
    ("src/lib.rs", include_str!("template/provider/lib.rs")),
    ("payhost.sample.toml", include_str!("template/provider/payhost.sample.toml")),
];
const PAYMENT_SYSTEM: &[(&str, &str)] = &[
    ("src/lib.rs", include_str!("template/payment-system/lib.rs")),
    ("payhost.sample.toml", include_str!("template/payment-system/payhost.sample.toml")),
];

/// Writes the crate `name` into `dir/name` (which must not exist); returns its folder.
pub fn new_plugin(name: &str, world: WorldKind, dir: &Path, sdk: &SdkSource) -> Result<PathBuf> {
    check_name(name)?;
    let root = dir.join(name);
    if root.exists() {
        bail!("{} already exists; choose another name or --dir", root.display());
    }
    let lib = name.replace('-', "_");
    let (files, world_name) = match world {
        WorldKind::Provider => (PROVIDER, "provider"),
        WorldKind::PaymentSystem => (PAYMENT_SYSTEM, "payment-system"),
    };
    let current = crate::wit::WIT_VERSION;
    let fill = |text: &str| {
        text.replace("{{name}}", name)
            .replace("{{lib}}", &lib)
            .replace("{{ENV}}", &lib.to_ascii_uppercase())
            .replace("{{world}}", world_name)
            .replace("{{wit}}", current)
            .replace("{{sdk_how}}", sdk.how())
            .replace("{{sdk}}", &sdk.dependency())
    };
    for (path, text) in COMMON.iter().chain(files) {
        let file = root.join(path);
        std::fs::create_dir_all(file.parent().expect("files sit in a folder"))
            .with_context(|| format!("cannot create {}", file.parent().unwrap_or(&root).display()))?;
        std::fs::write(&file, fill(text)).with_context(|| format!("cannot write {}", file.display()))?;
    }
    Ok(root)
}

/// A crate name that is also a fine instance name and mount (`/name`).
fn check_name(name: &str) -> Result<()> {
    let ok = name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if !ok {
        bail!("plugin name `{name}` must start with a lowercase letter and hold only a-z, 0-9, `-` and `_`");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_a_crate_with_every_placeholder_filled() {
        let dir = tempfile::tempdir().unwrap();
        let sdk = SdkSource::Git { url: "https://example.invalid/payhost.git".into(), rev: Some("v0.2.0".into()) };
        for (name, world) in [("acme-pay", WorldKind::Provider), ("acme-cards", WorldKind::PaymentSystem)] {
            let root = new_plugin(name, world, dir.path(), &sdk).unwrap();
            for (path, _) in COMMON.iter().chain(PROVIDER) {
                let text = std::fs::read_to_string(root.join(path)).unwrap();
                assert!(!text.contains("{{"), "{path} keeps a placeholder");
            }
            let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
            assert!(manifest.contains(r#"payhost-sdk = { git = "https://example.invalid/payhost.git", rev = "v0.2.0" }"#), "{manifest}");
            assert!(manifest.contains("[workspace]"));
            let sample = std::fs::read_to_string(root.join("payhost.sample.toml")).unwrap();
            assert!(sample.contains(&format!("{}.wasm", name.replace('-', "_"))));
            let parsed: crate::config::Config = toml::from_str(&sample).unwrap();
            assert_eq!(parsed.plugins[0].mount, format!("/{name}"));
        }
        assert!(new_plugin("acme-pay", WorldKind::Provider, dir.path(), &sdk).unwrap_err().to_string().contains("already exists"));
        assert!(new_plugin("Bad Name", WorldKind::Provider, dir.path(), &sdk).is_err());
    }
}
