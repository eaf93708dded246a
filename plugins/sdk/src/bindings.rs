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

/// Bindings of the `payment-system` world, for card payment-system plugins. The
/// `generate!` call is written by `build.rs`, because its `with` keys carry the WIT
/// version, which only `wit/worlds.wit` states.
pub mod payment_system {
    include!(concat!(env!("OUT_DIR"), "/payment_system.rs"));
}
