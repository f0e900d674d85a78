use std::os::unix::fs::PermissionsExt;

use super::*;

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("chamber-ks-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn file_store(dir: &std::path::Path) -> Keystore {
    let cfg = KeystoreConfig {
        backend: Backend::File,
        dir: Some(dir.into()),
        service: None,
    };
    Keystore::open(&cfg, PathBuf::from("/nonexistent")).unwrap()
}

#[test]
fn file_store_round_trip_and_modes() {
    let dir = temp_dir("file");
    let ks = file_store(&dir);
    assert_eq!(ks.info().kind, "file");
    let name = SecretName::Password("alice@example.org".into());
    assert!(ks.get(&name).unwrap().is_none());
    ks.set(&name, b"hunter2").unwrap();
    assert_eq!(&*ks.password("alice@example.org").unwrap(), "hunter2");
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700);
    let file = std::fs::read_dir(&dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    assert_eq!(mode(&file), 0o600);
    assert!(!file.to_string_lossy().contains('@'));
    // A loosened mode is refused, with the fix in the message.
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = ks.get(&name).unwrap_err().to_string();
    assert!(err.contains("chmod go-rwx"), "{err}");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert!(ks.delete(&name).unwrap());
    assert!(!ks.delete(&name).unwrap());
    let missing = ks.password("alice@example.org").unwrap_err().to_string();
    assert!(
        missing.contains("chamber account add alice@example.org"),
        "{missing}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn node_key_is_made_once() {
    let dir = temp_dir("node");
    let ks = file_store(&dir);
    let a = ks.node_secret().unwrap();
    let b = ks.node_secret().unwrap();
    assert_eq!(a.public().fingerprint(), b.public().fingerprint());
    ks.set(&SecretName::NodeKey, b"short").unwrap();
    assert!(matches!(
        ks.node_secret(),
        Err(KeystoreError::Damaged { .. })
    ));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn secrets_are_never_shown() {
    let s = Secret(Zeroizing::new(b"hunter2".to_vec()));
    assert_eq!(format!("{s:?}"), "Secret(<redacted>)");
}

#[test]
fn auto_says_which_store_it_picked() {
    let dir = temp_dir("auto");
    let cfg = KeystoreConfig {
        backend: Backend::Auto,
        dir: Some(dir.clone()),
        service: Some(format!("chamber-test-{}", std::process::id())),
    };
    let ks = Keystore::open(&cfg, PathBuf::from("/nonexistent")).unwrap();
    match ks.info().kind.as_str() {
        "kernel-keyring" => assert!(ks.info().fallback_reason.is_none()),
        "file" => assert!(ks.info().fallback_reason.is_some()),
        other => panic!("unknown store {other}"),
    }
    let name = SecretName::Ring("test".into());
    ks.set(&name, &[7; 32]).unwrap();
    assert_eq!(ks.get(&name).unwrap().unwrap().expose(), &[7; 32]);
    assert!(ks.delete(&name).unwrap());
    let _ = std::fs::remove_dir_all(&dir);
}
