//! The account commands and the daemon-less errors of the real binary, without a lab: the
//! password goes to the keystore and never into the config file or any output, and every error
//! says what to do.

mod node_support;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn chamber(home: &Path, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(node_support::chamber_bin())
        .arg("--config")
        .arg(home.join("config.toml"))
        .args(args)
        .env("XDG_CONFIG_HOME", home.join("xdg-config"))
        .env("XDG_DATA_HOME", home.join("xdg-data"))
        .env("XDG_RUNTIME_DIR", home.join("run"))
        .env_remove("RUST_BACKTRACE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start chamber");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("stdin");
    child.wait_with_output().expect("wait")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn cli_account_add_list_remove_and_errors() {
    let home = std::env::temp_dir().join(format!("chamber-cli-accounts-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&home);
    std::fs::create_dir_all(&home).expect("home");
    std::fs::write(
        home.join("config.toml"),
        format!(
            "[keystore]\nbackend = \"file\"\ndir = \"{}\"\n",
            home.join("secrets").display()
        ),
    )
    .expect("config");

    // Nothing configured yet.
    let out = chamber(&home, &["up"], "");
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("chamber account add"),
        "{}",
        text(&out.stderr)
    );
    let out = chamber(&home, &["status"], "");
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("start one with `chamber up`"),
        "{}",
        text(&out.stderr)
    );

    // Bad input is refused with the fix.
    let out = chamber(
        &home,
        &["account", "add", "no-user-part", "--password-stdin"],
        "pw\n",
    );
    assert!(
        text(&out.stderr).contains("user@server"),
        "{}",
        text(&out.stderr)
    );
    let out = chamber(
        &home,
        &["account", "add", "a@example.invalid", "--password-stdin"],
        "",
    );
    assert!(
        text(&out.stderr).contains("password is empty"),
        "{}",
        text(&out.stderr)
    );

    // Add two, without a server to check against.
    for jid in ["alice@example.invalid", "alice@other.invalid"] {
        let out = chamber(
            &home,
            &[
                "account",
                "add",
                jid,
                "--password-stdin",
                "--no-verify",
                "--direct-tls",
                "--server",
                "192.0.2.1:5223",
            ],
            "s3cret-passw0rd\n",
        );
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert!(
            text(&out.stdout).contains("file store"),
            "says where: {}",
            text(&out.stdout)
        );
    }
    let config = std::fs::read_to_string(home.join("config.toml")).expect("config");
    assert!(
        !config.contains("s3cret"),
        "password in the config:\n{config}"
    );
    assert!(config.contains("tls = \"direct\""), "{config}");
    let out = chamber(&home, &["account", "list", "--json"], "");
    assert!(!text(&out.stdout).contains("s3cret"));
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(listed.as_array().map(Vec::len), Some(2));
    assert_eq!(listed[0]["password_stored"], true);
    let out = chamber(&home, &["account", "list"], "");
    assert!(
        text(&out.stdout).contains("alice@other.invalid"),
        "{}",
        text(&out.stdout)
    );

    // Remove one; removing it again says how to see what there is.
    let out = chamber(&home, &["account", "remove", "alice@example.invalid"], "");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = chamber(&home, &["account", "remove", "alice@example.invalid"], "");
    assert!(
        text(&out.stderr).contains("chamber account list"),
        "{}",
        text(&out.stderr)
    );
    let out = chamber(&home, &["account", "list", "--json"], "");
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(listed.as_array().map(Vec::len), Some(1));

    // A ring whose secret is missing: the error names the ring and the way to fix it.
    let config = std::fs::read_to_string(home.join("config.toml")).expect("config");
    std::fs::write(
        home.join("config.toml"),
        format!("{config}\n[[ring]]\nname = \"friends\"\n"),
    )
    .expect("config");
    let out = chamber(&home, &["up"], "");
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("secret of ring `friends`") && err.contains("file:PATH"),
        "{err}"
    );
    std::fs::remove_dir_all(&home).expect("clean up");
}
