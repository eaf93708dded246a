//! Real HMAC and digests with the keys a test gives, so signatures a plugin computes in a
//! unit test are the ones the counterpart would check.

use std::collections::BTreeMap;

use hmac::{Hmac, Mac};
use md5::Md5;
use sha1::Sha1;
use sha2::{Digest, Sha256};

use crate::host::{DigestAlgorithm, HmacAlgorithm, Part};
use crate::signing::Error;

pub(super) fn message(secrets: &BTreeMap<String, Vec<u8>>, parts: &[Part]) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    for part in parts {
        match part {
            Part::Text(t) => out.extend_from_slice(t.as_bytes()),
            Part::Bytes(b) => out.extend_from_slice(b),
            Part::Secret(name) => out.extend_from_slice(secrets.get(name).ok_or_else(|| Error::NotGranted(name.clone()))?),
        }
    }
    Ok(out)
}

pub(super) fn hmac(algorithm: HmacAlgorithm, key: &[u8], message: &[u8]) -> Vec<u8> {
    match algorithm {
        HmacAlgorithm::Sha256 => {
            let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("any key length");
            mac.update(message);
            mac.finalize().into_bytes().to_vec()
        }
        HmacAlgorithm::Sha1 => {
            let mut mac = Hmac::<Sha1>::new_from_slice(key).expect("any key length");
            mac.update(message);
            mac.finalize().into_bytes().to_vec()
        }
    }
}

pub(super) fn digest(algorithm: DigestAlgorithm, message: &[u8]) -> Vec<u8> {
    match algorithm {
        DigestAlgorithm::Sha256 => Sha256::digest(message).to_vec(),
        DigestAlgorithm::Sha1 => Sha1::digest(message).to_vec(),
        DigestAlgorithm::Md5 => Md5::digest(message).to_vec(),
    }
}
