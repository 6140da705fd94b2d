//! The API tokens the validation scenarios present: created with
//! CreateApiToken (admin) before the measurement.

use std::{sync::Arc, time::Duration};

use sigil_proto::v1 as pb;
use tokio::task::JoinSet;

use crate::{
    BenchError,
    load::connect,
    rng::FastRng,
    scenario::{AdminBearer, Clients},
};

/// One setup call taking longer than this ends the run.
const SETUP_CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// The texts of valid API tokens, all sent in every call. Never printed.
#[derive(Clone)]
pub struct ApiTokenBatch(Arc<[String]>);

impl ApiTokenBatch {
    /// A batch of the token strings `texts`.
    pub fn new(texts: Vec<String>) -> ApiTokenBatch {
        ApiTokenBatch(texts.into())
    }

    /// The first `count` tokens (all of them if there are fewer).
    pub fn first(&self, count: usize) -> ApiTokenBatch {
        ApiTokenBatch(self.0[..count.min(self.0.len())].into())
    }

    /// `count` distinct tokens in a row from a random place, wrapping
    /// around: the whole batch when it holds exactly `count`.
    pub fn window(&self, count: usize, rng: &mut FastRng) -> Vec<String> {
        let start = if self.0.len() > count {
            rng.below(self.0.len())
        } else {
            0
        };
        self.0
            .iter()
            .cycle()
            .skip(start)
            .take(count.min(self.0.len()))
            .cloned()
            .collect()
    }

    /// The tokens, in the order they were created.
    pub fn tokens(&self) -> &[String] {
        &self.0
    }

    /// How many tokens the batch holds.
    pub fn len(&self) -> usize {
        self.0.len()
    }
}

impl std::fmt::Debug for ApiTokenBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ApiTokenBatch({} tokens [redacted])", self.0.len())
    }
}

/// CreateApiToken calls in flight while creating a batch.
const CREATORS: usize = 16;

/// Creates `count` backend API tokens at `endpoint` with `admin`,
/// [`CREATORS`] calls at a time over one connection.
pub async fn create_batch(
    endpoint: &str,
    admin: &AdminBearer,
    count: usize,
) -> Result<ApiTokenBatch, BenchError> {
    let channel = connect(endpoint, 1)
        .await?
        .pop()
        .ok_or_else(|| BenchError("no connection to create API tokens over".into()))?;
    let mut creators = JoinSet::new();
    for creator in 0..CREATORS.min(count) {
        let mut clients = Clients::new(channel.clone());
        let admin = admin.clone();
        creators.spawn(async move {
            let mut tokens = Vec::new();
            for index in (creator..count).step_by(CREATORS) {
                tokens.push((index, create_one(&mut clients, &admin, index).await?));
            }
            Ok::<_, BenchError>(tokens)
        });
    }
    let mut tokens = Vec::with_capacity(count);
    while let Some(created) = creators.join_next().await {
        tokens.extend(
            created.map_err(|error| BenchError(format!("a token creator failed: {error}")))??,
        );
    }
    tokens.sort_unstable_by_key(|(index, _)| *index);
    Ok(ApiTokenBatch(
        tokens.into_iter().map(|(_, token)| token).collect(),
    ))
}

async fn create_one(
    clients: &mut Clients,
    admin: &AdminBearer,
    index: usize,
) -> Result<String, BenchError> {
    let created = clients
        .edge
        .create_api_token(admin.request(pb::CreateApiTokenRequest {
            token_name: format!("bench-{index}"),
            r#type: pb::ApiTokenType::Backend as i32,
            projects: vec!["default".into()],
            environment: "development".into(),
            ..Default::default()
        }));
    match tokio::time::timeout(SETUP_CALL_TIMEOUT, created).await {
        Ok(Ok(response)) => Ok(response.into_inner().token),
        Ok(Err(status)) => Err(BenchError(format!(
            "CreateApiToken failed during setup: {:?} {}",
            status.code(),
            status.message()
        ))),
        Err(_) => Err(BenchError(format!(
            "CreateApiToken gave no answer within {} s during setup",
            SETUP_CALL_TIMEOUT.as_secs()
        ))),
    }
}
