//! Checking what a caller asks for before anything goes to Netflix: ids travel in HTTP
//! headers, so control characters would let a caller inject headers.

use serde::Deserialize;

/// `POST {mount}/activations` body.
#[derive(Debug, Deserialize)]
pub struct ActivationInput {
    pub customer_id: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub promotion_id: Option<String>,
    pub channel: Option<String>,
    pub country: Option<String>,
}

/// A checked activation request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Activation {
    pub customer_id: String,
    /// `IntPay` or `Promo`.
    pub kind: &'static str,
    pub promotion_id: Option<String>,
    pub channel: String,
    pub country: String,
}

/// A customer id usable as `X-Netflix-PartnerCustomerIdentifier`.
pub fn check_customer_id(id: &str) -> Result<String, String> {
    let id = id.trim();
    if id.is_empty() {
        return Err("customer_id is required".into());
    }
    if id.len() > 128 {
        return Err("customer_id is longer than 128 characters".into());
    }
    if id.chars().any(|c| c.is_control()) {
        return Err("customer_id contains control characters".into());
    }
    Ok(id.to_string())
}

fn check_text(name: &str, value: Option<String>) -> Result<String, String> {
    let value = value.map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
    let value = value.ok_or_else(|| format!("{name} is required"))?;
    if value.len() > 64 || value.chars().any(|c| c.is_control()) {
        return Err(format!("{name} must be printable text of at most 64 characters"));
    }
    Ok(value)
}

impl ActivationInput {
    pub fn check(self) -> Result<Activation, String> {
        let customer_id = check_customer_id(self.customer_id.as_deref().unwrap_or(""))?;
        let kind = match self.kind.as_deref().map(str::trim) {
            Some(k) if k.eq_ignore_ascii_case("intpay") => "IntPay",
            Some(k) if k.eq_ignore_ascii_case("promo") => "Promo",
            Some(other) => return Err(format!("type must be IntPay or Promo, not `{other}`")),
            None => return Err("type is required (IntPay or Promo)".into()),
        };
        let promotion_id = match (kind, self.promotion_id) {
            ("Promo", id) => Some(check_text("promotion_id", id)?),
            (_, Some(id)) if !id.trim().is_empty() => {
                return Err("promotion_id is only for type Promo".into());
            }
            _ => None,
        };
        let channel = check_text("channel", self.channel)?;
        let country = check_text("country", self.country)?.to_ascii_uppercase();
        if country.len() != 2 || !country.chars().all(|c| c.is_ascii_alphabetic()) {
            return Err(format!("country must be a two-letter ISO code, not `{country}`"));
        }
        Ok(Activation { customer_id, kind, promotion_id, channel, country })
    }
}

/// The activation link: the template with `{token}` replaced by the URL-encoded token.
pub fn activation_url(template: &str, token: &str) -> String {
    template.replace("{token}", &payhost_sdk::pct::encode(token))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(json: &str) -> Result<Activation, String> {
        serde_json::from_str::<ActivationInput>(json).unwrap().check()
    }

    #[test]
    fn accepts_intpay_and_promo() {
        let a = input(r#"{"customer_id":"c1","type":"intpay","channel":"Web","country":"us"}"#).unwrap();
        assert_eq!((a.kind, a.country.as_str(), a.promotion_id), ("IntPay", "US", None));
        let p = input(r#"{"customer_id":"c1","type":"Promo","promotion_id":"P9","channel":"Store","country":"IN"}"#).unwrap();
        assert_eq!((p.kind, p.promotion_id.as_deref()), ("Promo", Some("P9")));
    }

    #[test]
    fn refuses_what_netflix_would_refuse_or_what_could_inject_headers() {
        let cases = [
            (r#"{"type":"IntPay","channel":"Web","country":"US"}"#, "customer_id is required"),
            (r#"{"customer_id":"c\r\nX-Evil: 1","type":"IntPay","channel":"Web","country":"US"}"#, "control"),
            (r#"{"customer_id":"c","type":"Gift","channel":"Web","country":"US"}"#, "IntPay or Promo"),
            (r#"{"customer_id":"c","type":"Promo","channel":"Web","country":"US"}"#, "promotion_id is required"),
            (r#"{"customer_id":"c","type":"IntPay","promotion_id":"P","channel":"Web","country":"US"}"#, "only for type Promo"),
            (r#"{"customer_id":"c","type":"IntPay","country":"US"}"#, "channel is required"),
            (r#"{"customer_id":"c","type":"IntPay","channel":"Web","country":"USA"}"#, "two-letter"),
        ];
        for (json, expected) in cases {
            let error = input(json).unwrap_err();
            assert!(error.contains(expected), "{json}: {error}");
        }
    }

    #[test]
    fn link_carries_the_encoded_token() {
        assert_eq!(
            activation_url("https://www.netflix.com/partner/activate?token={token}", "ab+/="),
            "https://www.netflix.com/partner/activate?token=ab%2B%2F%3D"
        );
    }
}
