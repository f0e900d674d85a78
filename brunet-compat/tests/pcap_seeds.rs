//! Fuzz seed corpus from the captures: `fuzz/corpus/<target>/<hash>`.
//!
//! Each decoder's fuzz target starts from the real inputs it sees inside the captured
//! datagrams: whole datagrams (`packet`, `udp`), AH headers with payload (`ah`),
//! forwarding headers (`forward`), ReqRep messages (`reqrep`), ADR values (`adr`, `link`),
//! transport-address strings (`ta`) and datagram records for a profile node
//! (`profile_node`). Inputs are deduplicated by target and length,
//! since same-length datagrams are the same message with other ids.
//!
//! `BRUNET_WRITE_SEEDS=1 cargo test -p brunet-compat --test pcap_seeds` (re)writes the
//! corpus; without it the test checks that every seed is committed.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::path::{Path, PathBuf};

use brunet_compat::wire::adr::Adr;
use brunet_compat::wire::rpc::RpcCall;
use brunet_compat::wire::{Packet, PacketBody, Payload, ReqRepBody};
use pcap_file::pcap::PcapReader;

fn manifest() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn payloads() -> Vec<Vec<u8>> {
    let dir = manifest().join("../../shared/vectors/brunet");
    let mut out = Vec::new();
    for name in ["brunet-ring.pcap", "brunet-leave.pcap"] {
        let mut reader = PcapReader::new(File::open(dir.join(name)).unwrap()).unwrap();
        while let Some(frame) = reader.next_packet() {
            let data = frame.unwrap().data;
            let ip = &data[14..];
            let ihl = usize::from(ip[0] & 0x0f) * 4;
            out.push(ip[ihl + 8..].to_vec());
        }
    }
    out
}

/// Seeds per target, one per (target, length).
#[derive(Default)]
struct Seeds(BTreeMap<&'static str, BTreeMap<usize, Vec<u8>>>);

impl Seeds {
    fn add(&mut self, target: &'static str, bytes: Vec<u8>) {
        self.0
            .entry(target)
            .or_default()
            .entry(bytes.len())
            .or_insert(bytes);
    }

    fn payload(&mut self, p: &Payload) {
        let emit = |p: &Payload| {
            let mut v = Vec::new();
            p.emit(&mut v).unwrap();
            v
        };
        match p {
            Payload::Ah { header, inner } => {
                let mut v = Vec::new();
                header.emit(&mut v);
                v.extend(emit(inner));
                self.add("ah", v);
                self.payload(inner);
            }
            Payload::Forward { header, inner } => {
                let mut v = Vec::new();
                header.emit(&mut v);
                v.extend(emit(inner));
                self.add("forward", v);
                self.payload(inner);
            }
            Payload::ReqRep { header, body } => {
                let mut v = Vec::new();
                header.emit(&mut v);
                match body {
                    ReqRepBody::Payload(inner) => {
                        v.extend(emit(inner));
                        self.payload(inner);
                    }
                    ReqRepBody::Raw(raw) => v.extend_from_slice(raw),
                }
                self.add("reqrep", v);
            }
            Payload::Rpc(value) => {
                let bytes = value.to_bytes().unwrap();
                self.add("adr", bytes.clone());
                self.add("link", bytes);
                if let Ok(call) = RpcCall::from_adr(value) {
                    for arg in &call.args {
                        self.add("link", arg.to_bytes().unwrap());
                    }
                }
                self.strings(value);
            }
            Payload::Other { .. } => {}
        }
    }

    fn strings(&mut self, v: &Adr) {
        match v {
            Adr::Str(s) if s.starts_with("brunet") => self.add("ta", s.clone().into_bytes()),
            Adr::List(l) => l.iter().for_each(|x| self.strings(x)),
            Adr::Map(m) | Adr::Exception(m) => m.iter().for_each(|(_, x)| self.strings(x)),
            _ => {}
        }
    }
}

/// FNV-1a 64: a stable file name for a seed.
fn name(bytes: &[u8]) -> String {
    let h = bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{h:016x}")
}

fn seeds() -> Seeds {
    let mut seeds = Seeds::default();
    for d in payloads() {
        seeds.add("udp", d.clone());
        seeds.add("packet", d.clone());
        // profile_node records: ctl (source port 15000 + 1) | len | datagram.
        let mut record = vec![1];
        record.extend_from_slice(&u16::try_from(d.len()).unwrap().to_be_bytes());
        record.extend_from_slice(&d);
        seeds.add("profile_node", record);
        if let PacketBody::Payload(p) = Packet::parse(&d).unwrap().body {
            seeds.payload(&p);
        }
    }
    seeds
}

#[test]
fn fuzz_corpus_holds_the_capture_seeds() {
    let corpus = manifest().join("fuzz/corpus");
    let write = std::env::var_os("BRUNET_WRITE_SEEDS").is_some();
    let seeds = seeds();
    let targets: BTreeSet<_> = seeds.0.keys().copied().collect();
    let expected: BTreeSet<_> = [
        "adr",
        "ah",
        "forward",
        "link",
        "packet",
        "profile_node",
        "reqrep",
        "ta",
        "udp",
    ]
    .into_iter()
    .collect();
    assert_eq!(targets, expected);
    for (target, by_len) in &seeds.0 {
        let dir: &Path = &corpus.join(target);
        if write {
            std::fs::create_dir_all(dir).unwrap();
        }
        for bytes in by_len.values() {
            let path = dir.join(name(bytes));
            if write {
                std::fs::write(&path, bytes).unwrap();
            } else {
                let on_disk = std::fs::read(&path).unwrap_or_else(|_| {
                    panic!(
                        "missing seed {}; rerun with BRUNET_WRITE_SEEDS=1",
                        path.display()
                    )
                });
                assert_eq!(&on_disk, bytes, "{}", path.display());
            }
        }
    }
}
