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
    /// The provider API's base URL, without a trailing `/` (e.g. `https://api.24h.tv/v2`).
    pub api_base_url: String,
    /// Longest single provider API call.
    pub api_timeout_ms: u32,
    /// Everything a purchase does before answering Platform24 fits in this.
    pub answer_budget_ms: i64,
    /// Sell an add-on to a subscriber without a base packet.
    pub addons_without_base: bool,
    /// How long the packet catalog is reused before it is fetched again.
    pub packets_cache_seconds: i64,
    /// A renewal is charged this long before the period ends.
    pub renew_ahead_seconds: i64,
    /// A purchase left unfinished this long after it started is resolved by a timer.
    pub recovery_after_seconds: i64,
    /// Tell the platform the balance after each change (`POST /users/{id}/provider/account`).
    pub push_balance: bool,
}

pub const DEFAULT_CURRENCY: &str = "RUB";
pub const DEFAULT_DEDUP_WINDOW: i64 = 300;
pub const DEFAULT_PAYMENT_FORM_PATH: &str = "/payment_form";
pub const DEFAULT_API_TIMEOUT_MS: u32 = 1500;
pub const DEFAULT_ANSWER_BUDGET_MS: i64 = 4000;
/// Platform24 waits about this long for an answer.
pub const PLATFORM_WAIT_MS: i64 = 5000;
pub const DEFAULT_PACKETS_CACHE_SECONDS: i64 = 300;
pub const DEFAULT_RENEW_AHEAD_SECONDS: i64 = 86_400;
pub const DEFAULT_RECOVERY_AFTER_SECONDS: i64 = 30;

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
        spec("api_base_url", true, "Platform24 provider API base URL, e.g. https://api.24h.tv/v2 (its host must be in allowed_hosts)"),
        spec("api_timeout_ms", false, "Longest single provider API call in ms (default 1500)"),
        spec("answer_budget_ms", false, "Time a purchase may take before answering Platform24, in ms, below 5000 (default 4000)"),
        spec("addons_without_base", false, "true: add-on packets may be bought without a base packet (default false)"),
        spec("packets_cache_seconds", false, "Age up to which the packet catalog is reused (default 300)"),
        spec("renew_ahead_seconds", false, "Charge a renewal this long before the period ends (default 86400)"),
        spec("recovery_after_seconds", false, "Resolve a purchase left unfinished this long after it started (default 30)"),
        spec("push_balance", false, "true: send the balance to the platform after each change (default false)"),
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
        let api_base_url = required("api_base_url")?.trim_end_matches('/').to_owned();
        if !(api_base_url.starts_with("http://") || api_base_url.starts_with("https://")) {
            return Err(format!("setting `api_base_url` must be an http(s) URL, got `{api_base_url}`"));
        }
        let number = |name: &str, default: i64| -> Result<i64, String> {
            match get(name) {
                None => Ok(default),
                Some(v) => v
                    .parse::<i64>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| format!("setting `{name}` must be a positive whole number, got `{v}`")),
            }
        };
        let flag = |name: &str| -> Result<bool, String> {
            match get(name).as_deref() {
                None | Some("false") => Ok(false),
                Some("true") => Ok(true),
                Some(v) => Err(format!("setting `{name}` must be true or false, got `{v}`")),
            }
        };
        let answer_budget_ms = number("answer_budget_ms", DEFAULT_ANSWER_BUDGET_MS)?;
        if answer_budget_ms >= PLATFORM_WAIT_MS {
            return Err(format!(
                "setting `answer_budget_ms` must stay below Platform24's {PLATFORM_WAIT_MS} ms wait, got {answer_budget_ms}"
            ));
        }
        let api_timeout_ms = u32::try_from(number("api_timeout_ms", i64::from(DEFAULT_API_TIMEOUT_MS))?)
            .map_err(|_| "setting `api_timeout_ms` is too large".to_string())?;
        Ok(Self {
            api_base_url,
            api_timeout_ms,
            answer_budget_ms,
            addons_without_base: flag("addons_without_base")?,
            packets_cache_seconds: number("packets_cache_seconds", DEFAULT_PACKETS_CACHE_SECONDS)?,
            renew_ahead_seconds: number("renew_ahead_seconds", DEFAULT_RENEW_AHEAD_SECONDS)?,
            recovery_after_seconds: number("recovery_after_seconds", DEFAULT_RECOVERY_AFTER_SECONDS)?,
            push_balance: flag("push_balance")?,
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

    const BASE: [(&str, &str); 4] = [
        ("platform_url", "https://p24.example/"),
        ("paysystem_name", "payhost"),
        ("payment_system", "stripe"),
        ("api_base_url", "https://api.24h.tv/v2/"),
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
        assert_eq!(c.api_base_url, "https://api.24h.tv/v2");
        assert_eq!((c.api_timeout_ms, c.answer_budget_ms), (1500, 4000));
        assert!(!c.addons_without_base && !c.push_balance);
        assert_eq!((c.packets_cache_seconds, c.renew_ahead_seconds, c.recovery_after_seconds), (300, 86_400, 30));
    }

    #[test]
    fn the_answer_budget_stays_inside_platform24s_wait() {
        let mut pairs = BASE.to_vec();
        pairs.push(("answer_budget_ms", "5000"));
        assert!(config(&pairs).unwrap_err().contains("answer_budget_ms"));
        pairs.pop();
        pairs.extend([("answer_budget_ms", "3000"), ("addons_without_base", "true"), ("push_balance", "true")]);
        let c = config(&pairs).unwrap();
        assert_eq!(c.answer_budget_ms, 3000);
        assert!(c.addons_without_base && c.push_balance);
        pairs.push(("renew_ahead_seconds", "soon"));
        assert!(config(&pairs).unwrap_err().contains("renew_ahead_seconds"));
        let no_api: Vec<_> = BASE[..3].to_vec();
        assert!(config(&no_api).unwrap_err().contains("api_base_url"));
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
