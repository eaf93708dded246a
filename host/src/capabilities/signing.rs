//! `signing`: HMACs and digests keyed by secrets the plugin names but never sees.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::wit::signing::{DigestAlgorithm, Error, Host, HmacAlgorithm, Part};
use super::state::PluginState;
use crate::secrets::Secrets;

impl Host for PluginState {
    fn hmac(&mut self, algorithm: HmacAlgorithm, key: String, message: Vec<Part>) -> Result<Vec<u8>, Error> {
        hmac(&self.ctx.secrets, algorithm, &key, &message)
    }

    fn verify_hmac(&mut self, algorithm: HmacAlgorithm, key: String, message: Vec<Part>, expected: Vec<u8>) -> Result<bool, Error> {
        let actual = hmac(&self.ctx.secrets, algorithm, &key, &message)?;
        Ok(constant_time_eq(&actual, &expected))
    }

    fn digest(&mut self, algorithm: DigestAlgorithm, message: Vec<Part>) -> Result<Vec<u8>, Error> {
        digest(&self.ctx.secrets, algorithm, &message)
    }

    fn verify_digest(&mut self, algorithm: DigestAlgorithm, message: Vec<Part>, expected: Vec<u8>) -> Result<bool, Error> {
        let actual = digest(&self.ctx.secrets, algorithm, &message)?;
        Ok(constant_time_eq(&actual, &expected))
    }

    fn equal(&mut self, a: Vec<u8>, b: Vec<u8>) -> bool {
        constant_time_eq(&a, &b)
    }

    fn to_hex(&mut self, data: Vec<u8>) -> String {
        hex::encode(data)
    }

    fn from_hex(&mut self, text: String) -> Result<Vec<u8>, Error> {
        hex::decode(text.trim()).map_err(|e| Error::InvalidEncoding(format!("hex: {e}")))
    }

    fn base64_encode(&mut self, data: Vec<u8>) -> String {
        base64::engine::general_purpose::STANDARD.encode(data)
    }

    fn base64_decode(&mut self, text: String) -> Result<Vec<u8>, Error> {
        base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|e| Error::InvalidEncoding(format!("base64: {e}")))
    }
}

/// Equal length and bytes, in time independent of where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// Concatenates the parts, resolving secret parts. Secret bytes stay in host memory.
fn message_bytes(secrets: &Secrets, parts: &[Part]) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    for part in parts {
        match part {
            Part::Text(t) => out.extend_from_slice(t.as_bytes()),
            Part::Bytes(b) => out.extend_from_slice(b),
            Part::Secret(name) => out.extend_from_slice(secret(secrets, name)?),
        }
    }
    Ok(out)
}

fn secret<'a>(secrets: &'a Secrets, name: &str) -> Result<&'a [u8], Error> {
    secrets
        .get(name)
        .map(|s| s.bytes())
        .ok_or_else(|| Error::NotGranted(name.to_string()))
}

pub fn hmac(secrets: &Secrets, algorithm: HmacAlgorithm, key: &str, message: &[Part]) -> Result<Vec<u8>, Error> {
    let key = secret(secrets, key)?;
    let data = message_bytes(secrets, message)?;
    Ok(match algorithm {
        HmacAlgorithm::Sha256 => {
            let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
            mac.update(&data);
            mac.finalize().into_bytes().to_vec()
        }
        HmacAlgorithm::Sha1 => {
            let mut mac = Hmac::<Sha1>::new_from_slice(key).expect("HMAC takes keys of any length");
            mac.update(&data);
            mac.finalize().into_bytes().to_vec()
        }
    })
}

pub fn digest(secrets: &Secrets, algorithm: DigestAlgorithm, message: &[Part]) -> Result<Vec<u8>, Error> {
    let data = message_bytes(secrets, message)?;
    Ok(match algorithm {
        DigestAlgorithm::Sha256 => Sha256::digest(&data).to_vec(),
        DigestAlgorithm::Sha1 => Sha1::digest(&data).to_vec(),
        DigestAlgorithm::Md5 => md5::Md5::digest(&data).to_vec(),
    })
}
