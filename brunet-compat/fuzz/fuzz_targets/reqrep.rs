//! ReqRep header and the RPC framing inside it: never panic, re-encode exactly.
#![no_main]

use brunet_compat::wire::reqrep::{HEADER_LEN, ReqRepPacket, ReqRepRepr};
use brunet_compat::wire::rpc::{self, RpcCall, RpcException};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(packet) = ReqRepPacket::new_checked(data) else {
        return;
    };
    let repr = ReqRepRepr::parse(&packet);
    let mut out = Vec::new();
    repr.emit(&mut out);
    assert_eq!(out, &data[..HEADER_LEN]);
    if let Ok(value) = rpc::parse(packet.body()) {
        let mut again = Vec::new();
        rpc::emit(&value, &mut again).expect("decoded values re-encode");
        assert_eq!(again, packet.body());
        if let Ok(call) = RpcCall::from_adr(&value) {
            // Compared as bytes: values may hold NaN, which is not equal to itself.
            assert_eq!(call.to_adr().to_bytes().ok(), value.to_bytes().ok());
        }
        if let Some(Ok(x)) = RpcException::from_adr(&value) {
            assert_eq!(RpcException::from_adr(&x.to_adr()), Some(Ok(x)));
        }
    }
});
