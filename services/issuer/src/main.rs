//! `sigil-issuer`: creates, authorizes, extends and revokes sessions.

use std::{net::SocketAddr, process::ExitCode};

use clap::Parser;
use sigil_runtime::{CommonArgs, Services, run_service};

/// Sigil's issuer service.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Where to listen for gRPC.
    #[arg(long, env = "SIGIL_LISTEN", default_value = "0.0.0.0:50051")]
    listen: SocketAddr,
    #[command(flatten)]
    common: CommonArgs,
}

fn main() -> ExitCode {
    let args = Args::parse();
    run_service("sigil-issuer", args.listen, &args.common, |context| {
        let mut services = Services::default();
        sigil_issuer::add_to(&mut services, context);
        Ok(services)
    })
}
