//! The `chamber` command line: argument parsing (clap) and one module per command group. Each
//! command returns a [`CliError`] whose message says what happened and what to do; `main` only
//! prints it.
#![warn(missing_docs)]

mod account;
pub mod brunet;
mod daemon;
mod netcheck;
mod ring;
mod trust;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::account::LoginError;
use crate::config::{Config, ConfigError, Paths};
use crate::control::ControlError;
use crate::keystore::KeystoreError;
use crate::node::NodeError;

/// chamber: a private, encrypted overlay of friends, from the XMPP accounts they already have.
#[derive(Debug, Parser)]
#[command(name = "chamber", version)]
pub struct Cli {
    /// Configuration file [default: $XDG_CONFIG_HOME/chamber/config.toml]
    #[arg(long, global = true, env = "CHAMBER_CONFIG")]
    pub config: Option<PathBuf>,
    /// More log output (-v: info, -vv: debug)
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Add, list or remove XMPP accounts
    #[command(subcommand)]
    Account(AccountCommand),
    /// Run the node in the foreground (Ctrl-C stops it cleanly)
    Up,
    /// Show what the running node is doing
    Status {
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
    /// Stop the running node cleanly
    Stop,
    /// Echo over the ring to a member (`brunet:node:…` address, or a friend's JID)
    Ping {
        /// The member's ring address or JID
        target: String,
        /// How many echoes
        #[arg(short, long, default_value_t = 3)]
        count: u32,
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
    /// Join a Brunet ring over Brunet's UDP profile (PLAINTEXT: no encryption, no authentication)
    Brunet(brunet::BrunetArgs),
    /// Make, share, join and leave rings; show one
    #[command(subcommand)]
    Ring(RingCommand),
    /// Accept the new node key a friend offers (shown with the pinned one in `chamber status`)
    Trust {
        /// The friend's bare JID
        jid: String,
        /// Accept without asking (check the fingerprint with the friend first)
        #[arg(long)]
        yes: bool,
        /// Keep accepting the old key too (the friend runs a second device on the same account)
        #[arg(long)]
        keep_old: bool,
    },
    /// Check the network: STUN/TURN offered by each server, public address, NAT type
    Netcheck {
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
        /// Extra STUN server (host[:port]) used when no XMPP server offers one
        #[arg(long = "stun", value_name = "HOST:PORT")]
        stun: Vec<String>,
    },
}

/// `chamber account ...`
#[derive(Debug, Subcommand)]
pub enum AccountCommand {
    /// Add an account (or change its settings or password); logs in once to check it
    Add {
        /// The account's bare JID, user@server
        jid: String,
        /// Connect to HOST:PORT instead of looking up the server's SRV records
        #[arg(long, value_name = "HOST:PORT")]
        server: Option<String>,
        /// TLS from the first byte (XEP-0368, usually port 5223) instead of STARTTLS
        #[arg(long)]
        direct_tls: bool,
        /// Trust only this CA certificate (PEM) for the server
        #[arg(long, value_name = "FILE")]
        ca_file: Option<PathBuf>,
        /// Read the password from standard input instead of prompting
        #[arg(long)]
        password_stdin: bool,
        /// Store the account without logging in to check it
        #[arg(long)]
        no_verify: bool,
    },
    /// List the accounts
    List {
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
    /// Remove an account and its stored password
    Remove {
        /// The account's bare JID
        jid: String,
    },
}

/// `chamber ring ...`
#[derive(Debug, Subcommand)]
pub enum RingCommand {
    /// Make a ring: a fresh secret in the keystore; the running node joins it at once
    Create {
        /// The ring's name (yours; friends see it in your invites)
        name: String,
        /// An owned ring: only friends you (or admins you name) invite get a certificate to
        /// link, and you can put members out (`chamber ring revoke`)
        #[arg(long, conflicts_with = "friends")]
        owned: bool,
        /// A friends ring: no owner, no secret, no invites; links only to roster friends who
        /// made a friends ring of the same name
        #[arg(long)]
        friends: bool,
        /// With --friends: friends of friends may link too, on a mutual friend's voucher
        #[arg(long, requires = "friends")]
        fof: bool,
    },
    /// Put a member out of an owned ring (owner or admin): its links close everywhere and its
    /// certificate is void
    Revoke {
        /// The ring's name
        name: String,
        /// The member's bare JID
        jid: String,
    },
    /// Send a friend (on your roster, running chamber) an invite to a ring, encrypted to their node key
    Invite {
        /// The ring's name
        name: String,
        /// The friend's bare JID
        jid: String,
        /// Owned rings: make the friend an admin, who may invite and revoke (owner only)
        #[arg(long)]
        admin: bool,
        /// Owned rings: days the friend's certificate lasts (default 365; fractions allowed).
        /// Its node asks the owner for a new one when two thirds are gone.
        #[arg(long)]
        days: Option<f64>,
    },
    /// Accept a pending invite (see `chamber status`) and join the ring
    Join {
        /// The ring's name, as the invite names it
        name: String,
    },
    /// Leave a ring and forget its secret
    Leave {
        /// The ring's name
        name: String,
    },
    /// List the rings and pending invites (with the running node's view of each ring)
    List {
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
    /// Draw a ring as the running node sees it: members in ring order, roles, links
    Show {
        /// The ring (default: the only one)
        name: Option<String>,
        /// Also write the picture as SVG to FILE
        #[arg(long, value_name = "FILE")]
        svg: Option<PathBuf>,
        /// Print the members (ring order, position, roles, link) as JSON instead of text
        #[arg(long)]
        json: bool,
    },
}

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CliError {
    /// The configuration is unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The keystore failed.
    #[error(transparent)]
    Keystore(#[from] KeystoreError),
    /// A login failed.
    #[error(transparent)]
    Login(#[from] LoginError),
    /// The node could not run.
    #[error(transparent)]
    Node(#[from] NodeError),
    /// The daemon could not be reached.
    #[error(transparent)]
    Control(#[from] ControlError),
    /// A ring could not be created, joined or left.
    #[error(transparent)]
    Membership(#[from] crate::membership::MembershipError),
    /// The command line or its input is wrong.
    #[error("{0}")]
    Usage(String),
}

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> Result<(), CliError> {
    let config_path = match &cli.config {
        Some(p) => p.clone(),
        None => Paths::from_env()?.config_file,
    };
    match cli.command {
        Command::Account(cmd) => account::run(cmd, &config_path).await,
        Command::Up => daemon::up(&config_path).await,
        Command::Status { json } => daemon::status(&config_path, json).await,
        Command::Stop => daemon::stop(&config_path).await,
        Command::Ping {
            target,
            count,
            json,
        } => daemon::ping(&config_path, &target, count, json).await,
        Command::Ring(cmd) => ring::run(cmd, &config_path).await,
        Command::Trust { jid, yes, keep_old } => {
            trust::run(&config_path, &jid, yes, keep_old).await
        }
        Command::Netcheck { json, stun } => netcheck::run(&config_path, json, &stun).await,
        Command::Brunet(args) => brunet::run(args).await,
    }
}

/// The configuration at `path` and the default paths.
fn load(path: &std::path::Path) -> Result<(Config, Paths), CliError> {
    Ok((Config::load(path)?, Paths::from_env()?))
}

/// Prints a value as pretty JSON.
fn print_json<T: serde::Serialize>(v: &T) -> Result<(), CliError> {
    let text = serde_json::to_string_pretty(v).map_err(|e| CliError::Usage(e.to_string()))?;
    println!("{text}");
    Ok(())
}
