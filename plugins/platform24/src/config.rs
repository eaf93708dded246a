//! The instance's settings, read once per call, with defaults and checks.
//!
//! Parsing is a pure function of a lookup so it is unit-tested without a host; a bad
//! value is an operator error that names the setting.

use payhost_sdk::types::SettingSpec;

/// Everything the plugin reads from `[plugins.settings]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Platform24's base URL, without a trailing `/`.
    pub platform_url: String,
    /// Our payment system's name at Platform24 (the `{name}` in `/billing/paysystem/{name}/confirm`).
    pub paysystem_name: String,
    /// The payhost payment-system instance that runs card checkouts (e.g. `stripe`).
    pub payment_system: String,
    /// Currency of subscriber accounts and prices (ISO 4217, upper case).
    pub currency: String,
    /// Prepended to the provider uid to name the ledger account.
    pub account_prefix: String,
    /// Identical purchase requests within this many seconds debit once.
    pub dedup_window_seconds: i64,
    /// Path under the mount of the payment-form URL request, starting with `/`.
    pub payment_form_path: String,
    /// Where the payment page sends the subscriber back.
    pub return_url: String,
}

pub const DEFAULT_CURRENCY: &str = "RUB";
pub const DEFAULT_DEDUP_WINDOW: i64 = 300;
pub const DEFAULT_PAYMENT_FORM_PATH: &str = "/payment_form";

/// The settings as `describe()` announces them to the host.
pub fn specs() -> Vec<SettingSpec> {
    let spec = |name: &str, required: bool, description: &str| SettingSpec {
        name: name.into(),
        required,
        description: description.into(),
    };
    vec![
        spec("platform_url", true, "Platform24 base URL for confirm/fail callbacks, e.g. https://provider.platform24.tv"),
        spec("paysystem_name", true, "Our payment system's name at Platform24 (path segment of the callbacks)"),
        spec("payment_system", true, "Payment-system instance that runs card checkouts, e.g. stripe"),
        spec("currency", false, "Account and price currency (default RUB)"),
        spec("account_prefix", false, "Prefix of ledger account ids before the provider uid (default empty)"),
        spec("dedup_window_seconds", false, "Identical purchase requests within this window debit once (default 300)"),
        spec("payment_form_path", false, "Path of the payment-form URL request under the mount (default /payment_form)"),
        spec("return_url", false, "Where the payment page returns the subscriber (default platform_url)"),
    ]
}

impl Config {
    /// Reads the instance's settings through the host.
    pub fn load() -> Result<Self, String> {
        Self::from_lookup(payhost_sdk::settings::get)
    }

    /// Builds the config from any name -> value lookup (empty values count as unset).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let get = |name: &str| get(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let required = |name: &str| get(name).ok_or_else(|| format!("setting `{name}` is not configured"));

        let platform_url = required("platform_url")?.trim_end_matches('/').to_owned();
        if !(platform_url.starts_with("http://") || platform_url.starts_with("https://")) {
            return Err(format!("setting `platform_url` must be an http(s) URL, got `{platform_url}`"));
        }
        let paysystem_name = required("paysystem_name")?;
        if paysystem_name.contains(['/', '?', '#']) {
            return Err("setting `paysystem_name` must be one path segment".into());
        }
        let currency = get("currency").unwrap_or_else(|| DEFAULT_CURRENCY.into()).to_ascii_uppercase();
        let dedup_window_seconds = match get("dedup_window_seconds") {
            None => DEFAULT_DEDUP_WINDOW,
            Some(v) => v
                .parse::<i64>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("setting `dedup_window_seconds` must be a positive number of seconds, got `{v}`"))?,
        };
        let path = get("payment_form_path").unwrap_or_else(|| DEFAULT_PAYMENT_FORM_PATH.into());
        let payment_form_path = format!("/{}", path.trim_matches('/'));
        if payment_form_path == "/" {
            return Err("setting `payment_form_path` must not be the mount itself".into());
        }
        let return_url = get("return_url").unwrap_or_else(|| platform_url.clone());
        Ok(Self {
            payment_system: required("payment_system")?,
            account_prefix: get("account_prefix").unwrap_or_default(),
            platform_url,
            paysystem_name,
            currency,
            dedup_window_seconds,
            payment_form_path,
            return_url,
        })
    }

    /// Ledger account of a subscriber.
    pub fn account(&self, provider_uid: &str) -> String {
        format!("{}{}", self.account_prefix, provider_uid)
    }

    /// `{platform_url}/billing/paysystem/{paysystem_name}/{outcome}` (`confirm` or `fail`).
    pub fn callback_url(&self, outcome: &str) -> String {
        format!("{}/billing/paysystem/{}/{}", self.platform_url, self.paysystem_name, outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(pairs: &[(&str, &str)]) -> Result<Config, String> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_lookup(|name| map.get(name).cloned())
    }

    const BASE: [(&str, &str); 3] = [
        ("platform_url", "https://p24.example/"),
        ("paysystem_name", "payhost"),
        ("payment_system", "stripe"),
    ];

    #[test]
    fn defaults() {
        let c = config(&BASE).unwrap();
        assert_eq!(c.platform_url, "https://p24.example");
        assert_eq!(c.currency, "RUB");
        assert_eq!(c.dedup_window_seconds, 300);
        assert_eq!(c.payment_form_path, "/payment_form");
        assert_eq!(c.return_url, "https://p24.example");
        assert_eq!(c.account("42"), "42");
        assert_eq!(c.callback_url("confirm"), "https://p24.example/billing/paysystem/payhost/confirm");
    }

    #[test]
    fn overrides() {
        let mut pairs = BASE.to_vec();
        pairs.extend([
            ("currency", "usd"),
            ("account_prefix", "p24-"),
            ("dedup_window_seconds", "60"),
            ("payment_form_path", "pay/form/"),
            ("return_url", "https://tv.example/back"),
        ]);
        let c = config(&pairs).unwrap();
        assert_eq!(c.currency, "USD");
        assert_eq!(c.account("42"), "p24-42");
        assert_eq!(c.dedup_window_seconds, 60);
        assert_eq!(c.payment_form_path, "/pay/form");
        assert_eq!(c.return_url, "https://tv.example/back");
    }

    #[test]
    fn errors_name_the_setting() {
        assert!(config(&BASE[1..]).unwrap_err().contains("platform_url"));
        let mut pairs = BASE.to_vec();
        pairs.push(("dedup_window_seconds", "0"));
        assert!(config(&pairs).unwrap_err().contains("dedup_window_seconds"));
        let mut pairs = BASE.to_vec();
        pairs[0] = ("platform_url", "ftp://x");
        assert!(config(&pairs).unwrap_err().contains("platform_url"));
    }
}
