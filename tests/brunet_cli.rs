//! Three `chamber brunet` processes on 127.0.0.1 form a Brunet ring over the UDP profile:
//! each ends with the right left/right neighbours, an AH exact echo crosses the ring, and a
//! node that is told to stop leaves cleanly and the other two close the ring behind it.

use std::io::{BufRead, BufReader};
use std::net::UdpSocket;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

/// A running `chamber brunet`, killed if the test ends early.
struct Proc {
    child: Child,
    lines: Receiver<String>,
    seen: Vec<String>,
    address: String,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A free UDP port on loopback (bound, then released).
fn free_port() -> u16 {
    let s = UdpSocket::bind("127.0.0.1:0").expect("loopback socket");
    s.local_addr().expect("local address").port()
}

fn start(port: u16, bootstrap: &str, echo: Option<&str>) -> Proc {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_chamber"));
    cmd.args(["brunet", "--realm", "ChamberTestRing"])
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--bootstrap", bootstrap])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(e) = echo {
        cmd.args(["--echo", e]);
    }
    let mut child = cmd.spawn().expect("chamber runs");
    let (tx, lines) = channel();
    for stream in [
        Box::new(child.stdout.take().expect("stdout")) as Box<dyn std::io::Read + Send>,
        Box::new(child.stderr.take().expect("stderr")),
    ] {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
    }
    let mut p = Proc {
        child,
        lines,
        seen: Vec::new(),
        address: String::new(),
    };
    let first = p.wait_for(Duration::from_secs(20), |l| l.starts_with("address "));
    p.address = first.split_whitespace().nth(1).expect("address").to_owned();
    p
}

impl Proc {
    /// Reads lines until one matches, failing after `limit`.
    fn wait_for(&mut self, limit: Duration, want: impl Fn(&str) -> bool) -> String {
        let end = Instant::now() + limit;
        if let Some(l) = self.seen.iter().find(|l| want(l)) {
            return l.clone();
        }
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    self.seen.push(l.clone());
                    if want(&l) {
                        return l;
                    }
                }
                Err(_) => panic!("timed out; output so far:\n{}", self.seen.join("\n")),
            }
        }
    }

    /// Waits until the last reported neighbours are `left` and `right`.
    fn wait_neighbours(&mut self, left: &str, right: &str) {
        let want = format!("neighbours left {left} right {right}");
        let end = Instant::now() + Duration::from_secs(60);
        loop {
            let last = self
                .seen
                .iter()
                .rev()
                .find(|l| l.starts_with("neighbours "));
            if last == Some(&want) {
                return;
            }
            let left_time = end.saturating_duration_since(Instant::now());
            match self
                .lines
                .recv_timeout(left_time.min(Duration::from_millis(200)))
            {
                Ok(l) => self.seen.push(l),
                Err(_) if Instant::now() < end => {}
                Err(_) => panic!("want {want}; output:\n{}", self.seen.join("\n")),
            }
        }
    }
}

#[test]
fn three_processes_form_a_ring_echo_and_leave() {
    let ports = [free_port(), free_port(), free_port()];
    let by_ip = format!("brunet.udp://127.0.0.1:{}", ports[0]);
    let mut first = start(ports[0], &by_ip, None);
    let mut second = start(ports[1], &by_ip, None);
    let target = first.address.clone();
    // A host name is resolved by the driver (to its IPv4 address, as the socket is IPv4).
    let by_name = format!("brunet.udp://localhost:{}", ports[0]);
    let mut third = start(ports[2], &by_name, Some(&target));
    for p in [&mut first, &mut second, &mut third] {
        p.wait_for(Duration::from_secs(5), |l| l.contains("plaintext"));
    }
    let mut by_addr = [
        first.address.clone(),
        second.address.clone(),
        third.address.clone(),
    ];
    // Numeric order, not text order: base32's digits 2–7 come after its letters.
    by_addr.sort_by_key(|a| {
        a.parse::<brunet_compat::address::Address>()
            .expect("a ring address")
    });
    let ring = |a: &str| {
        let i = by_addr.iter().position(|x| x == a).expect("member");
        (by_addr[(i + 1) % 3].clone(), by_addr[(i + 2) % 3].clone())
    };
    for p in [&mut first, &mut second, &mut third] {
        let (l, r) = ring(&p.address);
        p.wait_neighbours(&l, &r);
    }
    let reply = format!("reply from {target}");
    third.wait_for(Duration::from_secs(30), |l| l.contains(&reply));

    // The second node stops: it says goodbye, and the other two close the ring.
    let pid = second.child.id().to_string();
    let status = Command::new("kill").args(["-TERM", &pid]).status();
    assert!(status.is_ok_and(|s| s.success()));
    second.wait_for(Duration::from_secs(10), |l| l == "left the ring");
    let exit = second.child.wait().expect("exit status");
    assert!(exit.success(), "{exit:?}");
    let (a, b) = (first.address.clone(), third.address.clone());
    first.wait_neighbours(&b, &b);
    third.wait_neighbours(&a, &a);
}
