//! The validator's view of signing keys and templates: public keys fetched
//! from the issuer's GetJwks and cached, refreshed on an unknown `kid` at
//! most once per interval; templates read from the store and cached briefly.

use std::{
    collections::HashMap,
    sync::{Arc, OnceLock, RwLock},
    time::{Duration, Instant},
};

use sigil_domain::{Error, Result};
use sigil_jwt::{MasterKey, StoredTemplate, VerifyingKey};
use sigil_proto::{jwt::jwk_from_pb, v1 as pb};
use sigil_runtime::Context;
use sigil_store::CacheCounters;
use tokio::sync::Mutex;
use tonic::transport::Channel;
use tracing::Instrument;

use pb::issuer_service_client::IssuerServiceClient;

/// Where and how often the validator asks the issuer for keys.
#[derive(Debug, Clone)]
pub struct KeySettings {
    /// The issuer's gRPC address, `http://host:port`, or `https://host:port`
    /// to call it over TLS (verified against `SIGIL_TLS_CA`).
    pub issuer_url: String,
    /// An unknown `kid` triggers at most one JWKS fetch per this interval,
    /// so a flood of made-up kids cannot hammer the issuer; such a request
    /// waits for the next allowed fetch.
    pub jwks_refresh_interval: Duration,
    /// How long a token template read from the store is trusted.
    pub template_cache_ttl: Duration,
    /// Answer session reads from a near-cache kept exact by the event
    /// feed; `None` reads the store on every call.
    pub session_cache: Option<sigil_store::SessionCacheSettings>,
}

/// Public keys from the issuer, cached.
pub(crate) struct KeyCache {
    issuer: IssuerServiceClient<Channel>,
    keys: RwLock<Arc<HashMap<String, VerifyingKey>>>,
    /// When the last fetch was tried.
    last_fetch: Mutex<Option<Instant>>,
    refresh_interval: Duration,
    /// `sigil_cache_requests_total{cache="jwks"}`.
    counters: CacheCounters,
}

impl KeyCache {
    /// A cache that connects to the issuer lazily: the validator may start
    /// before the issuer does.
    pub(crate) fn new(
        settings: &KeySettings,
        tls: Option<&sigil_runtime::Tls>,
    ) -> Result<Self, String> {
        let channel = sigil_runtime::connect_lazy(&settings.issuer_url, tls, |endpoint| {
            endpoint
                .connect_timeout(Duration::from_secs(1))
                .timeout(Duration::from_secs(2))
        })
        .map_err(|error| format!("SIGIL_ISSUER_URL: {error}"))?;
        Ok(KeyCache {
            issuer: IssuerServiceClient::new(channel),
            keys: RwLock::default(),
            last_fetch: Mutex::default(),
            refresh_interval: settings.jwks_refresh_interval,
            counters: CacheCounters::new("jwks"),
        })
    }

    /// The key with id `kid`, fetching the JWKS if it is not cached and the
    /// last fetch is old enough. UNAVAILABLE when the issuer cannot be
    /// reached and the key is not cached.
    pub(crate) async fn key(&self, kid: &str) -> Result<Option<VerifyingKey>> {
        if let Some(key) = self.cached(kid) {
            self.counters.count(true);
            return Ok(Some(key));
        }
        self.counters.count(false);
        let mut last_fetch = self.last_fetch.lock().await;
        // Another task may have fetched while this one waited.
        if let Some(key) = self.cached(kid) {
            return Ok(Some(key));
        }
        // At most one fetch per interval: a request for an unknown kid waits
        // for the next allowed fetch (holding the lock, so the others wait
        // for the same one) rather than failing a key the issuer made just
        // after the last fetch.
        if let Some(at) = *last_fetch {
            let wait = self.refresh_interval.saturating_sub(at.elapsed());
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
        }
        let fetched = self.fetch_jwks().await;
        *last_fetch = Some(Instant::now());
        let jwks = fetched.map_err(|status| {
            // The cause (a refused connection, a certificate the CA does not
            // vouch for) is in the status's sources: say it where operators
            // look.
            tracing::warn!(error = %error_chain(&status), "cannot fetch the issuer's signing keys");
            Error::Unavailable(Box::new(status))
        })?;
        let keys: HashMap<String, VerifyingKey> = jwks
            .into_inner()
            .keys
            .iter()
            .filter_map(jwk_from_pb)
            .filter_map(|jwk| VerifyingKey::from_jwk(&jwk))
            .map(|key| (key.kid.clone(), key))
            .collect();
        tracing::debug!(keys = keys.len(), "JWKS fetched from the issuer");
        *self
            .keys
            .write()
            .unwrap_or_else(|poison| poison.into_inner()) = Arc::new(keys);
        Ok(self.cached(kid))
    }

    /// GetJwks from the issuer, as a client span of the current trace.
    async fn fetch_jwks(&self) -> Result<tonic::Response<pb::GetJwksResponse>, tonic::Status> {
        let span = tracing::info_span!(
            "fetch_jwks",
            otel.name = "sigil.v1.IssuerService/GetJwks",
            otel.kind = "client",
            rpc.system = "grpc",
        );
        async {
            let mut request = tonic::Request::new(pb::GetJwksRequest {});
            sigil_runtime::inject_trace_context(request.metadata_mut());
            self.issuer.clone().get_jwks(request).await
        }
        .instrument(span)
        .await
    }

    fn cached(&self, kid: &str) -> Option<VerifyingKey> {
        self.keys
            .read()
            .unwrap_or_else(|poison| poison.into_inner())
            .get(kid)
            .cloned()
    }
}

/// Token templates from the store, each trusted for a short while.
pub(crate) struct TemplateCache {
    ttl: Duration,
    /// By name: when it was read, and the template (`None`: no such one).
    entries: RwLock<HashMap<String, TemplateEntry>>,
    /// `sigil_cache_requests_total{cache="template"}`.
    counters: CacheCounters,
}

/// A cached read of a template: when it was read, and what it found.
type TemplateEntry = (Instant, Option<Arc<CachedTemplate>>);

/// A template as the validator keeps it: shared, not copied per call (its
/// claims are a JSON map), with its HS256 key unsealed at most once.
pub(crate) struct CachedTemplate {
    pub(crate) template: StoredTemplate,
    /// The HS256 verifying key, opened with the master key on first use:
    /// opening it on every VerifyToken was ~4 % of an HS256 call's CPU.
    hs256_key: OnceLock<Option<VerifyingKey>>,
}

impl CachedTemplate {
    /// The template's HS256 verifying key; `None` if it has none or the
    /// master key cannot open it.
    pub(crate) fn hs256_key(&self, master_key: &MasterKey) -> Option<&VerifyingKey> {
        self.hs256_key
            .get_or_init(|| self.template.hs256_verifying_key(master_key))
            .as_ref()
    }
}

impl TemplateCache {
    pub(crate) fn new(ttl: Duration) -> Self {
        TemplateCache {
            ttl,
            entries: RwLock::default(),
            counters: CacheCounters::new("template"),
        }
    }

    /// The template named `name`, from the cache or the store.
    pub(crate) async fn get(
        &self,
        context: &Context,
        name: &str,
    ) -> Result<Option<Arc<CachedTemplate>>> {
        let fresh = self
            .entries
            .read()
            .unwrap_or_else(|poison| poison.into_inner())
            .get(name)
            .filter(|(at, _)| at.elapsed() < self.ttl)
            .map(|(_, template)| template.clone());
        if let Some(template) = fresh {
            self.counters.count(true);
            return Ok(template);
        }
        self.counters.count(false);
        let template = context.jwt_store.template(name).await?.map(|template| {
            Arc::new(CachedTemplate {
                template,
                hs256_key: OnceLock::new(),
            })
        });
        let mut entries = self
            .entries
            .write()
            .unwrap_or_else(|poison| poison.into_inner());
        // Bounded: names come from verified tokens or checked kids, but keep
        // the map from growing without end all the same.
        if entries.len() > 10_000 {
            entries.clear();
        }
        entries.insert(name.to_owned(), (Instant::now(), template.clone()));
        Ok(template)
    }
}

/// `error` and each of its sources, joined by ": ".
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
