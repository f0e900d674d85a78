use super::*;
use crate::address::Address;
use crate::wire::adr;
use crate::wire::ta::TransportAddress;

const H3US: &str = "brunet:node:H3US32RQ7LDDQ464ZJKMP2VWX6LANY5O";
const C7CZ: &str = "brunet:node:C7CZHL4LZOS3GJ5EG5UBMSHCDY3CG7IS";

fn addr(s: &str) -> Address {
    s.parse().unwrap()
}

fn ta(s: &str) -> TransportAddress {
    s.parse().unwrap()
}

/// #35's LinkMessage as Brunet wrote it.
fn start_35() -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(b"{_local\0{_address\0_");
    b.extend_from_slice(H3US.as_bytes());
    b.extend_from_slice(b"\0_transports\0(_brunet.udp://127.0.0.1:15000\0)}");
    b.extend_from_slice(b"_remote\0{_address\0_");
    b.extend_from_slice(C7CZ.as_bytes());
    b.extend_from_slice(b"\0_transports\0(_brunet.udp://127.0.0.1:15002\0)}");
    b.extend_from_slice(b"_token\0_");
    b.extend_from_slice(C7CZ.as_bytes());
    b.extend_from_slice(b"\0_realm\0_LoopbackRing\0_type\0_structured.near\0}");
    b
}

#[test]
fn link_message_round_trips_byte_exact() {
    let bytes = start_35();
    let v = adr::parse_exact(&bytes).unwrap();
    let lm = LinkMessage::from_adr(&v).unwrap();
    assert_eq!(lm.connection_type, "structured.near");
    assert_eq!(lm.realm.as_deref(), Some("LoopbackRing"));
    assert_eq!(lm.local.as_ref().unwrap().address, Some(addr(H3US)));
    assert_eq!(
        lm.remote.as_ref().unwrap().transports,
        vec![ta("brunet.udp://127.0.0.1:15002")]
    );
    assert!(lm.attributes.is_empty());
    assert_eq!(lm.to_adr().to_bytes().unwrap(), bytes);

    let call = RpcCall::new(method::START, vec![v]);
    let req = LinkRequest::from_call(&call).unwrap().unwrap();
    assert_eq!(req, LinkRequest::Start(lm));
    assert_eq!(req.to_call(), call);
}

#[test]
fn status_ctm_close_round_trip() {
    let status = StatusMessage {
        neighbor_type: "structured.near".into(),
        neighbors: vec![NodeInfo::address_only(addr(H3US))],
    };
    let ctm = ConnectToMessage {
        connection_type: "structured.near".into(),
        target: NodeInfo {
            address: Some(addr(C7CZ)),
            transports: vec![
                ta("brunet.udp://127.0.0.1:15002/"),
                ta("brunet.tunnel://C7CZHL4LZOS3GJ5EG5UBMSHCDY3CG7IS/"),
            ],
        },
        token: C7CZ.into(),
        neighbors: vec![],
    };
    let close = CloseMessage {
        reason: "From LeafCO, too many leaf connections.".into(),
    };
    for req in [
        LinkRequest::GetStatus(status),
        LinkRequest::ConnectTo(ctm),
        LinkRequest::Close(close),
        LinkRequest::Ping(Adr::str("")),
        LinkRequest::GetNeighbors,
        LinkRequest::GetNodeInfo,
        LinkRequest::GetLocalIpAddresses,
    ] {
        let bytes = req.to_call().to_adr().to_bytes().unwrap();
        let back = RpcCall::from_adr(&adr::parse_exact(&bytes).unwrap()).unwrap();
        assert_eq!(LinkRequest::from_call(&back).unwrap(), Some(req));
    }
    let status_bytes = b"{_neighbors\0{_type\0_leaf\0_nodes\0()}}";
    let v = adr::parse_exact(status_bytes).unwrap();
    assert_eq!(
        StatusMessage::from_adr(&v)
            .unwrap()
            .to_adr()
            .to_bytes()
            .unwrap(),
        status_bytes
    );
}

#[test]
fn error_codes() {
    for c in [
        3, 16, 17, 18, 19, 20, 21, -32600, -32601, -32602, -32603, -32608, 2001, 77,
    ] {
        assert_eq!(i32::from(ErrorCode::from(c)), c);
    }
    let x = ErrorCode::AlreadyConnected.exception("We are already connected: x");
    assert_eq!(x.code, Some(18));
    assert_eq!(ErrorCode::of(&x), Some(ErrorCode::AlreadyConnected));
    assert_eq!(ErrorCode::from(-32608), ErrorCode::MethodThrew);
}

#[test]
fn malformed_messages_give_typed_errors() {
    let not_link = RpcCall::new("tunnel.RequestSync", vec![]);
    assert_eq!(LinkRequest::from_call(&not_link), Ok(None));
    let no_args = RpcCall::new(method::START, vec![]);
    assert_eq!(
        LinkRequest::from_call(&no_args),
        Err(LinkError::WrongArgs(method::START))
    );
    let bad = |v: Adr| LinkMessage::from_adr(&v).unwrap_err();
    assert_eq!(bad(Adr::Null), LinkError::NotAMap("LinkMessage"));
    assert_eq!(
        bad(Adr::map([("realm", Adr::str("r"))])),
        LinkError::Missing("type")
    );
    assert_eq!(
        bad(Adr::map([("type", Adr::I32(1))])),
        LinkError::WrongType("type")
    );
    let bad_addr = Adr::map([("address", Adr::str("brunet:node:XX"))]);
    assert!(matches!(
        NodeInfo::from_adr(&bad_addr),
        Err(LinkError::Address(_))
    ));
    let bad_ta = Adr::map([("transports", Adr::List(vec![Adr::str("brunet.udp://x")]))]);
    assert!(matches!(NodeInfo::from_adr(&bad_ta), Err(LinkError::Ta(_))));
    assert_eq!(
        StatusMessage::from_adr(&Adr::map([("neighbors", Adr::Null)])),
        Err(LinkError::NotAMap("neighbors"))
    );
    assert_eq!(
        ConnectToMessage::from_adr(&Adr::map([("type", Adr::str("x"))])),
        Err(LinkError::Missing("target"))
    );
}
