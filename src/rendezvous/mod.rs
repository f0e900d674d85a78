//! Rendezvous: finding the friends on our rosters who run chamber in the same ring
//! (DESIGN.md §2). Read first: RFC 6121 §4 (presence goes to contacts with subscription `from`
//! or `both` — only friends see it) and XEP-0115 (caps).
//!
//! A sans-IO state machine, driven by the node: feed it what the accounts receive
//! ([`Rendezvous::online`], [`Rendezvous::presence`], [`Rendezvous::iq_request`],
//! [`Rendezvous::iq_result`]) and the time ([`Rendezvous::handle_timeout`]), then drain
//! [`Rendezvous::poll_output`] — stanzas to send, IQs whose answers must come back with their
//! token, and [`FriendEvent`]s — and sleep until [`Rendezvous::poll_timeout`].
//!
//! What counts: a signed announce for one of our rings, verified against the sender's bare JID,
//! from a roster contact with subscription `both` or `from` (or another resource of our own
//! account), whose node key is the one pinned for that JID ([`crate::trust`]). Everything else
//! is dropped with one rate-limited debug line. A friend whose process
//! died leaves a *ghost* presence on its server (XEP-0198 hibernation, up to minutes); so a
//! friend we have not heard from for `probe_interval` is pinged (XEP-0199) at its full JID, and
//! an error or silence takes it down. A ghost keeps being probed for a while, because a friend
//! that merely lost its connection resumes its session without sending presence again.
#![warn(missing_docs)]

mod iq_answer;
mod membership;
#[cfg(test)]
mod membership_tests;
mod peers;
mod pinning;
#[cfg(test)]
mod pinning_tests;
mod quiet_log;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::time::{Duration, Instant};

use tokio_xmpp::Stanza;
use tokio_xmpp::jid::{BareJid, FullJid};
use tokio_xmpp::parsers::iq::Iq;
use tokio_xmpp::parsers::roster::Subscription;
use xmpp_ext::{Fingerprint, NodeSecret, RingId};

use crate::account::IqError;
use peers::Peer;
use quiet_log::QuietLog;

/// A ring we are in.
#[derive(Clone, Debug)]
pub struct RingMembership {
    /// Its local name (never sent).
    pub name: String,
    /// Its public id (sent in announces).
    pub id: RingId,
}

/// Timing of liveness checks.
#[derive(Clone, Debug)]
pub struct RendezvousOptions {
    /// Silence after which a friend is pinged. With `probe_timeout`, a friend whose process
    /// died is seen gone within `probe_interval + probe_timeout` (default 20 + 10 s).
    pub probe_interval: Duration,
    /// How long a ping may go unanswered.
    pub probe_timeout: Duration,
    /// After our session restarts, how long friends have to show up again before they are
    /// declared gone.
    pub reset_grace: Duration,
    /// How long a friend that stopped answering is still probed (it may resume its session).
    pub ghost_keep: Duration,
}

impl Default for RendezvousOptions {
    fn default() -> Self {
        RendezvousOptions {
            probe_interval: Duration::from_secs(20),
            probe_timeout: Duration::from_secs(10),
            reset_grace: Duration::from_secs(10),
            ghost_keep: Duration::from_secs(600),
        }
    }
}

/// A friend's node in one ring, as seen through one of our accounts.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Friend {
    /// Our name of the ring.
    pub ring: String,
    /// The friend's full JID (one per resource).
    pub jid: String,
    /// Our account that sees it.
    pub via: String,
    /// The node's overlay address (hex).
    pub address: String,
    /// The node's key fingerprint (hex).
    pub fingerprint: String,
}

/// A change in who is there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FriendEvent {
    /// A friend's node announced itself in one of our rings.
    Up(Friend),
    /// It left, went silent, or stopped announcing that ring.
    Down {
        /// Who.
        friend: Friend,
        /// Why, for the log.
        reason: String,
    },
}

/// What the node must do.
#[derive(Debug)]
pub enum Output {
    /// Send a stanza from an account.
    Send {
        /// Index of the account.
        account: usize,
        /// The stanza.
        stanza: Stanza,
    },
    /// Send an IQ request and give its answer back with [`Rendezvous::iq_result`].
    Iq {
        /// Index of the account.
        account: usize,
        /// The request.
        iq: Iq,
        /// How long to wait for the answer.
        timeout: Duration,
        /// Tag for the answer.
        token: u64,
    },
    /// Tell whoever listens.
    Event(FriendEvent),
}

enum Pending {
    Roster(usize),
    Probe(PeerKey),
}

type PeerKey = (usize, String);

struct Account {
    bare: BareJid,
    full: Option<FullJid>,
    online: bool,
    roster: Option<HashMap<BareJid, Subscription>>,
    /// Our session restarted at this time; friends not heard from since are dropped later.
    reset_at: Option<Instant>,
    roster_retry_at: Option<Instant>,
    /// Roster friends' resources that are available now (whom an invite can reach).
    present: BTreeSet<FullJid>,
}

/// The rendezvous state of a node: its accounts, rosters and the friends seen.
pub struct Rendezvous {
    secret: NodeSecret,
    own: Fingerprint,
    rings: Vec<RingMembership>,
    opts: RendezvousOptions,
    accounts: Vec<Account>,
    peers: BTreeMap<PeerKey, Peer>,
    pending: HashMap<u64, Pending>,
    next_token: u64,
    out: VecDeque<Output>,
    quiet: QuietLog,
    pins: pinning::Pinning,
}

impl Rendezvous {
    /// A node with this identity, in these rings, on these accounts (by bare JID, in the
    /// order the node numbers them).
    pub fn new(
        secret: NodeSecret,
        rings: Vec<RingMembership>,
        accounts: Vec<BareJid>,
        opts: RendezvousOptions,
    ) -> Rendezvous {
        let own = secret.public().fingerprint();
        Rendezvous {
            secret,
            own,
            rings,
            opts,
            accounts: accounts
                .into_iter()
                .map(|bare| Account {
                    bare,
                    full: None,
                    online: false,
                    roster: None,
                    reset_at: None,
                    roster_retry_at: None,
                    present: BTreeSet::new(),
                })
                .collect(),
            peers: BTreeMap::new(),
            pending: HashMap::new(),
            next_token: 1,
            out: VecDeque::new(),
            quiet: QuietLog::default(),
            pins: pinning::Pinning::default(),
        }
    }

    /// An account has a session. A new one (not `resumed`) lost roster and presence: fetch the
    /// roster, then announce ourselves; friends seen before must show up again.
    pub fn online(&mut self, account: usize, bound: FullJid, resumed: bool, now: Instant) {
        let Some(a) = self.accounts.get_mut(account) else {
            return;
        };
        a.full = Some(bound);
        a.online = true;
        for p in self.peers.values_mut().filter(|p| p.account == account) {
            p.probe = None;
            p.next_probe = now + self.opts.probe_interval;
        }
        if resumed {
            return;
        }
        a.roster = None;
        a.present.clear();
        a.reset_at = Some(now);
        for p in self.peers.values_mut().filter(|p| p.account == account) {
            p.unconfirmed = true;
        }
        self.fetch_roster(account);
    }

    /// An account lost its connection; stop probing through it until it is back.
    pub fn offline(&mut self, account: usize) {
        if let Some(a) = self.accounts.get_mut(account) {
            a.online = false;
        }
        self.pending
            .retain(|_, p| !matches!(p, Pending::Probe((acc, _)) if *acc == account));
        for p in self.peers.values_mut().filter(|p| p.account == account) {
            p.probe = None;
        }
    }

    /// The answer to an [`Output::Iq`].
    pub fn iq_result(&mut self, token: u64, result: Result<Iq, IqError>, now: Instant) {
        match self.pending.remove(&token) {
            Some(Pending::Roster(account)) => self.roster_result(account, result, now),
            Some(Pending::Probe(key)) => self.probe_result(key, token, result, now),
            None => {}
        }
    }

    /// Runs the timers: dropping friends that did not return after our restart, probes, roster
    /// retries, forgetting old ghosts.
    pub fn handle_timeout(&mut self, now: Instant) {
        for i in 0..self.accounts.len() {
            let a = &mut self.accounts[i];
            if a.roster_retry_at.is_some_and(|t| t <= now) && a.online {
                a.roster_retry_at = None;
                self.fetch_roster(i);
            }
            let a = &mut self.accounts[i];
            if a.reset_at.is_some_and(|t| t + self.opts.reset_grace <= now) {
                a.reset_at = None;
                let gone: Vec<PeerKey> = self
                    .peers
                    .iter()
                    .filter(|(_, p)| p.account == i && p.unconfirmed)
                    .map(|(k, _)| k.clone())
                    .collect();
                for key in gone {
                    self.remove_peer(&key, "not seen again after our session restarted");
                }
            }
        }
        self.peers
            .retain(|_, p| p.ghost_since.is_none_or(|t| t + self.opts.ghost_keep > now));
        let due: Vec<PeerKey> = self
            .peers
            .iter()
            .filter(|(_, p)| p.probe.is_none() && p.next_probe <= now && p.shares(&self.rings))
            .filter(|(_, p)| self.accounts.get(p.account).is_some_and(|a| a.online))
            .map(|(k, _)| k.clone())
            .collect();
        for key in due {
            self.probe(key, now);
        }
    }

    /// When [`Rendezvous::handle_timeout`] next has work.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let probes = self
            .peers
            .values()
            .filter(|p| p.probe.is_none() && p.shares(&self.rings))
            .filter(|p| self.accounts.get(p.account).is_some_and(|a| a.online))
            .map(|p| p.next_probe);
        let ghosts = self
            .peers
            .values()
            .filter_map(|p| p.ghost_since.map(|t| t + self.opts.ghost_keep));
        let accounts = self.accounts.iter().flat_map(|a| {
            [
                a.reset_at.map(|t| t + self.opts.reset_grace),
                a.roster_retry_at,
            ]
            .into_iter()
            .flatten()
        });
        probes.chain(ghosts).chain(accounts).min()
    }

    /// The next thing to do; call until `None` after every input.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// Friends currently up, per ring.
    pub fn friends(&self) -> Vec<Friend> {
        let mut v: Vec<Friend> = self
            .peers
            .values()
            .filter(|p| p.ghost_since.is_none())
            .flat_map(|p| p.friends(&self.rings, &self.accounts[p.account].bare))
            .collect();
        v.sort_by(|a, b| (&a.ring, &a.jid).cmp(&(&b.ring, &b.jid)));
        v
    }

    /// The rings we are in.
    pub fn rings(&self) -> &[RingMembership] {
        &self.rings
    }

    /// Ignored-input log lines suppressed so far (rate limiting).
    pub fn suppressed_logs(&self) -> u64 {
        self.quiet.suppressed()
    }

    fn token(&mut self, what: Pending) -> u64 {
        let t = self.next_token;
        self.next_token += 1;
        self.pending.insert(t, what);
        t
    }

    fn emit(&mut self, ev: FriendEvent) {
        match &ev {
            FriendEvent::Up(f) => {
                tracing::info!(ring = %f.ring, jid = %f.jid, address = %f.address, "friend up")
            }
            FriendEvent::Down { friend, reason } => {
                tracing::info!(ring = %friend.ring, jid = %friend.jid, %reason, "friend down")
            }
        }
        self.out.push_back(Output::Event(ev));
    }

    /// Whether `from` may take part: a roster contact with subscription `both` or `from`, or
    /// our own account (another device of ours).
    /// Whether `from` may talk to us through `account`: ourselves, or a roster contact whose
    /// presence we receive or who receives ours.
    pub fn is_friend(&self, account: usize, from: &BareJid) -> bool {
        self.allowed(account, from)
    }

    /// Notes (one debug line per sender and period) a request from outside the roster.
    pub fn note_stranger(&mut self, what: &str, from: &str, now: Instant) {
        quiet_log::ignored!(self.quiet, now, what, from);
    }

    fn allowed(&self, account: usize, from: &BareJid) -> bool {
        let Some(a) = self.accounts.get(account) else {
            return false;
        };
        *from == a.bare
            || a.roster.as_ref().is_some_and(|r| {
                matches!(r.get(from), Some(Subscription::Both | Subscription::From))
            })
    }
}
