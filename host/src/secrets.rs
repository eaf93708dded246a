//! Secrets resolved from env vars or files named in config. The bytes live only in
//! host memory: never logged (Debug is redacted), never copied into a plugin's memory.

use std::collections::BTreeMap;
use std::fmt;

use anyhow::{bail, Context, Result};
use base64::Engine as _;

use crate::config::{SecretEncoding, SecretRef};

/// Key bytes of one secret.
#[derive(Clone)]
pub struct Secret(Vec<u8>);

impl Secret {
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// An instance's secrets by name.
#[derive(Clone, Default, Debug)]
pub struct Secrets(BTreeMap<String, Secret>);

/// Same names and bytes: a config reload keeps an instance whose secrets did not change
/// (a rotated secret file makes it reload).
impl PartialEq for Secrets {
    fn eq(&self, other: &Self) -> bool {
        self.0.len() == other.0.len() && self.0.iter().zip(other.0.iter()).all(|((a, x), (b, y))| a == b && x.0 == y.0)
    }
}

impl Secrets {
    /// Reads every secret of an instance; the error names the instance, the secret and the fix.
    pub fn resolve(instance: &str, refs: &BTreeMap<String, SecretRef>) -> Result<Self> {
        let mut out = BTreeMap::new();
        for (name, r) in refs {
            let secret = resolve_one(r)
                .with_context(|| format!("plugin `{instance}`: secret `{name}`"))?;
            out.insert(name.clone(), secret);
        }
        Ok(Self(out))
    }

    pub fn get(&self, name: &str) -> Option<&Secret> {
        self.0.get(name)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }

    /// Whether any secret's text occurs in `text` (to keep secrets out of answers).
    pub fn any_in(&self, text: &[u8]) -> bool {
        self.0
            .values()
            .filter(|s| s.0.len() >= 4)
            .any(|s| text.windows(s.0.len()).any(|w| w == s.0.as_slice()))
    }
}

fn resolve_one(r: &SecretRef) -> Result<Secret> {
    let text = match (&r.env, &r.file) {
        (Some(var), None) => match std::env::var(var) {
            Ok(v) if !v.is_empty() => v,
            Ok(_) => bail!("environment variable `{var}` is empty; set it to the key"),
            Err(_) => bail!("environment variable `{var}` is not set; export it before starting payhost"),
        },
        (None, Some(path)) => {
            let v = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read secret file {}", path.display()))?;
            let v = v.trim_end_matches(['\n', '\r']).to_string();
            if v.is_empty() {
                bail!("secret file {} is empty", path.display());
            }
            v
        }
        _ => bail!("give exactly one of `env` or `file`"),
    };
    let bytes = match r.encoding {
        SecretEncoding::Utf8 => text.into_bytes(),
        SecretEncoding::Base64 => base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .context("the value is not valid base64 (encoding = \"base64\")")?,
        SecretEncoding::Hex => hex::decode(text.trim())
            .context("the value is not valid hex (encoding = \"hex\")")?,
    };
    Ok(Secret(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_bytes() {
        let s = Secret(b"hunter2".to_vec());
        assert_eq!(format!("{s:?}"), "Secret(<redacted>)");
    }

    #[test]
    fn missing_env_var_is_named() {
        let mut refs = BTreeMap::new();
        refs.insert(
            "k".to_string(),
            SecretRef { env: Some("PAYHOST_TEST_SURELY_UNSET".into()), file: None, encoding: SecretEncoding::Utf8 },
        );
        let err = format!("{:#}", Secrets::resolve("webtv", &refs).unwrap_err());
        assert!(err.contains("plugin `webtv`: secret `k`"), "{err}");
        assert!(err.contains("PAYHOST_TEST_SURELY_UNSET"), "{err}");
    }
}
