//! NAT behaviours as nftables rulesets for a site's router namespace (WAN interface `wan`, LAN
//! interface `lan`). The rules follow RFC 4787's mapping/filtering terms; see
//! `shared/design/NATLAB.md` for why each rule is there.

use std::fmt;
use std::str::FromStr;

/// How a site's router treats UDP: the classic NAT zoo plus "no NAT" and "UDP blocked".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NatKind {
    /// No NAT: the site's LAN is public and simply routed.
    None,
    /// Endpoint-independent mapping and filtering.
    FullCone,
    /// Endpoint-independent mapping, address-dependent filtering.
    RestrictedCone,
    /// Endpoint-independent mapping, address-and-port-dependent filtering (Linux MASQUERADE).
    PortRestrictedCone,
    /// Address-and-port-dependent mapping: a fresh public port per destination.
    Symmetric,
    /// UDP is dropped at the router; TCP still works.
    UdpBlocked,
}

impl NatKind {
    /// Every kind, in the order of NATLAB.md's matrix.
    pub const ALL: [NatKind; 6] = [
        NatKind::None,
        NatKind::FullCone,
        NatKind::RestrictedCone,
        NatKind::PortRestrictedCone,
        NatKind::Symmetric,
        NatKind::UdpBlocked,
    ];

    /// The short name used in site names and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            NatKind::None => "none",
            NatKind::FullCone => "full",
            NatKind::RestrictedCone => "restricted",
            NatKind::PortRestrictedCone => "port",
            NatKind::Symmetric => "symmetric",
            NatKind::UdpBlocked => "blocked",
        }
    }

    /// Whether two sites of these kinds can punch a direct UDP path (NATLAB.md's matrix).
    pub fn can_punch(self, other: NatKind) -> bool {
        use NatKind::*;
        !matches!(
            (self, other),
            (UdpBlocked, _)
                | (_, UdpBlocked)
                | (Symmetric, Symmetric)
                | (Symmetric, PortRestrictedCone)
                | (PortRestrictedCone, Symmetric)
        )
    }

    /// Whether the site's hosts get public addresses (no translation).
    pub fn is_public(self) -> bool {
        self == NatKind::None
    }

    /// The router's nftables ruleset.
    pub fn ruleset(self) -> String {
        let mut masquerade = "oifname \"wan\" masquerade";
        let mut extra_nat = "";
        let mut extra_forward = "";
        let mut maps = "";
        match self {
            NatKind::None => {
                return "table ip lab {\n  chain filter_forward { type filter hook forward priority filter; policy accept; }\n}\n".into();
            }
            NatKind::PortRestrictedCone => {}
            NatKind::Symmetric => masquerade = "oifname \"wan\" masquerade random",
            NatKind::UdpBlocked => extra_forward = "    iifname \"lan\" meta l4proto udp drop\n",
            NatKind::FullCone => {
                // Public port -> inside endpoint, learnt from outgoing packets after SNAT; any
                // remote may then use it.
                maps = "  map cone { type inet_service : ipv4_addr . inet_service; flags dynamic,timeout; timeout 120s; }\n";
                extra_nat = "  chain cone_prerouting { type nat hook prerouting priority dstnat; iifname \"wan\" meta l4proto udp dnat ip to udp dport map @cone; }\n  chain cone_learn { type filter hook postrouting priority srcnat + 10; oifname \"wan\" meta l4proto udp update @cone { udp sport : ct original ip saddr . ct original proto-src }; }\n";
            }
            NatKind::RestrictedCone => {
                // The same, keyed on the remote address too: only hosts we sent to get in.
                maps = "  map cone { type ipv4_addr . inet_service : ipv4_addr . inet_service; flags dynamic,timeout; timeout 120s; }\n";
                extra_nat = "  chain cone_prerouting { type nat hook prerouting priority dstnat; iifname \"wan\" meta l4proto udp dnat ip to ip saddr . udp dport map @cone; }\n  chain cone_learn { type filter hook postrouting priority srcnat + 10; oifname \"wan\" meta l4proto udp update @cone { ip daddr . udp sport : ct original ip saddr . ct original proto-src }; }\n";
            }
        }
        format!(
            "table ip lab {{\n{maps}  chain nat_postrouting {{ type nat hook postrouting priority srcnat; {masquerade}; }}\n{extra_nat}  chain filter_forward {{\n    type filter hook forward priority filter; policy drop;\n    ct state established,related accept\n    ct status dnat accept\n{extra_forward}    iifname \"lan\" oifname \"wan\" accept\n  }}\n  chain filter_input {{\n    type filter hook input priority filter; policy accept;\n    iifname \"wan\" ct state established,related accept\n    # Unsolicited packets die silently: an ICMP answer would spoil hole punching.\n    iifname \"wan\" drop\n  }}\n}}\n"
        )
    }
}

impl fmt::Display for NatKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for NatKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        NatKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| format!("unknown NAT kind `{s}` (one of: none, full, restricted, port, symmetric, blocked)"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn punch_matrix_is_symmetric_and_matches_natlab() {
        for a in NatKind::ALL {
            for b in NatKind::ALL {
                assert_eq!(a.can_punch(b), b.can_punch(a), "{a} {b}");
            }
        }
        assert!(NatKind::RestrictedCone.can_punch(NatKind::Symmetric));
        assert!(!NatKind::PortRestrictedCone.can_punch(NatKind::Symmetric));
        assert!(NatKind::PortRestrictedCone.can_punch(NatKind::PortRestrictedCone));
        assert!(!NatKind::UdpBlocked.can_punch(NatKind::None));
    }

    #[test]
    fn names_round_trip() {
        for k in NatKind::ALL {
            assert_eq!(k.as_str().parse::<NatKind>(), Ok(k));
        }
        assert!("cone".parse::<NatKind>().is_err());
    }
}
