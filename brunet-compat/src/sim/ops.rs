//! Arbitrary operation sequences against a handful of nodes: the `ring_ops` fuzz target
//! and a seeded property test both drive [`run_ops`], which must never panic.
//!
//! Each input byte string is read as a program: an opcode byte, then its operands. Links
//! are made between the nodes at will (both ends get `LinkUp`), transmits queue up per
//! link and are delivered, dropped, duplicated or replaced by raw bytes in any order,
//! clocks jump, and the application calls come in between. Whatever the order, the
//! nodes must only ever count and drop what they cannot use.

use std::time::Duration;

use crate::address::Address;
use crate::ring::{Config, Input, LinkId, LinkKind, Mode, Msg, Node, Output, Time, codec};

/// Nodes in a program.
const NODES: usize = 4;
/// Operations run at most (bounds the work per input).
const MAX_OPS: usize = 400;

/// A byte reader that yields zeros once the input runs out.
struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn u8(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }

    fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.u8(), self.u8()])
    }

    fn take(&mut self, n: usize) -> Vec<u8> {
        let n = n.min(self.0.len());
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        a.to_vec()
    }

    fn addr(&mut self) -> Address {
        let mut b = [0u8; 20];
        b[0] = self.u8();
        b[19] = self.u8();
        Address::from_bytes(b)
    }
}

struct World {
    nodes: Vec<Node>,
    addrs: Vec<Address>,
    now: Time,
    /// Links: (id, end a, end b, up).
    links: Vec<(u64, usize, usize, bool)>,
    /// Messages sent and not yet delivered: (link, from node, message).
    wire: Vec<(u64, usize, Msg)>,
}

impl World {
    fn new(seed: u8) -> World {
        let addrs: Vec<Address> = (0..NODES)
            .map(|i| {
                let mut b = [0u8; 20];
                b[0] = (i as u8).wrapping_mul(64).wrapping_add(seed);
                Address::ah(b)
            })
            .collect();
        let nodes = addrs
            .iter()
            .enumerate()
            .map(|(i, a)| {
                let mut n = Node::new(Config::with_seed(i as u64), *a, Time::ZERO);
                if i == 0 {
                    n.create_ring();
                }
                n
            })
            .collect();
        World {
            nodes,
            addrs,
            now: Time::ZERO,
            links: Vec::new(),
            wire: Vec::new(),
        }
    }

    /// Drains node `i` into the wire queue; link wishes become links at once.
    fn drain(&mut self, i: usize) {
        let mut wanted = Vec::new();
        loop {
            match self.nodes[i].poll_output() {
                Output::Timeout(_) => break,
                Output::Transmit(t) => {
                    if self.wire.len() < 256 {
                        self.wire.push((t.link.0, i, t.msg));
                    }
                }
                Output::Event(crate::ring::Event::LinkWanted { peer, .. }) => wanted.push(peer),
                Output::Event(crate::ring::Event::CloseLink { link }) => self.close(link.0),
                Output::Event(_) => {}
            }
        }
        for peer in wanted {
            if let Some(j) = self.addrs.iter().position(|a| *a == peer) {
                self.link(i, j, false);
            }
        }
    }

    fn link(&mut self, a: usize, b: usize, leaf: bool) {
        if a == b || self.links.len() >= 64 {
            return;
        }
        let id = self.links.len() as u64 + 1;
        self.links.push((id, a, b, true));
        for (x, y) in [(a, b), (b, a)] {
            let input = Input::LinkUp {
                link: LinkId(id),
                peer: self.addrs[y],
                kind: if id.is_multiple_of(5) {
                    LinkKind::Relay
                } else {
                    LinkKind::Direct
                },
                rtt: Some(Duration::from_millis(id % 97)),
                leaf: leaf && x == a,
            };
            self.nodes[x].handle_input(self.now, input);
            self.drain(x);
        }
    }

    fn close(&mut self, id: u64) {
        let Some(l) = self.links.iter_mut().find(|l| l.0 == id && l.3) else {
            return;
        };
        l.3 = false;
        let (a, b) = (l.1, l.2);
        for x in [a, b] {
            self.nodes[x].handle_input(self.now, Input::LinkDown { link: LinkId(id) });
            self.drain(x);
        }
    }

    /// The other end of link `id` from node `from`.
    fn other_end(&self, id: u64, from: usize) -> Option<usize> {
        let l = self.links.iter().find(|l| l.0 == id && l.3)?;
        Some(if l.1 == from { l.2 } else { l.1 })
    }
}

/// Runs the program in `data` against a few nodes. Never panics (that is the point).
pub fn run_ops(data: &[u8]) {
    let mut b = Bytes(data);
    let mut w = World::new(b.u8());
    for _ in 0..MAX_OPS {
        if b.0.is_empty() {
            break;
        }
        let op = b.u8();
        let i = usize::from(b.u8()) % NODES;
        match op % 16 {
            0 => {
                let j = usize::from(b.u8()) % NODES;
                let leaf = b.u8() & 1 == 1;
                w.link(i, j, leaf);
            }
            1 => {
                let id = u64::from(b.u8());
                w.close(id);
            }
            2 => {
                let peer = w.addrs[usize::from(b.u8()) % NODES];
                w.nodes[i].handle_input(w.now, Input::LinkFailed { peer });
            }
            3..=5 => {
                // Deliver (or, for 4, duplicate; for 5, drop) a queued message.
                if w.wire.is_empty() {
                    continue;
                }
                let k = usize::from(b.u16()) % w.wire.len();
                let (id, from, msg) = if op % 16 == 4 {
                    w.wire[k].clone()
                } else {
                    w.wire.swap_remove(k)
                };
                if op % 16 == 5 {
                    continue;
                }
                if let Some(to) = w.other_end(id, from) {
                    let input = Input::Receive {
                        link: LinkId(id),
                        msg,
                    };
                    w.nodes[to].handle_input(w.now, input);
                    w.drain(to);
                }
                continue;
            }
            6 => {
                // Raw bytes on a link, through the codec.
                let id = u64::from(b.u8());
                let len = usize::from(b.u8());
                let bytes = b.take(len);
                w.nodes[i].handle_input(
                    w.now,
                    Input::ReceiveBytes {
                        link: LinkId(id),
                        bytes,
                    },
                );
            }
            7 => {
                // A queued message re-encoded, mangled at one byte, and delivered.
                if w.wire.is_empty() {
                    continue;
                }
                let k = usize::from(b.u16()) % w.wire.len();
                let (id, from, msg) = w.wire.swap_remove(k);
                let mut bytes = codec::encode(&msg);
                if !bytes.is_empty() {
                    let at = usize::from(b.u16()) % bytes.len();
                    bytes[at] ^= b.u8();
                }
                if let Some(to) = w.other_end(id, from) {
                    w.nodes[to].handle_input(
                        w.now,
                        Input::ReceiveBytes {
                            link: LinkId(id),
                            bytes,
                        },
                    );
                    w.drain(to);
                }
                continue;
            }
            8 => {
                // Time passes; every node takes its timeout.
                w.now = w.now + Duration::from_millis(u64::from(b.u16()) * 10);
                for x in 0..NODES {
                    w.nodes[x].handle_input(w.now, Input::Timeout);
                    w.drain(x);
                }
                continue;
            }
            9 => {
                let dst = b.addr();
                let mode = Mode::from_opts(u16::from(b.u8() % 6)).unwrap_or(Mode::Exact);
                let len = usize::from(b.u8() % 32);
                let data = b.take(len);
                w.nodes[i].send(w.now, dst, mode, data);
            }
            10 => {
                let key = b.addr();
                w.nodes[i].lookup(w.now, key);
            }
            11 => {
                let key = b.addr();
                let len = usize::from(b.u8());
                let value = b.take(len);
                let ttl = u32::from(b.u16());
                w.nodes[i].dht_put(w.now, key, value, ttl, Vec::new());
            }
            12 => {
                let key = b.addr();
                w.nodes[i].dht_get(w.now, key);
            }
            13 => {
                let key = b.addr();
                let len = usize::from(b.u8() % 8);
                let value = b.take(len);
                w.nodes[i].dht_remove(w.now, key, value);
            }
            14 => {
                let end = b.addr();
                w.nodes[i].broadcast(w.now, end, b"b".to_vec());
            }
            _ => {
                if b.u8() == 0xff {
                    w.nodes[i].leave(w.now);
                } else {
                    let rtt = Duration::from_micros(u64::from(b.u16()));
                    let link = LinkId(u64::from(b.u8()));
                    w.nodes[i].handle_input(w.now, Input::LinkRtt { link, rtt });
                }
            }
        }
        w.drain(i);
    }
}
