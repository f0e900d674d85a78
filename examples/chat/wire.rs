//! What chat members send each other: one JSON object per broadcast, history request or
//! answer. Everything from the ring is parsed and checked here before the rest of the app
//! sees it ([`Post::parse`], [`Fetch::parse`], [`Batch::parse`]), so a malformed payload is
//! one error value, never a panic.

use serde::{Deserialize, Serialize};

/// Longest message text in bytes (a longer input line is posted as several messages); keeps
/// a broadcast, with its signature and JSON, well inside one ring datagram.
pub const MAX_TEXT: usize = 900;
/// Longest nickname in bytes.
pub const MAX_NICK: usize = 32;
/// Most messages one history answer carries.
pub const MAX_BATCH: u64 = 64;
/// Largest payload accepted from a member (anything bigger is malformed).
const MAX_PAYLOAD: usize = 256 * 1024;

/// A broadcast on `chat/<room>`. `session` is a random number per chat process, so a member
/// that restarts (and numbers from 1 again) is told apart from its former self.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum Post {
    /// A message: the sender's `seq`-th in this session, posted at its `ts` (Unix ms).
    Msg {
        /// The sender's session.
        session: u64,
        /// Its nickname.
        nick: String,
        /// Its number, 1, 2, 3, … per session.
        seq: u64,
        /// When it was posted (Unix ms, the sender's clock).
        ts: u64,
        /// The text.
        text: String,
    },
    /// Presence heartbeat; `seq` is the sender's latest message number (0: none yet), so a
    /// lost last message is noticed and fetched.
    Here {
        /// The sender's session.
        session: u64,
        /// Its nickname.
        nick: String,
        /// Its latest message number.
        seq: u64,
    },
    /// The sender leaves after message `seq`.
    Leave {
        /// The sender's session.
        session: u64,
        /// Its nickname.
        nick: String,
        /// Its last message number.
        seq: u64,
    },
}

/// A message kept in a sender's history and carried in a [`Batch`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stored {
    /// Its number.
    pub seq: u64,
    /// When it was posted (Unix ms).
    pub ts: u64,
    /// The nickname it was posted under.
    pub nick: String,
    /// The text.
    pub text: String,
}

/// A request on `chat-history/<room>`: messages `from..=to` of the answerer's `session`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fetch {
    /// Which session's messages.
    pub session: u64,
    /// First wanted.
    pub from: u64,
    /// Last wanted.
    pub to: u64,
}

/// The answer to a [`Fetch`]: the answerer's current session, the first message it still
/// keeps, and those asked for that it has (at most [`MAX_BATCH`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Batch {
    /// The answerer's session (another one than asked: the asked one is gone).
    pub session: u64,
    /// The oldest message number it keeps (anything older is gone for good).
    pub first: u64,
    /// The messages.
    pub msgs: Vec<Stored>,
}

/// Why a payload from a member was refused.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// Over [`MAX_PAYLOAD`].
    #[error("payload of {0} bytes is too large")]
    TooLarge(usize),
    /// Not the JSON of the expected type.
    #[error("not a chat payload: {0}")]
    Json(#[from] serde_json::Error),
    /// Parsed, but a field is out of bounds.
    #[error("{0}")]
    Invalid(&'static str),
}

fn json<T: for<'de> Deserialize<'de>>(b: &[u8]) -> Result<T, WireError> {
    if b.len() > MAX_PAYLOAD {
        return Err(WireError::TooLarge(b.len()));
    }
    Ok(serde_json::from_slice(b)?)
}

/// Checks a nickname: 1 to [`MAX_NICK`] bytes, no control characters.
pub fn check_nick(nick: &str) -> Result<(), WireError> {
    if nick.is_empty() || nick.len() > MAX_NICK || nick.chars().any(char::is_control) {
        return Err(WireError::Invalid(
            "nickname empty, too long or with control characters",
        ));
    }
    Ok(())
}

fn check_text(text: &str) -> Result<(), WireError> {
    if text.len() > MAX_TEXT || text.chars().any(char::is_control) {
        return Err(WireError::Invalid(
            "text too long or with control characters",
        ));
    }
    Ok(())
}

impl Post {
    /// Parses and checks a broadcast.
    pub fn parse(b: &[u8]) -> Result<Post, WireError> {
        let p: Post = json(b)?;
        check_nick(p.nick())?;
        match &p {
            Post::Msg { seq: 0, .. } => Err(WireError::Invalid("message number 0")),
            Post::Msg { text, .. } => check_text(text).map(|()| p),
            Post::Here { .. } | Post::Leave { .. } => Ok(p),
        }
    }

    /// The bytes to broadcast.
    pub fn to_bytes(&self) -> Vec<u8> {
        to_bytes(self)
    }

    /// The sender's session.
    pub fn session(&self) -> u64 {
        match self {
            Post::Msg { session, .. }
            | Post::Here { session, .. }
            | Post::Leave { session, .. } => *session,
        }
    }

    /// The sender's nickname.
    pub fn nick(&self) -> &str {
        match self {
            Post::Msg { nick, .. } | Post::Here { nick, .. } | Post::Leave { nick, .. } => nick,
        }
    }
}

impl Fetch {
    /// Parses and checks a history request.
    pub fn parse(b: &[u8]) -> Result<Fetch, WireError> {
        let f: Fetch = json(b)?;
        if f.from == 0 || f.to < f.from {
            return Err(WireError::Invalid("empty or reversed range"));
        }
        Ok(f)
    }

    /// The bytes to send.
    pub fn to_bytes(&self) -> Vec<u8> {
        to_bytes(self)
    }
}

impl Batch {
    /// Parses a history answer to `asked`, keeping only well-formed messages in its range.
    pub fn parse(b: &[u8], asked: &Fetch) -> Result<Batch, WireError> {
        let mut batch: Batch = json(b)?;
        let before = batch.msgs.len();
        batch.msgs.retain(|m| {
            (asked.from..=asked.to).contains(&m.seq)
                && check_nick(&m.nick).is_ok()
                && check_text(&m.text).is_ok()
        });
        if batch.msgs.len() != before {
            return Err(WireError::Invalid(
                "history answer with messages not asked for",
            ));
        }
        Ok(batch)
    }

    /// The bytes to answer with.
    pub fn to_bytes(&self) -> Vec<u8> {
        to_bytes(self)
    }
}

fn to_bytes<T: Serialize>(v: &T) -> Vec<u8> {
    // Serializing these plain structs (strings and integers) cannot fail.
    serde_json::to_vec(v).unwrap_or_default()
}

/// Cleans an input line for posting: control characters become spaces, then the line is cut
/// into pieces of at most [`MAX_TEXT`] bytes on character boundaries.
pub fn split_text(line: &str) -> Vec<String> {
    let clean: String = line
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let mut out = Vec::new();
    let mut piece = String::new();
    for c in clean.chars() {
        if piece.len() + c.len_utf8() > MAX_TEXT {
            out.push(std::mem::take(&mut piece));
        }
        piece.push(c);
    }
    if !piece.trim().is_empty() {
        out.push(piece);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn posts_round_trip_and_bad_ones_are_refused() {
        let p = Post::Msg {
            session: 7,
            nick: "ann".into(),
            seq: 1,
            ts: 5,
            text: "hi".into(),
        };
        assert_eq!(Post::parse(&p.to_bytes()).unwrap(), p);
        for bad in [
            &b"{not json"[..],
            br#"{"t":"msg","session":1,"nick":"a","seq":0,"ts":1,"text":"x"}"#,
            br#"{"t":"here","session":1,"nick":"","seq":0}"#,
            br#"{"t":"msg","session":1,"nick":"a","seq":1,"ts":1,"text":"\u001b[2J"}"#,
            br#"{"t":"what","session":1}"#,
        ] {
            assert!(
                Post::parse(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn a_batch_outside_its_range_is_refused() {
        let asked = Fetch {
            session: 1,
            from: 3,
            to: 4,
        };
        let m = |seq| Stored {
            seq,
            ts: 0,
            nick: "a".into(),
            text: "t".into(),
        };
        let ok = Batch {
            session: 1,
            first: 1,
            msgs: vec![m(3), m(4)],
        };
        assert_eq!(Batch::parse(&ok.to_bytes(), &asked).unwrap(), ok);
        let bad = Batch {
            session: 1,
            first: 1,
            msgs: vec![m(3), m(9)],
        };
        assert!(Batch::parse(&bad.to_bytes(), &asked).is_err());
    }

    #[test]
    fn long_lines_split_on_character_boundaries() {
        let line = "é".repeat(MAX_TEXT);
        let parts = split_text(&line);
        assert_eq!(parts.len(), 2);
        assert!(parts.iter().all(|p| p.len() <= MAX_TEXT));
        assert_eq!(parts.concat(), line);
        assert_eq!(split_text("a\tb\u{1b}"), vec!["a b ".to_string()]);
        assert!(split_text("   ").is_empty());
    }
}
