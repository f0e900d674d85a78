//! Typed link messages over ADR: never panic; `from_adr(to_adr(m)) == m`.
#![no_main]

use brunet_compat::wire::adr::{self, Adr};
use brunet_compat::wire::link::{
    CloseMessage, ConnectToMessage, LinkMessage, LinkRequest, NodeInfo, StatusMessage,
};
use brunet_compat::wire::rpc::RpcCall;
use libfuzzer_sys::fuzz_target;

/// Decodes with `from`, and if that works checks the typed value survives a round trip.
fn stable<T: PartialEq + std::fmt::Debug, E>(
    v: &Adr,
    from: impl Fn(&Adr) -> Result<T, E>,
    to: impl Fn(&T) -> Adr,
) {
    if let Ok(m) = from(v) {
        let again = to(&m);
        again.to_bytes().expect("typed messages encode");
        assert!(from(&again).ok() == Some(m));
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(v) = adr::parse_exact(data) else {
        return;
    };
    stable(&v, NodeInfo::from_adr, NodeInfo::to_adr);
    stable(&v, LinkMessage::from_adr, LinkMessage::to_adr);
    stable(&v, StatusMessage::from_adr, StatusMessage::to_adr);
    stable(&v, ConnectToMessage::from_adr, ConnectToMessage::to_adr);
    stable(&v, CloseMessage::from_adr, CloseMessage::to_adr);
    if let Ok(call) = RpcCall::from_adr(&v) {
        if let Ok(Some(req)) = LinkRequest::from_call(&call) {
            // Compared as bytes: a Ping may echo NaN, which is not equal to itself.
            let bytes = |r: &LinkRequest| r.to_call().to_adr().to_bytes().ok();
            let again = LinkRequest::from_call(&req.to_call());
            assert_eq!(again.ok().flatten().as_ref().map(bytes), Some(bytes(&req)));
        }
    }
});
