//! `sigil-edge-token`: API tokens and their batch validation, over gRPC and
//! HTTP/JSON.

use std::{net::SocketAddr, process::ExitCode};

use clap::Parser;
use sigil_runtime::{CommonArgs, Services, run_service_with_http};

/// Sigil's edge-token service.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Where to listen for gRPC (which also answers `/edge/validate` over
    /// HTTP/1.1).
    #[arg(long, env = "SIGIL_LISTEN", default_value = "0.0.0.0:50053")]
    listen: SocketAddr,
    /// Where to listen for HTTP/JSON only (`POST /edge/validate`); by
    /// default Unleash Edge's port.
    #[arg(long, env = "SIGIL_HTTP_LISTEN", default_value = "0.0.0.0:3063")]
    http_listen: SocketAddr,
    #[command(flatten)]
    common: CommonArgs,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let http_listen = Some(args.http_listen);
    run_service_with_http(
        "sigil-edge-token",
        args.listen,
        http_listen,
        &args.common,
        |context| {
            let mut services = Services::default();
            sigil_edge_token::add_to(&mut services, context);
            Ok(services)
        },
    )
}
