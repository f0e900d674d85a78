//! Arbitrary sequences of inputs to a few ring nodes (links up and down, messages
//! delivered, duplicated, dropped or mangled, time jumps, application calls): no panic.
#![no_main]

use brunet_compat::sim::ops::run_ops;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| run_ops(data));
