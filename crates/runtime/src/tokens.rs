//! Minting JWTs and managing signing keys over the store: shared by the
//! issuer (GetToken, RotateSigningKey, GetJwks) and the validator (WhoAmI's
//! `tokenize_as`).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use getrandom::{SysRng, rand_core::UnwrapErr};
use sigil_domain::{Error, Result, Session, Timestamp};
use sigil_jwt::{MasterKey, MintedToken, SigningAlgorithm, SigningKey, StoredSigningKey};

use crate::Context;

/// The most clock skew a template may allow; a retired key stays published
/// this much past the longest token lifetime.
const MAX_SKEW: Duration = Duration::from_secs(300);

/// How long a process keeps signing with the active key it last read, so a
/// mint reads no keys and unseals none. Another process's rotation is seen
/// this much later; safe, since a retired key stays published for the
/// longest token lifetime plus skew, far longer.
const ACTIVE_KEY_TTL: Duration = Duration::from_secs(5);

/// The opened active signing key of each algorithm, as last read by this
/// process, and when. Shared by every clone of a [`Context`].
#[derive(Default, Clone)]
pub struct ActiveSigningKeys(Arc<Mutex<HashMap<SigningAlgorithm, KeyRead>>>);

/// An opened key, and when it was read from the store.
type KeyRead = (Arc<SigningKey>, Instant);

impl std::fmt::Debug for ActiveSigningKeys {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The keys are private: only how many are held.
        let held = self.0.lock().map(|keys| keys.len()).unwrap_or_default();
        formatter
            .debug_struct("ActiveSigningKeys")
            .field("held", &held)
            .finish()
    }
}

impl ActiveSigningKeys {
    /// The key of `algorithm` read less than [`ACTIVE_KEY_TTL`] ago.
    fn fresh(&self, algorithm: SigningAlgorithm) -> Option<Arc<SigningKey>> {
        let keys = self.0.lock().ok()?;
        let (key, read_at) = keys.get(&algorithm)?;
        (read_at.elapsed() < ACTIVE_KEY_TTL).then(|| Arc::clone(key))
    }

    fn keep(&self, key: Arc<SigningKey>) {
        if let Ok(mut keys) = self.0.lock() {
            keys.insert(key.algorithm, (key, Instant::now()));
        }
    }

    /// Forgets `algorithm`'s key: this process has just rotated it.
    fn forget(&self, algorithm: SigningAlgorithm) {
        if let Ok(mut keys) = self.0.lock() {
            keys.remove(&algorithm);
        }
    }
}

impl Context {
    /// The master key, or FAILED_PRECONDITION when JWTs are not configured.
    pub fn master_key(&self) -> Result<&MasterKey> {
        self.master_key.as_ref().ok_or(Error::JwtNotConfigured)
    }

    /// Mints a token for `session` from the template named `template`.
    pub async fn mint_token(&self, session: &Session, template: &str) -> Result<MintedToken> {
        let master_key = self.master_key()?;
        let template = self
            .jwt_store
            .template(template)
            .await?
            .ok_or(Error::TemplateNotFound)?;
        let now = self.clock.now();
        let key = match template.algorithm {
            SigningAlgorithm::HS256 => {
                Arc::new(template.hs256_signing_key(master_key).ok_or_else(|| {
                    corrupt("the template's secret does not open with the master key")
                })?)
            }
            algorithm => self.active_signing_key(algorithm, now).await?,
        };
        let minted = sigil_jwt::mint(&template, session, &key, now, &mut UnwrapErr(SysRng))
            .map_err(|error| Error::CorruptRecord(Box::new(error)))?;
        metrics::counter!("sigil_tokens_minted_total", "algorithm" => key.algorithm.as_str())
            .increment(1);
        Ok(minted)
    }

    /// The newest unretired key of `algorithm`, made on first use; the one
    /// this process read less than [`ACTIVE_KEY_TTL`] ago if any.
    async fn active_signing_key(
        &self,
        algorithm: SigningAlgorithm,
        now: Timestamp,
    ) -> Result<Arc<SigningKey>> {
        if let Some(key) = self.active_signing_keys.fresh(algorithm) {
            return Ok(key);
        }
        let key = Arc::new(self.read_active_signing_key(algorithm, now).await?);
        self.active_signing_keys.keep(Arc::clone(&key));
        Ok(key)
    }

    /// The newest unretired key of `algorithm` in the store, made on first
    /// use.
    async fn read_active_signing_key(
        &self,
        algorithm: SigningAlgorithm,
        now: Timestamp,
    ) -> Result<SigningKey> {
        let master_key = self.master_key()?;
        let active = self
            .jwt_store
            .signing_keys()
            .await?
            .into_iter()
            .filter(|key| key.algorithm == algorithm && key.retired_at.is_none())
            .max_by_key(|key| key.created_at);
        match active {
            Some(stored) => SigningKey::from_stored(&stored, master_key)
                .ok_or_else(|| corrupt("a signing key does not open with the master key")),
            None => Ok(self.new_signing_key(algorithm, now).await?.0),
        }
    }

    async fn new_signing_key(
        &self,
        algorithm: SigningAlgorithm,
        now: Timestamp,
    ) -> Result<(SigningKey, StoredSigningKey)> {
        let (key, stored) =
            SigningKey::generate(algorithm, now, self.master_key()?, &mut UnwrapErr(SysRng))
                .ok_or_else(|| corrupt("key generation failed"))?;
        self.jwt_store.put_signing_key(&stored).await?;
        tracing::info!(kid = %stored.kid, %algorithm, "signing key created");
        Ok((key, stored))
    }

    /// Makes a new active key for `algorithm` and retires the ones it
    /// replaces. Returns the new key and the retired kids.
    pub async fn rotate_signing_key(
        &self,
        algorithm: SigningAlgorithm,
    ) -> Result<(StoredSigningKey, Vec<String>)> {
        let now = self.clock.now();
        let previous = self.jwt_store.signing_keys().await?;
        let (_, stored) = self.new_signing_key(algorithm, now).await?;
        self.active_signing_keys.forget(algorithm);
        let keep_published = self.max_token_lifetime + MAX_SKEW;
        let mut retired = Vec::new();
        for mut key in previous {
            if key.algorithm == algorithm && key.retired_at.is_none() {
                key.retire(now, keep_published);
                self.jwt_store.put_signing_key(&key).await?;
                tracing::info!(kid = %key.kid, "signing key retired");
                retired.push(key.kid);
            }
        }
        Ok((stored, retired))
    }

    /// The keys that belong in the JWKS now; keys whose tokens have all
    /// expired are removed from the store on the way.
    pub async fn published_signing_keys(&self) -> Result<Vec<StoredSigningKey>> {
        let now = self.clock.now();
        let mut published = Vec::new();
        for key in self.jwt_store.signing_keys().await? {
            if key.is_published(now) {
                published.push(key);
            } else {
                self.jwt_store.remove_signing_key(&key.kid).await?;
                tracing::info!(kid = %key.kid, "retired signing key removed");
            }
        }
        published.sort_by_key(|key| key.created_at);
        Ok(published)
    }
}

fn corrupt(why: &'static str) -> Error {
    Error::CorruptRecord(why.into())
}
