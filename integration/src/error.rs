//! The lab's error type: every variant says what went wrong and what to do about it.

use std::path::PathBuf;

/// Why the lab could not be built, started or used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LabError {
    /// The lab manipulates network namespaces and must run as root.
    #[error("the lab needs root (it creates network namespaces): run it with sudo, or as root")]
    NotRoot,
    /// A program the lab needs is not installed.
    #[error("`{program}` is not installed ({package}): run `sudo scripts/install-deps.sh`")]
    MissingProgram {
        /// The executable that was not found on PATH.
        program: &'static str,
        /// The Debian package that provides it.
        package: &'static str,
    },
    /// Namespaces left by a lab whose process is gone.
    #[error(
        "stale lab namespaces from an earlier run are still present ({names}): \
         run `chamber-lab clean` to remove them"
    )]
    StaleNamespaces {
        /// The stale namespace names, comma separated.
        names: String,
    },
    /// A server's port is already taken inside the lab.
    #[error(
        "{what} cannot start: {addr} is already in use inside namespace {netns}; \
         stop whatever holds it (`ip netns pids {netns}`) or run `chamber-lab clean`"
    )]
    PortInUse {
        /// Which server wanted the port.
        what: &'static str,
        /// The address and port, with protocol.
        addr: String,
        /// The namespace.
        netns: String,
    },
    /// A command the lab ran failed.
    #[error("`{command}` failed ({status}): {stderr}")]
    Command {
        /// The command line.
        command: String,
        /// Its exit status.
        status: String,
        /// What it printed on stderr (trimmed).
        stderr: String,
    },
    /// A server did not become ready in time.
    #[error("{what} did not become ready within {secs} s; its log is {log}")]
    NotReady {
        /// Which server.
        what: &'static str,
        /// How long we waited.
        secs: u64,
        /// Where its log is.
        log: PathBuf,
    },
    /// A server exited while starting.
    #[error("{what} exited during start-up ({status}); its log is {log}:\n{tail}")]
    Exited {
        /// Which server.
        what: &'static str,
        /// Its exit status.
        status: String,
        /// Where its log is.
        log: PathBuf,
        /// The last lines of that log.
        tail: String,
    },
    /// The lab spec asks for something impossible.
    #[error("invalid lab spec: {0}")]
    Spec(String),
    /// An admin API call to a server failed.
    #[error("admin call {call} to {what} failed: {reason}")]
    Admin {
        /// Which server.
        what: &'static str,
        /// The call.
        call: String,
        /// The error.
        reason: String,
    },
    /// A file or socket operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What the lab was doing.
        context: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Generating the lab's certificates failed.
    #[error("lab PKI: {0}")]
    Pki(#[from] rcgen::Error),
}

impl LabError {
    /// Wraps an I/O error with what the lab was doing.
    pub fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> LabError {
        let context = context.into();
        move |source| LabError::Io { context, source }
    }
}

/// Result with [`LabError`].
pub type Result<T, E = LabError> = std::result::Result<T, E>;
