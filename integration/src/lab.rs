//! The lab itself: builds the namespaces and NATs of a [`LabSpec`], starts the servers, and tears
//! all of it down when dropped (also on a test's panic); `chamber-lab clean` removes what a killed
//! process left behind.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use crate::error::{LabError, Result};
use crate::impair::{self, DelayQueues};
use crate::netns::{self, Netns, PREFIX};
use crate::pki::Pki;
use crate::process::ServerProcess;
use crate::spec::{LabSpec, SiteSpec};
use crate::topology::{
    self, ALPHA, BETA, EJABBERD_IP, PROSODY_IP, STUN_ALTERNATE, STUN_PRIMARY, SiteAddrs,
};
use crate::{cmd, coturn, ejabberd, prosody};

mod accounts;

/// Numbers the labs of one process, so tests may run several at once.
static NEXT_LAB: AtomicU32 = AtomicU32::new(0);

/// The programs a lab runs, with the Debian package of each.
const PROGRAMS: [(&str, &str); 8] = [
    ("ip", "iproute2"),
    ("nft", "nftables"),
    ("iptables", "iptables"),
    ("ss", "iproute2"),
    ("sysctl", "procps"),
    ("prosody", "prosody"),
    ("ejabberdctl", "ejabberd"),
    ("turnserver", "coturn"),
];

/// A site: its spec, addresses and the two namespaces (router and host).
#[derive(Debug)]
pub struct Site {
    /// What was asked for.
    pub spec: SiteSpec,
    /// Its addresses.
    pub addrs: SiteAddrs,
    /// The NAT router.
    pub router: Netns,
    /// The host behind it, where a friend's node runs.
    pub host: Netns,
}

/// An XMPP account in the lab.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Account {
    /// Its bare JID.
    pub jid: String,
    /// Its password.
    pub password: String,
}

/// A running lab. Dropping it stops every server and deletes every namespace it made.
pub struct Lab {
    id: String,
    dir: PathBuf,
    spec: LabSpec,
    public: Netns,
    sites: Vec<Site>,
    pki: Option<Pki>,
    /// Each XMPP server's certificate, by domain, kept for restarts.
    certs: std::collections::BTreeMap<&'static str, crate::pki::ServerCert>,
    turn_secret: String,
    servers: Vec<ServerProcess>,
    delays: Option<DelayQueues>,
}

impl Lab {
    /// Builds the network and starts every server the spec asks for.
    pub fn up(spec: LabSpec) -> Result<Lab> {
        let mut lab = Lab::network(spec)?;
        lab.start_servers()?;
        Ok(lab)
    }

    /// Checks that this machine can hold a lab: root, the programs, no stale namespaces.
    pub fn preflight() -> Result<()> {
        if !nix::unistd::geteuid().is_root() {
            return Err(LabError::NotRoot);
        }
        Lab::check_programs(&std::env::var_os("PATH").unwrap_or_default())?;
        let stale = netns::stale_namespaces();
        if !stale.is_empty() {
            return Err(LabError::StaleNamespaces {
                names: stale.join(", "),
            });
        }
        Ok(())
    }

    /// Checks that every program the lab runs is found on `search_path` (a `PATH`-style list).
    pub fn check_programs(search_path: &std::ffi::OsStr) -> Result<()> {
        for (program, package) in PROGRAMS {
            if !cmd::exists_in(program, search_path) {
                return Err(LabError::MissingProgram { program, package });
            }
        }
        Ok(())
    }

    /// Builds the namespaces, links, routes and NATs, without servers.
    pub fn network(spec: LabSpec) -> Result<Lab> {
        spec.validate()?;
        Lab::preflight()?;
        let id = format!(
            "{PREFIX}{}x{}",
            std::process::id(),
            NEXT_LAB.fetch_add(1, Ordering::Relaxed)
        );
        let dir = std::env::temp_dir().join("chamber-lab").join(&id);
        std::fs::create_dir_all(&dir).map_err(LabError::io(format!("create {}", dir.display())))?;
        let public = Netns::create(&format!("{id}-pub"), true)?;
        let mut lab = Lab {
            id,
            dir,
            spec: spec.clone(),
            public,
            sites: Vec::new(),
            pki: None,
            certs: Default::default(),
            turn_secret: random_hex(16)?,
            servers: Vec::new(),
            delays: None,
        };
        write_hosts(lab.public.name())?;
        for ip in [PROSODY_IP, EJABBERD_IP, STUN_PRIMARY, STUN_ALTERNATE] {
            lab.public
                .exec("ip", ["addr", "add", &format!("{ip}/32"), "dev", "lo"])?;
        }
        for (i, s) in spec.sites.iter().enumerate() {
            let site = lab.add_site(i, s)?;
            lab.sites.push(site);
        }
        let mut delayed = Vec::new();
        for (i, s) in spec.sites.iter().enumerate() {
            if s.impair.loss_percent > 0.0 {
                impair::add_loss(&lab.public, &uplink(i), s.impair.loss_percent)?;
            }
            if s.impair.delay_ms > 0 {
                delayed.push((uplink(i), Duration::from_millis(s.impair.delay_ms.into())));
            }
        }
        lab.delays = DelayQueues::start(&lab.public, &delayed)?;
        tracing::info!(id = %lab.id, sites = lab.sites.len(), "lab network up");
        Ok(lab)
    }

    fn add_site(&self, i: usize, spec: &SiteSpec) -> Result<Site> {
        let addrs = SiteAddrs::new(i, spec.nat.is_public());
        let router = Netns::create(&format!("{}-{}-nat", self.id, spec.name), true)?;
        let host = Netns::create(&format!("{}-{}", self.id, spec.name), false)?;
        let site = Site {
            spec: spec.clone(),
            addrs,
            router,
            host,
        };
        let (pubns, r, h) = (self.public.name(), site.router.name(), site.host.name());
        let up = uplink(i);
        cmd::run(
            "ip",
            [
                "link", "add", "name", &up, "netns", pubns, "type", "veth", "peer", "name", "wan",
                "netns", r,
            ],
        )?;
        cmd::run(
            "ip",
            [
                "link", "add", "name", "lan", "netns", r, "type", "veth", "peer", "name", "eth0",
                "netns", h,
            ],
        )?;
        let a = &site.addrs;
        self.public.exec(
            "ip",
            [
                "addr",
                "add",
                &format!("{}/24", a.uplink_public),
                "dev",
                &up,
            ],
        )?;
        self.public.exec("ip", ["link", "set", "dev", &up, "up"])?;
        site.router.exec(
            "ip",
            ["addr", "add", &format!("{}/24", a.wan), "dev", "wan"],
        )?;
        site.router.exec(
            "ip",
            ["addr", "add", &format!("{}/24", a.gateway), "dev", "lan"],
        )?;
        site.router
            .exec("ip", ["link", "set", "dev", "wan", "up"])?;
        site.router
            .exec("ip", ["link", "set", "dev", "lan", "up"])?;
        site.router.exec(
            "ip",
            [
                "route",
                "add",
                "default",
                "via",
                &a.uplink_public.to_string(),
            ],
        )?;
        site.host.exec(
            "ip",
            ["addr", "add", &format!("{}/24", a.host), "dev", "eth0"],
        )?;
        site.host.exec("ip", ["link", "set", "dev", "eth0", "up"])?;
        site.host.exec(
            "ip",
            ["route", "add", "default", "via", &a.gateway.to_string()],
        )?;
        if spec.nat.is_public() {
            self.public.exec(
                "ip",
                ["route", "add", &a.lan_cidr(), "via", &a.wan.to_string()],
            )?;
        }
        site.router.nft(&spec.nat.ruleset())?;
        write_hosts(r)?;
        write_hosts(h)?;
        Ok(site)
    }

    /// Starts coturn, Prosody and ejabberd as the spec asks, with accounts and rosters.
    pub fn start_servers(&mut self) -> Result<()> {
        let pki = Pki::new(&self.dir.join("pki"))?;
        if self.spec.prosody {
            self.certs
                .insert(ALPHA, pki.issue(&[ALPHA, &format!("*.{ALPHA}")])?);
        }
        if self.spec.ejabberd {
            self.certs
                .insert(BETA, pki.issue(&[BETA, &format!("*.{BETA}")])?);
        }
        self.pki = Some(pki);
        if self.spec.coturn {
            self.start_server("coturn")?;
        }
        if self.spec.prosody {
            self.start_server("Prosody")?;
            self.register_prosody(&self.dir.join("prosody"))?;
        }
        if self.spec.ejabberd {
            self.start_server("ejabberd")?;
            let accounts: Vec<(String, String)> = self
                .local_accounts(BETA)
                .into_iter()
                .map(|a| (local_part(&a.jid), a.password))
                .collect();
            ejabberd::provision(&self.public, &accounts, &self.friends())?;
        }
        Ok(())
    }

    /// Starts one server (`"Prosody"`, `"ejabberd"` or `"coturn"`) from the files the lab wrote:
    /// after [`Lab::stop_server`], its accounts, rosters and certificate are as they were.
    pub fn start_server(&mut self, what: &str) -> Result<()> {
        if self.servers.iter().any(|s| s.what() == what) {
            return Err(LabError::Spec(format!("{what} is already running")));
        }
        let ca_file = self.ca_file();
        let cert = |domain: &str| {
            self.certs
                .get(domain)
                .cloned()
                .ok_or_else(|| LabError::Spec(format!("this lab has no {domain} server")))
        };
        let proc = match what {
            "coturn" if self.spec.coturn => {
                coturn::start(&self.public, &self.server_dir("coturn")?, &self.turn_secret)?
            }
            "Prosody" => {
                let (dir, cert, groups) = (
                    self.server_dir("prosody")?,
                    cert(ALPHA)?,
                    self.roster_groups(),
                );
                let cfg = prosody::ProsodyConfig {
                    dir: &dir,
                    cert: &cert,
                    ca_file: &ca_file,
                    turn_secret: &self.turn_secret,
                    groups: &groups,
                };
                prosody::start(&self.public, &cfg)?
            }
            "ejabberd" => {
                let (dir, cert) = (self.server_dir("ejabberd")?, cert(BETA)?);
                let cfg = ejabberd::EjabberdConfig {
                    dir: &dir,
                    cert: &cert,
                    ca_file: &ca_file,
                    turn_secret: &self.turn_secret,
                };
                ejabberd::start(&self.public, &cfg)?
            }
            other => return Err(LabError::Spec(format!("no server `{other}` in this lab"))),
        };
        self.servers.push(proc);
        Ok(())
    }

    /// Stops and starts a server again, as an operator's restart would.
    pub fn restart_server(&mut self, what: &str) -> Result<()> {
        self.stop_server(what);
        self.start_server(what)
    }

    /// Registers Prosody's accounts, a few `prosodyctl` processes at a time.
    fn register_prosody(&self, dir: &Path) -> Result<()> {
        let accounts = self.local_accounts(ALPHA);
        for chunk in accounts.chunks(4) {
            std::thread::scope(|s| {
                let handles: Vec<_> = chunk
                    .iter()
                    .map(|a| {
                        s.spawn(|| {
                            prosody::register(&self.public, dir, &local_part(&a.jid), &a.password)
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .try_for_each(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            })?;
        }
        Ok(())
    }

    fn server_dir(&self, name: &str) -> Result<PathBuf> {
        let d = self.dir.join(name);
        std::fs::create_dir_all(&d).map_err(LabError::io(format!("create {}", d.display())))?;
        Ok(d)
    }

    /// The lab's id (the prefix of its namespaces).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The folder holding configs, certificates and logs.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The CA certificate that clients must trust.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.join("pki").join("ca.pem")
    }

    /// coturn's shared secret (what Prosody uses to mint TURN credentials).
    pub fn turn_secret(&self) -> &str {
        &self.turn_secret
    }

    /// The public namespace, where the servers run.
    pub fn public(&self) -> &Netns {
        &self.public
    }

    /// All sites, in spec order.
    pub fn sites(&self) -> &[Site] {
        &self.sites
    }

    /// The site called `name`.
    pub fn site(&self, name: &str) -> Option<&Site> {
        self.sites.iter().find(|s| s.spec.name == name)
    }

    /// The running servers.
    pub fn servers_mut(&mut self) -> &mut [ServerProcess] {
        &mut self.servers
    }

    /// Fails if any server has exited.
    pub fn check_servers(&mut self) -> Result<()> {
        self.servers
            .iter_mut()
            .try_for_each(ServerProcess::check_alive)
    }

    /// Makes Prosody hostile (`Some`) or honest again (`None`): while hostile, what it delivers
    /// to its clients from `victim` (a bare JID) carries `announce` and `record` (XML, one line
    /// each) in place of the victim's own, and ICE candidates with other ports.
    pub fn prosody_mitm(&self, attack: Option<(&str, &str, &str)>) -> Result<()> {
        let file = prosody::mitm_file(&self.server_dir("prosody")?);
        match attack {
            Some((victim, announce, record)) => {
                let one_line = |x: &str| x.replace('\n', " ");
                let text = format!("{victim}\n{}\n{}\n", one_line(announce), one_line(record));
                std::fs::write(&file, text).map_err(LabError::io("write Prosody's attack file"))
            }
            None => match std::fs::remove_file(&file) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    Err(LabError::io("remove Prosody's attack file")(e))
                }
                _ => Ok(()),
            },
        }
    }

    /// Stops the named server (`"Prosody"`, `"ejabberd"`, `"coturn"`), for outage tests.
    pub fn stop_server(&mut self, what: &str) {
        self.end_server(what, ServerProcess::stop);
    }

    /// Kills one server at once, as a crash would (see [`ServerProcess::crash`]).
    pub fn crash_server(&mut self, what: &str) {
        self.end_server(what, ServerProcess::crash);
    }

    fn end_server(&mut self, what: &str, end: fn(&mut ServerProcess)) {
        self.servers.retain_mut(|s| {
            if s.what() == what {
                end(s);
                false
            } else {
                true
            }
        });
    }

    /// Forgets every NAT mapping (a conntrack flush in every router), as a NAT reboot would.
    pub fn flush_nat_mappings(&self) -> Result<()> {
        for s in &self.sites {
            // conntrack exits 1 when the table was already empty.
            let _ = s.router.exec("conntrack", ["-F"]);
        }
        Ok(())
    }

    /// A plain description for people and scripts.
    pub fn describe(&self) -> serde_json::Value {
        serde_json::json!({
            "id": self.id,
            "dir": self.dir,
            "ca_file": self.ca_file(),
            "servers": {
                "prosody": if self.spec.prosody { Some(format!("{ALPHA} at {PROSODY_IP}")) } else { None },
                "ejabberd": if self.spec.ejabberd { Some(format!("{BETA} at {EJABBERD_IP}")) } else { None },
                "coturn": if self.spec.coturn { Some(format!("{STUN_PRIMARY} and {STUN_ALTERNATE}")) } else { None },
            },
            "sites": self.sites.iter().map(|s| serde_json::json!({
                "name": s.spec.name,
                "nat": s.spec.nat,
                "impair": s.spec.impair,
                "host_netns": s.host.name(),
                "host_ip": s.addrs.host,
                "public_ip": if s.spec.nat.is_public() { s.addrs.host } else { s.addrs.wan },
            })).collect::<Vec<_>>(),
            "accounts": self.friends(),
        })
    }

    /// Tears the lab down now (dropping it does the same).
    pub fn down(self) {}
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.delays = None;
        for s in &mut self.servers {
            s.stop();
        }
        self.servers.clear();
        // Every namespace carrying this lab's id, including those of a site half built.
        let mine = format!("{}-", self.id);
        for name in netns::lab_namespaces()
            .into_iter()
            .filter(|n| n.starts_with(&mine))
        {
            netns::delete(&name);
        }
        if std::env::var_os("CHAMBER_LAB_KEEP").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        } else {
            eprintln!(
                "chamber-lab: kept {} (CHAMBER_LAB_KEEP is set)",
                self.dir.display()
            );
        }
        tracing::info!(id = %self.id, "lab down");
    }
}

/// Deletes every lab namespace of this process (for a Ctrl-C handler) or, with `all`, of any
/// process whose lab was left behind; returns the names removed.
pub fn clean(all_stale: bool) -> Vec<String> {
    let own = format!("{PREFIX}{}x", std::process::id());
    let names: Vec<String> = if all_stale {
        netns::stale_namespaces()
    } else {
        netns::lab_namespaces()
            .into_iter()
            .filter(|n| n.starts_with(&own))
            .collect()
    };
    for n in &names {
        netns::delete(n);
    }
    names
}

fn uplink(i: usize) -> String {
    format!("p{i}")
}

fn local_part(jid: &str) -> String {
    jid.split('@').next().unwrap_or(jid).to_string()
}

/// `ip netns exec` bind-mounts `/etc/netns/<ns>/hosts` over `/etc/hosts`.
fn write_hosts(netns: &str) -> Result<()> {
    let dir = Path::new("/etc/netns").join(netns);
    std::fs::create_dir_all(&dir).map_err(LabError::io(format!("create {}", dir.display())))?;
    std::fs::write(dir.join("hosts"), topology::hosts_file())
        .map_err(LabError::io("write a namespace hosts file"))?;
    // A resolver that fails at once instead of timing out against an unreachable nameserver.
    std::fs::write(
        dir.join("resolv.conf"),
        "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n",
    )
    .map_err(LabError::io("write a namespace resolv.conf"))
}

fn random_hex(bytes: usize) -> Result<String> {
    let mut buf = vec![0u8; bytes];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut buf))
        .map_err(LabError::io("read /dev/urandom"))?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}
