//! The admin API's OpenAPI 3.1 document, generated with `utoipa` from the handlers'
//! request and answer types, served at `GET /openapi.json`. Every operation also
//! documents a `default` error answer: all routes share the `AdminError` shape.

use serde::Serialize;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{RefOr, Response, ResponseBuilder};
use utoipa::{Modify, OpenApi, ToSchema};

use super::{accounts, audit, control, janitor, jobs, metrics, plugins, AdminError};

/// `GET /clock`.
#[derive(Serialize, ToSchema)]
pub struct ClockView {
    /// Host clock, ms since the Unix epoch.
    pub now_ms: i64,
    /// Whether `POST /clock/advance` may move it (`runtime.manual_clock`).
    pub manual: bool,
}

/// Body of `POST /clock/advance`.
#[derive(serde::Deserialize, ToSchema)]
pub struct Advance {
    /// Seconds to move the host clock forward.
    #[schema(minimum = 0, maximum = 315360000)]
    pub seconds: i64,
}

/// `POST /clock/advance`.
#[derive(Serialize, ToSchema)]
pub struct Advanced {
    pub now_ms: i64,
}

/// `GET /health`.
#[derive(Serialize, ToSchema)]
pub struct Health {
    /// Always `ok`.
    pub status: String,
}

#[utoipa::path(get, path = "/health", tag = "operations", responses((status = 200, description = "The admin API answers", body = Health)))]
pub fn doc_health() {}

#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "Storage answers and every configured instance is loaded", body = crate::health::Readiness),
        (status = 503, description = "Not ready: says what is not", body = crate::health::Readiness),
    ))]
pub fn doc_readyz() {}

#[utoipa::path(get, path = "/clock", tag = "operations", responses((status = 200, description = "The host clock", body = ClockView)))]
pub fn doc_clock() {}

#[utoipa::path(post, path = "/clock/advance", tag = "operations", request_body = Advance,
    responses(
        (status = 200, description = "Moved forward", body = Advanced),
        (status = 400, description = "Malformed body", body = AdminError),
        (status = 409, description = "The clock is the system clock (`runtime.manual_clock` is off), or a negative move", body = AdminError),
    ))]
pub fn doc_advance() {}

#[utoipa::path(get, path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "This document", content_type = "application/json", body = Object)))]
pub fn doc_openapi() {}

#[derive(OpenApi)]
#[openapi(
    info(title = "payhost admin API", description = "Operate a payhost: plugin instances and versions, the ledger, durable jobs, the audit trail, the payment janitor, metrics and health. Every route needs `Authorization: Bearer <token>`; answers are JSON (metrics: OpenMetrics text) and carry `x-request-id`."),
    modifiers(&Conventions),
    paths(
        plugins::doc_list, plugins::doc_reload, plugins::doc_rollback, plugins::doc_config_reload,
        accounts::doc_account, accounts::doc_credit, accounts::doc_debit, accounts::doc_overdraft, accounts::doc_history, accounts::doc_reverse,
        jobs::doc_deliveries, jobs::doc_given_up, jobs::doc_events, jobs::doc_timers,
        control::doc_delivery_retry, control::doc_delivery_cancel, control::doc_event_retry, control::doc_event_cancel,
        control::doc_timer_retry, control::doc_timer_cancel,
        audit::list, janitor::state, metrics::scrape,
        doc_health, doc_readyz, doc_clock, doc_advance, doc_openapi,
    ),
    components(schemas(AdminError)),
    tags(
        (name = "plugins", description = "Instances, versions, reloads"),
        (name = "ledger", description = "Subscriber accounts"),
        (name = "jobs", description = "Deliveries, payment events and timers: lists, retry, cancel"),
        (name = "audit", description = "The audit trail of admin actions"),
        (name = "payments", description = "The janitor for payments with no final outcome"),
        (name = "operations", description = "Health, readiness, metrics, clock"),
    ),
)]
pub struct AdminApi;

/// Bearer security on every operation, and the shared error shape as `default`.
struct Conventions;

impl Modify for Conventions {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("bearer", SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()));
        openapi.security = Some(vec![utoipa::openapi::security::SecurityRequirement::new("bearer", Vec::<String>::new())]);
        let default: RefOr<Response> = ResponseBuilder::new()
            .description("Any other refusal (401 without the token, 404, 405, 413)")
            .content("application/json", utoipa::openapi::ContentBuilder::new().schema(Some(utoipa::openapi::Ref::from_schema_name("AdminError"))).build())
            .build()
            .into();
        for item in openapi.paths.paths.values_mut() {
            for op in [&mut item.get, &mut item.put, &mut item.post, &mut item.delete].into_iter().flatten() {
                op.responses.responses.entry("default".to_string()).or_insert_with(|| default.clone());
            }
        }
    }
}

/// The document as JSON.
pub fn document() -> serde_json::Value {
    serde_json::to_value(AdminApi::openapi()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_is_openapi_3_1_and_lists_every_route() {
        let doc = document();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"), "{}", doc["openapi"]);
        let paths = doc["paths"].as_object().unwrap();
        for path in [
            "/plugins", "/plugins/{name}/reload", "/plugins/{name}/rollback", "/config/reload",
            "/accounts/{id}", "/accounts/{id}/credit", "/accounts/{id}/debit", "/accounts/{id}/overdraft",
            "/accounts/{id}/transactions", "/accounts/{id}/transactions/{tx}/reverse",
            "/deliveries", "/deliveries/given-up", "/events", "/timers",
            "/deliveries/{id}/retry", "/deliveries/{id}/cancel", "/events/{id}/retry", "/events/{id}/cancel",
            "/timers/{id}/retry", "/timers/{id}/cancel", "/audit", "/janitor", "/metrics",
            "/health", "/readyz", "/clock", "/clock/advance", "/openapi.json",
        ] {
            assert!(paths.contains_key(path), "{path} is not documented");
        }
        assert!(doc["components"]["schemas"]["DeliveryView"].is_object());
        assert_eq!(doc["security"][0]["bearer"], serde_json::json!([]));
        assert!(doc["paths"]["/audit"]["get"]["responses"]["default"].is_object());
    }
}
