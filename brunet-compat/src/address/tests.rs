//! Address, metric and text-form tests (Brunet's `AHAddressTester` invariants, capture addresses).

use super::*;

const H3US: &str = "brunet:node:H3US32RQ7LDDQ464ZJKMP2VWX6LANY5O";
const C7CZ: &str = "brunet:node:C7CZHL4LZOS3GJ5EG5UBMSHCDY3CG7IS";
const ENMD: &str = "brunet:node:ENMDPEQE42FAH2ADVH2H6GI3VTFARX24";
const VGGE: &str = "brunet:node:VGGE77EI2YNVUGAYH73K7YRGIJ3I2XGU";
const M23: &str = "brunet:node:6M23YUPWFOORDQLE4FLSLLOEYW2KCCFS";

fn addr(s: &str) -> Address {
    s.parse().unwrap()
}

fn tail(x: u8) -> Address {
    let mut b = [0u8; 20];
    b[19] = x;
    Address::from_bytes(b)
}

fn top(x: u8) -> Address {
    let mut b = [0xffu8; 20];
    b[19] = x;
    Address::from_bytes(b)
}

#[test]
fn capture_text_forms_round_trip() {
    let a = addr(H3US);
    assert_eq!(&a.as_bytes()[..4], &[0x3e, 0xe9, 0x2d, 0xea]);
    assert_eq!(&a.as_bytes()[17..], &[0x06, 0xe3, 0xae]);
    for s in [H3US, C7CZ, ENMD, VGGE, M23] {
        let a = addr(s);
        assert_eq!(a.to_string(), s);
        assert!(a.is_ah());
        assert_eq!(a.class(), 0);
    }
    assert_eq!(&addr(M23).as_bytes()[..4], &[0xf3, 0x35, 0xbc, 0x51]);
    assert_eq!(&addr(VGGE).as_bytes()[17..], &[0x8d, 0x5c, 0xd4]);
}

#[test]
fn parse_accepts_urn_and_lower_case() {
    let a = addr(H3US);
    assert_eq!(addr(&format!("urn:{H3US}")), a);
    assert_eq!(addr(&H3US.to_lowercase()), a);
    assert_eq!(addr("URN:Brunet:Node:h3us32rq7lddq464zjkmp2vwx6lany5o"), a);
}

#[test]
fn parse_errors_are_typed() {
    assert_eq!(
        "node:AAAA".parse::<Address>(),
        Err(AddressError::MissingPrefix)
    );
    assert_eq!(
        "brunet:node:AAAA".parse::<Address>(),
        Err(AddressError::WrongTextLength(4))
    );
    let bad = format!("brunet:node:{}1", "A".repeat(31));
    assert_eq!(bad.parse::<Address>(), Err(AddressError::InvalidBase32(31)));
    let multibyte = format!("brunet:node:{}é", "A".repeat(30));
    assert_eq!(
        multibyte.parse::<Address>(),
        Err(AddressError::InvalidBase32(30))
    );
    assert_eq!(
        Address::from_slice(&[0; 19]),
        Err(AddressError::WrongLength(19))
    );
    assert!(Address::from_slice(&[0; 20]).is_ok());
}

#[test]
fn order_matches_capture_ring() {
    let mut v: Vec<Address> = [H3US, C7CZ, ENMD, VGGE, M23].map(addr).to_vec();
    v.sort();
    assert_eq!(v, [C7CZ, ENMD, H3US, VGGE, M23].map(addr).to_vec());
}

#[test]
fn classes() {
    assert_eq!(tail(0x0a).class(), 0);
    assert_eq!(tail(0x01).class(), 1);
    assert_eq!(tail(0x07).class(), 3);
    let mut b = [0u8; 20];
    b[19] = 0xff;
    b[18] = 0x03;
    assert_eq!(Address::from_bytes(b).class(), 10);
    assert_eq!(Address::from_bytes([0xff; 20]).class(), 160);
    assert_eq!(Address::ah([0xff; 20]).class(), 0);
}

#[test]
fn directional_addresses() {
    for dir in [Direction::Left, Direction::Right] {
        let a = Address::directional(dir);
        assert_eq!(a.class(), 124);
        assert_eq!(a.direction(), Some(dir));
        assert_eq!(&a.as_bytes()[..4], &(dir as i32).to_be_bytes());
        // bit 124 is the top bit of the low nibble of byte 4: it must be zero.
        assert_eq!(a.as_bytes()[4], 0x0f);
        assert!(a.as_bytes()[5..].iter().all(|&b| b == 0xff));
    }
    assert_eq!(addr(H3US).direction(), None);
}

#[test]
fn brunet_unit_test_distance() {
    // AHAddressTester: ...0a is left of ff..fe, distance twelve.
    let a1 = tail(0x0a);
    let a2 = top(0xfe);
    assert!(a1.is_left_of(&a2));
    assert!(a2.is_right_of(&a1));
    assert_eq!(
        a2.distance_to(&a1),
        Distance::from_twos_complement(RingInt::from_u128(12))
    );
    assert_eq!(a1.distance_to(&a2).signum(), -1);
    assert_eq!(a1.distance_to(&a2).abs(), RingInt::from_u128(12));
    assert!(a1 < a2);
}

#[test]
fn distance_range_is_half_open() {
    let zero = Address::from_bytes([0; 20]);
    let half = Address::from_ring_int(RingInt::HALF);
    // Exactly half way is −2^159 from either side.
    assert_eq!(zero.distance_to(&half), Distance::MIN);
    assert_eq!(half.distance_to(&zero), Distance::MIN);
    assert_eq!(Distance::MIN.abs(), RingInt::HALF);
    let below = half.wrapping_sub(RingInt::ONE);
    assert!(zero.distance_to(&below).is_positive());
    assert!(Distance::MIN < zero.distance_to(&below));
    assert!(Distance::MIN < Distance::ZERO);
    assert_eq!(zero.distance_to(&zero), Distance::ZERO);
}

#[test]
fn one_way_distances_wrap() {
    let lo = tail(4);
    let hi = top(0xfe); // 2^160 − 2
    assert_eq!(hi.left_distance_to(&lo), RingInt::from_u128(6));
    assert_eq!(lo.right_distance_to(&hi), RingInt::from_u128(6));
    assert_eq!(
        lo.left_distance_to(&hi),
        RingInt::MAX.wrapping_sub(RingInt::from_u128(5))
    );
    assert_eq!(lo.left_distance_to(&lo), RingInt::ZERO);
    assert_eq!(hi.wrapping_add(RingInt::from_u128(6)), lo);
    assert_eq!(lo.wrapping_sub(RingInt::from_u128(6)), hi);
}

#[test]
fn own_address_plus_two_as_in_capture() {
    // #22: forwarding target is H3US…e3ae + 2 = …e3b0.
    let target = addr(H3US).wrapping_add(RingInt::from_u128(2));
    assert_eq!(&target.as_bytes()[18..], &[0xe3, 0xb0]);
    assert_eq!(&target.as_bytes()[..18], &addr(H3US).as_bytes()[..18]);
}

#[test]
fn between_is_wrap_aware_and_open() {
    let (a, b, c) = (tail(2), tail(10), top(0xf0));
    assert!(tail(4).is_between_from_left(&a, &b));
    assert!(!a.is_between_from_left(&a, &b));
    assert!(!b.is_between_from_left(&a, &b));
    // Clockwise from c wraps past zero to a.
    assert!(tail(0).is_between_from_left(&c, &a));
    assert!(top(0xfe).is_between_from_left(&c, &a));
    assert!(!tail(4).is_between_from_left(&c, &a));
    assert!(!tail(4).is_between_from_left(&a, &a));
    // Counter-clockwise from a wraps past zero to c.
    assert!(tail(0).is_between_from_right(&a, &c));
    assert!(!tail(4).is_between_from_right(&a, &c));
    assert!(tail(4).is_between_from_right(&b, &a));
    assert!(!tail(4).is_between_from_right(&b, &b));
}

#[test]
fn closer_to_first_wraps() {
    let me = tail(2);
    assert!(me.is_closer_to_first(&top(0xfe), &tail(10)));
    assert!(!me.is_closer_to_first(&tail(10), &top(0xfe)));
    assert!(!me.is_closer_to_first(&tail(10), &tail(10)));
    assert!(me.is_closer_to_first(&me, &tail(4)));
}

#[test]
fn pseudo_random_consistency() {
    // Brunet's AHAddressTester invariants over a deterministic sequence.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        let mut b = [0u8; 20];
        for byte in &mut b {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *byte = x as u8;
        }
        Address::ah(b)
    };
    for _ in 0..500 {
        let (a5, a6, a7) = (next(), next(), next());
        assert!(!a5.is_between_from_left(&a6, &a6));
        assert!(!a6.is_between_from_left(&a6, &a7));
        assert!(!a7.is_between_from_right(&a6, &a7));
        assert_eq!(
            a5.is_between_from_left(&a6, &a7),
            a6.left_distance_to(&a5) < a6.left_distance_to(&a7)
        );
        assert_eq!(
            a5.is_between_from_right(&a6, &a7),
            a6.right_distance_to(&a5) < a6.right_distance_to(&a7)
        );
        assert_ne!(
            a5.is_between_from_left(&a6, &a7),
            a5.is_between_from_right(&a6, &a7)
        );
        assert!(!(a5.is_closer_to_first(&a6, &a7) && a5.is_closer_to_first(&a7, &a6)));
        assert_eq!(a5.distance_to(&a6).abs(), a6.distance_to(&a5).abs());
        assert_eq!(a5.is_left_of(&a6), a6.is_right_of(&a5));
        assert_eq!(Address::from_base32(&a5.to_base32()), Ok(a5));
        let d = a5.distance_to(&a6);
        assert_eq!(
            a5.wrapping_add(d.to_twos_complement()),
            a6,
            "distance is b − a"
        );
    }
}

#[test]
fn ring_int_arithmetic() {
    assert_eq!(RingInt::MAX.wrapping_add(RingInt::ONE), RingInt::ZERO);
    assert_eq!(RingInt::ZERO.wrapping_sub(RingInt::ONE), RingInt::MAX);
    assert_eq!(RingInt::pow2(159), RingInt::HALF);
    assert_eq!(RingInt::HALF.wrapping_add(RingInt::HALF), RingInt::ZERO);
    assert_eq!(RingInt::pow2(160), RingInt::ZERO);
    // carry across the u128/u32 seam
    assert_eq!(
        RingInt::from_u128(u128::MAX).wrapping_add(RingInt::ONE),
        RingInt::pow2(128)
    );
    assert_eq!(
        RingInt::pow2(128).wrapping_sub(RingInt::ONE),
        RingInt::from_u128(u128::MAX)
    );
    assert!(RingInt::pow2(128) > RingInt::from_u128(u128::MAX));
    assert_eq!(RingInt::pow2(140).shr(13), RingInt::pow2(127));
    assert_eq!(RingInt::pow2(100).shr(30), RingInt::pow2(70));
    assert_eq!(RingInt::MAX.shr(159), RingInt::ONE);
    assert_eq!(RingInt::MAX.shr(160), RingInt::ZERO);
    assert_eq!(RingInt::HALF.wrapping_neg(), RingInt::HALF);
    let bytes: [u8; 20] = core::array::from_fn(|i| i as u8 + 1);
    assert_eq!(RingInt::from_be_bytes(bytes).to_be_bytes(), bytes);
}

#[test]
fn ring_fractions() {
    assert_eq!(RingInt::ZERO.to_f64(), 0.0);
    assert_eq!(RingInt::HALF.to_f64(), 0.5);
    assert_eq!(RingInt::pow2(158).to_f64(), 0.25);
    assert!(RingInt::MAX.to_f64() < 1.0);
    assert_eq!(RingInt::from_ring_fraction(0.5), RingInt::HALF);
    assert_eq!(RingInt::from_ring_fraction(0.25), RingInt::pow2(158));
    assert_eq!(
        RingInt::from_ring_fraction(2f64.powi(-100)),
        RingInt::pow2(60)
    );
    assert_eq!(
        RingInt::from_ring_fraction(-0.25),
        RingInt::pow2(159).wrapping_add(RingInt::pow2(158))
    );
    assert_eq!(RingInt::from_ring_fraction(1.0), RingInt::ZERO);
    assert_eq!(RingInt::from_ring_fraction(-1e-300), RingInt::ZERO);
    assert_eq!(RingInt::from_ring_fraction(f64::NAN), RingInt::ZERO);
    let x = RingInt::from_ring_fraction(0.123_456_789);
    assert!((x.to_f64() - 0.123_456_789).abs() < 1e-15);
    let d = Address::from_bytes([0; 20]).distance_to(&Address::from_ring_int(RingInt::MAX));
    assert_eq!(d.to_f64(), -(2f64.powi(-160)));
    assert_eq!(Distance::MIN.to_f64(), -0.5);
}

#[test]
fn symphony_offset_is_a_power_of_two() {
    // d = 2^(160 − (1−p)·log2 N) with N = 2^10, p = 0.5: 2^155.
    let n: f64 = 1024.0;
    let frac = 2f64.powf(-(1.0 - 0.5) * n.log2());
    assert_eq!(RingInt::from_ring_fraction(frac), RingInt::pow2(155));
}
