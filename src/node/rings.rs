//! The daemon's side of `chamber ring create/join/leave/invite`: the same changes to the
//! configuration and keystore as without a daemon ([`crate::membership`]), then the ring is
//! joined or left live — announced in presence by rendezvous, run by the runtime.

use std::collections::BTreeMap;
use std::time::Instant;

use tokio::sync::oneshot;
use tokio_xmpp::parsers::message::Message;
use xmpp_ext::{NodeSecret, RingId, RingSecret};

use super::invites;
use super::setup::NodeSetup;
use crate::account::AccountHandle;
use crate::control::{Request, Response};
use crate::membership::{self, InviteInfo, PendingInvites};
use crate::rendezvous::{Rendezvous, RingMembership};
use crate::runtime::{RingSpec, RuntimeHandle};

/// How long a member certificate sent with an invite lasts, by default.
const CERT_SECS: u64 = 365 * 86_400;

/// The rings the node is in (with their secrets, for invites) and the invites it holds.
pub(super) struct Rings {
    secrets: BTreeMap<String, RingSecret>,
    /// Owned rings: the owner and our certificate (to invite with).
    owned: BTreeMap<String, crate::runtime::OwnedRing>,
    pending: PendingInvites,
}

/// What a ring command needs of the daemon.
pub(super) struct Cx<'a> {
    pub setup: &'a NodeSetup,
    pub rv: &'a mut Rendezvous,
    pub runtime: &'a RuntimeHandle,
    pub handles: &'a [AccountHandle],
    /// Where friends' keys answered to an invite go (to be pinned or found changed).
    pub keys_seen: &'a invites::KeysSeen,
}

impl Rings {
    /// The rings of `setup` and the invites stored at its invites file. An unreadable file
    /// costs the pending invites (friends can send them again), never the node's start.
    pub fn load(setup: &NodeSetup) -> Rings {
        let pending =
            PendingInvites::load(&setup.invites_file, &setup.secret).unwrap_or_else(|e| {
                tracing::warn!(%e, "pending invites lost; friends can invite again");
                PendingInvites::empty(&setup.invites_file)
            });
        Rings {
            secrets: setup
                .ring_specs
                .iter()
                .map(|s| (s.name.clone(), s.secret.clone()))
                .collect(),
            owned: setup
                .ring_specs
                .iter()
                .filter_map(|s| Some((s.name.clone(), s.owned.clone()?)))
                .collect(),
            pending,
        }
    }

    /// The invites waiting for `chamber ring join`.
    pub fn invites(&self) -> Vec<InviteInfo> {
        self.pending.list()
    }

    /// A message received on `account` (invites are the only messages chamber reads).
    pub fn message(
        &mut self,
        secret: &NodeSecret,
        rv: &mut Rendezvous,
        account: usize,
        m: &Message,
    ) {
        let ids: Vec<RingId> = self.secrets.values().map(RingSecret::ring_id).collect();
        invites::incoming(secret, rv, &mut self.pending, &ids, account, m);
    }

    /// Answers a ring request; an invite is answered later, from its own task.
    pub async fn handle(&mut self, req: Request, reply: oneshot::Sender<Response>, mut cx: Cx<'_>) {
        let (cfg, ks) = (&cx.setup.config_path, &cx.setup.keystore);
        let joined = match req {
            Request::RingCreate {
                name,
                owned,
                friends,
            } => membership::create(cfg, ks, &name, owned, friends),
            Request::RingJoin { name } => membership::accept(cfg, ks, &mut self.pending, &name),
            Request::RingLeave { name } => {
                let answer = match membership::leave(cfg, ks, &name) {
                    Ok(()) => {
                        cx.runtime.leave_ring(name.clone()).await;
                        cx.rv.remove_ring(&name);
                        self.secrets.remove(&name);
                        Response::ok(None)
                    }
                    Err(e) => Response::error(&e.to_string()),
                };
                let _ = reply.send(answer);
                return;
            }
            Request::RingInvite {
                name,
                jid,
                admin,
                valid_secs,
            } => {
                self.invite(name, &jid, admin, valid_secs, reply, &cx);
                return;
            }
            Request::RingRevoke { name, jid } => {
                let answer = match cx.runtime.revoke(name, jid).await {
                    Ok(text) => Response::ok(Some(serde_json::Value::String(text))),
                    Err(e) => Response::error(&e),
                };
                let _ = reply.send(answer);
                return;
            }
            _ => {
                let _ = reply.send(Response::error("not a ring request"));
                return;
            }
        };
        let answer = match joined {
            Ok(spec) => {
                let view =
                    serde_json::json!({ "name": spec.name, "id": spec.secret.ring_id().to_hex() });
                self.join_live(spec, &mut cx).await;
                Response::ok(Some(view))
            }
            Err(e) => Response::error(&e.to_string()),
        };
        let _ = reply.send(answer);
    }

    async fn join_live(&mut self, spec: RingSpec, cx: &mut Cx<'_>) {
        self.secrets.insert(spec.name.clone(), spec.secret.clone());
        if let Some(o) = &spec.owned {
            self.owned.insert(spec.name.clone(), o.clone());
        }
        cx.rv.add_ring(membership_of(&spec), Instant::now());
        cx.runtime.add_ring(spec).await;
    }

    fn invite(
        &self,
        name: String,
        jid: &str,
        admin: bool,
        valid_secs: Option<u64>,
        reply: oneshot::Sender<Response>,
        cx: &Cx<'_>,
    ) {
        let Some(secret) = self.secrets.get(&name) else {
            let _ = reply.send(Response::error(&format!(
                "this node is in no ring named `{name}`; `chamber ring list` shows its rings"
            )));
            return;
        };
        let owned = self.owned.get(&name).cloned();
        if let Err(e) = invites::may_invite(&cx.setup.secret, owned.as_ref(), admin) {
            let _ = reply.send(Response::error(&e));
            return;
        }
        let (friend, targets) = match invites::targets(cx.rv, cx.handles, jid) {
            Ok(t) => t,
            Err(e) => {
                let _ = reply.send(Response::error(&e));
                return;
            }
        };
        let job = invites::Outgoing {
            ring: name,
            secret: secret.clone(),
            owned,
            admin,
            valid_secs: valid_secs.filter(|s| *s > 0).unwrap_or(CERT_SECS),
            node: NodeSecret::from_bytes(&cx.setup.secret.to_bytes()),
            pinned: cx.rv.pinned(&friend),
            friend,
            targets,
            keys_seen: cx.keys_seen.clone(),
        };
        tokio::spawn(async move {
            let answer = match invites::send(job).await {
                Ok(v) => Response::ok(Some(v)),
                Err(e) => Response::error(&e),
            };
            let _ = reply.send(answer);
        });
    }
}

/// The rendezvous entry for a ring spec.
fn membership_of(spec: &RingSpec) -> RingMembership {
    RingMembership {
        name: spec.name.clone(),
        id: spec.secret.ring_id(),
    }
}
