//! The room's logic without a ring: loss and fetches, leaves and silence, our own echo.

use super::*;

fn addr(b: u8) -> Address {
    Address::from_bytes([b; 20])
}

fn msg(seq: u64) -> Post {
    Post::Msg {
        session: 9,
        nick: "bo".into(),
        seq,
        ts: 1,
        text: format!("m{seq}"),
    }
}

#[test]
fn a_lost_message_is_fetched_and_delivered_in_order() {
    let t = Instant::now();
    let mut alice = Room::new(addr(1), "al".into(), 1, t);
    let mut bob = Room::new(addr(2), "bo".into(), 9, t);
    let posts: Vec<Post> = (0..3)
        .map(|i| bob.post(format!("m{}", i + 1), t).0)
        .collect();
    assert!(matches!(&posts[0], Post::Msg { seq: 1, text, .. } if text == "m1"));
    let here = Post::Here {
        session: 9,
        nick: "bo".into(),
        seq: 0,
    };
    assert!(matches!(
        alice.on_post(addr(2), here, t)[..],
        [Out::Join { .. }]
    ));
    assert!(matches!(
        alice.on_post(addr(2), msg(1), t)[..],
        [Out::Message { seq: 1, .. }]
    ));
    assert!(alice.on_post(addr(2), msg(3), t).is_empty(), "2 was lost");
    let due = alice.due_fetches(t + Duration::from_secs(1));
    assert_eq!(due.len(), 1);
    let (who, f) = &due[0];
    assert_eq!((*who, f.from, f.to), (addr(2), 2, 2));
    let got = alice.on_batch(addr(2), f, Ok(bob.answer(f)), t);
    let seqs: Vec<u64> = got
        .iter()
        .map(|o| match o {
            Out::Message { seq, .. } => *seq,
            o => panic!("{o:?}"),
        })
        .collect();
    assert_eq!(seqs, vec![2, 3]);
}

#[test]
fn leaves_wait_for_the_last_message_and_silence_expires() {
    let t = Instant::now();
    let mut alice = Room::new(addr(1), "al".into(), 1, t);
    alice.on_post(addr(2), msg(1), t);
    let leave = Post::Leave {
        session: 9,
        nick: "bo".into(),
        seq: 2,
    };
    assert!(
        alice.on_post(addr(2), leave, t).is_empty(),
        "message 2 not yet here"
    );
    let out = alice.on_post(addr(2), msg(2), t);
    assert!(matches!(
        out[..],
        [
            Out::Message { seq: 2, .. },
            Out::Leave { reason: "left", .. }
        ]
    ));
    let late = Post::Here {
        session: 9,
        nick: "bo".into(),
        seq: 2,
    };
    assert!(
        alice.on_post(addr(2), late, t).is_empty(),
        "a late heartbeat"
    );
    alice.on_post(addr(3), msg(1), t);
    let silent = t + EXPIRE + Duration::from_secs(1);
    assert!(
        alice.tick(silent).is_empty(),
        "a silent member is asked first"
    );
    let due = alice.due_fetches(silent);
    assert_eq!(due.len(), 1);
    let (who, f) = &due[0];
    assert_eq!((*who, f.from, f.to), (addr(3), 2, 2));
    // It answers: still here, though its heartbeats were lost.
    let carol = Room::new(addr(3), "ca".into(), 9, t);
    alice.on_batch(addr(3), f, Ok(carol.answer(f)), silent);
    assert!(alice.tick(silent + PROBE_WAIT * 2).is_empty());
    // Silent again, and this time the question fails: gone.
    let later = silent + EXPIRE + Duration::from_secs(1);
    let due = alice.due_fetches(later);
    assert_eq!(due.len(), 1);
    alice.on_batch(addr(3), &due[0].1, Err("no answer".into()), later);
    let out = alice.tick(later);
    assert!(matches!(
        out[..],
        [Out::Leave {
            reason: "timeout",
            ..
        }]
    ));
    assert!(matches!(&alice.who(), Out::Who { members } if members.len() == 1));
}

#[test]
fn our_own_echo_is_ignored_and_history_is_bounded() {
    let t = Instant::now();
    let mut alice = Room::new(addr(1), "al".into(), 1, t);
    let (p, _) = alice.post("hi".into(), t);
    assert!(alice.on_post(addr(1), p, t).is_empty());
    for i in 0..HISTORY + 5 {
        alice.post(format!("{i}"), t);
    }
    let b = alice.answer(&Fetch {
        session: 1,
        from: 1,
        to: 10,
    });
    assert_eq!((b.first, b.msgs.len()), (7, 4));
    let other = alice.answer(&Fetch {
        session: 2,
        from: 7,
        to: 8,
    });
    assert!(other.msgs.is_empty());
}
