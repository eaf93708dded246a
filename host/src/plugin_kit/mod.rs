//! The third-party plugin kit: `payhost plugin new` (a crate outside this workspace)
//! and `payhost plugin check` (a component against an operator's config).

pub mod check;
pub mod new;
