//! The packet catalog (`GET /packets?includes=availables`), kept in the store for
//! `packets_cache_seconds` so a purchase usually spends no API call on it. When the
//! platform cannot be asked, a stale copy up to a day old still serves (the rules it
//! holds change rarely); older than that, the purchase is refused before any debit.

use crate::api::{wire::CatalogPacket, Api, ApiError};
use crate::config::Config;
use crate::records;
use serde::{Deserialize, Serialize};

const KEY: &str = "catalog";
const STALE_LIMIT_SECONDS: i64 = 86_400;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Cached {
    fetched_at: i64,
    packets: Vec<CatalogPacket>,
}

/// Whether a copy fetched at `fetched_at` may be used at `now` without asking again.
fn fresh(fetched_at: i64, now: i64, max_age: i64) -> bool {
    now >= fetched_at && now - fetched_at < max_age
}

pub fn get(config: &Config, api: &Api) -> Result<Vec<CatalogPacket>, ApiError> {
    let now = payhost_sdk::clock::now().seconds;
    let cached: Option<Cached> = records::load(KEY).unwrap_or_else(|e| {
        payhost_sdk::warn("platform24 catalog cache unreadable", &[("error", &e)]);
        None
    });
    if let Some(c) = &cached {
        if fresh(c.fetched_at, now, config.packets_cache_seconds) {
            return Ok(c.packets.clone());
        }
    }
    match api.catalog() {
        Ok(packets) => {
            if let Err(e) = records::set(KEY, &Cached { fetched_at: now, packets: packets.clone() }) {
                payhost_sdk::warn("platform24 could not cache the catalog", &[("error", &e)]);
            }
            Ok(packets)
        }
        Err(e) => match cached {
            Some(c) if fresh(c.fetched_at, now, STALE_LIMIT_SECONDS) => {
                payhost_sdk::warn("platform24 uses a stale catalog", &[("error", &e.to_string())]);
                Ok(c.packets)
            }
            _ => Err(e),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::fresh;

    #[test]
    fn age_is_bounded() {
        assert!(fresh(100, 100, 300));
        assert!(fresh(100, 399, 300));
        assert!(!fresh(100, 400, 300));
        // A copy from "the future" (another host's clock) is not trusted.
        assert!(!fresh(500, 400, 300));
    }
}
