//! The app socket's framing, shared by the daemon (`crate::services`) and the library's
//! [`super::Client`]. Every frame is
//!
//! ```text
//! len:u32 (big-endian, bytes after this field)  kind:u8  …
//! kind 0  message  header_len:u16  header (JSON: an Op or an Ev)  payload…
//! kind 1  data     stream bytes                (a connection turned into a stream)
//! kind 2  fin      the writer is done          (clean end of a stream direction)
//! kind 3  reset    reason (UTF-8)              (the stream failed; never a silent end)
//! ```
//!
//! Headers are small JSON objects so the protocol stays readable in a trace; payloads
//! (datagrams, values, stream bytes) travel raw.
//!
//! ```
//! use chamber::api::frame::{Frame, Op};
//! let f = Frame::message(&Op::Subscribe { service: "chat/lobby".into(), id: 0 }, Vec::new());
//! let bytes = f.encode();
//! let back = Frame::decode(&bytes[4..]).unwrap();
//! assert_eq!(back.header::<Op>().unwrap(), Op::Subscribe { service: "chat/lobby".into(), id: 0 });
//! assert!(Frame::decode(&[9]).is_err()); // an unknown kind is an error, not a panic
//! ```

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Largest frame either side accepts (a stream chunk, a request or a reply).
pub const MAX_FRAME: usize = 1 << 20;

/// A frame.
#[derive(Clone, Debug, PartialEq)]
pub enum Frame {
    /// A request or an event, with its payload.
    Message {
        /// JSON header.
        header: Vec<u8>,
        /// Raw payload.
        payload: Vec<u8>,
    },
    /// Stream bytes.
    Data(Vec<u8>),
    /// The sender finished its direction of the stream.
    Fin,
    /// The stream failed.
    Reset(String),
}

/// What an app asks the daemon.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    /// First frame: which ring this connection works in (`None`: the only one).
    Hello {
        /// The ring's local name.
        ring: Option<String>,
    },
    /// Deliver datagrams, broadcasts and requests for `service` to this connection
    /// (confirmed by [`Ev::Done`] when `id` is not 0).
    Subscribe {
        /// Service name.
        service: String,
        /// Answer tag.
        #[serde(default)]
        id: u64,
    },
    /// A datagram (payload) to `to`; `id` 0 wants no answer.
    Send {
        /// Answer tag.
        id: u64,
        /// Overlay address.
        to: String,
        /// Service name.
        service: String,
    },
    /// A request (payload) to `to`, answered by [`Ev::Reply`].
    Request {
        /// Answer tag.
        id: u64,
        /// Overlay address.
        to: String,
        /// Service name.
        service: String,
        /// How long to wait for the answer.
        timeout_ms: u64,
    },
    /// The answer (payload) to an [`Ev::Request`].
    Respond {
        /// The request's token.
        token: u64,
        /// Refuse it with this message instead.
        error: Option<String>,
    },
    /// A broadcast (payload) to the ring, or to the range from us to `end`.
    Broadcast {
        /// Answer tag.
        id: u64,
        /// Service name.
        service: String,
        /// End of the clockwise range (exclusive).
        end: Option<String>,
    },
    /// Store the payload under `key` for `ttl_s` seconds.
    DhtPut {
        /// Answer tag.
        id: u64,
        /// Key.
        key: String,
        /// Lifetime.
        ttl_s: u32,
    },
    /// Fetch the values under `key`.
    DhtGet {
        /// Answer tag.
        id: u64,
        /// Key.
        key: String,
    },
    /// Remove our value (payload) from under `key`.
    DhtRemove {
        /// Answer tag.
        id: u64,
        /// Key.
        key: String,
    },
    /// Publish `name` for our address in the DHT.
    PublishName {
        /// Answer tag.
        id: u64,
        /// The name.
        name: String,
        /// Lifetime.
        ttl_s: u32,
    },
    /// A friend's JID, a published name or an address, to an address.
    Resolve {
        /// Answer tag.
        id: u64,
        /// What to resolve.
        name: String,
    },
    /// Open a stream to `to`'s `service`; this connection then carries it.
    Connect {
        /// Overlay address.
        to: String,
        /// Service name.
        service: String,
    },
    /// Announce incoming streams for `service` on this connection ([`Ev::Incoming`];
    /// confirmed by [`Ev::Done`] when `id` is not 0).
    Listen {
        /// Service name.
        service: String,
        /// Answer tag.
        #[serde(default)]
        id: u64,
    },
    /// Take an incoming stream; this connection then carries it.
    Accept {
        /// The stream's token.
        token: u64,
    },
}

/// What the daemon tells an app.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "ev", rename_all = "snake_case")]
pub enum Ev {
    /// Answer to [`Op::Hello`].
    Welcome {
        /// The ring's name.
        ring: String,
        /// Our address in it.
        address: String,
    },
    /// An [`Op`] with an `id` finished (`error` when it failed).
    Done {
        /// Its tag.
        id: u64,
        /// What went wrong.
        error: Option<String>,
    },
    /// The answer (payload) to an [`Op::Request`].
    Reply {
        /// Its tag.
        id: u64,
        /// Why there is no answer.
        error: Option<String>,
    },
    /// Values under a key, each with the address that signed it (hex payloads).
    Values {
        /// Its tag.
        id: u64,
        /// Writer address and value in hex.
        values: Vec<(String, String)>,
    },
    /// A resolved address.
    Resolved {
        /// Its tag.
        id: u64,
        /// The address.
        address: String,
    },
    /// A datagram (payload) for a subscribed service.
    Datagram {
        /// Sender (proved by its key).
        from: String,
        /// Service.
        service: String,
        /// It came as a broadcast (with this many hops).
        broadcast_hops: Option<u16>,
    },
    /// A request (payload) for a subscribed service; answer with [`Op::Respond`].
    Request {
        /// Answer with this.
        token: u64,
        /// Sender (proved by its key).
        from: String,
        /// Service.
        service: String,
    },
    /// A stream for a listened service; take it with [`Op::Accept`].
    Incoming {
        /// The stream's token.
        token: u64,
        /// Who opened it.
        from: String,
        /// Service.
        service: String,
    },
    /// The stream is open; this connection now carries it.
    Connected {
        /// The far end.
        peer: String,
    },
    /// Something failed that no tag names (a bad request, the ring gone).
    Error {
        /// What.
        message: String,
    },
}

/// Why a frame could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The connection failed or closed.
    #[error("app socket: {0}")]
    Io(#[from] std::io::Error),
    /// A frame over [`MAX_FRAME`].
    #[error("app socket frame of {0} bytes is over the limit")]
    TooLarge(usize),
    /// A frame that does not parse.
    #[error("malformed app socket frame: {0}")]
    Malformed(String),
}

impl Frame {
    /// A message frame from a header and payload.
    pub fn message<H: Serialize>(header: &H, payload: Vec<u8>) -> Frame {
        Frame::Message {
            header: serde_json::to_vec(header).unwrap_or_default(),
            payload,
        }
    }

    /// The header parsed as `H`.
    pub fn header<H: for<'de> Deserialize<'de>>(&self) -> Result<H, FrameError> {
        match self {
            Frame::Message { header, .. } => {
                serde_json::from_slice(header).map_err(|e| FrameError::Malformed(e.to_string()))
            }
            _ => Err(FrameError::Malformed(
                "a stream frame where a message was due".into(),
            )),
        }
    }

    /// The bytes on the socket.
    pub fn encode(&self) -> Vec<u8> {
        let body_len = match self {
            Frame::Message { header, payload } => 1 + 2 + header.len() + payload.len(),
            Frame::Data(d) => 1 + d.len(),
            Frame::Fin => 1,
            Frame::Reset(r) => 1 + r.len(),
        };
        let mut out = Vec::with_capacity(4 + body_len);
        out.extend_from_slice(&u32::try_from(body_len).unwrap_or(u32::MAX).to_be_bytes());
        match self {
            Frame::Message { header, payload } => {
                out.push(0);
                out.extend_from_slice(&u16::try_from(header.len()).unwrap_or(0).to_be_bytes());
                out.extend_from_slice(header);
                out.extend_from_slice(payload);
            }
            Frame::Data(d) => {
                out.push(1);
                out.extend_from_slice(d);
            }
            Frame::Fin => out.push(2),
            Frame::Reset(r) => {
                out.push(3);
                out.extend_from_slice(r.as_bytes());
            }
        }
        out
    }

    /// Parses one frame's body (after the length).
    pub fn decode(body: &[u8]) -> Result<Frame, FrameError> {
        let bad = |m: &str| FrameError::Malformed(m.into());
        let (&kind, rest) = body.split_first().ok_or_else(|| bad("empty frame"))?;
        match kind {
            0 => {
                let n = rest
                    .get(..2)
                    .ok_or_else(|| bad("truncated header length"))?;
                let n = usize::from(u16::from_be_bytes([n[0], n[1]]));
                let header = rest.get(2..2 + n).ok_or_else(|| bad("truncated header"))?;
                Ok(Frame::Message {
                    header: header.to_vec(),
                    payload: rest[2 + n..].to_vec(),
                })
            }
            1 => Ok(Frame::Data(rest.to_vec())),
            2 => Ok(Frame::Fin),
            3 => Ok(Frame::Reset(String::from_utf8_lossy(rest).into_owned())),
            k => Err(FrameError::Malformed(format!("unknown frame kind {k}"))),
        }
    }
}

/// Reads one frame; `Ok(None)` at a clean end of the connection.
pub async fn read_frame<R: AsyncRead + Unpin>(r: &mut R) -> Result<Option<Frame>, FrameError> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_FRAME + 4096 {
        return Err(FrameError::TooLarge(len));
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).await?;
    Frame::decode(&body).map(Some)
}

/// Writes one frame.
pub async fn write_frame<W: AsyncWrite + Unpin>(w: &mut W, f: &Frame) -> std::io::Result<()> {
    w.write_all(&f.encode()).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_bad_ones_are_errors() {
        for f in [
            Frame::message(&Op::Hello { ring: None }, vec![]),
            Frame::message(
                &Ev::Datagram {
                    from: "a".into(),
                    service: "chat".into(),
                    broadcast_hops: Some(2),
                },
                b"hi".to_vec(),
            ),
            Frame::Data(vec![7; 100]),
            Frame::Fin,
            Frame::Reset("peer went away".into()),
        ] {
            let bytes = f.encode();
            assert_eq!(
                bytes.len(),
                4 + u32::from_be_bytes(bytes[..4].try_into().unwrap()) as usize
            );
            assert_eq!(Frame::decode(&bytes[4..]).unwrap(), f);
        }
        assert!(Frame::decode(&[]).is_err());
        assert!(Frame::decode(&[9]).is_err());
        assert!(Frame::decode(&[0, 0, 5, b'{']).is_err());
        let m = Frame::message(
            &Op::Listen {
                service: "x".into(),
                id: 0,
            },
            vec![],
        );
        assert!(m.header::<Ev>().is_err());
        assert_eq!(
            m.header::<Op>().unwrap(),
            Op::Listen {
                service: "x".into(),
                id: 0
            }
        );
    }

    #[tokio::test]
    async fn oversized_frame_is_refused() {
        let mut bytes: &[u8] = &[0xff, 0xff, 0xff, 0xff, 0];
        assert!(matches!(
            read_frame(&mut bytes).await,
            Err(FrameError::TooLarge(_))
        ));
        let mut empty: &[u8] = &[];
        assert!(read_frame(&mut empty).await.unwrap().is_none());
    }
}
