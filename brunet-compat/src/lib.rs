//! brunet-compat
#![warn(missing_docs)]

pub mod address;
pub mod wire;
