//! The lab's accounts and rosters: `userK` on each server, a stranger nobody befriends, and who
//! is whose friend (everyone, or every pair but the spec's strangers).

use super::Lab;
use crate::Account;
use crate::topology::{ALPHA, BETA};

impl Lab {
    /// The bare JIDs of all friends (every `userK` on both servers).
    pub fn friends(&self) -> Vec<String> {
        let mut v = Vec::new();
        for domain in self.domains() {
            v.extend((1..=self.spec.users).map(|k| format!("user{k}@{domain}")));
        }
        v
    }

    /// Prosody's roster groups: everyone in one, or (with strangers) one per pair of friends.
    pub(super) fn roster_groups(&self) -> Vec<Vec<String>> {
        let friends = self.friends();
        if self.spec.strangers.is_empty() {
            return vec![friends];
        }
        let stranger = |a: &str, b: &str| {
            self.spec.strangers.iter().any(|(x, y)| {
                let (x, y) = (format!("user{x}@{ALPHA}"), format!("user{y}@{ALPHA}"));
                (a == x && b == y) || (a == y && b == x)
            })
        };
        let mut groups = Vec::new();
        for (i, a) in friends.iter().enumerate() {
            for b in &friends[i + 1..] {
                if !stranger(a, b) {
                    groups.push(vec![a.clone(), b.clone()]);
                }
            }
        }
        groups
    }

    /// The domains of the servers this lab runs.
    pub fn domains(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        if self.spec.prosody {
            v.push(ALPHA);
        }
        if self.spec.ejabberd {
            v.push(BETA);
        }
        v
    }

    /// Account `userK` (1-based) on `domain`.
    pub fn account(&self, k: u32, domain: &str) -> Account {
        Account {
            jid: format!("user{k}@{domain}"),
            password: format!("lab-pass-user{k}"),
        }
    }

    /// An account on `domain` that is nobody's friend.
    pub fn stranger(&self, domain: &str) -> Account {
        Account {
            jid: format!("stranger@{domain}"),
            password: "lab-pass-stranger".into(),
        }
    }

    pub(super) fn local_accounts(&self, domain: &str) -> Vec<Account> {
        let mut v: Vec<Account> = (1..=self.spec.users)
            .map(|k| self.account(k, domain))
            .collect();
        v.push(self.stranger(domain));
        v
    }
}
