//! `chamber brunet`: take part in a ring of original Brunet nodes over Brunet's UDP
//! profile. The profile is plaintext (Brunet's PeerSec is obsolete), and the command says
//! so before anything else.

use std::net::SocketAddr;

use brunet_compat::address::Address;
use brunet_compat::wire::ta::TransportAddress;

use super::CliError;
use crate::brunet::{self, Options, PLAINTEXT_WARNING};

/// `chamber brunet` arguments.
#[derive(Debug, clap::Args)]
pub struct BrunetArgs {
    /// The ring's realm (Brunet's overlay name)
    #[arg(long)]
    pub realm: String,
    /// Where to listen, ADDR:PORT with the IP peers reach us at
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: SocketAddr,
    /// A ring member, brunet.udp://HOST:PORT (repeatable; none for the first node)
    #[arg(long, value_name = "TA")]
    pub bootstrap: Vec<String>,
    /// Send AH exact echoes to this node (brunet:node:…) once the ring holds us
    #[arg(long, value_name = "ADDRESS")]
    pub echo: Option<String>,
    /// Our ring address (brunet:node:…) [default: random]
    #[arg(long, value_name = "ADDRESS")]
    pub address: Option<String>,
}

fn address(flag: &str, text: &str) -> Result<Address, CliError> {
    let a: Address = text
        .parse()
        .map_err(|e| CliError::Usage(format!("{flag} {text}: {e}")))?;
    if !a.is_ah() {
        return Err(CliError::Usage(format!(
            "{flag} {text}: not a node address (its last bit must be 0)"
        )));
    }
    Ok(a)
}

/// Runs the node until Ctrl-C or SIGTERM, then leaves the ring.
pub(super) async fn run(args: BrunetArgs) -> Result<(), CliError> {
    eprintln!("warning: {PLAINTEXT_WARNING}");
    let bootstrap = args
        .bootstrap
        .iter()
        .map(|t| {
            t.parse::<TransportAddress>()
                .map_err(|e| CliError::Usage(format!("--bootstrap {t}: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let usage = |e: brunet::BrunetError| CliError::Usage(e.to_string());
    let bootstrap = brunet::resolve(&bootstrap, args.listen)
        .await
        .map_err(usage)?;
    let opts = Options {
        realm: args.realm,
        listen: args.listen,
        bootstrap,
        echo: args
            .echo
            .as_deref()
            .map(|e| address("--echo", e))
            .transpose()?,
        address: args
            .address
            .as_deref()
            .map(|a| address("--address", a))
            .transpose()?,
    };
    let socket = brunet::bind(&opts).await.map_err(usage)?;
    brunet::run(opts, socket, stop_signal(), |r| println!("{r}"))
        .await
        .map_err(usage)
}

/// Resolves on Ctrl-C or SIGTERM.
async fn stop_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}
