//! XEP-0115 entity capabilities and the XEP-0030 disco#info answer behind them.
//!
//! Read first: XEP-0115 §5 (the verification string and its hash) and XEP-0030 §3.1. A chamber
//! node puts `<c xmlns='http://jabber.org/protocol/caps'/>` in its presence; a peer that has not
//! seen that `ver` before asks disco#info and learns that we speak [`FEATURE`]. The announce
//! itself ([`crate::announce`]) is what actually triggers linking; caps let ordinary clients and
//! servers see the feature.
//!
//! xmpp-parsers has `caps::compute_disco`, but it does not sort form fields by `var` (§5.1 step
//! 7.2) and cannot see duplicate features (its `BTreeSet` merges them, §5.4 says reject), so the
//! verification string is built here; hashing and the element types come from xmpp-parsers.

use std::collections::BTreeSet;

use minidom::Element;
use xmpp_parsers::caps::{Caps, hash_caps};
use xmpp_parsers::disco::{DiscoInfoQuery, DiscoInfoResult, Identity};
use xmpp_parsers::hashes::Algo;
use xmpp_parsers::ns;

use crate::xml::{self, Limits};
use crate::{Error, NS_CHAMBER, NS_CHAMBER_JINGLE};

/// The feature var that says "this entity runs chamber".
pub const FEATURE: &str = NS_CHAMBER;

/// The caps `node`: a URI naming the software, as XEP-0115 §4 asks.
pub const CAPS_NODE: &str = "https://example.invalid/chamber";

/// Bounds for a disco#info answer from a peer: identities, features and forms together.
pub const DISCO_LIMITS: Limits = Limits {
    max_bytes: 32 * 1024,
    max_elements: 256,
};

/// Bounds for a `<c/>` element.
pub const CAPS_LIMITS: Limits = Limits {
    max_bytes: 1024,
    max_elements: 1,
};

/// Features a chamber node advertises.
pub const FEATURES: [&str; 6] = [
    ns::DISCO_INFO,
    ns::CAPS,
    ns::JINGLE,
    ns::JINGLE_ICE_UDP,
    NS_CHAMBER,
    NS_CHAMBER_JINGLE,
];

/// Our disco#info answer. `node` echoes the query's node (`CAPS_NODE#ver` when the peer asks
/// after seeing our caps).
pub fn disco_info(node: Option<String>) -> DiscoInfoResult {
    DiscoInfoResult {
        node,
        identities: vec![Identity {
            category: "client".into(),
            type_: "pc".into(),
            lang: None,
            name: Some("chamber".into()),
        }],
        features: FEATURES.iter().map(|f| f.to_string()).collect(),
        extensions: Vec::new(),
    }
}

/// The answer to an incoming disco#info query.
pub fn answer(query: &DiscoInfoQuery) -> DiscoInfoResult {
    disco_info(query.node.clone())
}

/// The `<c/>` element for our presence.
pub fn presence_caps() -> Result<Caps, Error> {
    caps_for(&disco_info(None), CAPS_NODE)
}

/// XEP-0115 §5.1 verification string of a disco#info answer.
pub fn verification_string(disco: &DiscoInfoResult) -> Result<String, Error> {
    let mut identities = BTreeSet::new();
    for i in &disco.identities {
        let key = (
            i.category.as_str(),
            i.type_.as_str(),
            i.lang.as_deref().unwrap_or(""),
            i.name.as_deref().unwrap_or(""),
        );
        if !identities.insert(key) {
            return Err(Error::Inconsistent("duplicate disco identity"));
        }
    }
    let mut s = String::new();
    // Step 2: sorted by category, type, lang (the name breaks remaining ties).
    for (category, type_, lang, name) in &identities {
        s.push_str(&format!("{category}/{type_}/{lang}/{name}<"));
    }
    // Step 4: features sorted; a BTreeSet iterates in byte order, which is what §5.1 means.
    for f in &disco.features {
        s.push_str(f);
        s.push('<');
    }
    // Step 7: forms with a (hidden) FORM_TYPE, sorted by it; others are ignored (§5.4).
    let mut forms = Vec::new();
    for form in &disco.extensions {
        if let Some(form_type) = form.form_type() {
            forms.push((form_type, form));
        }
    }
    forms.sort_by(|a, b| a.0.cmp(b.0));
    if forms.windows(2).any(|w| w[0].0 == w[1].0) {
        return Err(Error::Inconsistent("two forms with the same FORM_TYPE"));
    }
    for (form_type, form) in forms {
        s.push_str(form_type);
        s.push('<');
        let mut fields: Vec<_> = form
            .fields
            .iter()
            .filter(|f| f.var.as_deref() != Some("FORM_TYPE"))
            .collect();
        fields.sort_by(|a, b| a.var.cmp(&b.var));
        for field in fields {
            s.push_str(field.var.as_deref().unwrap_or(""));
            s.push('<');
            let mut values: Vec<&String> = field.values.iter().collect();
            values.sort();
            for v in values {
                s.push_str(v);
                s.push('<');
            }
        }
    }
    Ok(s)
}

/// Caps (SHA-1, as XEP-0115 §5 mandates for interoperability) for a disco#info answer.
pub fn caps_for(disco: &DiscoInfoResult, node: &str) -> Result<Caps, Error> {
    let s = verification_string(disco)?;
    let hash = hash_caps(s.as_bytes(), Algo::Sha_1).map_err(|_| Error::InvalidValue {
        field: "caps hash",
        reason: "unsupported algorithm",
    })?;
    Ok(Caps::new(node, hash))
}

/// Checks that `caps` (from presence) hash to the disco#info answer (from the query), so the
/// answer can be cached under `ver` for every other entity that presents it.
pub fn verify(caps: &Caps, disco: &DiscoInfoResult) -> Result<(), Error> {
    let s = verification_string(disco)?;
    let hash = hash_caps(s.as_bytes(), caps.hash.clone()).map_err(|_| Error::InvalidValue {
        field: "caps hash",
        reason: "unsupported algorithm",
    })?;
    if hash.hash == caps.ver {
        Ok(())
    } else {
        Err(Error::Inconsistent("caps ver does not match disco#info"))
    }
}

/// Whether a (verified) disco#info answer lists the chamber feature.
pub fn has_chamber_feature(disco: &DiscoInfoResult) -> bool {
    disco.features.contains(FEATURE)
}

/// Parses a `<c/>` from presence.
pub fn parse_caps(element: &Element) -> Result<Caps, Error> {
    xml::expect(element, "c", ns::CAPS)?;
    xml::check_elements(element, CAPS_LIMITS.max_elements)?;
    for attr in ["node", "ver", "hash"] {
        if let Some(v) = element.attr(attr) {
            xml::bounded("caps attribute", v, 512)?;
        }
    }
    Caps::try_from(element.clone()).map_err(|e| Error::Xml(format!("caps: {e}")))
}

/// Parses a disco#info answer, refusing duplicate features, which xmpp-parsers would merge.
pub fn parse_disco_info(element: &Element) -> Result<DiscoInfoResult, Error> {
    xml::expect(element, "query", ns::DISCO_INFO)?;
    xml::check_elements(element, DISCO_LIMITS.max_elements)?;
    let mut seen = BTreeSet::new();
    for f in element
        .children()
        .filter(|c| c.is("feature", ns::DISCO_INFO))
    {
        if let Some(var) = f.attr("var")
            && !seen.insert(var)
        {
            return Err(Error::Inconsistent("duplicate disco feature"));
        }
    }
    let disco = DiscoInfoResult::try_from(element.clone())
        .map_err(|e| Error::Xml(format!("disco#info: {e}")))?;
    // Identities and forms are checked for duplicates while building the string.
    verification_string(&disco)?;
    Ok(disco)
}

/// Parses bytes that hold either a `<c/>` or a disco#info `<query/>` (fuzzing entry point).
pub fn parse_any_xml(bytes: &[u8]) -> Result<Parsed, Error> {
    let element = xml::parse(bytes, DISCO_LIMITS)?;
    if element.is("c", ns::CAPS) {
        parse_caps(&element).map(Parsed::Caps)
    } else {
        parse_disco_info(&element).map(|d| Parsed::DiscoInfo(Box::new(d)))
    }
}

/// What [`parse_any_xml`] found.
#[derive(Debug, Clone)]
pub enum Parsed {
    /// A caps element.
    Caps(Caps),
    /// A disco#info answer.
    DiscoInfo(Box<DiscoInfoResult>),
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;

    /// XEP-0115 §5.2, the simple example.
    #[test]
    fn xep_0115_simple_example() {
        let disco = DiscoInfoResult {
            node: None,
            identities: vec![Identity {
                category: "client".into(),
                type_: "pc".into(),
                lang: None,
                name: Some("Exodus 0.9.1".into()),
            }],
            features: [
                "http://jabber.org/protocol/caps",
                "http://jabber.org/protocol/disco#info",
                "http://jabber.org/protocol/disco#items",
                "http://jabber.org/protocol/muc",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
            extensions: vec![],
        };
        let caps = caps_for(&disco, "http://code.google.com/p/exodus").unwrap();
        assert_eq!(STANDARD.encode(&caps.ver), "QgayPKawpkPSDYmwT/WM94uAlu0=");
        assert_eq!(verify(&caps, &disco), Ok(()));
    }

    /// XEP-0115 §5.3, the complex example with a form and several identities.
    #[test]
    fn xep_0115_complex_example() {
        let xml = include_str!("../tests/data/xep-0115-complex.xml");
        let disco = match parse_any_xml(xml.as_bytes()).unwrap() {
            Parsed::DiscoInfo(d) => d,
            other => panic!("{other:?}"),
        };
        let caps = caps_for(&disco, "http://psi-im.org").unwrap();
        assert_eq!(STANDARD.encode(&caps.ver), "q07IKJEyjvHSyhy//CH0CxmKi8w=");
    }

    #[test]
    fn field_order_does_not_change_the_hash() {
        let a = "<query xmlns='http://jabber.org/protocol/disco#info'><identity category='client' type='pc'/><x xmlns='jabber:x:data' type='result'><field var='FORM_TYPE' type='hidden'><value>urn:t</value></field><field var='b'><value>2</value></field><field var='a'><value>1</value></field></x></query>";
        let b = a.replace(
            "<field var='b'><value>2</value></field><field var='a'><value>1</value></field>",
            "<field var='a'><value>1</value></field><field var='b'><value>2</value></field>",
        );
        let da = parse_disco_info(&a.parse().unwrap()).unwrap();
        let db = parse_disco_info(&b.parse().unwrap()).unwrap();
        assert_eq!(
            verification_string(&da).unwrap(),
            "client/pc//<urn:t<a<1<b<2<"
        );
        assert_eq!(
            verification_string(&da).unwrap(),
            verification_string(&db).unwrap()
        );
    }

    #[test]
    fn our_disco_round_trips_and_matches_caps() {
        let caps = presence_caps().unwrap();
        let el: Element = caps.clone().into();
        let text = xml::to_string(&el).unwrap();
        let back = match parse_any_xml(text.as_bytes()).unwrap() {
            Parsed::Caps(c) => c,
            other => panic!("{other:?}"),
        };
        assert_eq!(back.ver, caps.ver);
        assert_eq!(back.node, CAPS_NODE);

        let query = DiscoInfoQuery {
            node: Some(format!("{CAPS_NODE}#{}", STANDARD.encode(&caps.ver))),
        };
        let answer_el: Element = answer(&query).into();
        let text = xml::to_string(&answer_el).unwrap();
        let disco = parse_disco_info(&xml::parse(text.as_bytes(), DISCO_LIMITS).unwrap()).unwrap();
        assert_eq!(disco.node, query.node);
        assert!(has_chamber_feature(&disco));
        assert_eq!(verify(&back, &disco), Ok(()));
    }

    #[test]
    fn mismatched_caps_are_refused() {
        let caps = presence_caps().unwrap();
        let mut other = disco_info(None);
        other.features.insert("urn:x-extra".into());
        assert!(verify(&caps, &other).is_err());
        assert!(!has_chamber_feature(&DiscoInfoResult {
            features: BTreeSet::new(),
            ..disco_info(None)
        }));
    }

    #[test]
    fn duplicates_are_refused() {
        let dup_feature = "<query xmlns='http://jabber.org/protocol/disco#info'><identity category='client' type='pc'/><feature var='a'/><feature var='a'/></query>";
        assert!(matches!(
            parse_any_xml(dup_feature.as_bytes()),
            Err(Error::Inconsistent(_))
        ));
        let dup_identity = "<query xmlns='http://jabber.org/protocol/disco#info'><identity category='client' type='pc'/><identity category='client' type='pc'/></query>";
        assert!(matches!(
            parse_any_xml(dup_identity.as_bytes()),
            Err(Error::Inconsistent(_))
        ));
        let form = "<x xmlns='jabber:x:data' type='result'><field var='FORM_TYPE' type='hidden'><value>urn:t</value></field></x>";
        let dup_form = format!(
            "<query xmlns='http://jabber.org/protocol/disco#info'><identity category='client' type='pc'/>{form}{form}</query>"
        );
        assert!(matches!(
            parse_any_xml(dup_form.as_bytes()),
            Err(Error::Inconsistent(_))
        ));
    }

    #[test]
    fn oversized_and_foreign_input_is_refused() {
        let many: String = (0..300).map(|i| format!("<feature var='f{i}'/>")).collect();
        let big = format!("<query xmlns='http://jabber.org/protocol/disco#info'>{many}</query>");
        assert!(matches!(
            parse_any_xml(big.as_bytes()),
            Err(Error::TooMany { .. })
        ));
        assert!(matches!(
            parse_any_xml(b"<query xmlns='jabber:iq:roster'/>"),
            Err(Error::UnexpectedElement { .. })
        ));
        let unknown_algo =
            "<c xmlns='http://jabber.org/protocol/caps' hash='md5' node='n' ver='AAAA'/>";
        let caps = match parse_any_xml(unknown_algo.as_bytes()) {
            Ok(Parsed::Caps(c)) => c,
            other => panic!("{other:?}"),
        };
        assert!(matches!(
            verify(&caps, &disco_info(None)),
            Err(Error::InvalidValue { .. })
        ));
    }
}
