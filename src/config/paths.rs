//! Where chamber keeps its files, after the XDG base directory specification: configuration in
//! `$XDG_CONFIG_HOME`, the file keystore, pending invites and pinned keys in `$XDG_DATA_HOME`,
//! the control socket in `$XDG_RUNTIME_DIR` (a per-user tmpfs that only the user can enter).

use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::ConfigError;

/// The default locations, read once from the environment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Paths {
    /// `config.toml`.
    pub config_file: PathBuf,
    /// The folder of the file keystore.
    pub secrets_dir: PathBuf,
    /// The daemon's control socket.
    pub control_socket: PathBuf,
    /// Ring invites received and not yet accepted (sealed to the node key, 0600).
    pub invites_file: PathBuf,
    /// Friends' node keys pinned on first sight (0600).
    pub pins_file: PathBuf,
    /// Peers and addresses a restart rejoins from (0600; rebuilt if lost).
    pub peer_cache: PathBuf,
    /// Owned rings' revocations, kept across restarts (0600; the ring's DHT has them too).
    pub revoked_file: PathBuf,
}

impl Paths {
    /// The XDG locations from the process environment.
    pub fn from_env() -> Result<Paths, ConfigError> {
        Paths::from_vars(|k| std::env::var_os(k).filter(|v| !v.is_empty()))
    }

    /// The XDG locations from `var` (so tests need not touch the process environment).
    pub fn from_vars(
        var: impl Fn(&str) -> Option<std::ffi::OsString>,
    ) -> Result<Paths, ConfigError> {
        let home = var("HOME").map(PathBuf::from);
        let base = |xdg: &'static str, fallback: &str, what: &'static str| {
            var(&format!("XDG_{xdg}"))
                .map(PathBuf::from)
                .filter(|p| p.is_absolute())
                .or_else(|| home.as_ref().map(|h| h.join(fallback)))
                .ok_or(ConfigError::NoHome { what, var: xdg })
        };
        let config = base("CONFIG_HOME", ".config", "the configuration")?;
        let data = base("DATA_HOME", ".local/share", "the file keystore")?;
        // No runtime dir (a plain `su` shell, a container): a private folder under /tmp.
        let runtime = var("XDG_RUNTIME_DIR")
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
            .unwrap_or_else(|| {
                // SAFETY: geteuid has no preconditions and cannot fail.
                let uid = unsafe { libc::geteuid() };
                std::env::temp_dir().join(format!("chamber-{uid}"))
            });
        Ok(Paths {
            config_file: config.join("chamber").join("config.toml"),
            secrets_dir: data.join("chamber").join("secrets"),
            invites_file: data.join("chamber").join("invites.json"),
            pins_file: data.join("chamber").join("pins.json"),
            peer_cache: data.join("chamber").join("peers.json"),
            revoked_file: data.join("chamber").join("revoked.json"),
            control_socket: runtime.join("chamber").join("control.sock"),
        })
    }
}

/// Writes `bytes` to `path` readable by the owner only, atomically (a temporary file, synced,
/// then renamed over the old one, whose looser mode, if any, goes with it).
pub(crate) fn write_private_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(bytes).and_then(|()| f.sync_all())?;
    std::fs::rename(&tmp, path)
}

/// Creates `dir` (and its parents) and makes sure only the owner can enter it.
pub(crate) fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let meta = std::fs::metadata(dir)?;
    if meta.permissions().mode() & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}
