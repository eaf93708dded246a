//! `checkout`: provider plugins take payments through payment-system instances they are
//! granted (`payment_systems` in config), or through the built-in `balance` method.
//!
//! Before a checkout or charge reaches the payment system, the host records which
//! provider instance owns its reference, so the payment system's webhook event finds
//! its way back to that provider.

use std::sync::Arc;

use super::bindings::checkout::Host;
use super::bindings::payments::{ChargeRequest, Checkout, CheckoutRequest, Error, PaymentEvent, PaymentStatus, RefundResult};
use super::state::{InstanceContext, PluginState};
use crate::ledger::LedgerError;
use crate::runtime::failure::CallFailure;
use crate::runtime::Runtime;

/// The built-in method that pays from the ledger account named by `customer`.
pub const BALANCE: &str = "balance";

impl Host for PluginState {
    async fn start_checkout(&mut self, system: String, req: CheckoutRequest) -> Result<Checkout, Error> {
        let (ctx, request_id) = (self.ctx.clone(), self.request_id.clone());
        check_granted(&ctx, &system)?;
        if system == BALANCE {
            return Err(Error::Rejected("the balance method has no hosted page; use charge".into()));
        }
        register(&ctx, &system, &req.reference).await?;
        runtime(&ctx)?
            .call_processor(&system, &request_id, move |store, ps| {
                Box::pin(async move { ps.payhost_gateway_processor().call_start_checkout(store, &req).await })
            })
            .await
            .map_err(|f| unavailable(&system, f))?
    }

    async fn charge(&mut self, system: String, req: ChargeRequest) -> Result<PaymentEvent, Error> {
        let (ctx, request_id) = (self.ctx.clone(), self.request_id.clone());
        check_granted(&ctx, &system)?;
        if system == BALANCE {
            return charge_balance(&ctx, req).await;
        }
        register(&ctx, &system, &req.reference).await?;
        let event = runtime(&ctx)?
            .call_processor(&system, &request_id, move |store, ps| {
                Box::pin(async move { ps.payhost_gateway_processor().call_charge(store, &req).await })
            })
            .await
            .map_err(|f| unavailable(&system, f))?;
        // The plugin cannot know the instance name it runs under; the host does.
        event.map(|e| PaymentEvent { system: system.clone(), ..e })
    }

    async fn lookup(&mut self, system: String, external_id: String) -> Result<PaymentEvent, Error> {
        let (ctx, request_id) = (self.ctx.clone(), self.request_id.clone());
        check_granted(&ctx, &system)?;
        if system == BALANCE {
            return Err(Error::NotFound("balance payments are final at charge time; nothing to look up".into()));
        }
        let event = runtime(&ctx)?
            .call_processor(&system, &request_id, move |store, ps| {
                Box::pin(async move { ps.payhost_gateway_processor().call_lookup_payment(store, &external_id).await })
            })
            .await
            .map_err(|f| unavailable(&system, f))?;
        event.map(|e| PaymentEvent { system: system.clone(), ..e })
    }

    async fn refund(&mut self, system: String, external_id: String, amount: Option<String>) -> Result<RefundResult, Error> {
        let (ctx, request_id) = (self.ctx.clone(), self.request_id.clone());
        check_granted(&ctx, &system)?;
        if system == BALANCE {
            return refund_balance(&ctx, external_id, amount).await;
        }
        runtime(&ctx)?
            .call_processor(&system, &request_id, move |store, ps| {
                Box::pin(async move { ps.payhost_gateway_processor().call_refund(store, &external_id, amount.as_deref()).await })
            })
            .await
            .map_err(|f| unavailable(&system, f))?
    }
}

fn check_granted(ctx: &InstanceContext, system: &str) -> Result<(), Error> {
        if ctx.config.payment_systems.iter().any(|s| s == system) {
            Ok(())
        } else {
            Err(Error::UnknownSystem(format!(
                "`{system}` is not in payment_systems of instance `{}`",
                ctx.name
            )))
        }
    }

    fn runtime(ctx: &InstanceContext) -> Result<Arc<Runtime>, Error> {
        ctx.services
            .runtime
            .get()
            .and_then(|w| w.upgrade())
            .ok_or_else(|| Error::Unavailable("the host is shutting down".into()))
    }

    async fn register(ctx: &InstanceContext, system: &str, reference: &str) -> Result<(), Error> {
        if reference.is_empty() || reference.len() > 200 {
            return Err(Error::Rejected("reference must be 1..=200 bytes".into()));
        }
        let owner = ctx
            .services
            .storage
            .checkout_provider(system, reference)
            .await
            .map_err(|e| Error::Other(format!("could not look the reference up: {e}")))?;
        if let Some(owner) = owner.filter(|o| *o != ctx.name) {
            // One payment-system instance routes events by reference: a reference
            // another provider already used would send its events to the wrong place.
            return Err(Error::Rejected(format!("reference `{reference}` is already used by instance `{owner}` on `{system}`")));
        }
        let now = ctx.services.clock.now_millis();
        ctx.services
            .storage
            .checkout_register(system, reference, &ctx.name, now)
            .await
            .map_err(|e| Error::Other(format!("could not record the checkout: {e}")))
    }

    /// Debits the customer's ledger account once per reference.
    async fn charge_balance(ctx: &InstanceContext, req: ChargeRequest) -> Result<PaymentEvent, Error> {
        let key = format!("balance-charge:{}", req.reference);
        let result = ctx
            .services
            .ledger
            .debit(&ctx.name, &key, &req.customer, &req.amount, &req.currency, &req.reference)
            .await;
        let event = |status, external_id: String, message: Option<String>| PaymentEvent {
            system: BALANCE.into(),
            reference: req.reference.clone(),
            status,
            amount: req.amount.clone(),
            currency: req.currency.clone(),
            external_id,
            saved_method: None,
            message,
        };
        match result {
            Ok(entry) => Ok(event(PaymentStatus::Succeeded, entry.transaction_id, None)),
            Err(LedgerError::InsufficientFunds { balance, .. }) => Ok(event(
                PaymentStatus::Failed,
                String::new(),
                Some(format!("insufficient funds: balance {balance} {}", req.currency)),
            )),
            Err(LedgerError::UnknownAccount(a)) => {
                Ok(event(PaymentStatus::Failed, String::new(), Some(format!("no ledger account `{a}`"))))
            }
            Err(LedgerError::Backend(b)) => Err(Error::Unavailable(format!("ledger: {b}"))),
            Err(other) => Err(Error::Rejected(format!("{other}"))),
        }
    }

    async fn refund_balance(ctx: &InstanceContext, transaction_id: String, amount: Option<String>) -> Result<RefundResult, Error> {
        if amount.is_some() {
            return Err(Error::Rejected("the balance method refunds whole transactions only".into()));
        }
        let key = format!("balance-refund:{transaction_id}");
        let entries = ctx
            .services
            .ledger
            .reverse(&ctx.name, &key, &transaction_id, "refund")
            .await
            .map_err(|e| match e {
                LedgerError::NotReversible(t) => Error::NotFound(t),
                LedgerError::Backend(b) => Error::Unavailable(b),
                other => Error::Rejected(other.to_string()),
            })?;
        let amount = entries.first().map(|e| e.amount.trim_start_matches('-').to_string()).unwrap_or_default();
        Ok(RefundResult { external_id: transaction_id, amount, status: PaymentStatus::Succeeded })
    }

fn unavailable(system: &str, failure: CallFailure) -> Error {
    tracing::warn!(system, %failure, "payment system call failed");
    Error::Unavailable(format!("payment system `{system}`: {}", failure.public_message()))
}
