//! Bounded XML parsing and the small field codecs the payload modules share.
//!
//! Stanzas normally reach us already parsed by the XMPP stream, whose server limits their size
//! (ejabberd: 256 KiB). That is far more than any chamber payload needs, so each parser here
//! counts elements again and bounds every free-text field; [`parse`] adds a byte limit for
//! payloads that arrive as bytes (over the ring, from a fuzzer, from disk).

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use minidom::Element;
use minidom::rxml::NcName;

use crate::{Error, PROTOCOL_VERSION};

/// Size bounds for one payload kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest serialised form accepted, in bytes.
    pub max_bytes: usize,
    /// Most elements (the root included) in the tree.
    pub max_elements: usize,
}

/// Parses `bytes` as one XML element within `limits`.
///
/// The byte limit is checked first, then a cheap upper bound on the element count (every element
/// needs a `<`), so an oversized tree is refused before it is built.
pub fn parse(bytes: &[u8], limits: Limits) -> Result<Element, Error> {
    if bytes.len() > limits.max_bytes {
        return Err(Error::TooLarge {
            size: bytes.len(),
            limit: limits.max_bytes,
        });
    }
    // Each element costs at most two '<' (start and end tag); allow an XML declaration on top.
    let angles = bytes.iter().filter(|&&b| b == b'<').count();
    if angles > limits.max_elements.saturating_mul(2).saturating_add(1) {
        return Err(Error::TooMany {
            what: "elements",
            limit: limits.max_elements,
        });
    }
    let element = Element::from_reader(bytes).map_err(|e| Error::Xml(e.to_string()))?;
    check_elements(&element, limits.max_elements)?;
    Ok(element)
}

/// Serialises an element to its XML text (no declaration).
pub fn to_string(element: &Element) -> Result<String, Error> {
    let mut out = Vec::new();
    element
        .write_to(&mut out)
        .map_err(|e| Error::Xml(e.to_string()))?;
    String::from_utf8(out).map_err(|_| Error::Xml("serialiser produced invalid UTF-8".into()))
}

/// Fails when the tree rooted at `element` holds more than `limit` elements.
pub fn check_elements(element: &Element, limit: usize) -> Result<(), Error> {
    let mut count = 0usize;
    let mut stack = vec![element];
    while let Some(e) = stack.pop() {
        count += 1;
        if count > limit {
            return Err(Error::TooMany {
                what: "elements",
                limit,
            });
        }
        stack.extend(e.children());
    }
    Ok(())
}

/// An attribute name for the element builder.
pub(crate) fn name(s: &'static str) -> NcName {
    // Invariant: only called with literal attribute names of this crate, all valid NCNames.
    NcName::try_from(s).expect("literal attribute name is a valid NCName")
}

/// Fails unless `element` is `<name xmlns='ns'/>`.
pub(crate) fn expect(element: &Element, name: &'static str, ns: &'static str) -> Result<(), Error> {
    if element.is(name, ns) {
        Ok(())
    } else {
        Err(Error::UnexpectedElement {
            expected: name,
            ns,
            found: format!("{{{}}}{}", element.ns(), element.name()),
        })
    }
}

/// Fails unless the element's `v` attribute is present and equals [`PROTOCOL_VERSION`].
pub(crate) fn check_version(element: &Element, el_name: &'static str) -> Result<(), Error> {
    let v = required(element, el_name, "v")?;
    if v == PROTOCOL_VERSION.to_string() {
        Ok(())
    } else {
        Err(Error::UnknownVersion {
            found: v.chars().take(16).collect(),
        })
    }
}

/// A required attribute.
pub(crate) fn required<'a>(
    element: &'a Element,
    el_name: &'static str,
    attribute: &'static str,
) -> Result<&'a str, Error> {
    element.attr(attribute).ok_or(Error::MissingAttribute {
        element: el_name,
        attribute,
    })
}

/// Fails when `s` is longer than `max` bytes or holds control characters other than XML
/// whitespace (which rxml already restricts to tab, CR and LF).
pub(crate) fn bounded<'a>(field: &'static str, s: &'a str, max: usize) -> Result<&'a str, Error> {
    if s.len() > max {
        return Err(Error::InvalidValue {
            field,
            reason: "too long",
        });
    }
    if s.chars()
        .any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
    {
        return Err(Error::InvalidValue {
            field,
            reason: "control character",
        });
    }
    Ok(s)
}

/// The single child `<child xmlns='ns'/>` of `element`, if any; two are an error.
pub(crate) fn single_child<'a>(
    element: &'a Element,
    el_name: &'static str,
    child: &'static str,
    ns: &'static str,
) -> Result<Option<&'a Element>, Error> {
    let mut found = element.children().filter(|c| c.is(child, ns));
    let first = found.next();
    if found.next().is_some() {
        return Err(Error::DuplicateChild {
            element: el_name,
            child,
        });
    }
    Ok(first)
}

/// Decodes exactly `N` bytes of hex (either case).
pub(crate) fn hex_array<const N: usize>(field: &'static str, s: &str) -> Result<[u8; N], Error> {
    let mut out = [0u8; N];
    if s.len() != 2 * N {
        return Err(Error::InvalidValue {
            field,
            reason: "wrong length",
        });
    }
    hex::decode_to_slice(s, &mut out).map_err(|_| Error::InvalidValue {
        field,
        reason: "not hex",
    })?;
    Ok(out)
}

/// Decodes exactly `N` bytes of padded standard base64.
pub(crate) fn b64_array<const N: usize>(field: &'static str, s: &str) -> Result<[u8; N], Error> {
    let v = b64_vec(field, s, N)?;
    v.try_into().map_err(|_| Error::InvalidValue {
        field,
        reason: "wrong length",
    })
}

/// Decodes at most `max` bytes of padded standard base64, refusing longer text before decoding.
pub(crate) fn b64_vec(field: &'static str, s: &str, max: usize) -> Result<Vec<u8>, Error> {
    if s.len() > max.div_ceil(3) * 4 {
        return Err(Error::InvalidValue {
            field,
            reason: "too long",
        });
    }
    let v = BASE64.decode(s).map_err(|_| Error::InvalidValue {
        field,
        reason: "not base64",
    })?;
    if v.len() > max {
        return Err(Error::InvalidValue {
            field,
            reason: "too long",
        });
    }
    Ok(v)
}

/// Encodes bytes as padded standard base64.
pub(crate) fn b64(bytes: &[u8]) -> String {
    BASE64.encode(bytes)
}

/// Parses a decimal number without sign or leading zeros, so every value has one spelling.
pub(crate) fn decimal<T: std::str::FromStr>(field: &'static str, s: &str) -> Result<T, Error> {
    let canonical =
        !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'));
    if !canonical {
        return Err(Error::InvalidValue {
            field,
            reason: "not a canonical decimal number",
        });
    }
    s.parse().map_err(|_| Error::InvalidValue {
        field,
        reason: "out of range",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMALL: Limits = Limits {
        max_bytes: 200,
        max_elements: 3,
    };

    #[test]
    fn parse_accepts_within_limits() {
        let e = parse(b"<a xmlns='x'><b/><c/></a>", SMALL).unwrap();
        assert!(e.is("a", "x"));
    }

    #[test]
    fn parse_rejects_too_many_bytes() {
        let big = format!("<a xmlns='x' p='{}'/>", "y".repeat(300));
        assert!(matches!(
            parse(big.as_bytes(), SMALL),
            Err(Error::TooLarge { .. })
        ));
    }

    #[test]
    fn parse_rejects_too_many_elements() {
        assert!(matches!(
            parse(b"<a xmlns='x'><b/><c/><d/></a>", SMALL),
            Err(Error::TooMany { .. })
        ));
        // The pre-count and the tree walk agree: self-closing children pass the angle count.
        let limits = Limits {
            max_bytes: 200,
            max_elements: 2,
        };
        assert!(matches!(
            parse(b"<a xmlns='x'><b/><c/></a>", limits),
            Err(Error::TooMany { .. })
        ));
    }

    #[test]
    fn parse_rejects_malformed() {
        assert!(matches!(
            parse(b"<a xmlns='x'><b></a>", SMALL),
            Err(Error::Xml(_))
        ));
        assert!(matches!(parse(b"\xff\xfe", SMALL), Err(Error::Xml(_))));
        assert!(matches!(parse(b"", SMALL), Err(Error::Xml(_))));
    }

    #[test]
    fn decimal_is_canonical() {
        assert_eq!(decimal::<u16>("f", "0"), Ok(0));
        assert_eq!(decimal::<u16>("f", "3478"), Ok(3478));
        assert!(decimal::<u16>("f", "03478").is_err());
        assert!(decimal::<u16>("f", "+1").is_err());
        assert!(decimal::<u16>("f", "65536").is_err());
        assert!(decimal::<u16>("f", "").is_err());
    }

    #[test]
    fn base64_and_hex_fixed_lengths() {
        assert_eq!(b64_array::<2>("f", "AQI="), Ok([1, 2]));
        assert!(b64_array::<3>("f", "AQI=").is_err());
        assert!(b64_array::<2>("f", "AQI").is_err());
        assert_eq!(hex_array::<2>("f", "0aFF"), Ok([0x0a, 0xff]));
        assert!(hex_array::<2>("f", "0aF").is_err());
        assert!(hex_array::<2>("f", "0aFg").is_err());
        // Four base64 characters may decode to three bytes: still over a two-byte limit.
        assert_eq!(b64_vec("f", "AQID", 3), Ok(vec![1, 2, 3]));
        assert!(b64_vec("f", "AQID", 2).is_err());
        assert!(b64_vec("f", "AQIDBA==", 3).is_err());
    }

    #[test]
    fn version_must_match() {
        let ok: Element = "<a xmlns='x' v='1'/>".parse().unwrap();
        assert!(check_version(&ok, "a").is_ok());
        for bad in [
            "<a xmlns='x' v='2'/>",
            "<a xmlns='x' v='01'/>",
            "<a xmlns='x'/>",
        ] {
            let e: Element = bad.parse().unwrap();
            assert!(check_version(&e, "a").is_err(), "{bad}");
        }
    }
}
