//! The instance's settings, read once per call and checked together so a bad value is
//! reported by name instead of failing some later Netflix call.

use crate::authtime::UtcOffset;
use crate::schedule::PollBounds;
use payhost_sdk::types::SettingSpec;

/// Secret with the base64 partner key (configure it with `encoding = "base64"`).
pub const PARTNER_KEY_SECRET: &str = "netflix_partner_key";
/// Secret with the bearer token of the admin routes.
pub const ADMIN_TOKEN_SECRET: &str = "admin_token";

/// (name, required, default, description) of every setting.
const SETTINGS: &[(&str, bool, &str, &str)] = &[
    ("api_base_url", true, "", "Netflix MVPD API base URL, e.g. https://api.netflix.com (no trailing path)"),
    ("credential", true, "", "Credential name sent in nflxv1 Credential=..."),
    ("activation_url_template", true, "", "Customer activation link; `{token}` is replaced by the URL-encoded token"),
    ("token_error_url", true, "", "TokenErrorURL: where Netflix sends a customer whose token is invalid"),
    ("utc_offset", false, "+0000", "Offset of X-Netflix-AuthorizationTime, like +0530"),
    ("token_validity_seconds", false, "604800", "ValidityDurationInSeconds of activation tokens"),
    ("account_prefix", false, "", "Prefix of the ledger account id: account = prefix + PartnerCustomerID"),
    ("poll_min_seconds", false, "5", "Lower bound of Netflix-NextCallInSeconds"),
    ("poll_max_seconds", false, "3600", "Upper bound of Netflix-NextCallInSeconds"),
    ("poll_default_seconds", false, "60", "Delay when Netflix sends no Netflix-NextCallInSeconds"),
    ("error_backoff_seconds", false, "30", "First delay after a failed charge-loop iteration (then doubles)"),
    ("error_backoff_max_seconds", false, "1800", "Ceiling of the error backoff"),
    ("send_batch_size", false, "100", "Results per SendCharge call"),
    ("http_timeout_ms", false, "10000", "Deadline of each Netflix call"),
];

/// Everything the plugin reads from its settings.
#[derive(Debug, Clone)]
pub struct Config {
    pub api_base_url: String,
    pub credential: String,
    pub activation_url_template: String,
    pub token_error_url: String,
    pub utc_offset: UtcOffset,
    pub token_validity_seconds: u32,
    pub account_prefix: String,
    pub poll: PollBounds,
    pub send_batch_size: usize,
    pub http_timeout_ms: u32,
}

impl Config {
    /// Reads the instance settings.
    pub fn load() -> Result<Self, String> {
        Self::from_lookup(payhost_sdk::settings::get)
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let text = |name: &str| -> Result<String, String> {
            let (_, required, default, _) = SETTINGS
                .iter()
                .find(|(n, ..)| *n == name)
                .ok_or_else(|| format!("setting `{name}` is not declared"))?;
            match lookup(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty()) {
                Some(value) => Ok(value),
                None if *required => Err(format!("setting `{name}` is not configured")),
                None => Ok(default.to_string()),
            }
        };
        let number = |name: &str| -> Result<u64, String> {
            let value = text(name)?;
            value
                .parse::<u64>()
                .map_err(|_| format!("setting `{name}` must be a whole number, not `{value}`"))
        };
        let api_base_url = text("api_base_url")?.trim_end_matches('/').to_string();
        if !(api_base_url.starts_with("http://") || api_base_url.starts_with("https://")) {
            return Err(format!("setting `api_base_url` must be an http(s) URL, not `{api_base_url}`"));
        }
        let activation_url_template = text("activation_url_template")?;
        if !activation_url_template.contains("{token}") {
            return Err("setting `activation_url_template` must contain `{token}`".into());
        }
        let utc_offset = UtcOffset::parse(&text("utc_offset")?).map_err(|e| format!("setting `utc_offset`: {e}"))?;
        let send_batch_size = number("send_batch_size")?;
        if send_batch_size == 0 {
            return Err("setting `send_batch_size` must be at least 1".into());
        }
        let small = |name: &str| -> Result<u32, String> {
            u32::try_from(number(name)?).map_err(|_| format!("setting `{name}` is too large"))
        };
        Ok(Self {
            api_base_url,
            credential: text("credential")?,
            activation_url_template,
            token_error_url: text("token_error_url")?,
            utc_offset,
            token_validity_seconds: small("token_validity_seconds")?,
            account_prefix: lookup("account_prefix").unwrap_or_default(),
            poll: PollBounds {
                min_seconds: number("poll_min_seconds")?,
                max_seconds: number("poll_max_seconds")?,
                default_seconds: number("poll_default_seconds")?,
                backoff_base_seconds: number("error_backoff_seconds")?,
                backoff_max_seconds: number("error_backoff_max_seconds")?,
            },
            send_batch_size: usize::try_from(send_batch_size).unwrap_or(usize::MAX),
            http_timeout_ms: small("http_timeout_ms")?,
        })
    }

    /// The ledger account billed for a Netflix customer.
    pub fn account_for(&self, partner_customer_id: &str) -> String {
        format!("{}{}", self.account_prefix, partner_customer_id)
    }
}

/// Setting declarations for `describe()`.
pub fn setting_specs() -> Vec<SettingSpec> {
    SETTINGS
        .iter()
        .map(|(name, required, default, description)| SettingSpec {
            name: (*name).into(),
            required: *required,
            description: if default.is_empty() {
                (*description).into()
            } else {
                format!("{description} (default {default})")
            },
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(pairs: &[(&str, &str)]) -> Result<Config, String> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_lookup(|name| map.get(name).cloned())
    }

    const REQUIRED: [(&str, &str); 4] = [
        ("api_base_url", "http://127.0.0.1:9/"),
        ("credential", "partner"),
        ("activation_url_template", "https://netflix.example/activate?t={token}"),
        ("token_error_url", "https://operator.example/error"),
    ];

    #[test]
    fn defaults_apply_and_base_url_loses_its_slash() {
        let cfg = config(&REQUIRED).unwrap();
        assert_eq!(cfg.api_base_url, "http://127.0.0.1:9");
        assert_eq!(cfg.utc_offset, UtcOffset::UTC);
        assert_eq!(cfg.poll.default_seconds, 60);
        assert_eq!(cfg.send_batch_size, 100);
        assert_eq!(cfg.account_for("42"), "42");
    }

    #[test]
    fn missing_or_bad_values_are_named() {
        assert_eq!(config(&REQUIRED[1..]).unwrap_err(), "setting `api_base_url` is not configured");
        let mut bad = REQUIRED.to_vec();
        bad.push(("utc_offset", "IST"));
        assert!(config(&bad).unwrap_err().contains("utc_offset"));
        let mut bad = REQUIRED.to_vec();
        bad.push(("poll_max_seconds", "1h"));
        assert!(config(&bad).unwrap_err().contains("poll_max_seconds"));
        let mut bad = REQUIRED.to_vec();
        bad[2] = ("activation_url_template", "https://netflix.example/activate");
        assert!(config(&bad).unwrap_err().contains("{token}"));
    }

    #[test]
    fn prefix_and_offset_are_used() {
        let mut pairs = REQUIRED.to_vec();
        pairs.push(("account_prefix", "nf-"));
        pairs.push(("utc_offset", "+0530"));
        let cfg = config(&pairs).unwrap();
        assert_eq!(cfg.account_for("42"), "nf-42");
        assert_eq!(cfg.utc_offset.to_php_o(), "+0530");
    }

    #[test]
    fn every_setting_is_declared() {
        let names: Vec<String> = setting_specs().into_iter().map(|s| s.name).collect();
        assert!(names.contains(&"api_base_url".to_string()));
        assert_eq!(names.len(), SETTINGS.len());
    }
}
