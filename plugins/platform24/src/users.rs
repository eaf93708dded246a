//! Which platform user is which subscriber: `user/{provider_uid}` holds the platform's
//! user id, learnt from Platform24's requests (`user.id`) or from registering the
//! subscriber through the operator routes.

use crate::records;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlatformLink {
    pub platform_user: String,
    pub since: i64,
    /// Set when the operator blocked the subscriber.
    #[serde(default)]
    pub blocked_at: Option<i64>,
}

fn key(provider_uid: &str) -> String {
    format!("user/{provider_uid}")
}

pub fn link(provider_uid: &str) -> Result<Option<PlatformLink>, String> {
    records::load(&key(provider_uid))
}

pub fn save(provider_uid: &str, link: &PlatformLink) -> Result<(), String> {
    records::set(&key(provider_uid), link)
}

/// The platform id for a request: the one it carries (remembered when new), else the
/// one remembered.
pub fn platform_id(provider_uid: &str, from_request: Option<&str>) -> Result<Option<String>, String> {
    let known = link(provider_uid)?;
    match (from_request, known) {
        (Some(id), Some(k)) if k.platform_user == id => Ok(Some(id.to_owned())),
        (Some(id), known) => {
            let since = payhost_sdk::clock::now().seconds;
            let blocked_at = known.and_then(|k| k.blocked_at);
            save(provider_uid, &PlatformLink { platform_user: id.to_owned(), since, blocked_at })?;
            Ok(Some(id.to_owned()))
        }
        (None, known) => Ok(known.map(|k| k.platform_user)),
    }
}
