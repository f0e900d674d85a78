//! What a lab is made of: sites behind NATs, how many user accounts, which servers.

use crate::error::{LabError, Result};
use crate::impair::Impairment;
use crate::nat::NatKind;
use crate::topology::MAX_SITES;

/// One site: a router doing `nat` and one host behind it.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SiteSpec {
    /// A short name, unique in the lab (letters, digits, `-`).
    pub name: String,
    /// The router's behaviour.
    pub nat: NatKind,
    /// Delay and loss on the uplink.
    #[serde(default)]
    pub impair: Impairment,
}

impl SiteSpec {
    /// A site with no impairment.
    pub fn new(name: impl Into<String>, nat: NatKind) -> SiteSpec {
        SiteSpec {
            name: name.into(),
            nat,
            impair: Impairment::default(),
        }
    }
}

/// A whole lab.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LabSpec {
    /// The sites, in order.
    pub sites: Vec<SiteSpec>,
    /// Accounts `user1…userN` are made on each server, all mutual friends but `strangers`.
    pub users: u32,
    /// Pairs of users (by number) on Prosody who are not on each other's roster.
    #[serde(default)]
    pub strangers: Vec<(u32, u32)>,
    /// Start Prosody (alpha.lab).
    pub prosody: bool,
    /// Start ejabberd (beta.lab).
    pub ejabberd: bool,
    /// Start coturn.
    pub coturn: bool,
}

impl LabSpec {
    /// One site of each NAT kind, named after it, with both servers and coturn.
    pub fn one_of_each() -> LabSpec {
        LabSpec::with_sites(
            NatKind::ALL
                .iter()
                .map(|k| SiteSpec::new(k.as_str(), *k))
                .collect(),
        )
    }

    /// `per_kind` sites of each NAT kind (`full-1`, `full-2`, …).
    pub fn each_kind(per_kind: usize) -> LabSpec {
        let mut sites = Vec::new();
        for k in NatKind::ALL {
            for n in 1..=per_kind {
                sites.push(SiteSpec::new(format!("{k}-{n}"), k));
            }
        }
        LabSpec::with_sites(sites)
    }

    /// The given sites, one user per site, all servers.
    pub fn with_sites(sites: Vec<SiteSpec>) -> LabSpec {
        let users = sites.len().max(1) as u32;
        LabSpec {
            sites,
            users,
            strangers: Vec::new(),
            prosody: true,
            ejabberd: true,
            coturn: true,
        }
    }

    /// Checks names and sizes.
    pub fn validate(&self) -> Result<()> {
        if self.sites.len() > MAX_SITES {
            return Err(LabError::Spec(format!(
                "at most {MAX_SITES} sites, not {}",
                self.sites.len()
            )));
        }
        for (i, s) in self.sites.iter().enumerate() {
            if s.name.is_empty()
                || !s
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-')
            {
                return Err(LabError::Spec(format!(
                    "site name `{}`: use letters, digits and `-`",
                    s.name
                )));
            }
            if self.sites[..i].iter().any(|o| o.name == s.name) {
                return Err(LabError::Spec(format!("two sites are named `{}`", s.name)));
            }
            if !(0.0..=100.0).contains(&s.impair.loss_percent) {
                return Err(LabError::Spec(format!(
                    "site `{}`: loss must be 0–100 %",
                    s.name
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_catches_bad_specs() {
        assert!(LabSpec::one_of_each().validate().is_ok());
        assert_eq!(LabSpec::each_kind(2).sites.len(), 12);
        let mut dup = LabSpec::one_of_each();
        dup.sites[1].name = "none".into();
        assert!(dup.validate().is_err());
        let bad = LabSpec::with_sites(vec![SiteSpec::new("a b", NatKind::None)]);
        assert!(bad.validate().is_err());
    }
}
