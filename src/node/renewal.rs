//! Member certificates renewed before they expire (owned rings, DESIGN.md §7): the owner's
//! and admins' daemons answer `chamber/renew` requests over the ring (end-to-end, the
//! requester proved by its key); a member's daemon asks the owner once two thirds of its
//! certificate's life are gone, then keeps the fresh one in its configuration and shows it on
//! new links. If the owner is away it asks again at the next check.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use brunet_compat::address::Address as RingAddress;
use xmpp_ext::NodeSecret;
use xmpp_ext::cert::MemberCert;
use xmpp_ext::keys::address_of_identity;

use crate::account::unix_ms;
use crate::config::Config;
use crate::runtime::RuntimeHandle;
use crate::services::Services;

/// The service owners and admins answer.
pub const SERVICE: &str = "chamber/renew";
/// How often certificates are looked at.
const CHECK: Duration = Duration::from_secs(30);

/// Answers renewal requests with the runtime's [`RuntimeHandle::renew`].
pub(super) fn serve(services: &Services, runtime: RuntimeHandle) {
    services.handle(
        SERVICE,
        Arc::new(move |ring, from, payload| {
            let runtime = runtime.clone();
            Box::pin(async move {
                let cert = MemberCert::decode(&payload).map_err(|e| e.to_string())?;
                runtime.renew(ring, from, cert).await.map(|c| c.encode())
            })
        }),
    );
}

/// Whether a certificate is two thirds through its life at `now_ms`.
pub fn due(cert: &MemberCert, now_ms: u64) -> bool {
    let life = cert.expires_ms.saturating_sub(cert.issued_ms);
    now_ms >= cert.issued_ms + life / 3 * 2
}

/// Checks our certificates every [`CHECK`] and renews those due, until the daemon stops.
pub(super) async fn run(
    config_path: PathBuf,
    secret: NodeSecret,
    services: Services,
    runtime: RuntimeHandle,
) {
    let me = secret.public().identity_bytes();
    loop {
        tokio::time::sleep(CHECK).await;
        let Ok(config) = Config::load(&config_path) else {
            continue;
        };
        for entry in &config.rings {
            let (Some(owner), Some(cert)) = (&entry.owner, &entry.cert) else {
                continue;
            };
            let (Some(owner), Some(cert)) = (
                hex::decode(owner)
                    .ok()
                    .and_then(|o| <[u8; 32]>::try_from(o).ok()),
                hex::decode(cert)
                    .ok()
                    .and_then(|c| MemberCert::decode(&c).ok()),
            ) else {
                continue;
            };
            if owner == me || !due(&cert, unix_ms()) {
                continue;
            }
            let to = RingAddress::from_bytes(address_of_identity(&owner).to_bytes());
            let answer = services
                .request(
                    &entry.name,
                    to,
                    SERVICE,
                    &cert.encode(),
                    Duration::from_secs(20),
                )
                .await;
            match answer.and_then(|b| accept(&b, &cert, &owner, &me)) {
                Ok(fresh) => {
                    if let Err(e) = save(&config_path, &entry.name, &fresh) {
                        tracing::warn!(ring = %entry.name, %e, "renewed certificate not saved; kept until the node stops");
                    }
                    tracing::info!(ring = %entry.name, expires_ms = fresh.expires_ms, "member certificate renewed");
                    runtime.set_cert(entry.name.clone(), fresh).await;
                }
                Err(e) => {
                    tracing::info!(ring = %entry.name, %e, "certificate renewal failed; trying again later");
                }
            }
        }
    }
}

/// The fresh certificate, if it is ours, for the same JID and role, and checks.
fn accept(
    bytes: &[u8],
    old: &MemberCert,
    owner: &[u8; 32],
    me: &[u8; 32],
) -> Result<MemberCert, String> {
    let fresh = MemberCert::decode(bytes).map_err(|e| e.to_string())?;
    fresh
        .verify(old.ring, owner, unix_ms())
        .map_err(|e| e.to_string())?;
    if fresh.subject != *me || fresh.jid != old.jid || fresh.role != old.role {
        return Err("the renewed certificate is not ours".into());
    }
    if fresh.expires_ms <= old.expires_ms {
        return Err("the renewed certificate does not last longer".into());
    }
    Ok(fresh)
}

fn save(config_path: &Path, ring: &str, cert: &MemberCert) -> Result<(), String> {
    let mut config = Config::load(config_path).map_err(|e| e.to_string())?;
    let entry = config
        .rings
        .iter_mut()
        .find(|r| r.name == ring)
        .ok_or_else(|| format!("ring {ring} is no longer configured"))?;
    entry.cert = Some(hex::encode(cert.encode()));
    config.save(config_path).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use xmpp_ext::RingId;
    use xmpp_ext::cert::Role;

    #[test]
    fn renewal_is_due_after_two_thirds_and_only_our_longer_cert_is_taken() {
        let owner = NodeSecret::generate(&mut rand::rngs::OsRng);
        let me = NodeSecret::generate(&mut rand::rngs::OsRng);
        let o = owner.public().identity_bytes();
        let m = me.public().identity_bytes();
        let now = unix_ms();
        let ring = RingId([1; 32]);
        let old = MemberCert::issue(
            &owner,
            None,
            ring,
            m,
            "me@x",
            Role::Member,
            now - 700,
            now + 300,
        );
        assert!(due(&old, now));
        assert!(!due(&old, now - 500));
        let fresh = MemberCert::issue(&owner, None, ring, m, "me@x", Role::Member, now, now + 1000);
        assert!(accept(&fresh.encode(), &old, &o, &m).is_ok());
        let other = MemberCert::issue(&owner, None, ring, o, "me@x", Role::Member, now, now + 1000);
        assert!(accept(&other.encode(), &old, &o, &m).is_err());
        let promoted =
            MemberCert::issue(&owner, None, ring, m, "me@x", Role::Admin, now, now + 1000);
        assert!(accept(&promoted.encode(), &old, &o, &m).is_err());
    }
}
