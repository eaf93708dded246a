//! The generated bindings for both worlds, in one place.
//!
//! `provider` is generated here; `payment_system` reuses its imports through `with`,
//! so the two worlds share one set of import types.

wit_bindgen::generate!({
    world: "provider",
    path: "../../wit",
    pub_export_macro: true,
    export_macro_name: "export_provider",
    default_bindings_module: "payhost_sdk::bindings",
    generate_all,
});

/// Bindings of the `payment-system` world, for card payment-system plugins.
pub mod payment_system {
    wit_bindgen::generate!({
        world: "payment-system",
        path: "../../wit",
        pub_export_macro: true,
        export_macro_name: "export_payment_system",
        default_bindings_module: "payhost_sdk::bindings::payment_system",
        with: {
            "payhost:gateway/types@0.1.0": crate::bindings::payhost::gateway::types,
            "payhost:gateway/signing@0.1.0": crate::bindings::payhost::gateway::signing,
            "payhost:gateway/http@0.1.0": crate::bindings::payhost::gateway::http,
            "payhost:gateway/store@0.1.0": crate::bindings::payhost::gateway::store,
            "payhost:gateway/clock@0.1.0": crate::bindings::payhost::gateway::clock,
            "payhost:gateway/log@0.1.0": crate::bindings::payhost::gateway::log,
            "payhost:gateway/settings@0.1.0": crate::bindings::payhost::gateway::settings,
            "payhost:gateway/payments@0.1.0": crate::bindings::payhost::gateway::payments,
        },
    });
}
