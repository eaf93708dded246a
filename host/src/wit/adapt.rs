//! Conversions between the generated types of two contract versions.
//!
//! Each WIT version's bindings have their own Rust types, even where the WIT type did
//! not change. `Adapt` converts a value of one version into the other; the macros write
//! the conversions of unchanged records and variants in both directions, field by field,
//! so a type that did change fails to compile until its conversion is written by hand.

/// Converts a value of one contract version's type into another version's.
pub trait Adapt<T> {
    fn adapt(self) -> T;
}

macro_rules! identical {
    ($($t:ty),*) => { $(impl Adapt<$t> for $t { fn adapt(self) -> $t { self } })* };
}
identical!(String, bool, u8, u16, u32, u64, i64, ());

impl<A: Adapt<B>, B> Adapt<Vec<B>> for Vec<A> {
    fn adapt(self) -> Vec<B> {
        self.into_iter().map(Adapt::adapt).collect()
    }
}

impl<A: Adapt<B>, B> Adapt<Option<B>> for Option<A> {
    fn adapt(self) -> Option<B> {
        self.map(Adapt::adapt)
    }
}

impl<A: Adapt<B>, B, E: Adapt<F>, F> Adapt<Result<B, F>> for Result<A, E> {
    fn adapt(self) -> Result<B, F> {
        self.map(Adapt::adapt).map_err(Adapt::adapt)
    }
}

impl<A: Adapt<C>, B: Adapt<D>, C, D> Adapt<(C, D)> for (A, B) {
    fn adapt(self) -> (C, D) {
        (self.0.adapt(), self.1.adapt())
    }
}

/// `same_record!(old, new, iface::Type { fields })`: a record with the same fields in both.
macro_rules! same_record {
    ($old:ident, $new:ident, $iface:ident :: $ty:ident { $($field:ident),* $(,)? }) => {
        impl $crate::wit::adapt::Adapt<$new::$iface::$ty> for $old::$iface::$ty {
            fn adapt(self) -> $new::$iface::$ty {
                $new::$iface::$ty { $($field: $crate::wit::adapt::Adapt::adapt(self.$field)),* }
            }
        }
        impl $crate::wit::adapt::Adapt<$old::$iface::$ty> for $new::$iface::$ty {
            fn adapt(self) -> $old::$iface::$ty {
                $old::$iface::$ty { $($field: $crate::wit::adapt::Adapt::adapt(self.$field)),* }
            }
        }
    };
}

/// `same_variant!(old, new, iface::Type { Case(x), Unit })`: a variant or enum with the
/// same cases in both (a case with a payload is written `Case(x)`).
macro_rules! same_variant {
    ($old:ident, $new:ident, $iface:ident :: $ty:ident { $($case:ident $(($x:ident))?),* $(,)? }) => {
        impl $crate::wit::adapt::Adapt<$new::$iface::$ty> for $old::$iface::$ty {
            fn adapt(self) -> $new::$iface::$ty {
                match self {
                    $($old::$iface::$ty::$case $(($x))? => $new::$iface::$ty::$case $(($crate::wit::adapt::Adapt::adapt($x)))?),*
                }
            }
        }
        impl $crate::wit::adapt::Adapt<$old::$iface::$ty> for $new::$iface::$ty {
            fn adapt(self) -> $old::$iface::$ty {
                match self {
                    $($new::$iface::$ty::$case $(($x))? => $old::$iface::$ty::$case $(($crate::wit::adapt::Adapt::adapt($x)))?),*
                }
            }
        }
    };
}

pub(crate) use {same_record, same_variant};
