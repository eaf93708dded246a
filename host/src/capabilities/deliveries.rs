//! `deliveries`: durable outbound requests the host sends and retries until 2xx.

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
