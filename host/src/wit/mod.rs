//! The compiled WIT contract, on the ground floor: the `bindgen!` output (one file per
//! served WIT version) and the package name and versions this host serves. Every module
//! that speaks the contract imports it from here; this module imports nothing of the host
//! but the capability state the older versions' adapters delegate through.
//!
//! `wit/` is the current contract (`v0_2`, re-exported here and as `latest`); each older
//! version still served is frozen under `wit/since_vX.Y.Z/` and has one file here that
//! adapts its imports and exports onto the current implementation (`since_v0_1`). The
//! versioning policy is in the README under "Contract versions".

pub mod adapt;
pub mod since_v0_1;
mod v0_2;

pub use v0_2::{
    checkout, clock, deliveries, http, ledger, log, payment_system, payments, provider, settings, signing, store,
    timers, types,
};

/// The current contract's bindings, under the names the adapters use.
pub mod latest {
    pub use super::v0_2::payment_system::exports::payhost::gateway::processor;
    pub use super::v0_2::{
        checkout, clock, deliveries, http, ledger, log, payment_system, payments, provider, settings, signing, store,
        timers, types,
    };
}

/// The WIT package this host implements.
pub const WIT_PACKAGE: &str = payhost_wit::PACKAGE;
/// The current version, from the contract's own `package` line (`wit/worlds.wit`).
pub const WIT_VERSION: &str = payhost_wit::VERSION;

/// A contract version a component may be built against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Contract {
    /// `payhost:gateway@0.1.0`, frozen in `wit/since_v0.1.0/`, adapted by `since_v0_1`.
    V0_1,
    /// `payhost:gateway@0.2.x`, the current `wit/`.
    V0_2,
}

impl Contract {
    /// Every served version, oldest first; the last is the current one.
    pub const SERVED: [Contract; 2] = [Contract::V0_1, Contract::V0_2];

    /// The newest version text of each served contract (what a component may name).
    pub fn version(self) -> &'static str {
        match self {
            Contract::V0_1 => "0.1.0",
            Contract::V0_2 => WIT_VERSION,
        }
    }

    /// Whether this is the current contract (no adapter).
    pub fn is_current(self) -> bool {
        self == Self::SERVED[Self::SERVED.len() - 1]
    }

    /// The served contract a component built against `version` runs on: the same
    /// `0.minor` (or, from 1.0, the same major) at a patch no newer than this host's.
    pub fn for_version(version: &str) -> Option<Contract> {
        let (major, minor, patch) = parse(version)?;
        Self::SERVED.into_iter().find(|c| {
            let (m, n, p) = parse(c.version()).expect("served versions are valid");
            if m == 0 {
                major == 0 && minor == n && patch <= p
            } else {
                major == m && (minor, patch) <= (n, p)
            }
        })
    }

    /// The refusal for a component built against a version this host does not serve.
    pub fn unsupported(version: &str) -> String {
        let served: Vec<String> = Self::SERVED.iter().map(|c| format!("{WIT_PACKAGE}@{}", c.version())).collect();
        format!(
            "the component was built against {WIT_PACKAGE}@{version}, which this host does not serve; it serves {}. \
             Rebuild the plugin against one of them (payhost-sdk builds against the newest)",
            served.join(" and ")
        )
    }
}

fn parse(version: &str) -> Option<(u64, u64, u64)> {
    let mut it = version.split('.');
    let v = (it.next()?.parse().ok()?, it.next()?.parse().ok()?, it.next()?.parse().ok()?);
    it.next().is_none().then_some(v)
}

#[cfg(test)]
mod tests {
    use super::{Contract, WIT_VERSION};

    #[test]
    fn the_current_contract_is_the_one_in_wit() {
        // A new minor in `wit/worlds.wit` needs a `since_v0_2` adapter and a new variant.
        assert!(WIT_VERSION.starts_with("0.2."), "wit/ is at {WIT_VERSION}; freeze 0.2 and add its adapter");
        assert!(Contract::V0_2.is_current());
    }

    #[test]
    fn components_run_on_the_contract_of_their_minor() {
        assert_eq!(Contract::for_version("0.1.0"), Some(Contract::V0_1));
        // An older patch of the current minor runs on the same linker (wasmtime resolves
        // `@0.2.0` and `@0.2.1` imports and exports to the `@0.2.2` definitions).
        assert_eq!(Contract::for_version("0.2.0"), Some(Contract::V0_2));
        assert_eq!(Contract::for_version("0.2.1"), Some(Contract::V0_2));
        assert_eq!(Contract::for_version("0.2.2"), Some(Contract::V0_2));
        // A newer patch of 0.2 may import what this host does not have yet.
        assert_eq!(Contract::for_version("0.2.3"), None);
        assert_eq!(Contract::for_version("0.3.0"), None);
        assert_eq!(Contract::for_version("1.0.0"), None);
        assert_eq!(Contract::for_version("0.2"), None);
        assert_eq!(Contract::for_version("garbage"), None);
    }

    #[test]
    fn the_refusal_names_the_version_and_the_served_ones() {
        let message = Contract::unsupported("0.9.0");
        assert!(message.contains("payhost:gateway@0.9.0"), "{message}");
        assert!(message.contains("payhost:gateway@0.1.0 and payhost:gateway@0.2.2"), "{message}");
    }
}
