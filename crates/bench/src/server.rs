//! The servers a run measures: Sigil and the baseline, started by
//! sigil-bench as child processes (pinnable, with their own RSS) or inside
//! its own process, or a Sigil already running.

use std::{
    net::{Ipv4Addr, TcpListener as StdListener},
    path::PathBuf,
    process::{Child, ExitCode, Stdio},
    time::{Duration, Instant},
};

use sigil_runtime::{
    AdminArgs, CommonArgs, Context, JwtArgs, LogArgs, LogFormat, Services, SessionArgs, StoreArgs,
};
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};
use tonic_health::{
    ServingStatus,
    pb::{HealthCheckRequest, health_client::HealthClient},
};

use crate::{
    BenchError, baseline,
    cli::{ServeArgs, ServerKind},
    cpu_limit::CpuLimit,
    load::connect,
    machine::Memory,
    pin::command_on,
};

/// How long a starting server has to report SERVING.
const START_DEADLINE: Duration = Duration::from_secs(15);
/// How often the store is checked for health by the servers sigil-bench
/// starts; Sigil's default.
const HEALTH_INTERVAL: Duration = Duration::from_secs(1);
/// Sigil's default deadline of one Redis call.
const REDIS_TIMEOUT: Duration = Duration::from_millis(250);

/// How sigil-bench starts the servers it measures.
#[derive(Clone)]
pub struct Launch {
    /// Serve in this process rather than as child processes.
    pub in_process: bool,
    /// The CPUs child servers are pinned to, as a `taskset -c` list.
    pub server_cpus: Option<String>,
    /// How many CPUs' worth of time a child server may use, as a cgroup
    /// CPU quota: `Some(0.5)` is half of one CPU.
    pub cpu_quota: Option<f64>,
    /// Tokio worker threads of a child server (`SIGIL_WORKER_THREADS`);
    /// by default one per CPU it may use.
    pub worker_threads: Option<usize>,
    /// Redis for Sigil's store and the baseline's GET; memory without it.
    pub redis_url: Option<String>,
    /// Sigil's master key (base64), which JWT calls need. Never printed.
    pub master_key: String,
    /// Whether Sigil's validator runs with the session near-cache.
    pub session_cache: bool,
    /// Where that near-cache learns of changes.
    pub session_cache_invalidation: sigil_validator::Invalidation,
}

/// A server being measured.
pub struct RunningServer {
    /// `http://127.0.0.1:<port>`.
    pub endpoint: String,
    process: Process,
}

/// How the server runs, and so how to stop it and find its memory.
enum Process {
    Child {
        child: Child,
        log: PathBuf,
        /// Removed once the child is gone, which `Drop` sees to.
        _limit: Option<CpuLimit>,
    },
    Inside {
        stop: Option<oneshot::Sender<()>>,
        task: JoinHandle<()>,
    },
    External {
        pid: Option<u32>,
    },
}

/// Whose memory a figure is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum MemoryOf {
    /// The server's own process.
    ServerProcess,
    /// sigil-bench's own process, which serves in process: the load
    /// generator and its buffers are counted too.
    BenchProcess,
}

impl RunningServer {
    /// Starts `kind` as `launch` says and waits until it reports SERVING.
    pub async fn start(
        kind: ServerKind,
        launch: &Launch,
        admin_key: &str,
    ) -> Result<RunningServer, BenchError> {
        let mut server = if launch.in_process {
            start_in_process(kind, launch, admin_key).await?
        } else {
            start_child(kind, launch, admin_key)?
        };
        server.wait_until_serving(kind).await?;
        Ok(server)
    }

    /// A Sigil someone else started, at `endpoint`, with process id `pid`
    /// if known. Waits until it reports SERVING.
    pub async fn external(endpoint: &str, pid: Option<u32>) -> Result<RunningServer, BenchError> {
        let mut server = RunningServer {
            endpoint: endpoint.trim_end_matches('/').to_owned(),
            process: Process::External { pid },
        };
        server.wait_until_serving(ServerKind::Sigil).await?;
        Ok(server)
    }

    /// The server's own process id: `None` when it serves inside
    /// sigil-bench or is a `--target` without `--target-pid`.
    pub fn pid(&self) -> Option<u32> {
        match &self.process {
            Process::Child { child, .. } => Some(child.id()),
            Process::External { pid } => *pid,
            Process::Inside { .. } => None,
        }
    }

    /// The server's memory now, and whose it is; `None` when unknown.
    pub fn memory(&self) -> Option<(Memory, MemoryOf)> {
        match &self.process {
            Process::Child { child, .. } => {
                Some((Memory::of(child.id())?, MemoryOf::ServerProcess))
            }
            Process::External { pid } => Some((Memory::of((*pid)?)?, MemoryOf::ServerProcess)),
            Process::Inside { .. } => {
                Some((Memory::of(std::process::id())?, MemoryOf::BenchProcess))
            }
        }
    }

    async fn wait_until_serving(&mut self, kind: ServerKind) -> Result<(), BenchError> {
        let service = match kind {
            ServerKind::Sigil => "sigil.v1.ValidatorService",
            ServerKind::Baseline => baseline::SERVICE_NAME,
        };
        let started = Instant::now();
        loop {
            if self.reports_serving(service).await {
                return Ok(());
            }
            if let Process::Child { child, log, .. } = &mut self.process
                && let Ok(Some(status)) = child.try_wait()
            {
                return Err(BenchError(format!(
                    "the {kind:?} server exited at start ({status}); see {}",
                    log.display()
                )));
            }
            if started.elapsed() > START_DEADLINE {
                return Err(BenchError(format!(
                    "the {kind:?} server at {} did not report SERVING within {}s",
                    self.endpoint,
                    START_DEADLINE.as_secs()
                )));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn reports_serving(&self, service: &str) -> bool {
        let check = async {
            let channel = connect(&self.endpoint, 1).await.ok()?.pop()?;
            let mut health = HealthClient::new(channel);
            let response = health
                .check(HealthCheckRequest {
                    service: service.to_owned(),
                })
                .await
                .ok()?;
            Some(response.into_inner().status == ServingStatus::Serving as i32)
        };
        matches!(
            tokio::time::timeout(Duration::from_secs(1), check).await,
            Ok(Some(true))
        )
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        match &mut self.process {
            Process::Child { child, .. } => {
                let _ = child.kill();
                let _ = child.wait();
            }
            Process::Inside { stop, task } => {
                if let Some(stop) = stop.take() {
                    let _ = stop.send(());
                }
                task.abort();
            }
            Process::External { .. } => {}
        }
    }
}

/// A free loopback port. Another process could take it before the server
/// binds; the server then fails to start and says so.
pub fn free_port() -> Result<u16, BenchError> {
    StdListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .map_err(|error| BenchError(format!("no free loopback port: {error}")))
}

fn start_child(
    kind: ServerKind,
    launch: &Launch,
    admin_key: &str,
) -> Result<RunningServer, BenchError> {
    let port = free_port()?;
    let exe = std::env::current_exe()
        .map_err(|error| BenchError(format!("cannot find sigil-bench's own binary: {error}")))?;
    let log = std::env::temp_dir().join(format!(
        "sigil-bench-{}-{}-{port}.log",
        std::process::id(),
        kind_name(kind)
    ));
    let log_file = std::fs::File::create(&log)
        .map_err(|error| BenchError(format!("cannot create {}: {error}", log.display())))?;
    let limit = launch
        .cpu_quota
        .map(|cpus| CpuLimit::new(&format!("{}-{port}", kind_name(kind)), cpus))
        .transpose()?;
    let mut command = command_on(launch.server_cpus.as_deref(), limit.as_ref(), exe);
    command
        .args(["serve", kind_name(kind), "--listen"])
        .arg(format!("127.0.0.1:{port}"))
        // The admin key goes by environment, not argv, so `ps` does not
        // show it.
        .env("SIGIL_ADMIN_KEYS", admin_key)
        .env("SIGIL_MASTER_KEY", &launch.master_key)
        // Session creation is the benchmark's own setup and one of its
        // scenarios: the abuse limits must not pace it.
        .env("SIGIL_CREATE_SESSION_RATE_PER_PEER", "0")
        .env("SIGIL_CREATE_SESSION_RATE", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log_file);
    match &launch.redis_url {
        Some(url) => command.env("SIGIL_REDIS_URL", url),
        None => command.env_remove("SIGIL_REDIS_URL"),
    };
    match launch.worker_threads {
        Some(workers) => command.env("SIGIL_WORKER_THREADS", workers.to_string()),
        None => command.env_remove("SIGIL_WORKER_THREADS"),
    };
    command.env("SIGIL_SESSION_CACHE", launch.session_cache.to_string());
    command.env(
        "SIGIL_SESSION_CACHE_INVALIDATION",
        launch.session_cache_invalidation.name(),
    );
    let child = command
        .spawn()
        .map_err(|error| BenchError(format!("cannot start the {kind:?} server: {error}")))?;
    Ok(RunningServer {
        endpoint: format!("http://127.0.0.1:{port}"),
        process: Process::Child {
            child,
            log,
            _limit: limit,
        },
    })
}

async fn start_in_process(
    kind: ServerKind,
    launch: &Launch,
    admin_key: &str,
) -> Result<RunningServer, BenchError> {
    let common = common_args(launch, admin_key);
    let context = Context::from_args(&common).map_err(BenchError)?;
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .map_err(|error| BenchError(format!("cannot bind a loopback port: {error}")))?;
    let address = listener
        .local_addr()
        .map_err(|error| BenchError(format!("cannot read the bound address: {error}")))?;
    let session_cache = launch
        .session_cache
        .then(|| sigil_store::SessionCacheSettings {
            invalidation: launch.session_cache_invalidation.into(),
            ..Default::default()
        });
    let services =
        services_for(kind, &context, &common, address, session_cache).map_err(BenchError)?;
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let shutdown = async {
            let _ = stopped.await;
        };
        if let Err(error) =
            sigil_runtime::serve(listener, services, &context, HEALTH_INTERVAL, shutdown).await
        {
            eprintln!("sigil-bench: the in-process {kind:?} server failed: {error}");
        }
    });
    Ok(RunningServer {
        endpoint: format!("http://{address}"),
        process: Process::Inside {
            stop: Some(stop),
            task,
        },
    })
}

/// `sigil-bench serve`: Sigil or the baseline through `run_service`, the
/// same path as Sigil's own binaries.
pub fn serve(args: &ServeArgs) -> ExitCode {
    if !args.listen.ip().is_loopback() {
        eprintln!("sigil-bench serve: --listen must be a loopback address");
        return ExitCode::from(sigil_runtime::EXIT_BAD_CONFIG);
    }
    let binary = match args.server {
        ServerKind::Sigil => "sigil-bench serve sigil",
        ServerKind::Baseline => "sigil-bench serve baseline",
    };
    sigil_runtime::run_service(binary, args.listen, &args.common, |context| {
        services_for(
            args.server,
            context,
            &args.common,
            args.listen,
            args.session_cache.settings(),
        )
    })
}

fn services_for(
    kind: ServerKind,
    context: &Context,
    common: &CommonArgs,
    address: std::net::SocketAddr,
    session_cache: Option<sigil_store::SessionCacheSettings>,
) -> Result<Services, String> {
    let mut services = Services::default();
    match kind {
        ServerKind::Sigil => {
            sigil_issuer::add_to(&mut services, context);
            // The validator fetches signing keys from the issuer: itself.
            let keys = sigil_validator::KeySettings {
                issuer_url: format!("http://{address}"),
                jwks_refresh_interval: Duration::from_secs(1),
                template_cache_ttl: Duration::from_secs(5),
                session_cache,
            };
            sigil_validator::add_to(&mut services, context, &keys)?;
            // EdgeTokenService, and `POST /edge/validate` on the same port.
            sigil_edge_token::add_to(&mut services, context);
        }
        ServerKind::Baseline => baseline::add_to(
            &mut services,
            common.store.redis_url.as_deref(),
            common.store.redis_timeout,
        ),
    }
    Ok(services)
}

/// Sigil's defaults, with the store and master key of `launch` and this
/// admin key.
pub fn common_args(launch: &Launch, admin_key: &str) -> CommonArgs {
    let redis_url = launch.redis_url.clone();
    CommonArgs {
        log: LogArgs {
            log_format: LogFormat::Human,
            log_filter: "info".into(),
        },
        store: StoreArgs {
            redis_url,
            redis_ca_file: None,
            redis_timeout: REDIS_TIMEOUT,
            health_interval: HEALTH_INTERVAL,
            event_retention: sigil_store::DEFAULT_EVENT_RETENTION,
            max_pending_sessions: sigil_store::DEFAULT_MAX_PENDING_SESSIONS,
            redis_confirm_replicas: 0,
            redis_confirm_aof: false,
            redis_confirm_timeout: Duration::from_millis(100),
        },
        admin: AdminArgs {
            admin_keys: vec![admin_key.to_owned()],
            admin_keys_file: None,
            admin_rate_per_key: 0,
        },
        session: SessionArgs {
            pending_ttl: Duration::from_secs(180),
            max_pending_ttl: Duration::from_secs(3600),
            session_lifespan: Duration::from_secs(24 * 3600),
            max_session_lifespan: Duration::from_secs(30 * 24 * 3600),
            earliest_possible_extend: None,
            revoked_retention: Duration::from_secs(24 * 3600),
        },
        jwt: JwtArgs {
            master_key: Some(launch.master_key.clone()),
            max_token_lifetime: Duration::from_secs(3600),
        },
        max_request_bytes: 100 * 1024,
        max_batch_size: 1000,
        max_batch_entries_in_flight: sigil_runtime::DEFAULT_MAX_BATCH_ENTRIES_IN_FLIGHT,
        max_concurrent_requests: 4096,
        max_request_time: Duration::from_secs(10),
        // The benchmark creates sessions as fast as it can on purpose.
        create_session_rate_per_peer: 0,
        create_session_rate: 0,
        metrics_listen: None,
        health_listen: None,
        workers: sigil_runtime::WorkerArgs::default(),
        tls: sigil_runtime::TlsArgs::default(),
    }
}

fn kind_name(kind: ServerKind) -> &'static str {
    match kind {
        ServerKind::Sigil => "sigil",
        ServerKind::Baseline => "baseline",
    }
}
