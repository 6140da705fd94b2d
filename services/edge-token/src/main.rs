//! `sigil-edge-token`: API tokens and their batch validation, over gRPC.

use std::{net::SocketAddr, process::ExitCode};

use clap::Parser;
use sigil_runtime::{CommonArgs, Services, run_service};

/// Sigil's edge-token service.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Where to listen for gRPC.
    #[arg(long, env = "SIGIL_LISTEN", default_value = "0.0.0.0:50053")]
    listen: SocketAddr,
    #[command(flatten)]
    common: CommonArgs,
}

fn main() -> ExitCode {
    let args = Args::parse();
    run_service("sigil-edge-token", args.listen, &args.common, |context| {
        let mut services = Services::default();
        sigil_edge_token::add_to(&mut services, context);
        services
    })
}
