//! Unit tests for reflection, against an in-process STUN responder on 127.0.0.1.

mod nat_tests;
mod report_tests;
mod responder;
mod stun_tests;
mod turn_cache_tests;
