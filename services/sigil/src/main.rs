//! `sigil`: the all-in-one binary. `sigil dev` serves the issuer, the
//! validator and edge-token on one port with an in-memory store, so trying
//! Sigil needs no Redis. The same port answers edge-token's HTTP/JSON
//! `POST /edge/validate` over HTTP/1.1.

use std::{net::SocketAddr, process::ExitCode};

use clap::{Parser, Subcommand};
use getrandom::{SysRng, rand_core::UnwrapErr};
use sigil_domain::AdminKey;
use sigil_jwt::MasterKey;
use sigil_runtime::{
    AdminArgs, CommonArgs, EXIT_BAD_CONFIG, JwtArgs, LogArgs, Services, SessionArgs, StoreArgs,
    TlsArgs, WorkerArgs, run_service,
};
use sigil_validator::KeySettings;

/// Sigil: sessions and tokens for services, over gRPC.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve every Sigil service on one port with an in-memory store.
    Dev(DevArgs),
}

#[derive(Debug, clap::Args)]
struct DevArgs {
    /// Where to listen for gRPC.
    #[arg(long, env = "SIGIL_LISTEN", default_value = "127.0.0.1:50051")]
    listen: SocketAddr,
    #[command(flatten)]
    log: LogArgs,
    #[command(flatten)]
    admin: AdminArgs,
    #[command(flatten)]
    session: SessionArgs,
    #[command(flatten)]
    jwt: JwtArgs,
    #[command(flatten)]
    session_cache: sigil_validator::SessionCacheArgs,
    #[command(flatten)]
    tls: TlsArgs,
    #[command(flatten)]
    workers: WorkerArgs,
    /// Refuse requests larger than this many bytes with RESOURCE_EXHAUSTED.
    #[arg(long, env = "SIGIL_MAX_REQUEST_BYTES", default_value_t = 100 * 1024)]
    max_request_bytes: usize,
    /// Refuse batch calls with more entries than this with
    /// RESOURCE_EXHAUSTED.
    #[arg(long, env = "SIGIL_MAX_BATCH_SIZE", default_value_t = 1000)]
    max_batch_size: usize,
    /// Answer at most this many batch entries at once; later batches wait
    /// their turn.
    #[arg(
        long,
        env = "SIGIL_MAX_BATCH_ENTRIES_IN_FLIGHT",
        default_value_t = sigil_runtime::DEFAULT_MAX_BATCH_ENTRIES_IN_FLIGHT
    )]
    max_batch_entries_in_flight: usize,
}

fn main() -> ExitCode {
    let Command::Dev(mut dev) = Cli::parse().command;
    if dev.admin.admin_keys.is_empty() && dev.admin.admin_keys_file.is_none() {
        let key = AdminKey::generate_text(&mut UnwrapErr(SysRng));
        print_banner(dev.listen, &key, dev.tls.tls_cert.is_some());
        dev.admin.admin_keys.push(key);
    }
    // Everything lives in memory, so a key for this run only is enough.
    dev.jwt
        .master_key
        .get_or_insert_with(|| MasterKey::generate(&mut UnwrapErr(SysRng)).to_base64());
    // The validator fetches signing keys from the issuer: here, itself.
    let own_address = match dev.listen.ip() {
        ip if ip.is_unspecified() => SocketAddr::from(([127, 0, 0, 1], dev.listen.port())),
        _ => dev.listen,
    };
    // Over TLS the validator verifies its own certificate: it needs the CA,
    // and the certificate must name the address it calls (127.0.0.1).
    let scheme = match dev.tls.tls_cert.is_some() {
        true if dev.tls.tls_ca.is_none() => {
            eprintln!(
                "sigil dev: with SIGIL_TLS_CERT, set SIGIL_TLS_CA to the CA of that \
                 certificate: the validator calls the issuer on {own_address} over TLS"
            );
            return ExitCode::from(EXIT_BAD_CONFIG);
        }
        true => "https",
        false => "http",
    };
    let key_settings = KeySettings {
        issuer_url: format!("{scheme}://{own_address}"),
        jwks_refresh_interval: std::time::Duration::from_secs(1),
        template_cache_ttl: std::time::Duration::from_secs(1),
        session_cache: dev.session_cache.settings(),
    };
    let common = CommonArgs {
        log: dev.log,
        store: StoreArgs {
            redis_url: None,
            redis_ca_file: None,
            redis_timeout: std::time::Duration::from_millis(250),
            health_interval: std::time::Duration::from_secs(1),
            event_retention: sigil_store::DEFAULT_EVENT_RETENTION,
            max_pending_sessions: sigil_store::DEFAULT_MAX_PENDING_SESSIONS,
            redis_confirm_replicas: 0,
            redis_confirm_aof: false,
            redis_confirm_timeout: std::time::Duration::from_millis(100),
        },
        admin: dev.admin,
        session: dev.session,
        jwt: dev.jwt,
        tls: dev.tls,
        max_request_bytes: dev.max_request_bytes,
        max_concurrent_requests: 4096,
        create_session_rate_per_peer: 1_000,
        create_session_rate: 10_000,
        max_request_time: std::time::Duration::from_secs(10),
        max_batch_size: dev.max_batch_size,
        max_batch_entries_in_flight: dev.max_batch_entries_in_flight,
        // `/metrics` is served on the one dev port.
        metrics_listen: None,
        health_listen: None,
        workers: dev.workers,
    };
    run_service("sigil dev", dev.listen, &common, |context| {
        let mut services = Services::default();
        sigil_issuer::add_to(&mut services, context);
        sigil_validator::add_to(&mut services, context, &key_settings)?;
        sigil_edge_token::add_to(&mut services, context);
        Ok(services)
    })
}

fn print_banner(listen: SocketAddr, admin_key: &str, tls: bool) {
    // Over TLS, grpcurl and curl need the CA instead of plaintext.
    let (plaintext, curl_ca, scheme) = match tls {
        true => (
            "-cacert \"$SIGIL_TLS_CA\"",
            " --cacert \"$SIGIL_TLS_CA\"",
            "https",
        ),
        false => ("-plaintext", "", "http"),
    };
    println!(
        "Sigil dev: issuer, validator and edge-token on {listen}, sessions in memory.\n\
         Admin key for this run (set SIGIL_ADMIN_KEYS to choose your own):\n  {admin_key}\n\
         Try it (grpcurl works by reflection, no proto files needed):\n  \
         grpcurl {plaintext} -d '{{\"subject\":\"alice\"}}' {listen} sigil.v1.IssuerService/CreateSession\n  \
         grpcurl {plaintext} -H 'authorization: Bearer {admin_key}' \\\n    \
         -d '{{\"nonce\":\"<nonce>\",\"permissions\":[\"token:read\"]}}' {listen} sigil.v1.IssuerService/AuthorizeSession\n  \
         grpcurl {plaintext} -H 'authorization: Bearer <session_key>' {listen} sigil.v1.ValidatorService/WhoAmI\n\
         API tokens (Unleash's POST /edge/validate answers on this same port, over HTTP/1.1):\n  \
         grpcurl {plaintext} -H 'authorization: Bearer {admin_key}' \\\n    \
         -d '{{\"token_name\":\"sdk\",\"type\":\"API_TOKEN_TYPE_BACKEND\",\"projects\":[\"default\"],\"environment\":\"development\"}}' \\\n    \
         {listen} sigil.v1.EdgeTokenService/CreateApiToken\n  \
         curl -s{curl_ca} -H 'content-type: application/json' -d '{{\"tokens\":[\"<token>\"]}}' {scheme}://{listen}/edge/validate"
    );
}
