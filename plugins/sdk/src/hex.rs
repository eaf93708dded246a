//! Lowercase hex, native and in wasm alike (plugins' pure logic is unit-tested natively,
//! where the `signing` import's `to-hex` is not available).

/// Lowercase hex of `bytes`, as PHP's `md5()` prints digests.
pub fn encode(bytes: impl AsRef<[u8]>) -> String {
    ::hex::encode(bytes)
}

/// Decodes hex of either case; `None` for odd length or a non-hex character.
pub fn decode(text: &str) -> Option<Vec<u8>> {
    ::hex::decode(text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_garbage() {
        assert_eq!(encode([0x00, 0xab, 0xff]), "00abff");
        assert_eq!(decode("00ABff"), Some(vec![0x00, 0xab, 0xff]));
        assert_eq!(decode("abc"), None);
        assert_eq!(decode("zz"), None);
    }
}
