//! Sigil's integration tests: the services in process on a free port, over a
//! real `redis-server` the harness starts and over the in-memory store, with
//! real gRPC clients (tonic, and grpcurl through reflection).

#![allow(missing_docs)]
#![allow(clippy::unwrap_used)]

mod harness;

/// Stamps a `memory` and a `redis` test for each scenario
/// `async fn name(h: Harness)`.
macro_rules! both_stores {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(crate::harness::Harness::memory().await).await;
                }
            )*
        }
        mod redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(crate::harness::Harness::redis().await).await;
                }
            )*
        }
    };
}

/// Stamps a `memory`, a `redis` and a `cluster` (3-master Redis Cluster)
/// test for each scenario `async fn name(h: Harness)`.
macro_rules! all_stores {
    ($($name:ident),* $(,)?) => {
        both_stores!($($name),*);
        mod cluster {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(crate::harness::Harness::redis_cluster().await).await;
                }
            )*
        }
    };
}

mod abuse;
mod admin;
mod batch;
mod cluster_faults;
mod confirm_aof;
mod durability;
mod edge;
mod errors;
mod events;
mod fault_load;
mod faults;
mod fuzz_corpus;
mod jwt;
mod jwt_cluster;
mod jwt_rfc8725;
mod lifecycle;
mod metrics;
mod near_cache;
mod nonce;
mod outage;
mod partition;
mod per_core;
mod redis_access;
mod redis_cluster;
mod reflection;
mod replication;
mod session_rules;
mod shutdown;
mod state_machine;
mod storage;
mod tls;
mod tls_cluster;
mod validator;
