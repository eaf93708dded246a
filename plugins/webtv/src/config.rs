//! The instance's settings, read once per call and checked, with the defaults the
//! README documents.

use crate::host::Host;

/// The built-in payment system that pays from the buyer's ledger account.
pub const BALANCE: &str = "balance";

pub const DEFAULT_MAX_FAILURES: u32 = 3;
pub const DEFAULT_RETRY_AFTER_SECONDS: i64 = 86_400;

/// Every setting the plugin reads: (name, required, description) for `describe()`.
pub const SETTINGS: &[(&str, bool, &str)] = &[
    ("webtv_base_url", true, "Base URL of the WebTV the buyer returns to, e.g. https://tv.example.com"),
    ("payment_method", false, "`balance` (the buyer's ledger account, the default) or a payment-system instance name"),
    ("public_url", false, "Public URL of this mount (e.g. https://pay.example.com/webtv); needed with a payment system, for the buyer's way back"),
    ("currency", false, "Comma-separated currency codes accepted (default: any, passed through from currency_code)"),
    ("account_prefix", false, "Prefix before the WebTV id_user to form the ledger account / customer id"),
    ("max_failures", false, "Consecutive failed recurring charges before a profile is suspended (default 3)"),
    ("retry_after_seconds", false, "Delay before retrying a failed or pending recurring charge (default 86400)"),
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Without a trailing `/`.
    pub base_url: String,
    /// Payment-system instance that takes the one-time payment.
    pub system: String,
    /// Send the buyer to the system's hosted page; only `balance` is charged right away
    /// (it has no page, and any other system needs the buyer to enter a card).
    pub hosted: bool,
    /// Without a trailing `/`.
    pub public_url: Option<String>,
    /// Accepted currency codes (uppercase); empty accepts any.
    pub currencies: Vec<String>,
    pub account_prefix: String,
    pub max_failures: u32,
    pub retry_after: i64,
}

impl Config {
    pub fn load(host: &dyn Host) -> Result<Self, String> {
        Self::from_lookup(|name| host.setting(name))
    }

    /// Builds the config from a setting lookup (`None` = not configured).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let get = |name: &str| get(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        let base_url = get("webtv_base_url").ok_or("setting `webtv_base_url` is not configured")?;
        let base_url = absolute_url("webtv_base_url", &base_url)?;
        let system = get("payment_method").unwrap_or_else(|| BALANCE.to_string());
        let hosted = system != BALANCE;
        let public_url = get("public_url")
            .map(|url| absolute_url("public_url", &url))
            .transpose()?;
        if hosted && public_url.is_none() {
            return Err(
                format!("payment_method `{system}` needs setting `public_url` (this mount's public URL) for the buyer's way back")
            );
        }
        let currencies = get("currency")
            .map(|list| {
                list.split(',')
                    .map(|c| c.trim().to_ascii_uppercase())
                    .filter(|c| !c.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        let max_failures = match get("max_failures") {
            None => DEFAULT_MAX_FAILURES,
            Some(v) => v
                .parse::<u32>()
                .ok()
                .filter(|n| *n >= 1)
                .ok_or_else(|| format!("setting `max_failures` must be a whole number >= 1, not `{v}`"))?,
        };
        let retry_after = match get("retry_after_seconds") {
            None => DEFAULT_RETRY_AFTER_SECONDS,
            Some(v) => v
                .parse::<i64>()
                .ok()
                .filter(|n| *n >= 1)
                .ok_or_else(|| format!("setting `retry_after_seconds` must be a whole number >= 1, not `{v}`"))?,
        };
        Ok(Self {
            base_url,
            system,
            hosted,
            public_url,
            currencies,
            account_prefix: get("account_prefix").unwrap_or_default(),
            max_failures,
            retry_after,
        })
    }

    /// The ledger account / payment-system customer of a WebTV buyer.
    pub fn customer(&self, id_user: &str) -> String {
        format!("{}{}", self.account_prefix, id_user)
    }

    pub fn accepts_currency(&self, code: &str) -> bool {
        self.currencies.is_empty() || self.currencies.iter().any(|c| c == code)
    }
}

fn absolute_url(name: &str, value: &str) -> Result<String, String> {
    if !(value.starts_with("http://") || value.starts_with("https://")) {
        return Err(format!("setting `{name}` must be an absolute http(s) URL, not `{value}`"));
    }
    Ok(value.trim_end_matches('/').to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Result<Config, String> {
        let pairs: Vec<(String, String)> =
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_lookup(|name| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
    }

    #[test]
    fn defaults_charge_the_balance() {
        let c = config(&[("webtv_base_url", "https://tv.example.com/")]).unwrap();
        assert_eq!(c.base_url, "https://tv.example.com");
        assert_eq!(c.system, "balance");
        assert!(!c.hosted);
        assert_eq!(c.max_failures, 3);
        assert_eq!(c.retry_after, 86_400);
        assert!(c.accepts_currency("EUR"));
        assert_eq!(c.customer("42"), "42");
    }

    #[test]
    fn a_payment_system_needs_a_public_url() {
        let e = config(&[("webtv_base_url", "https://x"), ("payment_method", "stripe")]).unwrap_err();
        assert!(e.contains("public_url"), "{e}");
        let e = config(&[("webtv_base_url", "https://x"), ("public_url", "/webtv")]).unwrap_err();
        assert!(e.contains("absolute"), "{e}");
    }

    #[test]
    fn a_payment_system_is_hosted() {
        let c = config(&[
            ("webtv_base_url", "http://127.0.0.1:9"),
            ("payment_method", "stripe"),
            ("public_url", "https://pay.example.com/webtv/"),
            ("currency", "usd, EUR"),
            ("account_prefix", "webtv-"),
            ("max_failures", "5"),
            ("retry_after_seconds", "3600"),
        ])
        .unwrap();
        assert!(c.hosted);
        assert_eq!(c.public_url.as_deref(), Some("https://pay.example.com/webtv"));
        assert!(c.accepts_currency("USD") && c.accepts_currency("EUR") && !c.accepts_currency("RUB"));
        assert_eq!(c.customer("42"), "webtv-42");
        assert_eq!((c.max_failures, c.retry_after), (5, 3600));
    }

    #[test]
    fn bad_settings_are_named() {
        assert!(config(&[]).unwrap_err().contains("webtv_base_url"));
        assert!(config(&[("webtv_base_url", "tv.example.com")]).unwrap_err().contains("absolute"));
        let e = config(&[("webtv_base_url", "https://x"), ("max_failures", "0")]).unwrap_err();
        assert!(e.contains("max_failures"), "{e}");
        let e = config(&[("webtv_base_url", "https://x"), ("retry_after_seconds", "soon")]).unwrap_err();
        assert!(e.contains("retry_after_seconds"), "{e}");
    }
}
