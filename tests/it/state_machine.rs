//! Random sequences of CreateSession, AuthorizeSession, ExtendSession and
//! RevokeSession over gRPC, checked after every step against a reference
//! model of the session lifecycle (`proptest-state-machine`), on the
//! in-memory store and on a real Redis. After each step every session the
//! sequence made has the model's state in GetSession, and its key
//! authenticates exactly when the model says it is active.

use std::{cell::RefCell, rc::Rc};

use proptest::{
    prelude::*,
    test_runner::{Config, TestRunner},
};
use proptest_state_machine::{ReferenceStateMachine, StateMachineTest};
use sigil_proto::v1 as pb;
use tokio::runtime::Runtime;
use tonic::{Code, transport::Channel};

use crate::harness::{
    Harness, IssuerServiceClient, ValidatorServiceClient, admin, assert_error, with_bearer,
};

/// A session's place in its lifecycle, as the model and GetSession see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lifecycle {
    Pending,
    Active,
    Revoked,
}

#[derive(Debug, Clone)]
struct ModelSession {
    lifecycle: Lifecycle,
    /// Whether its nonce authorized it once already.
    nonce_used: bool,
}

/// The reference model: the sessions one sequence made, in order.
#[derive(Debug, Clone, Default)]
struct Model {
    sessions: Vec<ModelSession>,
}

/// One call. Indices name sessions of the same sequence.
#[derive(Debug, Clone)]
enum Call {
    Create,
    Authorize(usize),
    Extend(usize),
    Revoke(usize),
}

impl ReferenceStateMachine for Model {
    type State = Model;
    type Transition = Call;

    fn init_state() -> BoxedStrategy<Model> {
        Just(Model::default()).boxed()
    }

    fn transitions(state: &Model) -> BoxedStrategy<Call> {
        let count = state.sessions.len();
        if count == 0 {
            return Just(Call::Create).boxed();
        }
        prop_oneof![
            2 => Just(Call::Create),
            3 => (0..count).prop_map(Call::Authorize),
            2 => (0..count).prop_map(Call::Extend),
            2 => (0..count).prop_map(Call::Revoke),
        ]
        .boxed()
    }

    fn apply(mut state: Model, call: &Call) -> Model {
        match *call {
            Call::Create => state.sessions.push(ModelSession {
                lifecycle: Lifecycle::Pending,
                nonce_used: false,
            }),
            Call::Authorize(index) => {
                let session = &mut state.sessions[index];
                if session.lifecycle == Lifecycle::Pending && !session.nonce_used {
                    session.lifecycle = Lifecycle::Active;
                    session.nonce_used = true;
                }
            }
            // Extending moves the expiry only; no sequence here gets near
            // an expiry, so the lifecycle stays.
            Call::Extend(_) => {}
            Call::Revoke(index) => state.sessions[index].lifecycle = Lifecycle::Revoked,
        }
        state
    }

    fn preconditions(state: &Model, call: &Call) -> bool {
        // Shrinking may drop the Create an index refers to.
        match *call {
            Call::Create => true,
            Call::Authorize(index) | Call::Extend(index) | Call::Revoke(index) => {
                index < state.sessions.len()
            }
        }
    }
}

/// The services under test, shared by every case of one test. Fields drop
/// in order: the harness (services and Redis) while the runtime still runs.
struct Services {
    /// Kept for its Drop, which stops the services and the Redis.
    _harness: Harness,
    issuer: IssuerServiceClient<Channel>,
    validator: ValidatorServiceClient<Channel>,
    runtime: Runtime,
}

thread_local! {
    /// The services the running test drives: `init_test` takes no
    /// arguments, so it finds them here.
    static SERVICES: RefCell<Option<Rc<Services>>> = const { RefCell::new(None) };
}

/// The sessions a case made, as the services handed them out.
struct Sessions {
    services: Rc<Services>,
    /// id, key and nonce of each, in the model's order.
    made: Vec<(String, String, String)>,
    /// The model before the call being applied.
    model: Model,
}

struct SessionLifecycle;

impl StateMachineTest for SessionLifecycle {
    type SystemUnderTest = Sessions;
    type Reference = Model;

    fn init_test(model: &Model) -> Sessions {
        let services = SERVICES.with(|cell| cell.borrow().clone().expect("services started"));
        Sessions {
            services,
            made: Vec::new(),
            model: model.clone(),
        }
    }

    fn apply(mut sessions: Sessions, after: &Model, call: Call) -> Sessions {
        let before = std::mem::replace(&mut sessions.model, after.clone());
        let services = sessions.services.clone();
        let mut issuer = services.issuer.clone();
        services.runtime.block_on(async {
            match call {
                Call::Create => {
                    let created = issuer
                        .create_session(pb::CreateSessionRequest::default())
                        .await
                        .expect("CreateSession")
                        .into_inner();
                    sessions
                        .made
                        .push((created.session_id, created.session_key, created.nonce));
                }
                Call::Authorize(index) => {
                    let result = issuer
                        .authorize_session(admin(pb::AuthorizeSessionRequest {
                            nonce: sessions.made[index].2.clone(),
                            permissions: vec!["orders:read".into()],
                            ..Default::default()
                        }))
                        .await;
                    let session = &before.sessions[index];
                    if session.lifecycle == Lifecycle::Pending && !session.nonce_used {
                        result.expect("AuthorizeSession of a pending session");
                    } else {
                        assert_error(result, Code::NotFound, "NONCE_NOT_FOUND");
                    }
                }
                Call::Extend(index) => {
                    let result = issuer
                        .extend_session(admin(pb::ExtendSessionRequest {
                            session_id: sessions.made[index].0.clone(),
                            ..Default::default()
                        }))
                        .await;
                    if before.sessions[index].lifecycle == Lifecycle::Active {
                        let extended = result.expect("ExtendSession").into_inner();
                        assert!(extended.extended, "no extension window is configured");
                    } else {
                        assert_error(result, Code::FailedPrecondition, "SESSION_NOT_ACTIVE");
                    }
                }
                Call::Revoke(index) => {
                    let revoked = issuer
                        .revoke_session(admin(pb::RevokeSessionRequest {
                            session_id: sessions.made[index].0.clone(),
                        }))
                        .await
                        .expect("RevokeSession is idempotent")
                        .into_inner();
                    assert_eq!(
                        revoked.session.expect("a session").state(),
                        pb::SessionState::Revoked
                    );
                }
            }
        });
        sessions
    }

    fn check_invariants(sessions: &Sessions, model: &Model) {
        let services = &sessions.services;
        let mut issuer = services.issuer.clone();
        let mut validator = services.validator.clone();
        services.runtime.block_on(async {
            for ((id, key, _), expected) in sessions.made.iter().zip(&model.sessions) {
                let state = issuer
                    .get_session(admin(pb::GetSessionRequest {
                        session_id: id.clone(),
                    }))
                    .await
                    .expect("GetSession")
                    .into_inner()
                    .session
                    .expect("a session")
                    .state();
                let wanted = match expected.lifecycle {
                    Lifecycle::Pending => pb::SessionState::Pending,
                    Lifecycle::Active => pb::SessionState::Active,
                    Lifecycle::Revoked => pb::SessionState::Revoked,
                };
                assert_eq!(state, wanted, "{id}");
                let who = validator
                    .who_am_i(with_bearer(pb::WhoAmIRequest::default(), key))
                    .await;
                if expected.lifecycle == Lifecycle::Active {
                    assert!(who.is_ok(), "{id}: {who:?}");
                } else {
                    assert_error(who, Code::Unauthenticated, "SESSION_INVALID");
                }
            }
        });
    }
}

/// Runs `cases` random sequences of up to 24 calls against the services
/// `start` makes, shrinking a failure to its shortest sequence.
fn run(cases: u32, start: impl std::future::Future<Output = Harness>) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let harness = runtime.block_on(start);
    let (issuer, validator) =
        runtime.block_on(async { (harness.issuer().await, harness.validator().await) });
    let services = Rc::new(Services {
        _harness: harness,
        issuer,
        validator,
        runtime,
    });
    SERVICES.with(|cell| *cell.borrow_mut() = Some(services.clone()));
    let config = Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config.clone());
    let result = runner.run(
        &Model::sequential_strategy(1..24),
        |(state, calls, seen)| {
            SessionLifecycle::test_sequential(config.clone(), state, calls, seen);
            Ok(())
        },
    );
    SERVICES.with(|cell| cell.borrow_mut().take());
    drop(services);
    if let Err(failure) = result {
        panic!("{failure}");
    }
}

#[test]
fn random_call_sequences_follow_the_model_on_the_memory_store() {
    run(64, Harness::memory());
}

#[test]
fn random_call_sequences_follow_the_model_on_redis() {
    run(32, Harness::redis());
}

#[test]
fn random_call_sequences_follow_the_model_on_a_redis_cluster() {
    run(16, Harness::redis_cluster());
}
