//! The mapping catalogue compiled into the `data-sync` binary.
#![warn(missing_docs)]

mod users;

use sync_runtime::Registered;

pub use crate::users::Users;

/// Every compiled-in mapping, in name order.
pub static CATALOGUE: &[Registered] = &[Registered::of::<Users>()];
