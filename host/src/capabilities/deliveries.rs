//! `deliveries`: durable outbound requests the host sends and retries until 2xx.
//!
//! A delivery is stored before `enqueue` returns and sent later, maybe many times, so it
//! is checked whole first: a header that could never be sent is refused now, with the
//! reason, rather than failing every attempt; and its size is bounded, so a plugin cannot
//! park its whole memory in the database with each call.

use crate::wit::deliveries::{Delivery, Error, Host};
use crate::wit::http::Error as HttpError;
use super::state::PluginState;
use crate::storage::DeliveryRequest;

impl Host for PluginState {
    async fn enqueue(&mut self, key: String, delivery: Delivery) -> Result<String, Error> {
        crate::identifiers::check(crate::identifiers::DELIVERY_KEY, &key).map_err(|e| Error::Invalid(e.to_string()))?;
        let url = url::Url::parse(&delivery.url).map_err(|e| Error::Invalid(format!("url: {e}")))?;
        super::http::check_allowed(&url, &self.ctx.config.allowed_hosts).map_err(|e| match e {
            HttpError::Denied(host) => Error::Denied(host),
            other => Error::Invalid(format!("{other:?}")),
        })?;
        reqwest::Method::from_bytes(delivery.method.as_bytes())
            .map_err(|_| Error::Invalid(format!("method `{}`", delivery.method)))?;
        check_size_and_headers(&delivery).map_err(Error::Invalid)?;
        let request = DeliveryRequest {
            method: delivery.method,
            url: delivery.url,
            headers: with_request_id(delivery.headers, self.services().request_id_header.get(), &self.request_id),
            body: delivery.body,
            max_attempts: delivery.max_attempts,
        };
        let now = self.services().clock.now_millis();
        let id = self
            .services()
            .storage
            .delivery_enqueue(self.instance(), &key, &request, now)
            .await
            .map_err(|e| Error::Backend(e.to_string()))?;
        self.services().wake_jobs();
        Ok(id)
    }
}

/// Largest stored body, as for a store value.
const MAX_BODY_BYTES: usize = 1 << 20;
const MAX_URL_BYTES: usize = 8 * 1024;
const MAX_HEADERS: usize = 64;
/// Names and values of all headers together.
const MAX_HEADER_BYTES: usize = 16 * 1024;

/// Refuses a delivery the host could not send as stored, or too large to keep.
fn check_size_and_headers(delivery: &Delivery) -> Result<(), String> {
    if delivery.url.len() > MAX_URL_BYTES {
        return Err(format!("url must be at most {MAX_URL_BYTES} bytes"));
    }
    if delivery.body.len() > MAX_BODY_BYTES {
        return Err(format!("body must be at most {MAX_BODY_BYTES} bytes, not {}", delivery.body.len()));
    }
    if delivery.headers.len() > MAX_HEADERS {
        return Err(format!("at most {MAX_HEADERS} headers, not {}", delivery.headers.len()));
    }
    let header_bytes: usize = delivery.headers.iter().map(|(name, value)| name.len() + value.len()).sum();
    if header_bytes > MAX_HEADER_BYTES {
        return Err(format!("headers must be at most {MAX_HEADER_BYTES} bytes in all"));
    }
    for (name, value) in &delivery.headers {
        reqwest::header::HeaderName::from_bytes(name.as_bytes()).map_err(|_| format!("header name `{}` is not an HTTP token", name.escape_debug()))?;
        reqwest::header::HeaderValue::from_str(value).map_err(|_| format!("the value of header `{name}` holds a control character"))?;
    }
    Ok(())
}

/// The enqueuing request's id goes into the stored delivery under the operator's header
/// name, so every attempt the job worker sends later still carries it (unless the plugin
/// set that header itself).
fn with_request_id(mut headers: Vec<(String, String)>, header: Option<&reqwest::header::HeaderName>, request_id: &str) -> Vec<(String, String)> {
    if let Some(header) = header {
        if !headers.iter().any(|(name, _)| name.eq_ignore_ascii_case(header.as_str())) {
            headers.push((header.as_str().to_string(), request_id.to_string()));
        }
    }
    headers
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery(headers: &[(&str, &str)], body: usize) -> Delivery {
        Delivery {
            method: "POST".into(),
            url: "https://partner.example/hook".into(),
            headers: headers.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect(),
            body: vec![b'x'; body],
            max_attempts: 0,
        }
    }

    #[test]
    fn a_delivery_that_could_not_be_sent_as_stored_or_is_too_large_is_refused() {
        assert_eq!(check_size_and_headers(&delivery(&[("content-type", "application/json")], MAX_BODY_BYTES)), Ok(()));
        let refused = |d: Delivery| check_size_and_headers(&d).unwrap_err();
        assert!(refused(delivery(&[], MAX_BODY_BYTES + 1)).contains("body must be at most 1048576 bytes"));
        assert!(refused(delivery(&[("x-evil", "a\r\nInjected: yes")], 1)).contains("`x-evil` holds a control character"));
        assert!(refused(delivery(&[("bad name", "v")], 1)).contains("`bad name` is not an HTTP token"));
        let many: Vec<(String, String)> = (0..=MAX_HEADERS).map(|i| (format!("x-{i}"), "v".to_string())).collect();
        assert!(refused(Delivery { headers: many, ..delivery(&[], 1) }).contains("at most 64 headers"));
        let long = "v".repeat(MAX_HEADER_BYTES);
        assert!(refused(delivery(&[("x-long", &long)], 1)).contains("headers must be at most 16384 bytes"));
        let url = format!("https://partner.example/{}", "p".repeat(MAX_URL_BYTES));
        assert!(refused(Delivery { url, ..delivery(&[], 1) }).contains("url must be at most 8192 bytes"));
    }

    #[test]
    fn the_request_id_is_stored_with_the_delivery_unless_the_plugin_set_it() {
        let header = reqwest::header::HeaderName::from_static("x-correlation-id");
        let added = with_request_id(vec![("content-type".into(), "text/plain".into())], Some(&header), "abc-1");
        assert_eq!(added, vec![("content-type".to_string(), "text/plain".to_string()), ("x-correlation-id".to_string(), "abc-1".to_string())]);
        let own = with_request_id(vec![("X-Correlation-Id".into(), "mine".into())], Some(&header), "abc-1");
        assert_eq!(own, vec![("X-Correlation-Id".to_string(), "mine".to_string())]);
        assert!(with_request_id(vec![], None, "abc-1").is_empty(), "no header configured: none added");
    }
}
