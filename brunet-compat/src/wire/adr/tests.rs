use super::*;

fn rt(bytes: &[u8]) -> Adr {
    let v = parse_exact(bytes).unwrap();
    assert_eq!(v.to_bytes().unwrap(), bytes, "re-encode {v:?}");
    assert_eq!(v.buffer_len(), bytes.len());
    v
}

#[test]
fn ping_request_from_capture() {
    // #29: ( _"sys:link.Ping" ( _"" ) )
    let v = rt(b"(_sys:link.Ping\0(_\0))");
    assert_eq!(
        v,
        Adr::List(vec![
            Adr::str("sys:link.Ping"),
            Adr::List(vec![Adr::str("")])
        ])
    );
}

#[test]
fn every_scalar_tag() {
    assert_eq!(rt(b"0"), Adr::Null);
    assert_eq!(rt(b"T"), Adr::Bool(true));
    assert_eq!(rt(b"F"), Adr::Bool(false));
    assert_eq!(rt(b"b\xff"), Adr::I8(-1));
    assert_eq!(rt(b"B\xff"), Adr::U8(255));
    assert_eq!(rt(b"s\xff\xfe"), Adr::I16(-2));
    assert_eq!(rt(b"S\xff\xfe"), Adr::U16(65534));
    assert_eq!(rt(b"i\x00\x00\x00\x10"), Adr::I32(16));
    assert_eq!(rt(b"I\xff\xff\xff\xff"), Adr::U32(u32::MAX));
    assert_eq!(rt(b"l\xff\xff\xff\xff\xff\xff\xff\xa0"), Adr::I64(-96));
    assert_eq!(rt(b"L\x80\0\0\0\0\0\0\0"), Adr::U64(1 << 63));
    assert_eq!(rt(b"f\x3f\x80\0\0"), Adr::F32(1.0));
    assert_eq!(rt(b"d\x3f\xf0\0\0\0\0\0\0"), Adr::F64(1.0));
    // NaN payloads survive.
    let nan = b"f\x7f\xc0\x12\x34";
    assert_eq!(parse_exact(nan).unwrap().to_bytes().unwrap(), nan);
    assert_eq!(rt("_héllo\0".as_bytes()), Adr::str("héllo"));
}

#[test]
fn maps_keep_wire_order_and_exceptions() {
    let v = rt(b"{_type\0_leaf\0_nodes\0()_a\0i\0\0\0\x01}");
    let keys: Vec<_> = v
        .as_map()
        .unwrap()
        .iter()
        .map(|(k, _)| k.as_str().unwrap())
        .collect();
    assert_eq!(keys, ["type", "nodes", "a"]);
    assert_eq!(v.get("type").and_then(Adr::as_str), Some("leaf"));
    assert_eq!(v.get("a").and_then(Adr::as_i64), Some(1));
    let x = rt(b"X_message\0_You are me: \0_code\0i\0\0\0\x10x");
    assert_eq!(x.get("code").and_then(Adr::as_i64), Some(16));
    assert!(rt(b"{}").as_map().unwrap().is_empty());
}

#[test]
fn arrays() {
    let mut bytes = b"aB\x14B".to_vec();
    bytes.extend_from_slice(&[7u8; 20]);
    assert_eq!(rt(&bytes), Adr::Bytes(vec![7; 20]));
    assert_eq!(
        rt(b"aB\x02i\0\0\0\x01\xff\xff\xff\xff"),
        Adr::Ints(vec![1, -1])
    );
    let mut long = b"aS\x01\x00B".to_vec();
    long.extend_from_slice(&[1u8; 256]);
    assert_eq!(rt(&long), Adr::Bytes(vec![1; 256]));
    let mut longer = b"aI\x00\x01\x00\x00B".to_vec();
    longer.extend_from_slice(&[2u8; 65536]);
    assert_eq!(rt(&longer), Adr::Bytes(vec![2; 65536]));
}

#[test]
fn malformed_input_gives_typed_errors() {
    assert_eq!(parse(b""), Err(AdrError::Truncated { offset: 0 }));
    assert_eq!(parse(b"i\0\0"), Err(AdrError::Truncated { offset: 0 }));
    assert_eq!(parse(b"_abc"), Err(AdrError::Truncated { offset: 0 }));
    assert_eq!(parse(b"(_a\0"), Err(AdrError::Truncated { offset: 4 }));
    assert_eq!(
        parse(b"?"),
        Err(AdrError::UnknownTag {
            tag: b'?',
            offset: 0
        })
    );
    assert_eq!(
        parse(b"(}"),
        Err(AdrError::UnexpectedTerminator {
            tag: b'}',
            offset: 1
        })
    );
    assert_eq!(
        parse(b"{_k\0}"),
        Err(AdrError::UnexpectedTerminator {
            tag: b'}',
            offset: 4
        })
    );
    assert_eq!(
        parse(b")"),
        Err(AdrError::UnexpectedTerminator {
            tag: b')',
            offset: 0
        })
    );
    assert_eq!(parse(b"_\xff\0"), Err(AdrError::InvalidUtf8 { offset: 0 }));
    assert_eq!(
        parse_exact(b"00"),
        Err(AdrError::TrailingBytes { count: 1 })
    );
}

#[test]
fn absurd_array_lengths_do_not_allocate() {
    // 4 billion elements announced, 0 present.
    assert_eq!(
        parse(b"aI\xff\xff\xff\xffB"),
        Err(AdrError::ArrayTooLong {
            len: u32::MAX.into(),
            limit: 1 << 20
        })
    );
    // Within the limit but beyond the input.
    assert_eq!(
        parse(b"aI\x00\x0f\x00\x00B\x01"),
        Err(AdrError::Truncated { offset: 0 })
    );
    assert_eq!(
        parse(b"ai\x00\x00\x00\x10i"),
        Err(AdrError::BadArrayLength { offset: 1 })
    );
    assert_eq!(
        parse(b"aS\x00\x10B"),
        Err(AdrError::BadArrayLength { offset: 1 })
    );
    assert_eq!(
        parse(b"aB\x01s\0\0"),
        Err(AdrError::UnsupportedArrayType {
            tag: b's',
            offset: 3
        })
    );
}

#[test]
fn deep_nesting_and_value_floods_are_bounded() {
    let deep = vec![b'('; 100_000];
    assert_eq!(parse(&deep), Err(AdrError::TooDeep { limit: 32 }));
    let mut ok = vec![b'('; 32];
    ok.extend(vec![b')'; 32]);
    rt(&ok);
    let mut too_deep = vec![b'('; 33];
    too_deep.extend(vec![b')'; 33]);
    assert_eq!(parse(&too_deep), Err(AdrError::TooDeep { limit: 32 }));
    let limits = AdrLimits {
        max_values: 10,
        ..AdrLimits::default()
    };
    let mut flood = vec![b'('];
    flood.extend(vec![b'0'; 20]);
    flood.push(b')');
    assert_eq!(
        parse_with(&flood, &limits),
        Err(AdrError::TooManyValues { limit: 10 })
    );
}

#[test]
fn truncation_at_every_offset_is_an_error() {
    let full = b"(_sys:link.Start\0({_local\0{_address\0_x\0}_n\0i\0\0\0\x01_a\0aB\x02B\x01\x02}))";
    rt(full);
    for cut in 0..full.len() {
        assert!(parse(&full[..cut]).is_err(), "prefix of {cut} bytes parsed");
    }
}

#[test]
fn nul_in_string_does_not_emit() {
    assert_eq!(Adr::str("a\0b").to_bytes(), Err(EmitError::InteriorNul));
    assert_eq!(
        Adr::map([("k", Adr::str("\0"))]).to_bytes(),
        Err(EmitError::InteriorNul)
    );
}

use crate::wire::EmitError;
