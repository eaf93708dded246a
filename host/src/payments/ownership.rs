//! Which provider instance owns a payment reference on a payment-system instance.
//!
//! The host records the owner before the payment system sees the reference, so the
//! payment system's webhook events find their way back to that provider. One payment
//! system routes events by reference: a reference another provider already used would
//! send its events to the wrong place, so it is refused.

use crate::clock::HostClock;
use crate::storage::Storage;
use crate::wit::payments::Error;

/// Records `provider` as the owner of `reference` on `system`, or refuses a reference
/// that is malformed or owned by another instance.
pub async fn claim(storage: &dyn Storage, clock: &HostClock, provider: &str, system: &str, reference: &str) -> Result<(), Error> {
    if reference.is_empty() || reference.len() > 200 {
        return Err(Error::Rejected("reference must be 1..=200 bytes".into()));
    }
    let owner = storage
        .checkout_provider(system, reference)
        .await
        .map_err(|e| Error::Other(format!("could not look the reference up: {e}")))?;
    if let Some(owner) = owner.filter(|o| o != provider) {
        return Err(Error::Rejected(format!("reference `{reference}` is already used by instance `{owner}` on `{system}`")));
    }
    storage
        .checkout_register(system, reference, provider, clock.now_millis())
        .await
        .map_err(|e| Error::Other(format!("could not record the checkout: {e}")))
}

/// The provider instance that owns `reference` on `system`, if any.
pub async fn owner(storage: &dyn Storage, system: &str, reference: &str) -> crate::storage::StorageResult<Option<String>> {
    storage.checkout_provider(system, reference).await
}
