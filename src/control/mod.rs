//! The daemon's control socket: a Unix socket (mode 0600, in a 0700 folder) speaking JSON
//! lines, one request and one response per line. Only the user who runs the daemon can connect;
//! a path-bound socket also works across network namespaces, which the lab tests use.
//!
//! ```text
//! → {"cmd":"status"}
//! ← {"ok":true,"status":{...}}
//! → {"cmd":"stop"}
//! ← {"ok":true}
//! ```
#![warn(missing_docs)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot};

/// What a client asks.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "cmd", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Request {
    /// The node's status.
    Status,
    /// Shut down cleanly.
    Stop,
    /// Echo over the ring to a `brunet:node:` address or a friend's JID.
    Ping {
        /// The address or JID.
        target: String,
    },
    /// Make a ring (secret in the keystore, entry in the configuration) and join it.
    RingCreate {
        /// The ring's name.
        name: String,
        /// An owned ring (this node's key owns it; members need its certificates).
        #[serde(default)]
        owned: bool,
        /// A friends ring (no owner, no secret): who besides roster friends may link.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        friends: Option<crate::config::FriendsPolicy>,
    },
    /// Put a member out of an owned ring (owner or admin).
    RingRevoke {
        /// The ring's name.
        name: String,
        /// The member's bare JID.
        jid: String,
    },
    /// Accept the pending invite to a ring and join it.
    RingJoin {
        /// The ring's name.
        name: String,
    },
    /// Leave a ring and forget it (configuration and keystore).
    RingLeave {
        /// The ring's name.
        name: String,
    },
    /// Send a friend an invite to one of our rings.
    RingInvite {
        /// The ring's name.
        name: String,
        /// The friend's bare JID.
        jid: String,
        /// Owned rings: make the friend an admin (owner only).
        #[serde(default)]
        admin: bool,
        /// Owned rings: how long the friend's certificate lasts (default a year); renewed
        /// by the owner before it runs out.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        valid_secs: Option<u64>,
    },
    /// Accept the changed node key a friend offers (see the status' pinned-key warnings).
    Trust {
        /// The friend's bare JID.
        jid: String,
        /// The offered key the user was shown (hex); refused if the offer changed since.
        #[serde(default)]
        fingerprint: Option<String>,
        /// Keep the old key accepted too (a second device on the same account).
        #[serde(default)]
        keep_old: bool,
    },
}

/// The answer.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Response {
    /// Whether the request worked.
    pub ok: bool,
    /// What went wrong, if not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The answer's payload: the status for [`Request::Status`], the report for
    /// [`Request::Ping`], the ring's name and id for a ring joined, where an invite went.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<serde_json::Value>,
}

/// Why talking to the daemon failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ControlError {
    /// Nothing listens at the socket.
    #[error("no chamber daemon is listening at {path} ({reason}); start one with `chamber up`")]
    NotRunning {
        /// The socket.
        path: PathBuf,
        /// The connect error.
        reason: String,
    },
    /// Another daemon already owns the socket.
    #[error("another chamber daemon is already running at {path}; stop it first (`chamber stop`)")]
    AlreadyRunning {
        /// The socket.
        path: PathBuf,
    },
    /// The socket could not be created.
    #[error("cannot open the control socket {path}: {source}")]
    Bind {
        /// The socket.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The daemon answered nothing usable.
    #[error("the daemon at {path} did not answer properly: {reason}")]
    BadAnswer {
        /// The socket.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
}

/// A request waiting for the node's answer.
pub type Incoming = (Request, oneshot::Sender<Response>);

/// Binds the socket; refuses if a live daemon already listens there, replaces a stale one.
pub async fn bind(path: &Path) -> Result<UnixListener, ControlError> {
    let bind_err = |source| ControlError::Bind {
        path: path.into(),
        source,
    };
    if let Some(dir) = path.parent() {
        crate::config::create_private_dir(dir).map_err(bind_err)?;
    }
    if path.exists() {
        if UnixStream::connect(path).await.is_ok() {
            return Err(ControlError::AlreadyRunning { path: path.into() });
        }
        std::fs::remove_file(path).map_err(bind_err)?;
    }
    let listener = UnixListener::bind(path).map_err(bind_err)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(bind_err)?;
    Ok(listener)
}

/// Accepts clients and passes their requests to `node` until the node goes away.
pub async fn serve(listener: UnixListener, node: mpsc::Sender<Incoming>) {
    loop {
        let stream = match listener.accept().await {
            Ok((s, _)) => s,
            Err(e) => {
                tracing::warn!(%e, "control socket accept");
                continue;
            }
        };
        let node = node.clone();
        tokio::spawn(async move {
            if let Err(e) = client(stream, node).await {
                tracing::debug!(%e, "control client");
            }
        });
    }
}

async fn client(stream: UnixStream, node: mpsc::Sender<Incoming>) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    while let Some(line) = lines.next_line().await? {
        let response = match serde_json::from_str::<Request>(&line) {
            Ok(req) => {
                let (tx, rx) = oneshot::channel();
                if node.send((req, tx)).await.is_err() {
                    break;
                }
                rx.await
                    .unwrap_or_else(|_| Response::error("the node is shutting down"))
            }
            Err(e) => Response::error(&format!("bad request: {e}")),
        };
        let mut text = serde_json::to_string(&response).map_err(std::io::Error::other)?;
        text.push('\n');
        write.write_all(text.as_bytes()).await?;
    }
    Ok(())
}

impl Response {
    /// A failure with a message.
    pub fn error(message: &str) -> Response {
        Response {
            ok: false,
            error: Some(message.into()),
            status: None,
        }
    }

    /// A success.
    pub fn ok(status: Option<serde_json::Value>) -> Response {
        Response {
            ok: true,
            error: None,
            status,
        }
    }
}

/// Sends one request to the daemon at `path` and waits (at most `timeout`) for the answer.
pub async fn request(
    path: &Path,
    req: &Request,
    timeout: Duration,
) -> Result<Response, ControlError> {
    let bad = |reason: String| ControlError::BadAnswer {
        path: path.into(),
        reason,
    };
    let mut stream = UnixStream::connect(path)
        .await
        .map_err(|e| ControlError::NotRunning {
            path: path.into(),
            reason: e.to_string(),
        })?;
    let exchange = async {
        let mut line = serde_json::to_string(req).map_err(|e| bad(e.to_string()))?;
        line.push('\n');
        stream
            .write_all(line.as_bytes())
            .await
            .map_err(|e| bad(e.to_string()))?;
        let mut lines = BufReader::new(stream).lines();
        let answer = lines
            .next_line()
            .await
            .map_err(|e| bad(e.to_string()))?
            .ok_or_else(|| bad("the connection closed".into()))?;
        serde_json::from_str::<Response>(&answer).map_err(|e| bad(e.to_string()))
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| bad(format!("no answer within {timeout:?}")))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn status_round_trip_and_single_daemon() {
        let dir = std::env::temp_dir().join(format!("chamber-ctl-{}", std::process::id()));
        let path = dir.join("control.sock");
        let missing = request(&path, &Request::Status, Duration::from_secs(1)).await;
        assert!(matches!(missing, Err(ControlError::NotRunning { .. })));
        let listener = bind(&path).await.unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(matches!(
            bind(&path).await,
            Err(ControlError::AlreadyRunning { .. })
        ));
        let (tx, mut rx) = mpsc::channel::<Incoming>(4);
        tokio::spawn(serve(listener, tx));
        tokio::spawn(async move {
            while let Some((req, reply)) = rx.recv().await {
                let _ = reply.send(Response::ok(Some(
                    serde_json::json!({ "req": format!("{req:?}") }),
                )));
            }
        });
        let r = request(&path, &Request::Status, Duration::from_secs(5))
            .await
            .unwrap();
        assert!(r.ok);
        assert_eq!(r.status.unwrap()["req"], "Status");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
