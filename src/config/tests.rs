use std::ffi::OsString;
use std::path::{Path, PathBuf};

use super::*;

fn parse(text: &str) -> Result<Config, ConfigError> {
    let config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
        path: "t.toml".into(),
        message: e.to_string(),
    })?;
    config.validate(Path::new("t.toml"))?;
    Ok(config)
}

#[test]
fn full_file_round_trips() {
    let text = r#"
control_socket = "/run/user/1000/chamber/control.sock"
stun = ["stun.example.org", "198.18.0.20:3478"]

[keystore]
backend = "file"
dir = "/home/a/.local/share/chamber/secrets"

[[account]]
jid = "alice@example.org"

[[account]]
jid = "alice@beta.lab"
server = "198.18.0.11:5223"
tls = "direct"
ca_file = "/etc/lab/ca.pem"
login_timeout_secs = 5

[timing]
friend_probe_secs = 5

[[ring]]
name = "climbing"

[[ring]]
name = "lab"
secret = "file:/etc/lab/ring.hex"
"#;
    let c = parse(text).unwrap();
    assert_eq!(c.accounts.len(), 2);
    assert_eq!(c.accounts[1].tls, TlsMode::Direct);
    assert_eq!(c.rings[0].secret, SecretRef::Keystore);
    assert_eq!(
        c.rings[1].secret,
        SecretRef::File(PathBuf::from("/etc/lab/ring.hex"))
    );
    assert_eq!(c.timing.friend_probe_secs, Some(5));
    let mut link = crate::account::LinkOptions::default();
    let mut rv = crate::rendezvous::RendezvousOptions::default();
    c.timing.apply(&mut link, &mut rv);
    assert_eq!(rv.probe_interval, Duration::from_secs(5));
    assert_eq!(link.timeouts.read_timeout, Duration::from_secs(20));
    let login = c.accounts[1].to_login("pw");
    assert_eq!(login.login_timeout, Duration::from_secs(5));
    assert_eq!(login.server.as_deref(), Some("198.18.0.11:5223"));
    let again = parse(&toml::to_string_pretty(&c).unwrap()).unwrap();
    assert_eq!(again, c);
}

#[test]
fn empty_file_is_empty_config() {
    assert_eq!(parse("").unwrap(), Config::default());
}

#[test]
fn mistakes_are_named() {
    let typo = parse("[[account]]\njid = \"a@b\"\nsrever = \"x:1\"\n").unwrap_err();
    assert!(typo.to_string().contains("srever"), "{typo}");
    let dup = parse("[[account]]\njid = \"a@b\"\n[[account]]\njid = \"a@b\"\n").unwrap_err();
    assert!(dup.to_string().contains("twice"), "{dup}");
    let bare = parse("[[account]]\njid = \"example.org\"\n").unwrap_err();
    assert!(bare.to_string().contains("bare JID"), "{bare}");
    let secret = parse("[[ring]]\nname = \"r\"\nsecret = \"deadbeef\"\n").unwrap_err();
    assert!(secret.to_string().contains("file:/path"), "{secret}");
}

#[test]
fn missing_file_loads_as_empty_and_save_is_private() {
    let dir = std::env::temp_dir().join(format!("chamber-config-test-{}", std::process::id()));
    let path = dir.join("sub").join("config.toml");
    assert_eq!(Config::load(&path).unwrap(), Config::default());
    let mut c = Config::default();
    c.accounts.push(AccountEntry::new("a@b.example"));
    c.save(&path).unwrap();
    assert_eq!(Config::load(&path).unwrap(), c);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path.parent().unwrap())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn xdg_paths() {
    let vars = |pairs: &'static [(&'static str, &'static str)]| {
        move |k: &str| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| OsString::from(v))
        }
    };
    let p = Paths::from_vars(vars(&[
        ("HOME", "/home/a"),
        ("XDG_CONFIG_HOME", "/cfg"),
        ("XDG_RUNTIME_DIR", "/run/user/1000"),
    ]))
    .unwrap();
    assert_eq!(p.config_file, PathBuf::from("/cfg/chamber/config.toml"));
    assert_eq!(
        p.secrets_dir,
        PathBuf::from("/home/a/.local/share/chamber/secrets")
    );
    assert_eq!(
        p.control_socket,
        PathBuf::from("/run/user/1000/chamber/control.sock")
    );
    assert_eq!(
        p.invites_file,
        PathBuf::from("/home/a/.local/share/chamber/invites.json")
    );
    assert_eq!(
        p.pins_file,
        PathBuf::from("/home/a/.local/share/chamber/pins.json")
    );
    assert_eq!(
        p.peer_cache,
        PathBuf::from("/home/a/.local/share/chamber/peers.json")
    );
    assert_eq!(
        p.revoked_file,
        PathBuf::from("/home/a/.local/share/chamber/revoked.json")
    );
    // A relative XDG value is ignored, as the specification says.
    let p = Paths::from_vars(vars(&[("HOME", "/h"), ("XDG_CONFIG_HOME", "rel")])).unwrap();
    assert_eq!(
        p.config_file,
        PathBuf::from("/h/.config/chamber/config.toml")
    );
    assert!(matches!(
        Paths::from_vars(vars(&[])),
        Err(ConfigError::NoHome { .. })
    ));
}
