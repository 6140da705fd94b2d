//! A run: Redis, the baseline and Sigil up, sessions created, then each
//! scenario measured right after the baseline it is compared with.

use std::{sync::Arc, time::Duration};

use getrandom::{SysRng, rand_core::UnwrapErr};
use sigil_domain::AdminKey;
use sigil_jwt::MasterKey;
use sigil_runtime::Context;

use crate::{
    BenchError, api_tokens,
    baseline::{BENCH_KEY, BENCH_VALUE_BYTES},
    ceiling::{self, SampleTokens},
    cli::{RunArgs, ServerKind, StoreKind},
    direct,
    load::{self, Shape},
    machine::Machine,
    pin, redis_probe,
    redis_server::RedisServer,
    report::{Ceilings, Measurement, Report, Scaling, ServerMemory, Settings},
    scenario::{AdminBearer, Echo, RedisGet, Scenario, Setup, Workload},
    server::{self, Launch, RunningServer},
    sessions::{self, Creation, PoolShape},
};

/// Session creation may take this long, plus [`CREATION_TIME_PER_SESSION`]
/// per session, before the run gives up.
const CREATION_BASE_DEADLINE: Duration = Duration::from_secs(60);
/// See [`CREATION_BASE_DEADLINE`].
const CREATION_TIME_PER_SESSION: Duration = Duration::from_millis(2);

/// Runs the benchmark `args` describes (already validated), prints
/// progress on stderr, writes `--json` if asked, and returns the report.
pub fn run(args: &RunArgs) -> Result<Report, BenchError> {
    let machine = Machine::read();
    // Pin before the runtime exists: its threads inherit the pin.
    if let Some(cpu) = args.client_cpu {
        pin::pin_this_process(cpu).map_err(BenchError)?;
    }
    let runtime = tokio::runtime::Runtime::new()
        .map_err(|error| BenchError(format!("cannot start the async runtime: {error}")))?;
    let report = runtime.block_on(measure(args, machine))?;
    if let Some(path) = &args.json {
        let json = serde_json::to_string_pretty(&report)
            .map_err(|error| BenchError(format!("cannot encode the report: {error}")))?;
        std::fs::write(path, json + "\n")
            .map_err(|error| BenchError(format!("cannot write {}: {error}", path.display())))?;
    }
    Ok(report)
}

async fn measure(args: &RunArgs, machine: Machine) -> Result<Report, BenchError> {
    // Over Redis, Sigil and the baseline's GET share one redis-server.
    let sigil_uses_redis = args.store == StoreKind::Redis;
    let own_redis = match (&args.redis_url, sigil_uses_redis) {
        (None, true) => Some(RedisServer::start(args.redis_cpu).await?),
        _ => None,
    };
    let redis_url = args
        .redis_url
        .clone()
        .or_else(|| own_redis.as_ref().map(|redis| redis.url().to_owned()));
    if let Some(url) = &redis_url {
        seed_baseline_key(url).await?;
    }

    let admin_key = match &args.admin_key {
        Some(key) => key.clone(),
        None => AdminKey::generate_text(&mut UnwrapErr(SysRng)),
    };
    let admin = AdminBearer::new(&admin_key).map_err(BenchError)?;
    let launch = Launch {
        in_process: args.in_process,
        server_cpus: args.server_cpu.map(|cpu| cpu.to_string()),
        redis_url: redis_url.clone(),
        // JWT calls need a master key; one for this run only is enough, as
        // everything it seals lives only as long as the run's stores.
        master_key: MasterKey::generate(&mut UnwrapErr(SysRng)).to_base64(),
        session_cache: args.session_cache,
        session_cache_invalidation: args.session_cache_invalidation,
        cpu_quota: None,
        worker_threads: None,
    };
    let baseline = RunningServer::start(ServerKind::Baseline, &launch, &admin_key).await?;
    let sigil_launch = Launch {
        redis_url: redis_url.clone().filter(|_| sigil_uses_redis),
        ..launch.clone()
    };
    let sigil = match &args.target {
        Some(target) => RunningServer::external(target, args.target_pid).await?,
        None => RunningServer::start(ServerKind::Sigil, &sigil_launch, &admin_key).await?,
    };

    let sigil_idle_memory = sigil
        .memory()
        .map(|(memory, of)| ServerMemory { memory, of });
    let shape = Shape {
        connections: args.connections,
        concurrency: args.concurrency,
        warmup: args.warmup,
        duration: args.duration,
        request_timeout: args.request_timeout,
        max_requests: args.max_requests,
    };
    // Direct setup writes through a Context of Sigil's own, on the same
    // Redis and with the same settings as the Sigil measured.
    let direct = if args.direct_setup {
        Some(Context::from_args(&server::common_args(&launch, &admin_key)).map_err(BenchError)?)
    } else {
        None
    };
    let (pool, creation) = create_sessions(args, &sigil, &admin, direct.as_ref()).await?;
    let (api_token_pool, api_token_creation) = match (args.api_tokens, &direct) {
        (None, _) => (None, None),
        (Some(count), Some(context)) => {
            let (tokens, creation) = direct::create_api_tokens(context, count).await?;
            (Some(tokens), Some(creation))
        }
        (Some(count), None) => {
            let started = std::time::Instant::now();
            let tokens = api_tokens::create_batch(&sigil.endpoint, &admin, count).await?;
            let seconds = started.elapsed().as_secs_f64();
            let creation = Creation {
                sessions: tokens.len(),
                seconds,
                per_second: tokens.len() as f64 / seconds.max(f64::EPSILON),
                retries: 0,
            };
            (Some(tokens), Some(creation))
        }
    };
    if let Some(creation) = &api_token_creation {
        eprintln!(
            "API tokens: {} created in {:.1} s ({:.0}/s)",
            creation.sessions, creation.seconds, creation.per_second
        );
    }

    let mut measurements = Vec::new();
    let echo = Arc::new(Workload::Echo(Echo));
    measurements.push(
        measure_one(
            "baseline-echo",
            ServerKind::Baseline,
            &echo,
            &baseline,
            shape,
        )
        .await?,
    );
    // A call that reads the store has a call plus one Redis GET as its
    // floor; one that does not (or any call over memory), the echo.
    let store_url = redis_url.clone().filter(|_| sigil_uses_redis);
    let (get_name, get) = match &store_url {
        Some(_) => ("baseline-get", Arc::new(Workload::RedisGet(RedisGet))),
        None => ("baseline-echo", echo.clone()),
    };
    let mut ceilings = Ceilings::default();
    // What every scenario's workload is prepared with, here against the
    // first Sigil.
    let setup = Setup {
        endpoint: &sigil.endpoint,
        sessions: &pool,
        admin: &admin,
        concurrency: args.concurrency,
        api_tokens: api_token_pool.as_ref(),
    };
    for scenario in &args.scenarios {
        let scenario_shape = shape.for_scenario(*scenario);
        let workload = Arc::new(Workload::prepare(*scenario, &setup).await?);
        measure_ceilings(
            *scenario,
            &workload,
            &sigil.endpoint,
            store_url.as_deref(),
            args.ceiling_time,
            args.server_cpu,
            &mut ceilings,
        )
        .await?;
        let (reference_name, reference) = if scenario.reads_store() {
            (get_name, &get)
        } else {
            ("baseline-echo", &echo)
        };
        let ceiling = measure_one(
            reference_name,
            ServerKind::Baseline,
            reference,
            &baseline,
            scenario_shape,
        )
        .await?;
        let mut figure = measure_one(
            scenario.name(),
            ServerKind::Sigil,
            &workload,
            &sigil,
            scenario_shape,
        )
        .await?;
        figure.compare_with(&ceiling);
        if let Some(url) = &store_url {
            let commands =
                redis_probe::commands_of_one_call(url, &sigil.endpoint, &workload).await?;
            eprintln!(
                "{}: Redis commands of one call: {commands:?}",
                scenario.name()
            );
            figure.redis_commands_per_call = Some(commands);
        }
        measurements.push(ceiling);
        measurements.push(figure);
    }
    let mut scaling = Vec::new();
    if let Some(cpus) = &args.scaling_cpus {
        let width = crate::pin::cpus_in(cpus).unwrap_or(1);
        // Further Sigils on the same Redis, so the sessions, templates and
        // tokens made for the first serve them too. Under a core share the
        // one-CPU side is a Sigil of its own, with the share as its quota.
        let narrow = match args.core_share {
            Some(share) => {
                let launch = Launch {
                    cpu_quota: Some(share),
                    ..sigil_launch.clone()
                };
                Some(RunningServer::start(ServerKind::Sigil, &launch, &admin_key).await?)
            }
            None => None,
        };
        let wide_launch = Launch {
            server_cpus: Some(cpus.clone()),
            cpu_quota: args.core_share.map(|share| share * width as f64),
            // A quota of a CPU or two would read as one CPU: ask for a
            // worker per CPU the Sigil is pinned to.
            worker_threads: args.core_share.map(|_| width),
            ..sigil_launch.clone()
        };
        let wide = RunningServer::start(ServerKind::Sigil, &wide_launch, &admin_key).await?;
        for scenario in &args.scenarios {
            let shape = shape.for_scenario(*scenario);
            let measure_on = async |server: &RunningServer, name: String| {
                let setup = Setup {
                    endpoint: &server.endpoint,
                    ..setup
                };
                let workload = Arc::new(Workload::prepare(*scenario, &setup).await?);
                measure_one(&name, ServerKind::Sigil, &workload, server, shape).await
            };
            let own_narrow_figure = match &narrow {
                Some(narrow) => {
                    let name = format!("{}-on-one-cpu-share", scenario.name());
                    Some(measure_on(narrow, name).await?)
                }
                None => None,
            };
            let narrow_figure = match &own_narrow_figure {
                Some(figure) => figure,
                None => match measurements
                    .iter()
                    .find(|measurement| measurement.name == scenario.name())
                {
                    Some(figure) => figure,
                    None => continue,
                },
            };
            let name = format!("{}-on-cpus-{cpus}", scenario.name());
            let figure = measure_on(&wide, name).await?;
            scaling.push(Scaling::between(
                scenario.name(),
                narrow_figure,
                &figure,
                cpus,
            ));
            measurements.extend(own_narrow_figure);
            measurements.push(figure);
        }
    }
    let targets = crate::targets::decide(
        &measurements,
        &ceilings,
        &scaling,
        sigil_idle_memory.as_ref(),
    );

    Ok(Report {
        machine,
        settings: Settings {
            connections: args.connections,
            concurrency: args.concurrency,
            duration_seconds: args.duration.as_secs_f64(),
            warmup_seconds: args.warmup.as_secs_f64(),
            store: if sigil_uses_redis {
                StoreKind::Redis
            } else {
                StoreKind::Memory
            },
            servers: match (&args.target, args.in_process) {
                (Some(target), _) => format!("Sigil at {target}, baseline as a child process"),
                (None, true) => "in process".into(),
                (None, false) => "child processes".into(),
            },
            server_cpu: args.server_cpu,
            client_cpu: args.client_cpu,
            core_share: args.core_share,
            session_cache: args
                .session_cache
                .then(|| args.session_cache_invalidation.name()),
            redis_cpu: args.redis_cpu,
        },
        sessions: creation,
        api_tokens: api_token_creation,
        sigil_idle_memory,
        measurements,
        ceilings,
        scaling,
        targets,
    })
}

async fn create_sessions(
    args: &RunArgs,
    sigil: &RunningServer,
    admin: &AdminBearer,
    direct: Option<&Context>,
) -> Result<(sessions::SessionPool, Option<Creation>), BenchError> {
    // Create-authorize alone needs no pool; one session keeps the types
    // simple and costs nothing.
    let count = if args
        .scenarios
        .iter()
        .any(|scenario| scenario.needs_sessions())
    {
        args.sessions
    } else {
        1
    };
    let shape = PoolShape {
        count,
        connections: args.connections,
        concurrency: args.concurrency,
        request_timeout: args.request_timeout,
        deadline: CREATION_BASE_DEADLINE + CREATION_TIME_PER_SESSION * count as u32,
    };
    let (pool, creation) = match direct {
        Some(context) => direct::create_sessions(context, count).await?,
        None => sessions::create_pool(&sigil.endpoint, admin, shape).await?,
    };
    eprintln!(
        "sessions: {} created in {:.1} s ({:.0}/s, {} retried)",
        creation.sessions, creation.seconds, creation.per_second, creation.retries
    );
    Ok((pool, Some(creation)))
}

async fn measure_one(
    name: &str,
    server_kind: ServerKind,
    workload: &Arc<Workload>,
    server: &RunningServer,
    shape: Shape,
) -> Result<Measurement, BenchError> {
    let tally = load::drive(
        &server.endpoint,
        workload.clone(),
        shape,
        name,
        server.pid(),
    )
    .await?;
    let measurement = Measurement::new(
        name,
        server_kind,
        shape.concurrency,
        &tally,
        server.memory(),
    );
    eprintln!(
        "{name}: {:.0}/s, p99 {} µs, {} errors, {} µs server CPU per call",
        measurement.requests_per_second,
        measurement.latency_micros.p99,
        measurement.error_count(),
        measurement
            .server_cpu_micros_per_call
            .map_or_else(|| "?".to_owned(), |micros| format!("{micros:.1}")),
    );
    Ok(measurement)
}

/// The in-process ceilings `scenario` is compared with, unless an earlier
/// scenario measured them: the raw verify of its JWTs' algorithm, and for
/// batches of 100 API tokens or more, the raw MGET (over Redis) and
/// parsing of a batch of that size.
async fn measure_ceilings(
    scenario: Scenario,
    workload: &Workload,
    endpoint: &str,
    redis_url: Option<&str>,
    time: Duration,
    cpu: Option<usize>,
    ceilings: &mut Ceilings,
) -> Result<(), BenchError> {
    if let Some((algorithm, jwts)) = workload.jwt_sample()
        && !ceilings
            .jwt_verify
            .iter()
            .any(|verify| verify.algorithm == algorithm)
    {
        let verify = ceiling::raw_verify(endpoint, algorithm, jwts.all(), time, cpu).await?;
        eprintln!(
            "ceiling: raw jsonwebtoken verify {algorithm:?}: {:.0} per CPU-second",
            verify.per_cpu_second
        );
        ceilings.jwt_verify.push(verify);
    }
    if let Some((_, size)) = scenario.validation()
        && size >= 100
        && !ceilings
            .parsing
            .iter()
            .any(|parsing| parsing.tokens == size)
    {
        let sample = SampleTokens::new(size)?;
        if let Some(url) = redis_url {
            let mget = ceiling::raw_mget(url, &sample, time).await?;
            eprintln!(
                "ceiling: raw MGET of {size} keys: p50 {} µs, p99 {} µs",
                mget.p50_micros, mget.p99_micros
            );
            ceilings.mget.push(mget);
        }
        let parsing = ceiling::parse_cost(sample, time, cpu).await?;
        eprintln!(
            "ceiling: parsing {size} API tokens in process: {:.0} µs per batch",
            parsing.micros_per_batch
        );
        ceilings.parsing.push(parsing);
    }
    Ok(())
}

/// Stores the key the baseline's GET reads.
async fn seed_baseline_key(url: &str) -> Result<(), BenchError> {
    let fail = |error: redis::RedisError| {
        BenchError(format!(
            "cannot write the baseline's key to Redis: {}",
            error.category()
        ))
    };
    let client = redis::Client::open(url).map_err(fail)?;
    let mut connection = tokio::time::timeout(
        Duration::from_secs(5),
        client.get_multiplexed_async_connection(),
    )
    .await
    .map_err(|_| BenchError("Redis did not accept a connection within 5s".into()))?
    .map_err(fail)?;
    let value = vec![b'x'; BENCH_VALUE_BYTES];
    redis::cmd("SET")
        .arg(BENCH_KEY)
        .arg(value)
        .query_async::<()>(&mut connection)
        .await
        .map_err(fail)
}
