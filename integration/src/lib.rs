//! chamber-lab: real XMPP servers (Prosody, ejabberd), a real STUN/TURN server (coturn) and real
//! NATs built from Linux network namespaces and nftables, on one machine, as root.
//!
//! Tests and the demo drive it through [`Lab`]; the `chamber-lab` binary is a thin CLI over it.
//! Only namespaces the lab creates (prefix `chl`) and their addresses are ever used.
#![warn(missing_docs)]

pub mod cmd;
pub mod coturn;
pub mod ejabberd;
pub mod error;
pub mod impair;
pub mod lab;
pub mod nat;
pub mod netns;
pub mod node;
pub mod pki;
pub mod process;
pub mod prosody;
pub mod spec;
pub mod topology;

pub use error::{LabError, Result};
pub use impair::Impairment;
pub use lab::{Account, Lab, Site, clean};
pub use nat::NatKind;
pub use netns::Netns;
pub use spec::{LabSpec, SiteSpec};
