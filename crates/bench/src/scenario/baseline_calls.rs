//! The baseline's two calls: the ceiling of a unary call, and of a unary
//! call with one Redis round trip.

use crate::{
    baseline::{BENCH_KEY, pb},
    scenario::{CallFailure, Clients},
};

/// An empty unary echo.
pub struct Echo;

impl Echo {
    /// One echo of an empty payload.
    pub async fn call(&self, clients: &mut Clients) -> Result<(), CallFailure> {
        clients.baseline.echo(pb::EchoRequest::default()).await?;
        Ok(())
    }
}

/// A unary call doing exactly one Redis GET of a key that exists.
pub struct RedisGet;

impl RedisGet {
    /// One GET of the benchmark's key; an absent key is an unexpected answer.
    pub async fn call(&self, clients: &mut Clients) -> Result<(), CallFailure> {
        let response = clients
            .baseline
            .get_key(pb::GetKeyRequest {
                key: BENCH_KEY.to_owned(),
            })
            .await?;
        if response.into_inner().found {
            Ok(())
        } else {
            Err(CallFailure::UnexpectedAnswer)
        }
    }
}
