//! chamber: a private, encrypted, self-organising overlay of friends, bootstrapped from the XMPP
//! accounts they already have. See `docs/architecture.md` for the layers.
pub mod account;
pub mod api;
pub mod brunet;
pub mod cli;
pub mod config;
pub mod control;
pub mod keystore;
pub mod link;
pub mod membership;
pub mod node;
pub mod picture;
pub mod reflect;
pub mod rendezvous;
pub mod runtime;
pub mod services;
pub mod signal;
pub mod trust;
pub mod warm;
