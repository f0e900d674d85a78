//! The lab's address plan. Everything "public" lives in the benchmark range 198.18.0.0/15, which
//! exists only inside the lab's namespaces; private LANs use 10.77.0.0/16, also only inside them.
//!
//! ```text
//!   public namespace (the internet)   lo: 198.18.0.10 Prosody (alpha.lab)
//!   │                                     198.18.0.11 ejabberd (beta.lab), its STUN/TURN
//!   │                                     198.18.0.20 + .21 coturn (two addresses: RFC 5780)
//!   ├─ p<i> ── 198.18.<i+1>.0/24 ── w  router namespace of site i (nftables NAT)
//!   │                                  l ── 10.77.<i>.0/24 (198.19.<i>.0/24 when public) ── host namespace
//! ```

use std::net::Ipv4Addr;

/// Prosody's domain.
pub const ALPHA: &str = "alpha.lab";
/// ejabberd's domain.
pub const BETA: &str = "beta.lab";
/// Prosody's address.
pub const PROSODY_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 10);
/// ejabberd's address (also its STUN/TURN listener).
pub const EJABBERD_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 11);
/// coturn's primary address.
pub const STUN_PRIMARY: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 20);
/// coturn's alternate address, for RFC 5780 behaviour discovery.
pub const STUN_ALTERNATE: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 21);
/// The STUN/TURN port of both coturn and ejabberd.
pub const STUN_PORT: u16 = 3478;
/// The most sites one lab can hold (one /24 each).
pub const MAX_SITES: usize = 200;

/// The addresses of site `i`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SiteAddrs {
    /// The public namespace's end of the site's uplink.
    pub uplink_public: Ipv4Addr,
    /// The router's WAN address: the site's public address when it does NAT.
    pub wan: Ipv4Addr,
    /// The router's LAN address, the host's gateway.
    pub gateway: Ipv4Addr,
    /// The host's address.
    pub host: Ipv4Addr,
}

impl SiteAddrs {
    /// The plan for site `index`; `public` sites get routed public LAN addresses.
    pub fn new(index: usize, public: bool) -> SiteAddrs {
        assert!(index < MAX_SITES, "site index checked by LabSpec::validate");
        let i = index as u8;
        let lan = if public { [198, 19, i] } else { [10, 77, i] };
        SiteAddrs {
            uplink_public: Ipv4Addr::new(198, 18, i + 1, 1),
            wan: Ipv4Addr::new(198, 18, i + 1, 2),
            gateway: Ipv4Addr::new(lan[0], lan[1], lan[2], 1),
            host: Ipv4Addr::new(lan[0], lan[1], lan[2], 2),
        }
    }

    /// The LAN prefix in CIDR form.
    pub fn lan_cidr(&self) -> String {
        let o = self.host.octets();
        format!("{}.{}.{}.0/24", o[0], o[1], o[2])
    }
}

/// The hosts file every lab namespace sees, so servers find each other by name.
pub fn hosts_file() -> String {
    format!(
        "127.0.0.1 localhost\n{PROSODY_IP} {ALPHA}\n{EJABBERD_IP} {BETA}\n{STUN_PRIMARY} stun.{ALPHA} turn.{ALPHA}\n{EJABBERD_IP} stun.{BETA}\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sites_do_not_overlap_servers_or_each_other() {
        let a = SiteAddrs::new(0, false);
        let b = SiteAddrs::new(1, true);
        assert_ne!(a.wan, b.wan);
        assert_eq!(a.host, Ipv4Addr::new(10, 77, 0, 2));
        assert_eq!(b.host, Ipv4Addr::new(198, 19, 1, 2));
        assert_ne!(a.uplink_public, PROSODY_IP);
        assert_eq!(b.lan_cidr(), "198.19.1.0/24");
    }
}
