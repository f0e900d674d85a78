//! A reliable byte stream to another member's app ([`RingStream`]): `AsyncRead` and
//! `AsyncWrite` over a dedicated app-socket connection, which the daemon bridges to a QUIC
//! stream. The far end finishing gives end-of-file; anything else that ends the stream (a
//! reset, the far app or a daemon gone, the path lost) is a read error, so a truncated
//! transfer never looks complete.

use std::io;
use std::path::Path;
use std::pin::Pin;
use std::task::{Context, Poll};

use brunet_compat::address::Address;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::UnixStream;
use tokio::sync::mpsc;
use tokio_util::sync::PollSender;

use super::ApiError;
use super::frame::{Ev, Frame, Op, read_frame, write_frame};

/// Largest chunk written in one frame.
const CHUNK: usize = 64 * 1024;

/// How a stream ended badly.
#[derive(Debug, thiserror::Error)]
#[error("the ring stream failed: {0}")]
pub struct StreamError(pub String);

enum Chunk {
    Data(Vec<u8>),
    Fin,
    Reset(String),
}

/// A stream to or from another member's app.
pub struct RingStream {
    peer: Address,
    rx: mpsc::Receiver<Chunk>,
    buf: Vec<u8>,
    pos: usize,
    eof: bool,
    tx: PollSender<Frame>,
    shut: bool,
}

/// Opens an app-socket connection, says hello and `op` (connect or accept), and waits until
/// the daemon says the stream is open.
pub(super) async fn open(socket: &Path, ring: &str, op: Op) -> Result<RingStream, ApiError> {
    let s = UnixStream::connect(socket)
        .await
        .map_err(|source| ApiError::NotRunning {
            path: socket.into(),
            source,
        })?;
    let (mut r, mut w) = s.into_split();
    let broken = |e: &dyn std::fmt::Display| ApiError::Broken(e.to_string());
    let hello = Frame::message(
        &Op::Hello {
            ring: Some(ring.into()),
        },
        Vec::new(),
    );
    write_frame(&mut w, &hello).await.map_err(|e| broken(&e))?;
    super::welcome(&mut r).await?;
    write_frame(&mut w, &Frame::message(&op, Vec::new()))
        .await
        .map_err(|e| broken(&e))?;
    let f = read_frame(&mut r)
        .await
        .map_err(|e| broken(&e))?
        .ok_or_else(|| ApiError::Broken("the daemon closed the connection".into()))?;
    let peer = match f.header::<Ev>().map_err(|e| broken(&e))? {
        Ev::Connected { peer } => peer
            .parse()
            .map_err(|_| ApiError::Broken("bad peer address".into()))?,
        Ev::Error { message } => return Err(ApiError::Refused(message)),
        ev => return Err(ApiError::Broken(format!("unexpected answer {ev:?}"))),
    };
    let (in_tx, in_rx) = mpsc::channel(16);
    tokio::spawn(async move {
        loop {
            let c = match read_frame(&mut r).await {
                Ok(Some(Frame::Data(d))) => Chunk::Data(d),
                Ok(Some(Frame::Fin)) => Chunk::Fin,
                Ok(Some(Frame::Reset(why))) => Chunk::Reset(why),
                Ok(Some(Frame::Message { .. })) => Chunk::Reset("protocol error".into()),
                Ok(None) | Err(_) => Chunk::Reset("the daemon connection broke".into()),
            };
            let last = !matches!(c, Chunk::Data(_));
            if in_tx.send(c).await.is_err() || last {
                return;
            }
        }
    });
    let (out_tx, mut out_rx) = mpsc::channel::<Frame>(16);
    tokio::spawn(async move {
        while let Some(f) = out_rx.recv().await {
            if write_frame(&mut w, &f).await.is_err() {
                return;
            }
        }
    });
    Ok(RingStream {
        peer,
        rx: in_rx,
        buf: Vec::new(),
        pos: 0,
        eof: false,
        tx: PollSender::new(out_tx),
        shut: false,
    })
}

impl RingStream {
    /// The member at the other end (proved by its node key).
    pub fn peer(&self) -> Address {
        self.peer
    }
}

fn closed() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "the daemon connection closed")
}

impl AsyncRead for RingStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            if self.pos < self.buf.len() {
                let n = (self.buf.len() - self.pos).min(out.remaining());
                let pos = self.pos;
                out.put_slice(&self.buf[pos..pos + n]);
                self.pos += n;
                return Poll::Ready(Ok(()));
            }
            if self.eof {
                return Poll::Ready(Ok(()));
            }
            match self.rx.poll_recv(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Chunk::Data(d))) => {
                    self.buf = d;
                    self.pos = 0;
                }
                Poll::Ready(Some(Chunk::Fin)) => self.eof = true,
                Poll::Ready(Some(Chunk::Reset(why))) => {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::ConnectionReset,
                        StreamError(why),
                    )));
                }
                Poll::Ready(None) => {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::ConnectionAborted,
                        StreamError("the daemon connection broke".into()),
                    )));
                }
            }
        }
    }
}

impl AsyncWrite for RingStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.shut {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the stream was shut down",
            )));
        }
        match self.tx.poll_reserve(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(_)) => Poll::Ready(Err(closed())),
            Poll::Ready(Ok(())) => {
                let n = buf.len().min(CHUNK);
                self.tx
                    .send_item(Frame::Data(buf[..n].to_vec()))
                    .map_err(|_| closed())?;
                Poll::Ready(Ok(n))
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    /// Finishes our direction: the far end reads end-of-file after the last byte.
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.shut {
            return Poll::Ready(Ok(()));
        }
        match self.tx.poll_reserve(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(_)) => Poll::Ready(Err(closed())),
            Poll::Ready(Ok(())) => {
                self.tx.send_item(Frame::Fin).map_err(|_| closed())?;
                self.shut = true;
                Poll::Ready(Ok(()))
            }
        }
    }
}
