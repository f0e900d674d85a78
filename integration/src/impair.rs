//! Delay and loss on a site's uplink. This kernel has no netem, so loss is an nftables
//! `numgen random` rule and delay is an NFQUEUE whose verdicts a thread of ours gives late. Both
//! act in the public namespace (never in a NAT router, whose conntrack could hand one flow two
//! ports) and in both directions, so a one-way delay of `d` adds `2d` to a round trip.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::error::{LabError, Result};
use crate::netns::Netns;

/// Impairment of one site's uplink, applied in each direction.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Impairment {
    /// One-way delay in milliseconds.
    pub delay_ms: u32,
    /// Share of packets dropped, in percent (0–100).
    pub loss_percent: f32,
}

impl Impairment {
    /// Whether this changes anything.
    pub fn is_none(&self) -> bool {
        self.delay_ms == 0 && self.loss_percent <= 0.0
    }
}

/// Adds the loss rules for the uplink interface `iface` of the public namespace.
pub fn add_loss(public: &Netns, iface: &str, loss_percent: f32) -> Result<()> {
    let n = (loss_percent.clamp(0.0, 100.0) * 100.0).round() as u32;
    public.nft(&format!(
        "table ip impair_{iface} {{\n  chain pre {{ type filter hook prerouting priority -300; iifname \"{iface}\" numgen random mod 10000 < {n} drop; }}\n  chain post {{ type filter hook postrouting priority 300; oifname \"{iface}\" numgen random mod 10000 < {n} drop; }}\n}}\n"
    ))
}

/// The threads that hold queued packets back, one queue number per impaired interface.
pub struct DelayQueues {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl DelayQueues {
    /// Sends every packet in and out of each `(iface, delay)` through an NFQUEUE and releases
    /// it after its delay. Queue `k` serves the `k`-th entry.
    pub fn start(public: &Netns, links: &[(String, Duration)]) -> Result<Option<DelayQueues>> {
        if links.is_empty() {
            return Ok(None);
        }
        for (k, (iface, _)) in links.iter().enumerate() {
            let q = k.to_string();
            for (chain, dir) in [("PREROUTING", "-i"), ("POSTROUTING", "-o")] {
                public.exec(
                    "iptables",
                    [
                        "-t",
                        "mangle",
                        "-A",
                        chain,
                        dir,
                        iface,
                        "-j",
                        "NFQUEUE",
                        "--queue-num",
                        &q,
                        "--queue-bypass",
                    ],
                )?;
            }
        }
        let delays: Vec<Duration> = links.iter().map(|(_, d)| *d).collect();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        let fd = std::fs::File::open(public.path())
            .map_err(LabError::io("open the public namespace"))?;
        let thread = std::thread::Builder::new()
            .name("lab-delay".into())
            .spawn(move || {
                if let Err(e) = nix::sched::setns(&fd, nix::sched::CloneFlags::CLONE_NEWNET) {
                    let _ = tx.send(Err(std::io::Error::from(e)));
                    return;
                }
                match open_queue(delays.len()) {
                    Ok(queue) => {
                        let _ = tx.send(Ok(()));
                        run(queue, &delays, &flag);
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e));
                    }
                }
            })
            .map_err(LabError::io("spawn the delay thread"))?;
        rx.recv()
            .map_err(|_| LabError::Spec("the delay thread died at start".into()))?
            .map_err(LabError::io(
                "open NFQUEUE (is the nfnetlink_queue kernel module available?)",
            ))?;
        Ok(Some(DelayQueues {
            stop,
            thread: Some(thread),
        }))
    }
}

impl Drop for DelayQueues {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn open_queue(count: usize) -> std::io::Result<nfq::Queue> {
    let mut queue = nfq::Queue::open()?;
    for k in 0..count {
        queue.bind(k as u16)?;
        queue.set_queue_max_len(k as u16, 4096)?;
        queue.set_fail_open(k as u16, true)?;
    }
    queue.set_nonblocking(true);
    Ok(queue)
}

/// Receives packets, keeps each in its queue's FIFO, and accepts it once its delay has passed.
fn run(mut queue: nfq::Queue, delays: &[Duration], stop: &AtomicBool) {
    let mut held: Vec<VecDeque<(Instant, nfq::Message)>> =
        delays.iter().map(|_| VecDeque::new()).collect();
    while !stop.load(Ordering::Relaxed) {
        let mut got = false;
        while let Ok(mut msg) = queue.recv() {
            got = true;
            let q = msg.get_queue_num() as usize;
            match delays.get(q) {
                Some(d) => held[q].push_back((Instant::now() + *d, msg)),
                None => {
                    msg.set_verdict(nfq::Verdict::Accept);
                    let _ = queue.verdict(msg);
                }
            }
        }
        let now = Instant::now();
        for fifo in &mut held {
            while fifo.front().is_some_and(|(due, _)| *due <= now) {
                if let Some((_, mut msg)) = fifo.pop_front() {
                    msg.set_verdict(nfq::Verdict::Accept);
                    let _ = queue.verdict(msg);
                }
            }
        }
        if !got {
            std::thread::sleep(Duration::from_micros(500));
        }
    }
    for fifo in &mut held {
        for (_, mut msg) in fifo.drain(..) {
            msg.set_verdict(nfq::Verdict::Accept);
            let _ = queue.verdict(msg);
        }
    }
}
