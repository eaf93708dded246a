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
            headers: delivery.headers,
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
