//! brunet-compat
