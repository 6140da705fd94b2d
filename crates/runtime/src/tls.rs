//! TLS on every listener and on calls between services: rustls on aws-lc
//! (the crypto jsonwebtoken already brings), certificates from PEM files,
//! read again when the files change (cert-manager rewrites them) or on
//! SIGHUP, so a rotation needs no restart. A file that does not load keeps
//! the configuration in force; TLS is never dropped for plaintext.

mod accept;
mod connect;
mod load;

use std::{
    hash::{DefaultHasher, Hash, Hasher},
    path::PathBuf,
    sync::{
        Arc, RwLock,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use clap::Args;
use rustls::{ClientConfig, ServerConfig};

pub(crate) use accept::{TlsListener, accept, handshake_each};
pub use connect::connect_lazy;

/// TLS settings, shared by every binary.
#[derive(Debug, Clone, Args)]
pub struct TlsArgs {
    /// Serve TLS on every listener with this certificate chain (PEM, leaf
    /// first). Needs --tls-key. Re-read when it changes.
    #[arg(long, env = "SIGIL_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, env = "SIGIL_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// Require a client certificate issued by a CA in this PEM file on every
    /// listener (mTLS). Needs --tls-cert.
    #[arg(long, env = "SIGIL_TLS_CLIENT_CA")]
    pub tls_client_ca: Option<PathBuf>,
    /// Trust the CAs in this PEM file for calls to other Sigil services
    /// over `https://` (the validator's to the issuer); --tls-cert, when
    /// set, is then presented as the client certificate.
    #[arg(long, env = "SIGIL_TLS_CA")]
    pub tls_ca: Option<PathBuf>,
    /// Drop a connection whose TLS handshake takes longer than this.
    #[arg(long, env = "SIGIL_TLS_HANDSHAKE_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub tls_handshake_timeout: Duration,
    /// Look for changed certificate files this often (SIGHUP: at once).
    #[arg(long, env = "SIGIL_TLS_RELOAD_INTERVAL", default_value = "10s", value_parser = humantime::parse_duration)]
    pub tls_reload_interval: Duration,
}

impl Default for TlsArgs {
    /// No TLS, with the flags' default timings.
    fn default() -> Self {
        TlsArgs {
            tls_cert: None,
            tls_key: None,
            tls_client_ca: None,
            tls_ca: None,
            tls_handshake_timeout: Duration::from_secs(10),
            tls_reload_interval: Duration::from_secs(10),
        }
    }
}

impl TlsArgs {
    /// The TLS these settings describe, loaded; `None` when none is
    /// configured. An error names the setting at fault.
    pub fn load(&self) -> Result<Option<Tls>, String> {
        match (&self.tls_cert, &self.tls_key) {
            (Some(_), None) => return Err("SIGIL_TLS_CERT needs SIGIL_TLS_KEY".into()),
            (None, Some(_)) => return Err("SIGIL_TLS_KEY needs SIGIL_TLS_CERT".into()),
            (None, None) if self.tls_client_ca.is_some() => {
                return Err(
                    "SIGIL_TLS_CLIENT_CA needs SIGIL_TLS_CERT and SIGIL_TLS_KEY: mTLS is \
                     verified on a TLS listener"
                        .into(),
                );
            }
            (None, None) if self.tls_ca.is_none() => return Ok(None),
            _ => {}
        }
        if self.tls_handshake_timeout.is_zero() {
            return Err("SIGIL_TLS_HANDSHAKE_TIMEOUT must be positive".into());
        }
        // The digest before the read: a change in between is seen again by
        // the watcher, never missed.
        let seen = digest(self);
        let configs = Configs::read(self)?;
        Ok(Some(Tls {
            args: Arc::new(self.clone()),
            current: Arc::new(RwLock::new(Arc::new(configs))),
            reloads: Arc::new(Reloads {
                seen: AtomicU64::new(seen),
                ..Reloads::default()
            }),
        }))
    }
}

/// Loaded TLS configuration, swapped whole when the files change. Cheap to
/// clone; clones share the configuration.
#[derive(Clone)]
pub struct Tls {
    args: Arc<TlsArgs>,
    current: Arc<RwLock<Arc<Configs>>>,
    reloads: Arc<Reloads>,
}

/// How many reloads were tried since start, how many failed, and the
/// digest of the files as last read.
#[derive(Debug, Default)]
struct Reloads {
    done: AtomicU64,
    failed: AtomicU64,
    seen: AtomicU64,
}

/// Everything built from one reading of the files.
struct Configs {
    /// For gRPC listeners, which also answer HTTP/1.1: ALPN `h2`, `http/1.1`.
    grpc: Option<Arc<ServerConfig>>,
    /// For HTTP/1.1-only listeners.
    http: Option<Arc<ServerConfig>>,
    /// For calls to other services, when a CA is configured.
    client: Option<Arc<ClientConfig>>,
}

/// Which protocols a listener speaks, for ALPN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Protocols {
    /// gRPC (HTTP/2) and HTTP/1.1.
    Grpc,
    /// HTTP/1.1 only.
    Http1,
}

impl Tls {
    /// Whether listeners serve TLS (a certificate is configured).
    pub fn serves(&self) -> bool {
        self.args.tls_cert.is_some()
    }

    /// Whether calls to other services can use TLS (a CA is configured).
    pub fn connects(&self) -> bool {
        self.args.tls_ca.is_some()
    }

    /// The longest a handshake may take.
    pub fn handshake_timeout(&self) -> Duration {
        self.args.tls_handshake_timeout
    }

    /// How often the files are checked for changes.
    pub fn reload_interval(&self) -> Duration {
        self.args.tls_reload_interval
    }

    /// Reads the files again and, if everything loads, puts the new
    /// configuration in force for new connections; otherwise keeps the one
    /// in force. Connections already open keep theirs either way.
    pub fn reload(&self) -> Result<(), String> {
        self.reloads
            .seen
            .store(digest(&self.args), Ordering::SeqCst);
        let read = Configs::read(&self.args);
        match &read {
            Ok(_) => self.reloads.done.fetch_add(1, Ordering::SeqCst),
            Err(_) => self.reloads.failed.fetch_add(1, Ordering::SeqCst),
        };
        let configs = read?;
        *self
            .current
            .write()
            .unwrap_or_else(|poison| poison.into_inner()) = Arc::new(configs);
        Ok(())
    }

    /// Reloads that succeeded since start.
    pub fn reloads_done(&self) -> u64 {
        self.reloads.done.load(Ordering::SeqCst)
    }

    /// Reloads that failed (and kept the old configuration) since start.
    pub fn reloads_failed(&self) -> u64 {
        self.reloads.failed.load(Ordering::SeqCst)
    }

    fn configs(&self) -> Arc<Configs> {
        self.current
            .read()
            .unwrap_or_else(|poison| poison.into_inner())
            .clone()
    }

    pub(crate) fn server_config(&self, protocols: Protocols) -> Option<Arc<ServerConfig>> {
        let configs = self.configs();
        match protocols {
            Protocols::Grpc => configs.grpc.clone(),
            Protocols::Http1 => configs.http.clone(),
        }
    }

    pub(crate) fn client_config(&self) -> Option<Arc<ClientConfig>> {
        self.configs().client.clone()
    }

    /// Whether the files changed since they were last read.
    fn changed(&self) -> bool {
        digest(&self.args) != self.reloads.seen.load(Ordering::SeqCst)
    }
}

/// A digest of the files' contents (or of why they cannot be read), to
/// notice a change whatever the file system's timestamps do.
fn digest(args: &TlsArgs) -> u64 {
    let mut hasher = DefaultHasher::new();
    let paths = [
        &args.tls_cert,
        &args.tls_key,
        &args.tls_client_ca,
        &args.tls_ca,
    ];
    for path in paths.into_iter().flatten() {
        match std::fs::read(path) {
            Ok(bytes) => bytes.hash(&mut hasher),
            Err(error) => error.kind().hash(&mut hasher),
        }
    }
    hasher.finish()
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("serves", &self.serves())
            .field("connects", &self.connects())
            .field("mtls", &self.args.tls_client_ca.is_some())
            .finish()
    }
}

/// Reloads `tls` whenever one of its files changes (checked every
/// `poll`) or the process gets SIGHUP. A reload that fails is logged as an
/// error and the certificate in force stays. Replace the files atomically
/// (write others, then rename), as Kubernetes does for a mounted Secret:
/// a certificate caught between its key's write and its own fails to load
/// and is tried again at the next change.
pub async fn watch_tls(tls: Tls, poll: Duration) {
    let mut trigger = crate::reload::ReloadTrigger::new(poll);
    loop {
        let forced = trigger.next().await;
        if !forced && !tls.changed() {
            continue;
        }
        match tls.reload() {
            Ok(()) => tracing::info!("TLS certificates reloaded"),
            Err(error) => {
                tracing::error!(%error, "TLS certificates not reloaded; the ones in force stay")
            }
        }
    }
}
