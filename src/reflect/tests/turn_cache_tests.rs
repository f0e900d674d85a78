//! TURN credentials: stored with their expiry, dropped a margin early, forgotten on removal.

use std::time::{Duration, SystemTime};

use xmpp_ext::extdisco::{Action, ServiceKind, Transport};

use super::report_tests::{expiring, service};
use crate::reflect::turn_cache::{TurnCache, TurnKey};

/// 2030-01-01T00:00:00Z.
const EXPIRY_UNIX: u64 = 1_893_456_000;

fn at(secs_before_expiry: i64) -> SystemTime {
    let t = EXPIRY_UNIX as i64 - secs_before_expiry;
    SystemTime::UNIX_EPOCH + Duration::from_secs(t as u64)
}

fn turn(host: &str, user: &str) -> xmpp_ext::extdisco::ExternalService {
    let mut s = service(ServiceKind::Turn, host, Some(3478));
    s.username = Some(user.into());
    s.password = Some("s3cret".into());
    s.expires = expiring("2030-01-01T00:00:00Z");
    s
}

fn key(host: &str) -> TurnKey {
    TurnKey {
        host: host.into(),
        port: 3478,
        transport: Transport::Udp,
    }
}

#[test]
fn credentials_live_until_expiry_minus_margin() {
    let mut cache = TurnCache::new(Duration::from_secs(60), Duration::from_secs(600));
    let offer = [
        turn("198.18.0.20", "1893456000:user1"),
        service(ServiceKind::Stun, "198.18.0.20", Some(3478)),
    ];
    assert_eq!(cache.update("alpha.lab", &offer, at(3600)), 1);
    let c = cache.get(&key("198.18.0.20"), at(3600)).expect("fresh");
    assert_eq!(
        (c.username.as_str(), c.password.as_str()),
        ("1893456000:user1", "s3cret")
    );
    assert_eq!(c.xmpp_server, "alpha.lab");
    assert_eq!(c.expires, at(0));
    assert!(cache.get(&key("198.18.0.20"), at(61)).is_some());
    assert!(cache.get(&key("198.18.0.20"), at(60)).is_none());
    assert_eq!(cache.next_refresh(), Some(at(60)));
    assert_eq!(cache.fresh(at(120)).count(), 1);
    assert_eq!(cache.fresh(at(30)).count(), 0);
    assert_eq!(cache.purge(at(30)), 1);
    assert!(cache.is_empty());
}

#[test]
fn a_newer_offer_replaces_and_a_removal_forgets() {
    let mut cache = TurnCache::default();
    cache.update("alpha.lab", &[turn("198.18.0.20", "old")], at(3600));
    cache.update("alpha.lab", &[turn("198.18.0.20", "new")], at(3600));
    assert_eq!(cache.len(), 1);
    assert_eq!(
        cache.get(&key("198.18.0.20"), at(3600)).unwrap().username,
        "new"
    );
    let mut gone = turn("198.18.0.20", "new");
    gone.action = Action::Remove;
    assert_eq!(cache.update("alpha.lab", &[gone], at(3600)), 0);
    assert!(cache.is_empty());
}

#[test]
fn stale_or_incomplete_offers_are_not_stored() {
    let mut cache = TurnCache::default();
    let mut restricted = turn("198.18.0.11", "u");
    restricted.username = None;
    restricted.password = None;
    restricted.restricted = true;
    assert_eq!(cache.update("beta.lab", &[restricted], at(3600)), 0);
    assert_eq!(
        cache.update("beta.lab", &[turn("198.18.0.11", "u")], at(10)),
        0
    );
    assert!(cache.is_empty());
}

#[test]
fn offers_without_expiry_get_the_default_ttl() {
    let mut cache = TurnCache::new(Duration::from_secs(60), Duration::from_secs(600));
    let mut s = turn("198.18.0.11", "static");
    s.expires = None;
    let now = at(100_000);
    assert_eq!(cache.update("beta.lab", &[s], now), 1);
    assert!(
        cache
            .get(&key("198.18.0.11"), now + Duration::from_secs(539))
            .is_some()
    );
    assert!(
        cache
            .get(&key("198.18.0.11"), now + Duration::from_secs(540))
            .is_none()
    );
}

#[test]
fn debug_output_hides_the_password() {
    let mut cache = TurnCache::default();
    cache.update("alpha.lab", &[turn("198.18.0.20", "u")], at(3600));
    let text = format!("{cache:?}");
    assert!(!text.contains("s3cret"), "{text}");
    assert!(text.contains("<hidden>"));
}
