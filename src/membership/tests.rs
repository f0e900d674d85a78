use std::os::unix::fs::PermissionsExt;

use rand::SeedableRng;
use rand::rngs::StdRng;
use tokio_xmpp::jid::BareJid;
use xmpp_ext::NodeSecret;
use xmpp_ext::invite::Invite;

use super::*;
use crate::keystore::{Backend, KeystoreConfig};

struct Home {
    dir: PathBuf,
    config: PathBuf,
    keystore: Keystore,
}

fn home(name: &str) -> Home {
    let dir = std::env::temp_dir().join(format!("chamber-ms-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let cfg = KeystoreConfig {
        backend: Backend::File,
        dir: Some(dir.join("secrets")),
        service: None,
    };
    Home {
        config: dir.join("config.toml"),
        keystore: Keystore::open(&cfg, PathBuf::from("/nonexistent")).unwrap(),
        dir,
    }
}

fn node(seed: u64) -> NodeSecret {
    NodeSecret::generate(&mut StdRng::seed_from_u64(seed))
}

fn invite(ring: &str, secret: &RingSecret, from: &str, to: &NodeSecret) -> Invite {
    let from: BareJid = from.parse().unwrap();
    let mut rng = StdRng::seed_from_u64(7);
    Invite::seal(&mut rng, &node(1), &from, &to.public(), ring, secret, None).unwrap()
}

#[test]
fn create_and_leave_change_config_and_keystore() {
    let h = home("create");
    let spec = create(&h.config, &h.keystore, "club", false, None).unwrap();
    let config = Config::load(&h.config).unwrap();
    assert_eq!(config.rings.len(), 1);
    assert_eq!(config.rings[0].secret, SecretRef::Keystore);
    // The daemon reads back the same secret.
    let read = crate::node::ring_spec(&config.rings[0], &h.keystore).unwrap();
    assert_eq!(read.secret, spec.secret);
    assert!(matches!(
        create(&h.config, &h.keystore, "club", false, None),
        Err(MembershipError::Exists { .. })
    ));
    let other = create(&h.config, &h.keystore, "choir", false, None).unwrap();
    assert_ne!(other.secret, spec.secret, "every ring gets a fresh secret");

    leave(&h.config, &h.keystore, "club").unwrap();
    let config = Config::load(&h.config).unwrap();
    let names: Vec<&str> = config.rings.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["choir"]);
    let key = SecretName::Ring("club".into());
    assert!(h.keystore.get(&key).unwrap().is_none());
    assert!(matches!(
        leave(&h.config, &h.keystore, "club"),
        Err(MembershipError::NotConfigured { .. })
    ));
    std::fs::remove_dir_all(&h.dir).unwrap();
}

#[test]
fn a_friends_ring_has_no_secret_to_keep_and_the_same_id_for_everyone() {
    let h = home("friends");
    let policy = crate::config::FriendsPolicy { fof: true };
    let spec = create(&h.config, &h.keystore, "pals", false, Some(policy)).unwrap();
    assert_eq!(spec.secret, RingSecret::of_friends_ring("pals"));
    assert_eq!(spec.friends, Some(policy));
    let key = SecretName::Ring("pals".into());
    assert!(h.keystore.get(&key).unwrap().is_none(), "nothing stored");
    let config = Config::load(&h.config).unwrap();
    assert_eq!(config.rings[0].friends, Some(policy));
    let read = crate::node::ring_spec(&config.rings[0], &h.keystore).unwrap();
    assert_eq!(read.secret.ring_id(), spec.secret.ring_id());
    assert_eq!(read.friends, Some(policy));
    leave(&h.config, &h.keystore, "pals").unwrap();
    assert!(Config::load(&h.config).unwrap().rings.is_empty());
    std::fs::remove_dir_all(&h.dir).unwrap();
}

#[test]
fn bad_names_are_refused() {
    for bad in ["", " ", "a\nb", " club", &"x".repeat(129)] {
        assert!(
            matches!(check_name(bad), Err(MembershipError::BadName { .. })),
            "{bad:?}"
        );
    }
    check_name("climbing club ⛰").unwrap();
}

#[test]
fn suggested_commands_quote_names() {
    assert_eq!(shell_word("club"), "club");
    assert_eq!(shell_word("climbing club"), "'climbing club'");
    assert_eq!(shell_word("bob's"), r"'bob'\''s'");
    assert_eq!(shell_word("$(x)"), "'$(x)'");
}

#[test]
fn pending_invites_survive_a_reload_and_are_accepted_once() {
    let h = home("pending");
    let me = node(2);
    let path = h.dir.join("data").join("invites.json");
    let mut pending = PendingInvites::load(&path, &me).unwrap();
    assert!(pending.list().is_empty());
    let secret = RingSecret::from_bytes([9; 32]);
    let inv = invite("club", &secret, "alice@a.example", &me);
    let from: BareJid = "alice@a.example".parse().unwrap();
    let p = PendingInvites::open(&me, &inv, &from, 1234).unwrap();
    pending.add(p).unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    // The secret is never in the file in clear.
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(!text.contains(&hex::encode(secret.as_bytes())));
    assert!(!text.contains("club"));

    let mut pending = PendingInvites::load(&path, &me).unwrap();
    let list = pending.list();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].ring, "club");
    assert_eq!(list[0].from, "alice@a.example");
    assert_eq!(list[0].ring_id, secret.ring_id().to_hex());
    // Another node key cannot open them: dropped, not an error.
    assert!(
        PendingInvites::load(&path, &node(3))
            .unwrap()
            .list()
            .is_empty()
    );

    match accept(&h.config, &h.keystore, &mut pending, "choir") {
        Err(MembershipError::NoInvite { pending, .. }) => assert_eq!(pending, ["club"]),
        other => panic!("{other:?}"),
    }
    let spec = accept(&h.config, &h.keystore, &mut pending, "club").unwrap();
    assert_eq!(spec.secret, secret);
    let config = Config::load(&h.config).unwrap();
    assert_eq!(
        crate::node::ring_spec(&config.rings[0], &h.keystore)
            .unwrap()
            .secret,
        secret
    );
    assert!(PendingInvites::load(&path, &me).unwrap().list().is_empty());
    assert!(accept(&h.config, &h.keystore, &mut pending, "club").is_err());
    std::fs::remove_dir_all(&h.dir).unwrap();
}

#[test]
fn a_forged_or_foreign_invite_does_not_open() {
    let me = node(2);
    let secret = RingSecret::from_bytes([9; 32]);
    let inv = invite("club", &secret, "alice@a.example", &me);
    // Signed over alice's JID, arriving from mallory's.
    let mallory: BareJid = "mallory@m.example".parse().unwrap();
    assert!(PendingInvites::open(&me, &inv, &mallory, 1).is_err());
    // Sealed to another node.
    let alice: BareJid = "alice@a.example".parse().unwrap();
    assert!(PendingInvites::open(&node(3), &inv, &alice, 1).is_err());
}

#[test]
fn pending_invites_are_bounded_oldest_first() {
    let h = home("bounded");
    let me = node(2);
    let from: BareJid = "alice@a.example".parse().unwrap();
    let mut pending = PendingInvites::empty(&h.dir.join("invites.json"));
    let secret = RingSecret::from_bytes([9; 32]);
    for i in 0..=pending::MAX_PENDING {
        let inv = invite(&format!("ring{i}"), &secret, "alice@a.example", &me);
        pending
            .add(PendingInvites::open(&me, &inv, &from, i as u64).unwrap())
            .unwrap();
    }
    // A second invite to the same name replaces the first.
    let inv = invite(
        "ring5",
        &RingSecret::from_bytes([8; 32]),
        "alice@a.example",
        &me,
    );
    pending
        .add(PendingInvites::open(&me, &inv, &from, 99).unwrap())
        .unwrap();
    let list = PendingInvites::load(&h.dir.join("invites.json"), &me)
        .unwrap()
        .list();
    assert_eq!(list.len(), pending::MAX_PENDING);
    assert!(list.iter().all(|i| i.ring != "ring0"));
    let five: Vec<_> = list.iter().filter(|i| i.ring == "ring5").collect();
    assert_eq!(five.len(), 1);
    assert_eq!(five[0].received_ms, 99);
    std::fs::remove_dir_all(&h.dir).unwrap();
}
