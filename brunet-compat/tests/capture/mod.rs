//! The Brunet captures (`shared/vectors/brunet/`, see NOTES.md there) as UDP datagrams.
// Shared by several test crates, each of which uses only part of it.
#![allow(dead_code)]

use std::fs::File;
use std::path::PathBuf;

use brunet_compat::address::Address;
use pcap_file::pcap::PcapReader;

/// Both captures, in this order.
pub const CAPTURES: [&str; 2] = ["brunet-ring.pcap", "brunet-leave.pcap"];

/// One UDP datagram between two loopback ports.
pub struct Datagram {
    /// Frame number in its capture, from 1 (as in `brunet-ring.decoded.txt`).
    pub frame: usize,
    pub src_port: u16,
    pub dst_port: u16,
    pub payload: Vec<u8>,
}

/// Every datagram of capture `name`, Ethernet, IPv4 and UDP stripped.
pub fn datagrams(name: &str) -> Vec<Datagram> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/vectors/brunet");
    let mut reader = PcapReader::new(File::open(dir.join(name)).expect("capture")).expect("pcap");
    let mut out = Vec::new();
    while let Some(frame) = reader.next_packet() {
        let data = frame.expect("pcap record").data;
        let ip = &data[14..];
        let ihl = usize::from(ip[0] & 0x0f) * 4;
        let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
        let udp = &ip[ihl..total];
        out.push(Datagram {
            frame: out.len() + 1,
            src_port: u16::from_be_bytes([udp[0], udp[1]]),
            dst_port: u16::from_be_bytes([udp[2], udp[3]]),
            payload: udp[8..].to_vec(),
        });
    }
    out
}

/// The node listening on `port` in the captures (NOTES.md's table).
pub fn address_of(port: u16) -> Address {
    let b32 = match port {
        15000 => "H3US32RQ7LDDQ464ZJKMP2VWX6LANY5O",
        15001 => "6M23YUPWFOORDQLE4FLSLLOEYW2KCCFS",
        15002 => "C7CZHL4LZOS3GJ5EG5UBMSHCDY3CG7IS",
        15003 => "ENMDPEQE42FAH2ADVH2H6GI3VTFARX24",
        15004 => "VGGE77EI2YNVUGAYH73K7YRGIJ3I2XGU",
        other => panic!("no node on port {other}"),
    };
    Address::from_base32(b32).expect("capture address")
}
