//! How many Redis commands one call costs, read from `INFO commandstats`
//! before and after a single call with nothing else in flight.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use crate::{
    BenchError,
    load::connect,
    rng::FastRng,
    scenario::{Clients, Workload},
};

/// Commands that are not the call's: the servers' health checks ping the
/// store every second, and the probe itself asks for `INFO`.
const NOT_THE_CALLS: [&str; 2] = ["ping", "info"];

/// The commands, by name, that one `workload` call against `endpoint` made
/// on the Redis at `redis_url`.
pub async fn commands_of_one_call(
    redis_url: &str,
    endpoint: &str,
    workload: &Arc<Workload>,
) -> Result<BTreeMap<String, u64>, BenchError> {
    let fail = |error: redis::RedisError| {
        BenchError(format!(
            "cannot read INFO commandstats: {}",
            error.category()
        ))
    };
    let client = redis::Client::open(redis_url).map_err(fail)?;
    let mut redis = tokio::time::timeout(
        Duration::from_secs(5),
        client.get_multiplexed_async_connection(),
    )
    .await
    .map_err(|_| BenchError("Redis did not accept a connection within 5s".into()))?
    .map_err(fail)?;
    let channel = connect(endpoint, 1)
        .await?
        .pop()
        .ok_or_else(|| BenchError("no connection for the command count".into()))?;
    let mut clients = Clients::new(channel);
    let mut rng = FastRng::new(0x7265_6469_7300_0000);
    let before = command_calls(&mut redis).await.map_err(fail)?;
    workload
        .call(&mut clients, &mut rng)
        .await
        .map_err(|failure| {
            BenchError(format!(
                "the call counted for Redis commands failed: {}",
                failure.name()
            ))
        })?;
    let after = command_calls(&mut redis).await.map_err(fail)?;
    Ok(after
        .into_iter()
        .filter(|(name, _)| !NOT_THE_CALLS.contains(&name.as_str()))
        .filter_map(|(name, calls)| {
            let made = calls.saturating_sub(before.get(&name).copied().unwrap_or(0));
            (made > 0).then_some((name, made))
        })
        .collect())
}

async fn command_calls(
    redis: &mut redis::aio::MultiplexedConnection,
) -> redis::RedisResult<BTreeMap<String, u64>> {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(redis)
        .await?;
    Ok(parse_commandstats(&info))
}

/// `cmdstat_mget:calls=3,usec=...` lines as `{"mget": 3}`.
fn parse_commandstats(info: &str) -> BTreeMap<String, u64> {
    info.lines()
        .filter_map(|line| {
            let (name, stats) = line.strip_prefix("cmdstat_")?.split_once(':')?;
            let calls = stats
                .split(',')
                .find_map(|field| field.strip_prefix("calls="))?
                .parse()
                .ok()?;
            Some((name.to_owned(), calls))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commandstats_lines_are_read_by_command() {
        let info = "# Commandstats\r\n\
                    cmdstat_mget:calls=3,usec=10,usec_per_call=3.33,rejected_calls=0,failed_calls=0\r\n\
                    cmdstat_client|setinfo:calls=2,usec=1,usec_per_call=0.5,rejected_calls=0,failed_calls=0\r\n";
        let calls = parse_commandstats(info);
        assert_eq!(calls.get("mget"), Some(&3));
        assert_eq!(calls.get("client|setinfo"), Some(&2));
        assert_eq!(calls.len(), 2);
    }
}
