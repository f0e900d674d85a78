//! `chat`: a chat room on a chamber ring, through the local daemon (`chamber up`).
//!
//! ```text
//! chat ROOM [--nick NAME] [--ring NAME] [--socket PATH] [--config PATH] [--json]
//! ```
//!
//! Joins room ROOM in the node's ring (`--ring` when the node is in several), posts each line
//! read from stdin and prints messages as they arrive, `[nick@addr] text` (the first eight
//! characters of the sender's ring address), or with `--json` one JSON object per line:
//! `ready`, `join`, `leave` (`reason`: left, timeout, restarted), `message` (`from`, `nick`,
//! `seq`, `text`, `sent_ms`, `recv_ms`, `fetched`: came by a history fetch), `sent`, `missed`,
//! `who`. `/who` prints the members, `/quit` or end of input leaves. The app socket defaults
//! to the one of the daemon configured by `--config` (or the user's configuration). It uses
//! only the ring, so it keeps working while the XMPP servers are down.
//!
//! # Protocol
//!
//! - Everything a member says is a signed **broadcast** on service `chat/<room>` (the daemon
//!   checks the signature, so the sender's address is proved), one JSON object ([`wire::Post`]):
//!   a message `{"t":"msg","session","nick","seq","ts","text"}`; a presence heartbeat
//!   `{"t":"here","session","nick","seq"}` carrying the sender's latest `seq`, every 5 s while
//!   it posts nothing; `{"t":"leave",…}`. `session` is random per chat process, so a restarted
//!   member (numbering from 1 again) is not mistaken for its former self.
//! - Each member numbers its messages 1, 2, 3, …; receivers deliver each sender's messages in
//!   that order ([`order::Stream`]), holding ones that arrive early. A gap that lasts 300 ms
//!   (a broadcast copy was lost, not merely overtaken), or a heartbeat announcing a number
//!   not seen, is fetched with a **request** to the sender on `chat-history/<room>`
//!   (`{"session","from","to"}`, answered from the last 1000 messages it keeps, at most 64 at
//!   a time), retried every second until filled. Messages the sender no longer keeps are
//!   reported as `missed`, never silently skipped.
//! - A member is listed from its first post. It leaves with its `leave` (shown once its last
//!   message is delivered), or when it has been silent for 16 s (about three missed
//!   heartbeats) and does not answer a direct question (a one-message history request), so
//!   lost heartbeats alone never make a member leave. A member hears the room's messages from
//!   the first one posted after it is heard of (a newcomer's first heartbeat makes the others
//!   answer with theirs at once).
//! - Payloads that do not parse or break a bound are dropped with one log line on stderr.
//!
//! One chat per room per node: two on one node share its address.

mod order;
mod room;
mod wire;

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use brunet_compat::address::Address;
use chamber::api::{Client, Datagram, Event, Incoming};
use clap::Parser;
use tokio::sync::mpsc;

use room::{Out, Room};
use wire::{Batch, Fetch, Post};

/// How long a history request may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the room's timers are looked at.
const TICK: Duration = Duration::from_millis(100);
/// How long we stay after leaving, to answer fetches for our last messages.
const LINGER: Duration = Duration::from_secs(1);
/// Longest room name.
const MAX_ROOM: usize = 64;

/// Join a chat room on the ring.
#[derive(Parser, Debug)]
#[command(name = "chat", version)]
struct Args {
    /// The room.
    room: String,
    /// Your nickname (default: $USER).
    #[arg(long)]
    nick: Option<String>,
    /// The ring (needed when the node is in several).
    #[arg(long)]
    ring: Option<String>,
    /// The daemon's app socket (default: from the configuration).
    #[arg(long)]
    socket: Option<PathBuf>,
    /// The daemon's configuration file.
    #[arg(long)]
    config: Option<PathBuf>,
    /// One JSON object per line instead of text.
    #[arg(long)]
    json: bool,
}

/// Counts malformed input from members; logs the first ones and then every thousandth.
#[derive(Default)]
struct Drops(u64);

impl Drops {
    fn note(&mut self, from: &Address, what: &str, e: &dyn std::fmt::Display) {
        self.0 += 1;
        if self.0 <= 20 || self.0.is_multiple_of(1000) {
            tracing::warn!(%from, total = self.0, "dropped a malformed {what}: {e}");
        }
    }
}

/// Prints what the room shows, as text or JSON lines.
struct Printer {
    json: bool,
}

impl Printer {
    fn show(&self, o: &Out) -> std::io::Result<()> {
        let line = if self.json {
            serde_json::to_string(o).map_err(std::io::Error::other)?
        } else {
            match text(o) {
                Some(t) => t,
                None => return Ok(()),
            }
        };
        let mut out = std::io::stdout().lock();
        writeln!(out, "{line}")?;
        out.flush()
    }

    fn all(&self, outs: Vec<Out>) -> std::io::Result<()> {
        outs.iter().try_for_each(|o| self.show(o))
    }
}

/// `nick@ABCDEFGH`: the nickname and the start of the address's base32.
fn who_tag(nick: &str, addr: &str) -> String {
    let b32 = addr.strip_prefix("brunet:node:").unwrap_or(addr);
    format!("{nick}@{}", b32.get(..8).unwrap_or(b32))
}

/// The line a person reads (`None`: nothing to show, e.g. our own post, already on screen).
fn text(o: &Out) -> Option<String> {
    let line = match o {
        Out::Ready {
            address,
            ring,
            room,
            nick,
        } => format!(
            "* you are {} in room {room} on ring {ring} (/who, /quit)",
            who_tag(nick, address)
        ),
        Out::Join { from, nick } => format!("* {} joined", who_tag(nick, from)),
        Out::Leave { from, nick, reason } => {
            format!("* {} left ({reason})", who_tag(nick, from))
        }
        Out::Message {
            from, nick, text, ..
        } => format!("[{}] {text}", who_tag(nick, from)),
        Out::Sent { .. } => return None,
        Out::Missed { from, nick, count } => format!(
            "* {count} message(s) from {} were lost before they reached you",
            who_tag(nick, from)
        ),
        Out::Who { members } => {
            let names: Vec<String> = members
                .iter()
                .map(|m| {
                    let tag = who_tag(&m.nick, &m.from);
                    if m.me { format!("{tag} (you)") } else { tag }
                })
                .collect();
            format!("* {} here: {}", members.len(), names.join(", "))
        }
    };
    Some(line)
}

fn check_room(room: &str) -> anyhow::Result<()> {
    if room.is_empty()
        || room.len() > MAX_ROOM
        || room.chars().any(|c| c.is_control() || c.is_whitespace())
    {
        bail!("a room name is 1 to {MAX_ROOM} bytes without spaces or control characters");
    }
    Ok(())
}

/// Reads stdin lines on a plain thread (a pending read must not keep the process alive).
fn stdin_lines() -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel(256);
    std::thread::spawn(move || {
        for line in std::io::stdin().lines() {
            let Ok(line) = line else { break };
            if tx.blocking_send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Broadcasts posts one after another, in the order given.
fn poster(
    client: Arc<Client>,
    service: String,
) -> (mpsc::Sender<Post>, tokio::task::JoinHandle<()>) {
    let (tx, mut rx) = mpsc::channel::<Post>(1024);
    let task = tokio::spawn(async move {
        while let Some(p) = rx.recv().await {
            let t = Instant::now();
            if let Err(e) = client.broadcast(&service, &p.to_bytes(), None).await {
                tracing::warn!(%e, "a post could not be broadcast (members will fetch it)");
            }
            tracing::debug!(
                ms = t.elapsed().as_millis(),
                "broadcast handed to the daemon"
            );
        }
    });
    (tx, task)
}

/// A history fetch's outcome, back to the main loop.
type Fetched = (Address, Fetch, Result<Batch, String>);

fn fetch(client: &Arc<Client>, service: &str, to: Address, f: Fetch, done: &mpsc::Sender<Fetched>) {
    let (client, service, done) = (client.clone(), service.to_owned(), done.clone());
    tokio::spawn(async move {
        let got = client
            .request(&to, &service, &f.to_bytes(), FETCH_TIMEOUT)
            .await
            .map_err(|e| e.to_string())
            .and_then(|b| Batch::parse(&b, &f).map_err(|e| e.to_string()));
        let _ = done.send((to, f, got)).await;
    });
}

/// The room's two services.
struct Services {
    room: String,
    history: String,
}

/// Everything the main loop owns.
struct Chat {
    client: Arc<Client>,
    services: Services,
    room: Room,
    printer: Printer,
    drops: Drops,
    posts: mpsc::Sender<Post>,
    fetched: mpsc::Sender<Fetched>,
}

/// What to do after a line of input.
enum Next {
    Stay,
    Quit,
}

impl Chat {
    async fn line(&mut self, line: &str) -> anyhow::Result<Next> {
        match line.trim() {
            "/quit" => return Ok(Next::Quit),
            "/who" => self.printer.show(&self.room.who())?,
            "" => {}
            cmd if cmd.starts_with('/') => {
                eprintln!("unknown command {cmd:?}: /who lists the members, /quit leaves")
            }
            _ => {
                for piece in wire::split_text(line) {
                    let (post, sent) = self.room.post(piece, Instant::now());
                    self.posts.send(post).await.context("the poster stopped")?;
                    self.printer.show(&sent)?;
                }
            }
        }
        Ok(Next::Stay)
    }

    fn datagram(&mut self, d: Datagram) -> std::io::Result<()> {
        if d.service != self.services.room {
            return Ok(());
        }
        match Post::parse(&d.payload) {
            Ok(p) => {
                let outs = self.room.on_post(d.from, p, Instant::now());
                self.printer.all(outs)
            }
            Err(e) => {
                self.drops.note(&d.from, "post", &e);
                Ok(())
            }
        }
    }

    async fn request(&mut self, r: Incoming) {
        let answer = if r.service != self.services.history {
            Err(format!("chat does not serve {:?}", r.service))
        } else {
            match Fetch::parse(&r.payload) {
                Ok(f) => Ok(self.room.answer(&f).to_bytes()),
                Err(e) => {
                    self.drops.note(&r.from, "history request", &e);
                    Err(format!("malformed history request: {e}"))
                }
            }
        };
        if let Err(e) = r.respond(answer).await {
            tracing::warn!(%e, "could not answer a history request");
        }
    }

    async fn tick(&mut self) -> anyhow::Result<()> {
        let now = Instant::now();
        if let Some(hb) = self.room.heartbeat(now) {
            self.posts.send(hb).await.context("the poster stopped")?;
        }
        for (to, f) in self.room.due_fetches(now) {
            fetch(&self.client, &self.services.history, to, f, &self.fetched);
        }
        let outs = self.room.tick(now);
        Ok(self.printer.all(outs)?)
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "warn,chat=info".into()),
        )
        .init();
    check_room(&args.room)?;
    let nick = args
        .nick
        .clone()
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "anon".into());
    wire::check_nick(&nick).context("--nick")?;
    let socket = match &args.socket {
        Some(s) => s.clone(),
        None => chamber::api::default_socket(args.config.as_deref())?,
    };
    let client = Arc::new(Client::connect(&socket, args.ring.as_deref()).await?);
    let services = Services {
        room: format!("chat/{}", args.room),
        history: format!("chat-history/{}", args.room),
    };
    // One subscription carries both services (subscribe to all, then read).
    let mut inbox = client.subscribe(&services.room).await?;
    client.subscribe(&services.history).await?;
    let (posts, poster_task) = poster(client.clone(), services.room.clone());
    let (fetched, mut fetch_results) = mpsc::channel(256);
    let mut chat = Chat {
        room: Room::new(
            client.address(),
            nick.clone(),
            rand::random(),
            Instant::now(),
        ),
        client: client.clone(),
        services,
        printer: Printer { json: args.json },
        drops: Drops::default(),
        posts,
        fetched,
    };
    chat.printer.show(&Out::Ready {
        address: client.address().to_string(),
        ring: client.ring().to_owned(),
        room: args.room.clone(),
        nick,
    })?;
    let mut lines = stdin_lines();
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            line = lines.recv() => match line {
                Some(l) => if let Next::Quit = chat.line(&l).await? { break },
                None => break,
            },
            ev = inbox.next() => match ev {
                Some(Event::Datagram(d)) => chat.datagram(d)?,
                Some(Event::Request(r)) => chat.request(r).await,
                None => bail!("the chamber daemon closed the connection"),
            },
            Some((from, f, got)) = fetch_results.recv() => {
                let outs = chat.room.on_batch(from, &f, got, Instant::now());
                chat.printer.all(outs)?;
            }
            _ = tick.tick() => chat.tick().await?,
        }
    }
    // Say goodbye, then stay a moment to answer fetches for our last messages.
    let had_members = chat.room.has_members();
    chat.posts.send(chat.room.leave()).await.ok();
    let linger = tokio::time::sleep(if had_members { LINGER } else { Duration::ZERO });
    tokio::pin!(linger);
    loop {
        tokio::select! {
            _ = &mut linger => break,
            ev = inbox.next() => match ev {
                Some(Event::Request(r)) => chat.request(r).await,
                Some(Event::Datagram(_)) => {}
                None => break,
            },
        }
    }
    drop(chat);
    let _ = tokio::time::timeout(Duration::from_secs(2), poster_task).await;
    Ok(())
}
