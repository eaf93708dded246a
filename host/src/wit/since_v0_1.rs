//! `payhost:gateway@0.1.0`: components built against the frozen 0.1 contract
//! (`wit/since_v0.1.0/`) keep running on this host unchanged.
//!
//! Here: the 0.1 bindings, the conversions between their types and the current ones
//! (a field 0.2 added gets the value that means "not used": no secret query parameters,
//! no host settings), and the 0.1 exports called with their results in current types.
//! The 0.1 imports are `crate::capabilities::since_v0_1`: each the current
//! implementation, reached through these conversions. When the contract moves on, this
//! file keeps adapting 0.1 onto whatever is current; the frozen WIT never changes.

use wasmtime::Store;

use super::adapt::Adapt;
use super::latest as new;

/// The `provider` world as 0.1.0 defined it.
pub mod provider {
    wasmtime::component::bindgen!({
        world: "provider",
        path: "../wit/since_v0.1.0",
        imports: {
            "payhost:gateway/http": async,
            "payhost:gateway/store": async,
            "payhost:gateway/ledger": async,
            "payhost:gateway/timers": async,
            "payhost:gateway/deliveries": async,
            "payhost:gateway/checkout": async,
        },
        exports: { default: async },
    });
}

/// The `payment-system` world as 0.1.0 defined it, sharing the 0.1 provider's imports.
pub mod payment_system {
    wasmtime::component::bindgen!({
        world: "payment-system",
        path: "../wit/since_v0.1.0",
        exports: { default: async },
        with: {
            "payhost:gateway/types": super::provider::payhost::gateway::types,
            "payhost:gateway/signing": super::provider::payhost::gateway::signing,
            "payhost:gateway/http": super::provider::payhost::gateway::http,
            "payhost:gateway/store": super::provider::payhost::gateway::store,
            "payhost:gateway/clock": super::provider::payhost::gateway::clock,
            "payhost:gateway/log": super::provider::payhost::gateway::log,
            "payhost:gateway/settings": super::provider::payhost::gateway::settings,
            "payhost:gateway/payments": super::provider::payhost::gateway::payments,
        },
    });
}

/// The 0.1 types under short names, for the conversions below.
pub mod old {
    pub use super::payment_system::exports::payhost::gateway::processor;
    pub use super::provider::payhost::gateway::{
        checkout, clock, deliveries, http, ledger, log, payments, settings, signing, store, timers, types,
    };
}

pub use payment_system::{PaymentSystem, PaymentSystemPre};
pub use provider::{Provider, ProviderPre};

// ---- types that did not change: converted field by field, both ways ----

super::adapt::same_record!(old, new, types::Request { id, method, path, query, headers, body, remote_addr });
super::adapt::same_record!(old, new, types::Response { status, headers, body });
super::adapt::same_record!(old, new, types::SettingSpec { name, required, description });
super::adapt::same_variant!(old, new, signing::HmacAlgorithm { Sha256, Sha1 });
super::adapt::same_variant!(old, new, signing::DigestAlgorithm { Sha256, Sha1, Md5 });
super::adapt::same_variant!(old, new, signing::Part { Text(x), Bytes(x), Secret(x) });
super::adapt::same_variant!(old, new, signing::Error { NotGranted(x), InvalidEncoding(x) });
super::adapt::same_record!(old, new, http::Response { status, headers, body });
super::adapt::same_variant!(old, new, http::Error { Denied(x), Timeout, Connect(x), TooLarge(x), InvalidRequest(x) });
super::adapt::same_variant!(old, new, store::Error { TooLarge(x), Backend(x) });
super::adapt::same_record!(old, new, clock::Instant { seconds, nanoseconds });
super::adapt::same_variant!(old, new, log::Level { Trace, Debug, Info, Warn, Error });
super::adapt::same_record!(old, new, ledger::Account { id, currency, balance, overdraft_limit });
super::adapt::same_variant!(old, new, ledger::EntryKind { Credit, Debit, Reversal });
super::adapt::same_record!(old, new, ledger::Entry { transaction_id, account, kind, amount, currency, balance_after, reference, at });
super::adapt::same_record!(old, new, ledger::DebitLine { account, amount, reference });
super::adapt::same_record!(old, new, ledger::Shortfall { account, balance, requested });
super::adapt::same_variant!(old, new, ledger::Error {
    InsufficientFunds(x), UnknownAccount(x), CurrencyMismatch(x), InvalidAmount(x), UnknownCurrency(x),
    IdempotencyConflict(x), NotReversible(x), Backend(x)
});
super::adapt::same_variant!(old, new, timers::Error { Invalid(x), Backend(x) });
super::adapt::same_record!(old, new, deliveries::Delivery { method, url, headers, body, max_attempts });
super::adapt::same_variant!(old, new, deliveries::Error { Denied(x), Invalid(x), Backend(x) });
super::adapt::same_variant!(old, new, payments::PaymentStatus { Succeeded, Failed, Pending });
super::adapt::same_record!(old, new, payments::CheckoutRequest { amount, currency, description, reference, return_url, customer, save_card });
super::adapt::same_record!(old, new, payments::Checkout { id, redirect_url });
super::adapt::same_record!(old, new, payments::ChargeRequest { amount, currency, description, reference, customer, saved_method });
super::adapt::same_record!(old, new, payments::PaymentEvent { system, reference, status, amount, currency, external_id, saved_method, message });
super::adapt::same_record!(old, new, payments::RefundResult { external_id, amount, status });
super::adapt::same_variant!(old, new, payments::Error {
    UnknownSystem(x), Rejected(x), Unavailable(x), NotFound(x), BadSignature(x), InsufficientFunds(x), Other(x)
});

// ---- types 0.2 extended: the new fields get their "not used" value ----

impl Adapt<new::http::Request> for old::http::Request {
    fn adapt(self) -> new::http::Request {
        new::http::Request {
            method: self.method,
            url: self.url,
            headers: self.headers,
            secret_headers: self.secret_headers,
            secret_query: Vec::new(),
            body: self.body,
            timeout_ms: self.timeout_ms,
        }
    }
}

impl Adapt<new::types::PluginInfo> for old::types::PluginInfo {
    fn adapt(self) -> new::types::PluginInfo {
        new::types::PluginInfo {
            name: self.name,
            version: self.version,
            description: self.description,
            secrets: self.secrets,
            hosts: self.hosts,
            host_settings: Vec::new(),
            settings: self.settings.adapt(),
        }
    }
}

impl Adapt<new::processor::Webhook> for old::processor::Webhook {
    fn adapt(self) -> new::processor::Webhook {
        new::processor::Webhook { response: self.response.adapt(), events: self.events.adapt() }
    }
}

// ---- exports: the 0.1 functions called, their results in current types ----

pub async fn describe_provider<T: Send>(bindings: &Provider, store: &mut Store<T>) -> wasmtime::Result<new::types::PluginInfo> {
    Ok(bindings.payhost_gateway_plugin().call_describe(store).await?.adapt())
}

pub async fn on_timer<T: Send>(bindings: &Provider, store: &mut Store<T>, name: &str, payload: &[u8]) -> wasmtime::Result<Result<(), String>> {
    bindings.payhost_gateway_events().call_on_timer(store, name, payload).await
}

pub async fn on_payment_event<T: Send>(
    bindings: &Provider,
    store: &mut Store<T>,
    event: new::payments::PaymentEvent,
) -> wasmtime::Result<Result<(), String>> {
    let event: old::payments::PaymentEvent = event.adapt();
    bindings.payhost_gateway_events().call_on_payment_event(store, &event).await
}

/// The 0.1 `processor` export, answering in current types.
pub struct Processor(pub PaymentSystem);

impl Processor {
    pub async fn describe<T: Send>(&self, store: &mut Store<T>) -> wasmtime::Result<new::types::PluginInfo> {
        Ok(self.0.payhost_gateway_processor().call_describe(store).await?.adapt())
    }

    pub async fn start_checkout<T: Send>(
        &self,
        store: &mut Store<T>,
        req: new::payments::CheckoutRequest,
    ) -> wasmtime::Result<Result<new::payments::Checkout, new::payments::Error>> {
        let req: old::payments::CheckoutRequest = req.adapt();
        Ok(self.0.payhost_gateway_processor().call_start_checkout(store, &req).await?.adapt())
    }

    pub async fn parse_webhook<T: Send>(
        &self,
        store: &mut Store<T>,
        req: new::types::Request,
    ) -> wasmtime::Result<Result<new::processor::Webhook, new::payments::Error>> {
        let req: old::types::Request = req.adapt();
        Ok(self.0.payhost_gateway_processor().call_parse_webhook(store, &req).await?.adapt())
    }

    pub async fn lookup_payment<T: Send>(
        &self,
        store: &mut Store<T>,
        external_id: &str,
    ) -> wasmtime::Result<Result<new::payments::PaymentEvent, new::payments::Error>> {
        Ok(self.0.payhost_gateway_processor().call_lookup_payment(store, external_id).await?.adapt())
    }

    pub async fn charge<T: Send>(
        &self,
        store: &mut Store<T>,
        req: new::payments::ChargeRequest,
    ) -> wasmtime::Result<Result<new::payments::PaymentEvent, new::payments::Error>> {
        let req: old::payments::ChargeRequest = req.adapt();
        Ok(self.0.payhost_gateway_processor().call_charge(store, &req).await?.adapt())
    }

    pub async fn refund<T: Send>(
        &self,
        store: &mut Store<T>,
        external_id: &str,
        amount: Option<&str>,
    ) -> wasmtime::Result<Result<new::payments::RefundResult, new::payments::Error>> {
        Ok(self.0.payhost_gateway_processor().call_refund(store, external_id, amount).await?.adapt())
    }
}
