//! One validation of the identifiers callers hand the host (account ids, idempotency
//! keys, references, transaction ids, store keys, timer names, delivery keys), applied
//! before storage is touched. Without it the backends disagree: SQLite stores a NUL byte
//! that PostgreSQL refuses with an error, so the same call succeeded on one and failed
//! with a storage error on the other. Every such id is refused the same way on both,
//! with a message that says what is wrong.

/// What an identifier is and how long it may be, in bytes of UTF-8.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kind {
    pub what: &'static str,
    pub max_bytes: usize,
    pub may_be_empty: bool,
}

pub const ACCOUNT_ID: Kind = Kind { what: "account id", max_bytes: 255, may_be_empty: false };
pub const IDEMPOTENCY_KEY: Kind = Kind { what: "idempotency key", max_bytes: 255, may_be_empty: false };
pub const REFERENCE: Kind = Kind { what: "reference", max_bytes: 1024, may_be_empty: true };
pub const TRANSACTION_ID: Kind = Kind { what: "transaction id", max_bytes: 255, may_be_empty: false };
pub const STORE_KEY: Kind = Kind { what: "store key", max_bytes: 512, may_be_empty: false };
pub const TIMER_NAME: Kind = Kind { what: "timer name", max_bytes: 256, may_be_empty: false };
pub const DELIVERY_KEY: Kind = Kind { what: "delivery key", max_bytes: 512, may_be_empty: false };

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} {problem}", kind.what)]
pub struct InvalidIdentifier {
    pub kind: Kind,
    pub problem: String,
}

/// Refuses an empty value (unless allowed), one over the length limit, and any control
/// character (NUL, C0, DEL, C1): ids end up in logs, URLs and SQL text columns.
pub fn check(kind: Kind, value: &str) -> Result<(), InvalidIdentifier> {
    let problem = if value.is_empty() && !kind.may_be_empty {
        "must not be empty".to_string()
    } else if value.len() > kind.max_bytes {
        format!("is {} bytes long; at most {} are allowed", value.len(), kind.max_bytes)
    } else if let Some((at, c)) = value.char_indices().find(|(_, c)| c.is_control()) {
        format!("contains the control character U+{:04X} at byte {at}; control characters are not allowed", c as u32)
    } else {
        return Ok(());
    };
    Err(InvalidIdentifier { kind, problem })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_passes_at_its_length_limit() {
        assert!(check(ACCOUNT_ID, "subscriber-42").is_ok());
        assert!(check(ACCOUNT_ID, &"a".repeat(255)).is_ok());
        assert!(check(REFERENCE, "").is_ok());
        assert!(check(REFERENCE, "Пакет «Кино»").is_ok());
    }

    #[test]
    fn nul_control_characters_length_and_emptiness_are_refused() {
        let nul = check(ACCOUNT_ID, "a\0b").unwrap_err();
        assert_eq!(nul.to_string(), "account id contains the control character U+0000 at byte 1; control characters are not allowed");
        for bad in ["line\nbreak", "tab\there", "del\u{7f}", "c1\u{85}"] {
            assert!(check(IDEMPOTENCY_KEY, bad).is_err(), "{bad:?}");
        }
        assert!(check(ACCOUNT_ID, &"a".repeat(256)).unwrap_err().to_string().contains("256 bytes"));
        assert_eq!(check(IDEMPOTENCY_KEY, "").unwrap_err().to_string(), "idempotency key must not be empty");
    }
}
