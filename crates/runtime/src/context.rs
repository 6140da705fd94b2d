use std::{sync::Arc, time::Duration};

use sigil_domain::{Clock, SessionPolicy};
use sigil_jwt::{MasterKey, TemplateLimits};
use sigil_store::{
    ApiTokenStore, EventStore, JwtStore, MemoryStore, RedisStore, SessionStore, SystemClock,
};

use crate::{AdminKeys, Limits};

/// One store seen as a session, API token, JWT and event store.
type Stores = (
    Arc<dyn SessionStore>,
    Arc<dyn ApiTokenStore>,
    Arc<dyn JwtStore>,
    Arc<dyn EventStore>,
);

/// What a service's handlers need: the store, the clock, the admin keys and
/// the operator's policy. Cheap to clone.
#[derive(Clone)]
pub struct Context {
    /// Where sessions live.
    pub store: Arc<dyn SessionStore>,
    /// Where API tokens live: the same Redis or memory as sessions.
    pub api_tokens: Arc<dyn ApiTokenStore>,
    /// Where "now" comes from.
    pub clock: Arc<dyn Clock>,
    /// Who may make admin calls.
    pub admin: AdminKeys,
    /// Session lifetimes.
    pub policy: SessionPolicy,
    /// Request size limits.
    pub limits: Limits,
    /// Room for [`Limits::max_batch_entries_in_flight`] batch entries, shared
    /// by every service of the process.
    pub batch_room: crate::BatchRoom,
    /// Where token templates, signing keys and used token ids live (the same
    /// store as sessions).
    pub jwt_store: Arc<dyn JwtStore>,
    /// Seals signing keys and shared secrets at rest; JWT calls answer
    /// FAILED_PRECONDITION without it.
    pub master_key: Option<MasterKey>,
    /// The longest lifetime a token template may give.
    pub max_token_lifetime: Duration,
    /// Limits on CreateSession, the call anyone may make.
    pub rate_limits: crate::RateLimits,
    /// The feed of changes (the same store as sessions).
    pub events: Arc<dyn EventStore>,
    /// TLS for listeners and calls to other services, when configured.
    pub tls: Option<crate::Tls>,
    /// The active signing keys this process mints with, briefly kept.
    pub active_signing_keys: crate::ActiveSigningKeys,
}

impl Context {
    /// The context the flags describe: Redis when a URL is given, else the
    /// in-memory store, with a warning that it is single-process.
    pub fn from_args(args: &crate::CommonArgs) -> Result<Context, String> {
        Context::build(args).map(|(context, _)| context)
    }

    /// [`from_args`](Self::from_args), then, over Redis, a check that
    /// Redis accepts the URL's credentials: a wrong password is a startup
    /// error, while a Redis that is merely down is waited for.
    pub async fn connect(args: &crate::CommonArgs) -> Result<Context, String> {
        let (context, redis) = Context::build(args)?;
        if let Some(redis) = redis {
            redis
                .check_credentials()
                .await
                .map_err(|error| format!("SIGIL_REDIS_URL: {error}"))?;
            redis
                .check_confirmation()
                .await
                .map_err(|error| format!("SIGIL_REDIS_CONFIRM_AOF: {error}"))?;
        }
        Ok(context)
    }

    fn build(args: &crate::CommonArgs) -> Result<(Context, Option<Arc<RedisStore>>), String> {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let mut redis = None;
        let (store, api_tokens, jwt_store, events): Stores = match args.store.redis_config()? {
            Some(config) => {
                // Never quotes the URL, which may hold a password.
                let store = RedisStore::new(&config)
                    .map_err(|error| format!("bad SIGIL_REDIS_URL: {error}"))?;
                let store = Arc::new(store);
                redis = Some(store.clone());
                (store.clone(), store.clone(), store.clone(), store)
            }
            None => {
                tracing::warn!(
                    "no SIGIL_REDIS_URL: sessions live in this process's memory, are not shared \
                     with other processes and are lost on exit"
                );
                let store = Arc::new(
                    MemoryStore::new(clock.clone())
                        .with_event_retention(args.store.event_retention)
                        .with_max_pending_sessions(args.store.max_pending_sessions),
                );
                (store.clone(), store.clone(), store.clone(), store)
            }
        };
        let admin = args.admin.keys()?;
        if admin.is_empty() {
            tracing::warn!(
                "no admin keys (SIGIL_ADMIN_KEYS or SIGIL_ADMIN_KEYS_FILE): every admin call \
                 will be refused"
            );
        }
        let limits = args.limits();
        let context = Context {
            store,
            api_tokens,
            clock,
            admin,
            policy: args.session.policy()?,
            limits,
            batch_room: crate::BatchRoom::new(limits.max_batch_entries_in_flight),
            jwt_store,
            master_key: args.jwt.master_key()?,
            max_token_lifetime: args.jwt.max_token_lifetime,
            rate_limits: crate::RateLimits::new(crate::CreateSessionRates {
                per_peer: args.create_session_rate_per_peer,
                global: args.create_session_rate,
            }),
            events,
            tls: args.tls.load()?,
            active_signing_keys: crate::ActiveSigningKeys::default(),
        };
        Ok((context, redis))
    }
}

impl Context {
    /// Bounds on token templates.
    pub fn template_limits(&self) -> TemplateLimits {
        TemplateLimits {
            max_lifetime: self.max_token_lifetime,
        }
    }
}
