//! Admin authentication: `authorization: Bearer <admin key>` against the
//! configured keys, compared in constant time, and an optional rate limit
//! per key. Keys rotate without downtime: several are accepted at once, and
//! a key file is re-read when it changes or on SIGHUP.

use std::{
    fmt,
    num::NonZeroU32,
    sync::{Arc, RwLock},
    time::{Duration, SystemTime},
};

use governor::{
    DefaultKeyedRateLimiter, Quota, RateLimiter,
    clock::{Clock, DefaultClock},
};
use sigil_domain::{AdminKey, Error, Result, SecretHash};
use tonic::metadata::MetadataMap;

use crate::AdminArgs;

/// The admin keys this service accepts. Holds only their hashes. Clones
/// share the set and the rate counts, so a reload reaches every handler.
#[derive(Clone, Default)]
pub struct AdminKeys {
    keys: Arc<RwLock<Arc<[AdminKey]>>>,
    /// Admin calls per key, by the key's hash: only configured keys get a
    /// count, so the map is as small as the key set.
    per_key: Option<Arc<DefaultKeyedRateLimiter<SecretHash>>>,
}

impl AdminKeys {
    /// Accepts exactly these keys, with no rate limit.
    pub fn new(keys: Vec<AdminKey>) -> Self {
        AdminKeys {
            keys: Arc::new(RwLock::new(keys.into())),
            per_key: None,
        }
    }

    /// The same keys, each admitting at most `per_second` calls per second
    /// (bursts of as many); over it a call is RESOURCE_EXHAUSTED with
    /// RetryInfo. Zero: no limit.
    pub fn with_rate_per_key(mut self, per_second: u32) -> Self {
        self.per_key = NonZeroU32::new(per_second)
            .map(|rate| Arc::new(RateLimiter::keyed(Quota::per_second(rate))));
        self
    }

    /// Accepts exactly these keys from now on, everywhere. Counts of keys
    /// that stay are kept.
    pub fn replace(&self, keys: Vec<AdminKey>) {
        *self
            .keys
            .write()
            .unwrap_or_else(|poison| poison.into_inner()) = keys.into();
        if let Some(per_key) = &self.per_key {
            per_key.retain_recent();
        }
    }

    /// Whether no key is configured: every admin call will be refused.
    pub fn is_empty(&self) -> bool {
        self.current().is_empty()
    }

    fn current(&self) -> Arc<[AdminKey]> {
        self.keys
            .read()
            .unwrap_or_else(|poison| poison.into_inner())
            .clone()
    }

    /// Succeeds if `metadata` carries one of the keys, within its rate.
    pub fn check(&self, metadata: &MetadataMap) -> Result<()> {
        let presented = bearer_token(metadata).ok_or(Error::AdminKeyMissing)?;
        // Check every key, with no early exit, so timing says nothing about
        // which key came close.
        let matched = self
            .current()
            .iter()
            .fold(false, |matched, key| key.matches(presented) | matched);
        if !matched {
            return Err(Error::AdminKeyInvalid);
        }
        // Counted only once the key matched: a wrong key costs no entry.
        let Some(per_key) = &self.per_key else {
            return Ok(());
        };
        let now = DefaultClock::default().now();
        per_key
            .check_key(&SecretHash::of(presented.as_bytes()))
            .map_err(|not_until| Error::RateLimited {
                retry_after: not_until.wait_time_from(now),
            })
    }
}

impl fmt::Debug for AdminKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdminKeys")
            .field("keys", &self.current().len())
            .field("rate_limited", &self.per_key.is_some())
            .finish()
    }
}

/// Re-reads the admin keys (`--admin-keys` plus `--admin-keys-file`) into
/// `keys` whenever the file's modification time changes (checked every
/// `poll`) or the process gets SIGHUP. A file that does not parse, or holds
/// no key, leaves the keys in force as they were, and says why in the log.
/// Replace the file atomically (write another, then rename), as Kubernetes
/// does for a mounted Secret, so a half-written file is never read.
pub async fn watch_admin_keys(args: AdminArgs, keys: AdminKeys, poll: Duration) {
    let Some(path) = args.admin_keys_file.clone() else {
        return;
    };
    // Modification time and size: either changes when the file is rewritten.
    let modified = || {
        let meta = std::fs::metadata(&path).ok()?;
        Some((meta.modified().ok()?, meta.len()))
    };
    let mut last_seen: Option<(SystemTime, u64)> = modified();
    let mut trigger = crate::reload::ReloadTrigger::new(poll);
    loop {
        let forced = trigger.next().await;
        let now_seen = modified();
        if !forced && now_seen == last_seen {
            continue;
        }
        last_seen = now_seen;
        match reload_admin_keys(&args, &keys) {
            Ok(count) => tracing::info!(keys = count, "admin keys reloaded"),
            Err(error) => tracing::warn!(%error, "admin keys not reloaded; the old keys stay"),
        }
    }
}

/// Reads the admin keys again into `keys`; on any error, or when the
/// configuration holds no key at all (a file caught mid-write can read
/// empty, and no keys would lock every admin out), `keys` stay as they were.
pub fn reload_admin_keys(args: &AdminArgs, keys: &AdminKeys) -> Result<usize, String> {
    let reloaded = args.keys()?;
    let count = reloaded.current().len();
    if count == 0 {
        return Err("the configuration holds no admin key".into());
    }
    keys.replace(reloaded.current().to_vec());
    Ok(count)
}

/// The token of an `authorization: Bearer <token>` header, if well formed.
pub fn bearer_token(metadata: &MetadataMap) -> Option<&str> {
    let value = metadata.get("authorization")?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> AdminKeys {
        AdminKeys::new(vec![
            AdminKey::from_configured("first-admin-key-0123456789").expect("valid"),
            AdminKey::from_configured("second-admin-key-0123456789").expect("valid"),
        ])
    }

    fn check(header: Option<&str>) -> Result<()> {
        let mut metadata = MetadataMap::new();
        if let Some(header) = header {
            metadata.insert("authorization", header.parse().expect("ascii"));
        }
        keys().check(&metadata)
    }

    #[test]
    fn a_broken_or_empty_key_file_keeps_the_keys_in_force() {
        let path = std::env::temp_dir().join(format!("sigil-reload-{}", std::process::id()));
        let args = AdminArgs {
            admin_keys: vec![],
            admin_keys_file: Some(path.clone()),
            admin_rate_per_key: 0,
        };
        let keys = keys();
        let mut metadata = MetadataMap::new();
        metadata.insert(
            "authorization",
            "Bearer first-admin-key-0123456789".parse().expect("ascii"),
        );
        for contents in ["short\n", "", "# only a comment\n"] {
            std::fs::write(&path, contents).expect("temp file");
            assert!(reload_admin_keys(&args, &keys).is_err(), "{contents:?}");
            assert!(keys.check(&metadata).is_ok(), "{contents:?} kept the keys");
        }
        std::fs::write(&path, "a-brand-new-admin-key-0123456789\n").expect("temp file");
        assert_eq!(reload_admin_keys(&args, &keys), Ok(1));
        assert!(keys.check(&metadata).is_err(), "the old key is gone");
        let _ = std::fs::remove_file(path);
    }

    #[test]
    fn each_key_has_its_own_rate() {
        let keys = keys().with_rate_per_key(2);
        let call = |key: &str| {
            let mut metadata = MetadataMap::new();
            metadata.insert(
                "authorization",
                format!("Bearer {key}").parse().expect("ascii"),
            );
            keys.check(&metadata)
        };
        assert!(call("first-admin-key-0123456789").is_ok());
        assert!(call("first-admin-key-0123456789").is_ok());
        let Err(Error::RateLimited { retry_after }) = call("first-admin-key-0123456789") else {
            panic!("the third call in a second is limited");
        };
        assert!(retry_after > Duration::ZERO);
        assert!(
            call("second-admin-key-0123456789").is_ok(),
            "another key has its own count"
        );
        // A wrong key is refused as wrong, and counts against nothing.
        for _ in 0..5 {
            assert!(matches!(
                call("wrong-admin-key-0123456789"),
                Err(Error::AdminKeyInvalid)
            ));
        }
        assert!(call("second-admin-key-0123456789").is_ok());
    }

    #[test]
    fn any_configured_key_is_accepted() {
        assert!(check(Some("Bearer first-admin-key-0123456789")).is_ok());
        assert!(check(Some("bearer second-admin-key-0123456789")).is_ok());
    }

    #[test]
    fn missing_and_wrong_keys_are_refused() {
        assert!(matches!(check(None), Err(Error::AdminKeyMissing)));
        assert!(matches!(
            check(Some("Basic abc")),
            Err(Error::AdminKeyMissing)
        ));
        assert!(matches!(
            check(Some("Bearer ")),
            Err(Error::AdminKeyMissing)
        ));
        assert!(matches!(
            check(Some("Bearer first-admin-key-012345678")),
            Err(Error::AdminKeyInvalid)
        ));
    }
}
