//! Writes the `payment-system` world's `generate!` call, whose `with` keys must name the
//! WIT package version literally: the version comes from `payhost-wit` (the contract's
//! own `package` line), so bumping it in `wit/worlds.wit` is the only edit.

use std::fmt::Write as _;

const SHARED: [&str; 8] = ["types", "signing", "http", "store", "clock", "log", "settings", "payments"];

fn main() {
    let (package, version) = (payhost_wit::PACKAGE, payhost_wit::VERSION);
    let mut with = String::new();
    for iface in SHARED {
        let _ = writeln!(with, "        \"{package}/{iface}@{version}\": crate::bindings::payhost::gateway::{iface},");
    }
    let source = format!(
        "wit_bindgen::generate!({{\n    world: \"payment-system\",\n    path: \"../../wit\",\n    pub_export_macro: true,\n    \
         export_macro_name: \"export_payment_system\",\n    default_bindings_module: \"payhost_sdk::bindings::payment_system\",\n    \
         with: {{\n{with}    }},\n}});\n"
    );
    let out = std::path::Path::new(&std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("payment_system.rs");
    std::fs::write(&out, source).expect("write the payment-system bindings call");
    println!("cargo:rerun-if-changed=build.rs");
}
