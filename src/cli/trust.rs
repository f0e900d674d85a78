//! `chamber trust JID`: shows the node key a friend offers now next to the one pinned for them,
//! and accepts it after the user confirms (or with `--yes`). The daemon refused the new key
//! everywhere until then (see [`crate::trust`]).

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;
use std::time::Duration;

use super::{CliError, daemon};
use crate::control::{self, Request};
use crate::node;
use crate::trust::{Accepted, KeyWarning};

pub(super) async fn run(
    config_path: &Path,
    jid: &str,
    yes: bool,
    keep_old: bool,
) -> Result<(), CliError> {
    let socket = daemon::socket(config_path)?;
    let status = node::query_status(&socket).await?;
    let Some(w) = status
        .pinned_key_warnings
        .iter()
        .find(|w| w.jid.eq_ignore_ascii_case(jid))
    else {
        return Err(CliError::Usage(format!(
            "no changed node key is waiting for `{jid}`: the running node has refused no other \
             key for it (`chamber status` lists the refused ones); nothing to accept"
        )));
    };
    print!("{}", describe(w));
    if !yes {
        if !std::io::stdin().is_terminal() {
            return Err(CliError::Usage(format!(
                "not accepted: standard input is not a terminal, so nobody could confirm. Check \
                 the new fingerprint with {jid}, then run `chamber trust {jid} --yes`"
            )));
        }
        print!("Accept the new key for {}? [y/N] ", w.jid);
        std::io::stdout().flush().ok();
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| CliError::Usage(format!("cannot read the answer: {e}")))?;
        if !matches!(line.trim(), "y" | "Y" | "yes" | "YES" | "Yes") {
            return Err(CliError::Usage(
                "not accepted; the new key stays refused".into(),
            ));
        }
    }
    let req = Request::Trust {
        jid: w.jid.clone(),
        fingerprint: Some(w.offered.clone()),
        keep_old,
    };
    let r = control::request(&socket, &req, Duration::from_secs(5)).await?;
    if let Some(e) = r.error {
        return Err(CliError::Usage(e));
    }
    let a: Accepted = r
        .status
        .and_then(|v| serde_json::from_value(v).ok())
        .ok_or_else(|| CliError::Usage("the daemon's answer is unreadable".into()))?;
    println!(
        "accepted: {} is now pinned to key {}{}",
        a.jid,
        group(&a.new),
        if a.kept_old {
            " (the old key stays accepted too)"
        } else {
            ""
        }
    );
    Ok(())
}

/// The warning as the user reads it before deciding.
fn describe(w: &KeyWarning) -> String {
    let mut s = format!(
        "{} now offers another node key (first seen in a {}, refused {} time(s)):\n",
        w.jid, w.source, w.refused
    );
    for p in &w.pinned {
        s.push_str(&format!("  old (pinned) {}\n", group(p)));
    }
    s.push_str(&format!("  new          {}\n", group(&w.offered)));
    s.push_str(&format!(
        "Accept it only if {} confirms the new fingerprint another way (in person, by phone): \
         a server that swaps keys looks exactly like this.\n",
        w.jid
    ));
    s
}

fn group(hex: &str) -> String {
    hex.parse::<xmpp_ext::Fingerprint>()
        .map_or_else(|_| hex.to_owned(), |k| k.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trust::KeySource;

    #[test]
    fn the_trust_request_is_one_json_line_with_defaults() {
        let r: Request = serde_json::from_str(r#"{"cmd":"trust","jid":"bob@b.lab"}"#).unwrap();
        assert_eq!(
            r,
            Request::Trust {
                jid: "bob@b.lab".into(),
                fingerprint: None,
                keep_old: false
            }
        );
        let line = serde_json::to_string(&Request::Trust {
            jid: "bob@b.lab".into(),
            fingerprint: Some("ab".into()),
            keep_old: true,
        })
        .unwrap();
        assert_eq!(
            line,
            r#"{"cmd":"trust","jid":"bob@b.lab","fingerprint":"ab","keep_old":true}"#
        );
    }

    #[test]
    fn the_prompt_shows_both_fingerprints_in_groups() {
        let w = KeyWarning {
            jid: "bob@b.lab".into(),
            pinned: vec!["11".repeat(32)],
            offered: "22".repeat(32),
            source: KeySource::Announce,
            first_seen_ms: 0,
            refused: 3,
        };
        let text = describe(&w);
        assert!(text.contains("old (pinned) 1111 1111"), "{text}");
        assert!(text.contains("new          2222 2222"), "{text}");
        assert!(
            text.contains("refused 3 time(s)") && text.contains("ring announce"),
            "{text}"
        );
    }
}
