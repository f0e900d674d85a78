//! brunet-compat
#![warn(missing_docs)]

pub mod address;
