//! What the VPN lab tests share: `vpn up` in every node's namespace, `vpn status`, and the
//! probes (ping, a TCP transfer, DNS queries, hand-made UDP packets) run inside lab namespaces.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::node_support;
use crate::ring_support::{Ring, start};

pub const OPEN: usize = 0;
pub const FULL: usize = 1;
pub const RESTRICTED: usize = 2;
pub const PORT: usize = 3;
pub const SYMMETRIC: usize = 4;
pub const BLOCKED: usize = 5;
/// The IPv4 address two nodes both ask for.
pub const CONTESTED: Ipv4Addr = Ipv4Addr::new(100, 64, 1, 1);

/// `vpn up` in every node's namespace; stopped (SIGTERM, so it cleans up) when dropped.
pub struct Vpns {
    children: Vec<Child>,
    logs: Vec<PathBuf>,
}

impl Drop for Vpns {
    fn drop(&mut self) {
        for c in &self.children {
            let pid = nix::unistd::Pid::from_raw(c.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        }
        for c in &mut self.children {
            let t = Instant::now();
            while t.elapsed() < Duration::from_secs(5) {
                if let Ok(Some(_)) = c.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Vpns {
    pub fn logs(&self) -> String {
        let mut out = String::new();
        for l in &self.logs {
            out += &format!("=== {}\n", l.display());
            out += &std::fs::read_to_string(l).unwrap_or_default();
        }
        out
    }
}

/// What `vpn status --json` says of one node.
#[derive(Clone, Debug)]
pub struct Node {
    pub ip6: Ipv6Addr,
    pub ip4: Option<Ipv4Addr>,
    pub spoofed: u64,
}

/// The `vpn` example, built once per test process.
pub fn vpn_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| node_support::example_bin("vpn"))
}

pub fn vpn(ring: &Ring, i: usize, args: &[&str]) -> Command {
    let mut c = ring.host(i).command(vpn_bin().to_str().expect("path"));
    c.arg("--socket").arg(app_socket(ring, i)).args(args);
    c
}

pub fn status(ring: &Ring, i: usize) -> Option<Node> {
    let out = vpn(ring, i, &["status", "--json"]).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    Some(Node {
        ip6: v["ip6"].as_str()?.parse().ok()?,
        ip4: v["ip4"].as_str().and_then(|s| s.parse().ok()),
        spoofed: v["counters"]["spoofed"].as_u64()?,
    })
}

/// A ring of six (one site per NAT kind), consistent, with `vpn up` everywhere.
pub fn ring_with_vpns(ipv4: bool) -> (Ring, Vpns, Vec<Node>) {
    let ring = start(1, 0);
    ring.all_online();
    assert!(
        ring.wait_consistent(Duration::from_secs(60)).is_some(),
        "ring not consistent:\n{}",
        ring.dump()
    );
    let mut vpns = Vpns {
        children: Vec::new(),
        logs: Vec::new(),
    };
    for i in 0..ring.names.len() {
        let log = ring.homes[i].dir.join("vpn.log");
        let file = std::fs::File::create(&log).expect("log file");
        let mut args = vec!["up".to_string(), "--name".into(), format!("box{i}")];
        if ipv4 {
            args.push("--ipv4".into());
            // open0 and full0 both want the same address: one gets it, the other moves on.
            if i == OPEN || i == FULL {
                args.extend(["--ipv4-prefer".into(), CONTESTED.to_string()]);
            }
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let child = vpn(&ring, i, &args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("log"))
            .stderr(file)
            .spawn()
            .expect("start vpn up");
        vpns.children.push(child);
        vpns.logs.push(log);
    }
    let t = Instant::now();
    let nodes = loop {
        let nodes: Option<Vec<Node>> = (0..ring.names.len())
            .map(|i| status(&ring, i).filter(|n| !ipv4 || n.ip4.is_some()))
            .collect();
        // With IPv4, also wait for the claims to settle: two claimants that raced may both
        // hold an address for a few seconds, until the later one sees the earlier claim.
        if let Some(n) = nodes.filter(|n| !ipv4 || v4_settled(n)) {
            break n;
        }
        for c in &mut vpns.children {
            if let Ok(Some(s)) = c.try_wait() {
                panic!("a vpn exited early ({s}):\n{}", vpns.logs());
            }
        }
        assert!(
            t.elapsed() < Duration::from_secs(120),
            "the VPNs did not come up, each with its own IPv4, in 120 s:\n{}",
            vpns.logs()
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    eprintln!("6 VPNs up in {} ms", t.elapsed().as_millis());
    (ring, vpns, nodes)
}

/// Every node holds its own IPv4, and exactly one of the two claimants of [`CONTESTED`] has it.
fn v4_settled(nodes: &[Node]) -> bool {
    let mut v4: Vec<Ipv4Addr> = nodes.iter().filter_map(|n| n.ip4).collect();
    v4.sort();
    v4.dedup();
    let holders = [OPEN, FULL]
        .iter()
        .filter(|&&i| nodes[i].ip4 == Some(CONTESTED))
        .count();
    v4.len() == nodes.len() && holders == 1
}

/// `ping` (or `ping -6`) from node `from`'s namespace; Ok when all `count` replies came.
pub fn ping(ring: &Ring, from: usize, to: IpAddr, count: u32) -> Result<String, String> {
    let mut c = ring.host(from).command("ping");
    if to.is_ipv6() {
        c.arg("-6");
    }
    c.args([
        "-c",
        &count.to_string(),
        "-i",
        "0.3",
        "-w",
        "30",
        &to.to_string(),
    ]);
    let out = c.output().map_err(|e| e.to_string())?;
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    if out.status.success() {
        Ok(text)
    } else {
        Err(text)
    }
}

pub fn pattern(n: usize) -> Vec<u8> {
    (0..n as u64)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect()
}

/// Sends `data` over TCP from node `from` to node `to` at `to_ip`, echoes nothing: the
/// receiver checks it byte for byte. Gives the time from connect to the last byte read.
pub fn tcp_transfer(ring: &Ring, from: usize, to: usize, to_ip: IpAddr, data: &[u8]) -> Duration {
    let port = 7000 + from as u16;
    let bind = SocketAddr::new(to_ip, port);
    let listener = ring
        .host(to)
        .run(move || TcpListener::bind(bind))
        .expect("enter namespace")
        .expect("listen on the VPN address");
    let expect = data.len();
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().expect("accept");
        let mut got = Vec::with_capacity(expect);
        s.read_to_end(&mut got).expect("read the transfer");
        (got, Instant::now())
    });
    let stream = ring
        .host(from)
        .run(move || TcpStream::connect_timeout(&bind, Duration::from_secs(30)))
        .expect("enter namespace")
        .expect("connect over the VPN");
    let t = Instant::now();
    let mut stream = stream;
    stream.write_all(data).expect("send the transfer");
    stream
        .shutdown(std::net::Shutdown::Write)
        .expect("shutdown");
    let (got, done) = server.join().expect("server thread");
    assert!(
        got == data,
        "the TCP transfer differs: {} of {} bytes",
        got.len(),
        data.len()
    );
    done.duration_since(t)
}

/// A DNS query for `name` of type `qtype` (1 = A, 28 = AAAA) to `server` from node `from`;
/// gives the answer's addresses (the rdata of every answer).
pub fn dns(
    ring: &Ring,
    from: usize,
    server: IpAddr,
    name: &str,
    qtype: u16,
) -> Result<Vec<IpAddr>, String> {
    let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in name.split('.') {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, (qtype >> 8) as u8, qtype as u8, 0, 1]);
    let bind: SocketAddr = if server.is_ipv6() {
        "[::]:0"
    } else {
        "0.0.0.0:0"
    }
    .parse()
    .unwrap();
    let sock = ring
        .host(from)
        .run(move || UdpSocket::bind(bind))
        .expect("enter namespace")
        .map_err(|e| e.to_string())?;
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    sock.send_to(&q, SocketAddr::new(server, 53))
        .map_err(|e| e.to_string())?;
    let mut buf = [0u8; 1500];
    let n = sock.recv(&mut buf).map_err(|e| e.to_string())?;
    let r = &buf[..n];
    if r.len() < 12 || r[..2] != [0x12, 0x34] {
        return Err(format!("not our answer: {r:?}"));
    }
    let rcode = r[3] & 0x0f;
    if rcode != 0 {
        return Err(format!("rcode {rcode}"));
    }
    let answers = u16::from_be_bytes([r[6], r[7]]);
    // Skip the question (our bytes after the header), then read each answer.
    let mut at = q.len();
    let mut out = Vec::new();
    for _ in 0..answers {
        // Name: a pointer (2 bytes) or labels.
        while r[at] != 0 && r[at] & 0xc0 != 0xc0 {
            at += 1 + r[at] as usize;
        }
        at += if r[at] == 0 { 1 } else { 2 };
        let len = u16::from_be_bytes([r[at + 8], r[at + 9]]) as usize;
        let data = &r[at + 10..at + 10 + len];
        out.push(match len {
            4 => IpAddr::from(<[u8; 4]>::try_from(data).unwrap()),
            16 => IpAddr::from(<[u8; 16]>::try_from(data).unwrap()),
            _ => return Err(format!("answer of {len} bytes")),
        });
        at += 10 + len;
    }
    Ok(out)
}

pub fn checksum(chunks: &[&[u8]]) -> u16 {
    let mut sum = 0u32;
    for c in chunks {
        for pair in c.chunks(2) {
            let w = u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]);
            sum += u32::from(w);
        }
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An IPv6 or IPv4 UDP packet from `src` to `dst`:`port` carrying `body`.
pub fn udp_packet(src: IpAddr, dst: IpAddr, port: u16, body: &[u8]) -> Vec<u8> {
    let ulen = (8 + body.len()) as u16;
    let mut udp = Vec::new();
    udp.extend_from_slice(&40000u16.to_be_bytes());
    udp.extend_from_slice(&port.to_be_bytes());
    udp.extend_from_slice(&ulen.to_be_bytes());
    udp.extend_from_slice(&[0, 0]);
    udp.extend_from_slice(body);
    match (src, dst) {
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let mut pseudo = Vec::new();
            pseudo.extend_from_slice(&s.octets());
            pseudo.extend_from_slice(&d.octets());
            pseudo.extend_from_slice(&u32::from(ulen).to_be_bytes());
            pseudo.extend_from_slice(&[0, 0, 0, 17]);
            let c = checksum(&[&pseudo, &udp]);
            udp[6..8].copy_from_slice(&c.to_be_bytes());
            let mut p = vec![0x60, 0, 0, 0];
            p.extend_from_slice(&ulen.to_be_bytes());
            p.extend_from_slice(&[17, 64]);
            p.extend_from_slice(&s.octets());
            p.extend_from_slice(&d.octets());
            p.extend_from_slice(&udp);
            p
        }
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let total = 20 + ulen;
            let mut h = vec![0x45, 0];
            h.extend_from_slice(&total.to_be_bytes());
            h.extend_from_slice(&[0, 1, 0, 0, 64, 17, 0, 0]);
            h.extend_from_slice(&s.octets());
            h.extend_from_slice(&d.octets());
            let c = checksum(&[&h]);
            h[10..12].copy_from_slice(&c.to_be_bytes());
            h.extend_from_slice(&udp);
            h
        }
        _ => panic!("mixed families"),
    }
}

pub fn app_socket(ring: &Ring, i: usize) -> PathBuf {
    chamber::services::app_socket::socket_path(&ring.homes[i].socket)
}
