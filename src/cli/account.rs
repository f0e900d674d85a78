//! `chamber account add | list | remove`: the configuration holds the settings, the keystore
//! the password; `add` logs in once first, so a typo is caught now and not at `chamber up`.

use std::io::BufRead;
use std::path::Path;

use tokio_xmpp::jid::BareJid;
use zeroize::Zeroizing;

use super::{AccountCommand, CliError, load, print_json};
use crate::account::{Session, TlsMode};
use crate::config::AccountEntry;
use crate::keystore::{Keystore, SecretName};

pub(super) async fn run(cmd: AccountCommand, config_path: &Path) -> Result<(), CliError> {
    match cmd {
        AccountCommand::Add {
            jid,
            server,
            direct_tls,
            ca_file,
            password_stdin,
            no_verify,
        } => {
            let mut entry = AccountEntry::new(bare_jid(&jid)?);
            entry.server = server;
            entry.tls = if direct_tls {
                TlsMode::Direct
            } else {
                TlsMode::StartTls
            };
            if let Some(ca) = ca_file {
                let abs = std::fs::canonicalize(&ca).map_err(|e| {
                    CliError::Usage(format!("cannot read the CA file {}: {e}", ca.display()))
                })?;
                entry.ca_file = Some(abs);
            }
            add(entry, password_stdin, no_verify, config_path).await
        }
        AccountCommand::List { json } => list(config_path, json),
        AccountCommand::Remove { jid } => remove(&bare_jid(&jid)?, config_path),
    }
}

fn bare_jid(jid: &str) -> Result<String, CliError> {
    let parsed: BareJid = jid.parse().map_err(|e| {
        CliError::Usage(format!(
            "`{jid}` is not a valid JID ({e}); write user@server"
        ))
    })?;
    if parsed.node().is_none() {
        return Err(CliError::Usage(format!(
            "`{jid}` has no user part; write user@server"
        )));
    }
    Ok(parsed.to_string())
}

fn read_password(jid: &str, from_stdin: bool) -> Result<Zeroizing<String>, CliError> {
    let mut pw = Zeroizing::new(String::new());
    if from_stdin {
        std::io::stdin()
            .lock()
            .read_line(&mut pw)
            .map_err(|e| CliError::Usage(format!("cannot read the password from stdin: {e}")))?;
        let trimmed = pw.trim_end_matches(['\n', '\r']).len();
        pw.truncate(trimmed);
    } else {
        *pw = rpassword::prompt_password(format!("Password for {jid}: ")).map_err(|e| {
            CliError::Usage(format!(
                "cannot prompt for the password ({e}); pipe it in with --password-stdin"
            ))
        })?;
    }
    if pw.is_empty() {
        return Err(CliError::Usage("the password is empty".into()));
    }
    Ok(pw)
}

async fn add(
    entry: AccountEntry,
    password_stdin: bool,
    no_verify: bool,
    config_path: &Path,
) -> Result<(), CliError> {
    let (mut config, paths) = load(config_path)?;
    let password = read_password(&entry.jid, password_stdin)?;
    if !no_verify {
        let session = Session::login(&entry.to_login(&password)).await?;
        let info = session.info().clone();
        session.close().await;
        println!(
            "logged in as {} with SASL {} over {:?} in {} ms",
            info.bound_jid, info.mechanism, info.tls, info.login_ms
        );
    }
    let keystore = Keystore::open(&config.keystore, paths.secrets_dir)?;
    keystore.set(
        &SecretName::Password(entry.jid.clone()),
        password.as_bytes(),
    )?;
    let jid = entry.jid.clone();
    match config.accounts.iter_mut().find(|a| a.jid == jid) {
        Some(existing) => *existing = entry,
        None => config.accounts.push(entry),
    }
    config.save(config_path)?;
    println!("added {jid} to {}", config_path.display());
    println!("password stored in the {}", keystore.info().description);
    if let Some(reason) = &keystore.info().fallback_reason {
        println!("note: the OS keyring was not used: {reason}");
    }
    Ok(())
}

#[derive(serde::Serialize)]
struct Listed<'a> {
    #[serde(flatten)]
    entry: &'a AccountEntry,
    password_stored: bool,
}

fn list(config_path: &Path, json: bool) -> Result<(), CliError> {
    let (config, paths) = load(config_path)?;
    let keystore = Keystore::open(&config.keystore, paths.secrets_dir)?;
    let mut listed = Vec::new();
    for a in &config.accounts {
        let stored = keystore
            .get(&SecretName::Password(a.jid.clone()))?
            .is_some();
        listed.push(Listed {
            entry: a,
            password_stored: stored,
        });
    }
    if json {
        return print_json(&listed);
    }
    if listed.is_empty() {
        println!("no accounts; add one with `chamber account add JID`");
    }
    for l in &listed {
        let server = l.entry.server.as_deref().unwrap_or("(SRV lookup)");
        let pw = if l.password_stored {
            "password stored"
        } else {
            "NO PASSWORD: run `chamber account add` again"
        };
        println!("{}  via {server} ({:?})  {pw}", l.entry.jid, l.entry.tls);
    }
    println!("secrets: {}", keystore.info().description);
    Ok(())
}

fn remove(jid: &str, config_path: &Path) -> Result<(), CliError> {
    let (mut config, paths) = load(config_path)?;
    let before = config.accounts.len();
    config.accounts.retain(|a| a.jid != jid);
    let keystore = Keystore::open(&config.keystore, paths.secrets_dir)?;
    let had_password = keystore.delete(&SecretName::Password(jid.into()))?;
    if config.accounts.len() == before && !had_password {
        return Err(CliError::Usage(format!(
            "there is no account {jid} (see `chamber account list`)"
        )));
    }
    config.save(config_path)?;
    println!("removed {jid} and its password");
    Ok(())
}
