//! One module per command: its arguments and how it runs and prints.

pub(crate) mod check;
pub(crate) mod drop_slot;
pub(crate) mod explain;
pub(crate) mod follow;
pub(crate) mod list;
pub(crate) mod status;
pub(crate) mod sync;
pub(crate) mod verify;
