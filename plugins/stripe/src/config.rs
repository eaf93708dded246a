//! The instance's settings, read once per call and checked.

use payhost_sdk::payments::Error;
use payhost_sdk::types::SettingSpec;

pub const API_BASE_URL: &str = "api_base_url";
pub const WEBHOOK_TOLERANCE: &str = "webhook_tolerance_seconds";
pub const API_VERSION: &str = "api_version";

const DEFAULT_BASE_URL: &str = "https://api.stripe.com";
const DEFAULT_TOLERANCE_SECONDS: i64 = 300;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Without a trailing slash.
    pub api_base_url: String,
    pub webhook_tolerance_seconds: i64,
    /// Sent as `Stripe-Version` when set; otherwise the account's default version applies.
    pub api_version: Option<String>,
}

impl Config {
    /// Reads the instance's settings through the host.
    pub fn load() -> Result<Config, Error> {
        Self::from_lookup(payhost_sdk::settings::get).map_err(Error::Other)
    }

    /// The checks, with settings from anywhere (tests pass a closure).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Config, String> {
        let base = get(API_BASE_URL).unwrap_or_else(|| DEFAULT_BASE_URL.into());
        let base = base.trim().trim_end_matches('/').to_string();
        if !(base.starts_with("https://") || base.starts_with("http://")) {
            return Err(format!("setting `{API_BASE_URL}` must be an http(s) URL, got `{base}`"));
        }
        let tolerance = match get(WEBHOOK_TOLERANCE) {
            None => DEFAULT_TOLERANCE_SECONDS,
            Some(text) => text
                .trim()
                .parse::<i64>()
                .ok()
                .filter(|t| *t > 0)
                .ok_or_else(|| format!("setting `{WEBHOOK_TOLERANCE}` must be a positive number of seconds, got `{text}`"))?,
        };
        let api_version = get(API_VERSION).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        Ok(Config { api_base_url: base, webhook_tolerance_seconds: tolerance, api_version })
    }

    /// What `describe` lists.
    pub fn specs() -> Vec<SettingSpec> {
        vec![
            SettingSpec {
                name: API_BASE_URL.into(),
                required: false,
                description: format!("Stripe API root (default {DEFAULT_BASE_URL}); its host must be in allowed_hosts"),
            },
            SettingSpec {
                name: WEBHOOK_TOLERANCE.into(),
                required: false,
                description: format!(
                    "How far a webhook's signed timestamp may be from the host clock, seconds (default {DEFAULT_TOLERANCE_SECONDS})"
                ),
            },
            SettingSpec {
                name: API_VERSION.into(),
                required: false,
                description: "Stripe-Version header to pin (default: the account's API version)".into(),
            },
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Result<Config, String> {
        let pairs: Vec<(String, String)> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_lookup(|name| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
    }

    #[test]
    fn defaults() {
        let c = config(&[]).unwrap();
        assert_eq!(c.api_base_url, "https://api.stripe.com");
        assert_eq!(c.webhook_tolerance_seconds, 300);
        assert_eq!(c.api_version, None);
    }

    #[test]
    fn overrides_and_checks() {
        let c = config(&[("api_base_url", "http://127.0.0.1:4000/"), ("webhook_tolerance_seconds", "60"), ("api_version", "2024-06-20")]).unwrap();
        assert_eq!(c.api_base_url, "http://127.0.0.1:4000");
        assert_eq!(c.webhook_tolerance_seconds, 60);
        assert_eq!(c.api_version.as_deref(), Some("2024-06-20"));
        assert!(config(&[("webhook_tolerance_seconds", "0")]).unwrap_err().contains("positive"));
        assert!(config(&[("webhook_tolerance_seconds", "5m")]).is_err());
        assert!(config(&[("api_base_url", "api.stripe.com")]).unwrap_err().contains("http(s) URL"));
    }
}
