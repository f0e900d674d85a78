//! The room as one member sees it: who is present, each sender's ordered stream, and the
//! history we keep of our own messages for others to fetch. Pure logic driven by the main
//! loop: it takes parsed posts, history answers and the time, and returns what to show.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use brunet_compat::address::Address;
use serde::Serialize;

use crate::order::Stream;
use crate::wire::{Batch, Fetch, MAX_BATCH, Post, Stored};

/// How often we say we are here when we post nothing (a message says it too).
pub const HEARTBEAT: Duration = Duration::from_secs(5);
/// A member not heard from for this long (about three missed heartbeats) is asked directly
/// whether it is still here (its heartbeats may only have been lost); if that fails, it has
/// gone.
pub const EXPIRE: Duration = Duration::from_secs(16);
/// How long that direct question may take before the member counts as gone (the request's
/// own timeout, plus slack).
const PROBE_WAIT: Duration = Duration::from_secs(15);
/// How long a leaving member's last messages may take to arrive before its leave is shown.
const LEAVE_WAIT: Duration = Duration::from_secs(5);
/// How many of our own messages we keep for others to fetch.
pub const HISTORY: usize = 1000;

/// What the app shows: a line of text, or one JSON object with `--json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Out {
    /// We are in the room.
    Ready {
        /// Our address.
        address: String,
        /// The ring.
        ring: String,
        /// The room.
        room: String,
        /// Our nickname.
        nick: String,
    },
    /// A member appeared.
    Join {
        /// Its address.
        from: String,
        /// Its nickname.
        nick: String,
    },
    /// A member left (`left`), went silent (`timeout`) or restarted its chat (`restarted`).
    Leave {
        /// Its address.
        from: String,
        /// Its nickname.
        nick: String,
        /// Why.
        reason: &'static str,
    },
    /// A message, delivered in its sender's order.
    Message {
        /// The sender's address (proved by its node key).
        from: String,
        /// Its nickname when it posted.
        nick: String,
        /// Its number in the sender's session.
        seq: u64,
        /// The text.
        text: String,
        /// When it was posted (sender's clock, Unix ms).
        sent_ms: u64,
        /// When we delivered it (our clock, Unix ms).
        recv_ms: u64,
        /// It came from the sender's history (its broadcast was lost or late), or was
        /// delivered with one that did.
        fetched: bool,
    },
    /// One of our messages went out.
    Sent {
        /// Its number.
        seq: u64,
        /// The text.
        text: String,
        /// When (Unix ms).
        sent_ms: u64,
    },
    /// A sender no longer has messages we never got.
    Missed {
        /// The sender.
        from: String,
        /// Its nickname.
        nick: String,
        /// How many.
        count: u64,
    },
    /// The membership list, us included.
    Who {
        /// Members sorted by nickname.
        members: Vec<WhoEntry>,
    },
}

/// One line of [`Out::Who`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct WhoEntry {
    /// Address.
    pub from: String,
    /// Nickname.
    pub nick: String,
    /// Whether it is us.
    pub me: bool,
}

struct Member {
    nick: String,
    session: u64,
    last_seen: Instant,
    /// Since when a silent member has been asked whether it is still here.
    probed: Option<Instant>,
    /// That question failed: the member has gone.
    unreachable: bool,
    stream: Stream<Stored>,
    /// It said it leaves after this message; show the leave once delivered or at the deadline.
    leaving: Option<(u64, Instant)>,
}

/// One member's view of the room.
pub struct Room {
    me: Address,
    session: u64,
    nick: String,
    /// Our last message number.
    seq: u64,
    history: VecDeque<Stored>,
    members: HashMap<Address, Member>,
    next_heartbeat: Instant,
    /// Another chat on our own node in this room was noticed (and reported once).
    twin_seen: bool,
    /// The session each address last left with: a late copy of its posts (a heartbeat that
    /// overtook nothing but arrives after the leave) must not bring it back.
    left: HashMap<Address, u64>,
}

/// Now as Unix milliseconds.
pub fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl Room {
    /// A room we just joined as `nick`, with a fresh `session`.
    pub fn new(me: Address, nick: String, session: u64, now: Instant) -> Room {
        Room {
            me,
            session,
            nick,
            seq: 0,
            history: VecDeque::new(),
            members: HashMap::new(),
            next_heartbeat: now,
            twin_seen: false,
            left: HashMap::new(),
        }
    }

    /// Numbers and keeps a message of ours; gives the broadcast and what to show. The message
    /// tells the others we are here, so the next heartbeat waits a whole period.
    pub fn post(&mut self, text: String, now: Instant) -> (Post, Out) {
        self.seq += 1;
        self.next_heartbeat = self.next_heartbeat.max(now + HEARTBEAT);
        let ts = unix_ms();
        if self.history.len() == HISTORY {
            self.history.pop_front();
        }
        self.history.push_back(Stored {
            seq: self.seq,
            ts,
            nick: self.nick.clone(),
            text: text.clone(),
        });
        let post = Post::Msg {
            session: self.session,
            nick: self.nick.clone(),
            seq: self.seq,
            ts,
            text: text.clone(),
        };
        let sent = Out::Sent {
            seq: self.seq,
            text,
            sent_ms: ts,
        };
        (post, sent)
    }

    /// Our heartbeat, when one is due.
    pub fn heartbeat(&mut self, now: Instant) -> Option<Post> {
        if now < self.next_heartbeat {
            return None;
        }
        let jitter = Duration::from_millis(rand::random::<u64>() % 300);
        self.next_heartbeat = now + HEARTBEAT + jitter;
        Some(Post::Here {
            session: self.session,
            nick: self.nick.clone(),
            seq: self.seq,
        })
    }

    /// Our goodbye.
    pub fn leave(&self) -> Post {
        Post::Leave {
            session: self.session,
            nick: self.nick.clone(),
            seq: self.seq,
        }
    }

    /// Whether anyone else is here.
    pub fn has_members(&self) -> bool {
        !self.members.is_empty()
    }

    /// A post from `from` (its address proved by the daemon).
    pub fn on_post(&mut self, from: Address, post: Post, now: Instant) -> Vec<Out> {
        let mut out = Vec::new();
        if from == self.me {
            if post.session() != self.session && !self.twin_seen {
                self.twin_seen = true;
                tracing::warn!(
                    "another chat in this room runs on this node; its posts are ignored here \
                     (run one chat per room per node)"
                );
            }
            return out;
        }
        if self.left.get(&from) == Some(&post.session()) {
            return out;
        }
        let known = self
            .members
            .get(&from)
            .is_some_and(|m| m.session == post.session());
        if !known {
            if matches!(post, Post::Leave { .. }) {
                return out;
            }
            if let Some(old) = self.members.remove(&from) {
                out.push(leave_out(&from, old.nick, "restarted"));
            }
            let next = match &post {
                Post::Msg { seq, .. } => *seq,
                Post::Here { seq, .. } | Post::Leave { seq, .. } => seq + 1,
            };
            self.members.insert(
                from,
                Member {
                    nick: post.nick().to_owned(),
                    session: post.session(),
                    last_seen: now,
                    probed: None,
                    unreachable: false,
                    stream: Stream::starting_at(next),
                    leaving: None,
                },
            );
            out.push(Out::Join {
                from: from.to_string(),
                nick: post.nick().to_owned(),
            });
            // Let the newcomer hear from us soon rather than in a whole heartbeat period.
            let soon = now + Duration::from_millis(rand::random::<u64>() % 500);
            self.next_heartbeat = self.next_heartbeat.min(soon);
        }
        let Some(m) = self.members.get_mut(&from) else {
            return out;
        };
        m.seen(now);
        m.nick = post.nick().to_owned();
        match post {
            Post::Msg {
                nick,
                seq,
                ts,
                text,
                ..
            } => {
                let delivered = m.stream.offer(
                    seq,
                    Stored {
                        seq,
                        ts,
                        nick,
                        text,
                    },
                    now,
                );
                out.extend(messages(&from, delivered, false));
            }
            Post::Here { seq, .. } => m.stream.heard(seq, now),
            Post::Leave { seq, .. } => {
                m.stream.heard(seq, now);
                m.leaving = Some((seq, now + LEAVE_WAIT));
            }
        }
        self.finish_leave(&from, now, &mut out);
        out
    }

    /// Shows `from`'s leave once everything before it is delivered (or the wait is over).
    fn finish_leave(&mut self, from: &Address, now: Instant, out: &mut Vec<Out>) {
        let done = self.members.get(from).is_some_and(|m| {
            m.leaving
                .is_some_and(|(last, deadline)| m.stream.next() > last || now >= deadline)
        });
        if done && let Some(m) = self.members.remove(from) {
            self.left.insert(*from, m.session);
            out.push(leave_out(from, m.nick, "left"));
        }
    }

    /// Answers a history request from our own messages.
    pub fn answer(&self, f: &Fetch) -> Batch {
        let first = self.history.front().map_or(self.seq + 1, |m| m.seq);
        let msgs = if f.session == self.session {
            let last = f.to.min(f.from.saturating_add(MAX_BATCH - 1));
            self.history
                .iter()
                .filter(|m| (f.from..=last).contains(&m.seq))
                .cloned()
                .collect()
        } else {
            Vec::new()
        };
        Batch {
            session: self.session,
            first,
            msgs,
        }
    }

    /// The gaps to fetch now, one per sender at most, and the questions to silent members
    /// (a one-message fetch: any answer from the same session proves it is still here).
    pub fn due_fetches(&mut self, now: Instant) -> Vec<(Address, Fetch)> {
        self.members
            .iter_mut()
            .filter_map(|(a, m)| {
                let probe = m.probed.is_none() && now.duration_since(m.last_seen) > EXPIRE;
                let (from, to) = match m.stream.due_fetch(now) {
                    Some(range) => range,
                    None if probe => (m.stream.next(), m.stream.next()),
                    None => return None,
                };
                if probe {
                    m.probed = Some(now);
                }
                Some((
                    *a,
                    Fetch {
                        session: m.session,
                        from,
                        to,
                    },
                ))
            })
            .collect()
    }

    /// What a history fetch from `from` brought (or why it failed).
    pub fn on_batch(
        &mut self,
        from: Address,
        asked: &Fetch,
        got: Result<Batch, String>,
        now: Instant,
    ) -> Vec<Out> {
        let mut out = Vec::new();
        let Some(m) = self
            .members
            .get_mut(&from)
            .filter(|m| m.session == asked.session)
        else {
            return out;
        };
        m.stream.fetch_done();
        let batch = match got {
            Ok(b) => b,
            Err(e) => {
                m.unreachable = m.probed.is_some();
                tracing::info!(%from, %e, "history fetch failed; asking again shortly");
                return out;
            }
        };
        if batch.session == asked.session {
            m.seen(now);
        } else {
            m.unreachable = m.probed.is_some();
        }
        // Another session answered: the one we were reading is gone with its messages.
        let first = if batch.session == asked.session {
            batch.first
        } else {
            asked.to + 1
        };
        let (skipped, delivered) = m.stream.skip_to(first, now);
        if skipped > 0 {
            out.push(Out::Missed {
                from: from.to_string(),
                nick: m.nick.clone(),
                count: skipped,
            });
        }
        out.extend(messages(&from, delivered, true));
        if batch.session == asked.session {
            for s in batch.msgs {
                let delivered = m.stream.offer(s.seq, s, now);
                out.extend(messages(&from, delivered, true));
            }
        }
        self.finish_leave(&from, now, &mut out);
        out
    }

    /// Members gone silent (and not answering), and leaves whose wait is over.
    pub fn tick(&mut self, now: Instant) -> Vec<Out> {
        let mut out = Vec::new();
        let silent: Vec<Address> = self
            .members
            .iter()
            .filter(|(_, m)| {
                m.unreachable || m.probed.is_some_and(|t| now.duration_since(t) > PROBE_WAIT)
            })
            .map(|(a, _)| *a)
            .collect();
        for a in silent {
            if let Some(m) = self.members.remove(&a) {
                out.push(leave_out(&a, m.nick, "timeout"));
            }
        }
        let leaving: Vec<Address> = self
            .members
            .iter()
            .filter(|(_, m)| m.leaving.is_some())
            .map(|(a, _)| *a)
            .collect();
        for a in leaving {
            self.finish_leave(&a, now, &mut out);
        }
        out
    }

    /// The membership list.
    pub fn who(&self) -> Out {
        let mut members: Vec<WhoEntry> = self
            .members
            .iter()
            .map(|(a, m)| WhoEntry {
                from: a.to_string(),
                nick: m.nick.clone(),
                me: false,
            })
            .chain(std::iter::once(WhoEntry {
                from: self.me.to_string(),
                nick: self.nick.clone(),
                me: true,
            }))
            .collect();
        members.sort_by(|a, b| (&a.nick, &a.from).cmp(&(&b.nick, &b.from)));
        Out::Who { members }
    }
}

impl Member {
    fn seen(&mut self, now: Instant) {
        self.last_seen = now;
        self.probed = None;
        self.unreachable = false;
    }
}

fn leave_out(from: &Address, nick: String, reason: &'static str) -> Out {
    Out::Leave {
        from: from.to_string(),
        nick,
        reason,
    }
}

fn messages(
    from: &Address,
    delivered: Vec<(u64, Stored)>,
    fetched: bool,
) -> impl Iterator<Item = Out> + '_ {
    let recv_ms = unix_ms();
    delivered.into_iter().map(move |(seq, s)| Out::Message {
        from: from.to_string(),
        nick: s.nick,
        seq,
        text: s.text,
        sent_ms: s.ts,
        recv_ms,
        fetched,
    })
}

#[cfg(test)]
mod tests;
