//! `sigil-validator`: WhoAmI, CheckAccess and VerifyToken for services on the
//! request path.

use std::{net::SocketAddr, process::ExitCode, time::Duration};

use clap::Parser;
use sigil_runtime::{CommonArgs, Services, run_service};
use sigil_validator::{KeySettings, SessionCacheArgs};

/// Sigil's validator service.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Where to listen for gRPC.
    #[arg(long, env = "SIGIL_LISTEN", default_value = "0.0.0.0:50052")]
    listen: SocketAddr,
    /// The issuer's gRPC address, for its public signing keys.
    #[arg(
        long,
        env = "SIGIL_ISSUER_URL",
        default_value = "http://127.0.0.1:50051"
    )]
    issuer_url: String,
    /// Fetch the issuer's keys for an unknown `kid` at most this often; a
    /// call with an unknown kid waits for the next fetch.
    #[arg(long, env = "SIGIL_JWKS_REFRESH_INTERVAL", default_value = "1s", value_parser = humantime::parse_duration)]
    jwks_refresh_interval: Duration,
    /// Trust a token template read from the store this long.
    #[arg(long, env = "SIGIL_TEMPLATE_CACHE_TTL", default_value = "5s", value_parser = humantime::parse_duration)]
    template_cache_ttl: Duration,
    #[command(flatten)]
    session_cache: SessionCacheArgs,
    #[command(flatten)]
    common: CommonArgs,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let settings = KeySettings {
        issuer_url: args.issuer_url,
        jwks_refresh_interval: args.jwks_refresh_interval,
        template_cache_ttl: args.template_cache_ttl,
        session_cache: args.session_cache.settings(),
    };
    run_service("sigil-validator", args.listen, &args.common, |context| {
        let mut services = Services::default();
        sigil_validator::add_to(&mut services, context, &settings)?;
        Ok(services)
    })
}
