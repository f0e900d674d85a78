//! brunet-compat
#![warn(missing_docs)]

pub mod address;
pub mod profile;
pub mod ring;
pub mod sim;
pub mod wire;
