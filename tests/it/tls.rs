//! TLS and mTLS on every listener and on the validator's calls to the
//! issuer, with certificates made here (rcgen) and rotated under a running
//! server.

use std::{
    net::SocketAddr,
    path::PathBuf,
    process::Command,
    sync::Arc,
    time::{Duration, Instant},
};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair,
};
use rustls::{
    ClientConfig, RootCertStore,
    pki_types::{CertificateDer, ServerName},
};
use sigil_proto::v1 as pb;
use sigil_runtime::{Context, Tls, TlsArgs};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};
use tokio_rustls::TlsConnector;
use tonic::{
    Code,
    transport::{Certificate, Channel, ClientTlsConfig, Identity},
};

use crate::{
    edge::create,
    harness::{
        DEADLINE, Harness, HealthClient, IssuerServiceClient, Role, Server, ValidatorServiceClient,
        channel_to, eventually, grpcurl, listener,
    },
    jwt::{alice, put, template, token},
};

/// A certificate authority made for one test.
struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A certificate and its key, as PEM, valid for `localhost` and
/// `127.0.0.1`, for servers and clients alike.
struct Leaf {
    cert: String,
    key: String,
    der: CertificateDer<'static>,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        Ca { issuer }
    }

    fn pem(&self) -> String {
        self.issuer.pem()
    }

    fn leaf(&self, name: &str) -> Leaf {
        let mut params =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Leaf {
            cert: cert.pem(),
            key: key.serialize_pem(),
            der: cert.der().clone(),
        }
    }
}

/// The PEM files a server reads, in a directory of the test's own,
/// replaced atomically (write, then rename) as Kubernetes does.
struct Files {
    dir: PathBuf,
}

impl Files {
    fn new(test: &str) -> Files {
        let dir = std::env::temp_dir().join(format!("sigil-tls-{}-{test}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Files { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn write(&self, name: &str, contents: &str) {
        let staged = self.dir.join(format!(".{name}.new"));
        std::fs::write(&staged, contents).unwrap();
        std::fs::rename(&staged, self.path(name)).unwrap();
    }

    fn identity(&self, leaf: &Leaf) {
        self.write("tls.key", &leaf.key);
        self.write("tls.crt", &leaf.cert);
    }

    /// Settings serving `tls.crt`/`tls.key`, requiring client certificates
    /// of `client-ca.crt` if asked, and trusting `ca.crt` for calls out if
    /// it was written.
    fn args(&self, mtls: bool) -> TlsArgs {
        let ca = self.path("ca.crt");
        TlsArgs {
            tls_cert: Some(self.path("tls.crt")),
            tls_key: Some(self.path("tls.key")),
            tls_client_ca: mtls.then(|| self.path("client-ca.crt")),
            tls_ca: ca.exists().then_some(ca),
            tls_handshake_timeout: Duration::from_secs(2),
            tls_reload_interval: Duration::from_millis(20),
        }
    }
}

impl Drop for Files {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn with_tls(context: &Context, args: &TlsArgs) -> (Context, Tls) {
    let tls = args.load().expect("TLS loads").expect("TLS configured");
    let mut context = context.clone();
    context.tls = Some(tls.clone());
    (context, tls)
}

/// A channel over TLS trusting `ca`, presenting `identity` if given.
async fn tls_channel(
    address: SocketAddr,
    ca: &Ca,
    identity: Option<&Leaf>,
) -> Result<Channel, tonic::transport::Error> {
    let mut config = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca.pem()))
        .domain_name("localhost");
    if let Some(leaf) = identity {
        config = config.identity(Identity::from_pem(&leaf.cert, &leaf.key));
    }
    Channel::from_shared(format!("https://{address}"))
        .unwrap()
        .tls_config(config)?
        .connect()
        .await
}

/// Whether a health check over TLS succeeds. With TLS 1.3 a client
/// certificate is judged after the client's side of the handshake is done,
/// so a refusal may show only at the first call.
async fn health_answers(address: SocketAddr, ca: &Ca, identity: Option<&Leaf>) -> bool {
    let Ok(channel) = tls_channel(address, ca, identity).await else {
        return false;
    };
    HealthClient::new(channel)
        .check(tonic_health::pb::HealthCheckRequest::default())
        .await
        .is_ok()
}

/// The leaf certificate the server at `address` presents to a new
/// connection.
async fn served_certificate(address: SocketAddr, ca: &Ca) -> CertificateDer<'static> {
    let tcp = TcpStream::connect(address).await.unwrap();
    let stream = TlsConnector::from(client_config(ca, &[]))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .expect("handshake");
    stream.get_ref().1.peer_certificates().unwrap()[0].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_over_tls_answers_and_plaintext_is_refused() {
    let h = Harness::memory().await;
    let ca = Ca::new("sigil test CA");
    let files = Files::new("grpc");
    files.identity(&ca.leaf("sigil"));
    let (context, _tls) = with_tls(&h.context, &files.args(false));
    let server = Server::spawn(&context, Role::All, listener().await);

    creates_a_session_over_tls(server.address, &ca).await;
    refuses_plaintext(server.address).await;
}

/// A CreateSession over a new TLS connection to `address` succeeds.
async fn creates_a_session_over_tls(address: SocketAddr, ca: &Ca) {
    let channel = tls_channel(address, ca, None).await.unwrap();
    let created = IssuerServiceClient::new(channel)
        .create_session(pb::CreateSessionRequest::default())
        .await
        .expect("CreateSession over TLS")
        .into_inner();
    assert!(created.session_key.starts_with("sigil_sk_"));
}

/// A plaintext call over a new connection to `address` is refused.
async fn refuses_plaintext(address: SocketAddr) {
    let plaintext = Channel::from_shared(format!("http://{address}"))
        .unwrap()
        .connect()
        .await;
    if let Ok(channel) = plaintext {
        let result = HealthClient::new(channel)
            .check(tonic_health::pb::HealthCheckRequest::default())
            .await;
        assert!(result.is_err(), "a plaintext call is refused: {result:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_worker_handshakes_its_own_connections() {
    let h = Harness::memory().await;
    let ca = Ca::new("sigil test CA");
    let files = Files::new("per-core");
    files.identity(&ca.leaf("sigil"));
    let (context, _tls) = with_tls(&h.context, &files.args(false));
    let workers = Arc::new(sigil_runtime::Workers::start(1).expect("a worker thread"));
    let server = Server::spawn_on(&context, Role::All, listener().await, Some(workers));

    // Connections go to the main runtime and the worker in turn: each one
    // answers over TLS, then each refuses plaintext.
    for _ in 0..2 {
        creates_a_session_over_tls(server.address, &ca).await;
    }
    for _ in 0..2 {
        refuses_plaintext(server.address).await;
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpcurl_lists_services_over_tls_by_reflection() {
    let h = Harness::memory().await;
    let ca = Ca::new("sigil test CA");
    let files = Files::new("grpcurl");
    files.identity(&ca.leaf("sigil"));
    files.write("ca.crt", &ca.pem());
    let (context, _tls) = with_tls(&h.context, &files.args(false));
    let server = Server::spawn(&context, Role::All, listener().await);
    let address = server.address.to_string();
    let ca_file = files.path("ca.crt");
    let ca_file = ca_file.to_str().unwrap();

    let output = Command::new(grpcurl())
        .args(["-cacert", ca_file, &address, "list"])
        .output()
        .expect("grpcurl runs");
    let listed = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{output:?}");
    assert!(listed.contains("sigil.v1.ValidatorService"), "{listed}");

    let output = Command::new(grpcurl())
        // grpc-go retries a refused dial until this deadline.
        .args(["-plaintext", "-connect-timeout", "0.3", &address, "list"])
        .output()
        .expect("grpcurl runs");
    assert!(!output.status.success(), "plaintext grpcurl is refused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_routes_answer_over_tls_and_plaintext_is_refused() {
    let h = Harness::memory().await;
    let ca = Ca::new("sigil test CA");
    let files = Files::new("http");
    files.identity(&ca.leaf("sigil"));
    files.write("ca.crt", &ca.pem());
    let (context, _tls) = with_tls(&h.context, &files.args(false));
    let server = Server::spawn(&context, Role::All, listener().await);

    // The gRPC port answers HTTP/1.1 too.
    let answer = https_get(server.address, "/metrics", &ca).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("# TYPE"), "{answer}");

    // Python's ssl and urllib against the HTTP/1.1-only `/edge/validate`
    // port, verifying the server against the CA file.
    let mut client = h.edge_tokens().await;
    let (_, backend) = create(
        &mut client,
        pb::ApiTokenType::Backend,
        &["default"],
        "development",
    )
    .await;
    let tokens = serde_json::json!([backend, "nonsense"]);
    let expected = serde_json::json!({"tokens": [
        {"token": backend, "type": "backend", "environment": "development", "projects": ["default"], "status": "Validated"},
    ]});
    let http = server.http_address.expect("edge-token's HTTP port");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/clients/edge_validate.py");
    let ca_file = files.path("ca.crt");
    let output = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .arg(script)
            .arg(format!("https://localhost:{}", http.port()))
            .arg(tokens.to_string())
            .arg(expected.to_string())
            .arg(ca_file)
            .output()
    })
    .await
    .unwrap()
    .expect("python3 on PATH (the README's test command installs it)");
    assert!(
        output.status.success(),
        "python client: {}",
        String::from_utf8_lossy(&output.stderr)
    );

    for address in [server.address, http] {
        let answer = plaintext_get(address, "/metrics").await;
        assert!(!answer.starts_with("HTTP/"), "plaintext answered: {answer}");
    }
}

/// A TLS client config trusting `ca`, offering `alpn`.
fn client_config(ca: &Ca, alpn: &[&[u8]]) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots.add(ca.issuer.der().clone()).unwrap();
    let mut config = ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|protocol| protocol.to_vec()).collect();
    Arc::new(config)
}

/// `GET path` over HTTP/1.1 over TLS; the whole answer as text.
async fn https_get(address: SocketAddr, path: &str, ca: &Ca) -> String {
    let tcp = TcpStream::connect(address).await.unwrap();
    let mut stream = TlsConnector::from(client_config(ca, &[b"http/1.1"]))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .expect("handshake");
    let request = format!("GET {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(DEADLINE, stream.read_to_end(&mut answer))
        .await
        .expect("an answer in time")
        .ok();
    String::from_utf8_lossy(&answer).into_owned()
}

/// `GET path` in plaintext; whatever comes back (a TLS server sends an
/// alert or closes).
async fn plaintext_get(address: SocketAddr, path: &str) -> String {
    let mut stream = TcpStream::connect(address).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n");
    let _ = stream.write_all(request.as_bytes()).await;
    let mut answer = Vec::new();
    tokio::time::timeout(DEADLINE, stream.read_to_end(&mut answer))
        .await
        .expect("the server ends the connection")
        .ok();
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mtls_admits_only_certificates_of_the_client_ca() {
    let h = Harness::memory().await;
    let ca = Ca::new("sigil test CA");
    let clients = Ca::new("sigil clients CA");
    let strangers = Ca::new("another CA");
    let files = Files::new("mtls");
    files.identity(&ca.leaf("sigil"));
    files.write("client-ca.crt", &clients.pem());
    let (context, _tls) = with_tls(&h.context, &files.args(true));
    let server = Server::spawn(&context, Role::All, listener().await);

    assert!(
        !health_answers(server.address, &ca, None).await,
        "no client certificate"
    );
    assert!(
        !health_answers(server.address, &ca, Some(&strangers.leaf("mallory"))).await,
        "a certificate of another CA"
    );
    assert!(
        health_answers(server.address, &ca, Some(&clients.leaf("gateway"))).await,
        "a certificate of the client CA"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_certificate_is_served_without_a_restart() {
    let h = Harness::memory().await;
    let ca = Ca::new("sigil test CA");
    let files = Files::new("rotate");
    let first = ca.leaf("sigil-first");
    files.identity(&first);
    let (context, tls) = with_tls(&h.context, &files.args(false));
    let server = Server::spawn(&context, Role::All, listener().await);
    let watcher = tokio::spawn(sigil_runtime::watch_tls(tls.clone(), tls.reload_interval()));
    assert_eq!(served_certificate(server.address, &ca).await, first.der);
    let mut open = HealthClient::new(tls_channel(server.address, &ca, None).await.unwrap());
    open.check(tonic_health::pb::HealthCheckRequest::default())
        .await
        .unwrap();

    let second = ca.leaf("sigil-second");
    files.identity(&second);
    eventually("new connections getting the new certificate", || async {
        served_certificate(server.address, &ca).await == second.der
    })
    .await;
    open.check(tonic_health::pb::HealthCheckRequest::default())
        .await
        .expect("a connection opened before the rotation keeps working");

    // A broken file is refused and the certificate in force stays.
    let failed = tls.reloads_failed();
    files.write("tls.crt", "-----BEGIN CERTIFICATE-----\nnot base64\n");
    eventually("the broken file to be read", || async {
        tls.reloads_failed() > failed
    })
    .await;
    assert_eq!(served_certificate(server.address, &ca).await, second.der);
    assert!(health_answers(server.address, &ca, None).await);
    watcher.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_handshake_is_cut_off_and_holds_up_no_one() {
    let h = Harness::memory().await;
    let ca = Ca::new("sigil test CA");
    let files = Files::new("stall");
    files.identity(&ca.leaf("sigil"));
    let args = TlsArgs {
        tls_handshake_timeout: Duration::from_millis(300),
        ..files.args(false)
    };
    let (context, _tls) = with_tls(&h.context, &args);
    let server = Server::spawn(&context, Role::All, listener().await);

    // One client says nothing, another sends garbage.
    let mut stalled = TcpStream::connect(server.address).await.unwrap();
    let mut garbage = TcpStream::connect(server.address).await.unwrap();
    garbage.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
    assert!(health_answers(server.address, &ca, None).await);

    let started = Instant::now();
    let mut byte = [0u8; 1];
    let read = tokio::time::timeout(DEADLINE, stalled.read(&mut byte))
        .await
        .expect("the server closes a stalled handshake");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    assert!(started.elapsed() < DEADLINE);
    // Either an alert or a close: the connection ends.
    tokio::time::timeout(DEADLINE, garbage.read_to_end(&mut Vec::new()))
        .await
        .expect("the server ends a garbage handshake")
        .ok();
    assert!(health_answers(server.address, &ca, None).await);
}

/// An issuer requiring client certificates of `ca`, and a validator over
/// the same store fetching its keys from it over TLS, trusting `trusted`.
struct IssuerAndValidator {
    issuer: Server,
    validator: Server,
    /// The validator's TLS, and the files it reads.
    validator_tls: Tls,
    validator_files: Files,
    _issuer_files: Files,
}

async fn issuer_and_validator(
    h: &Harness,
    ca: &Ca,
    trusted: &Ca,
    test: &str,
) -> IssuerAndValidator {
    let issuer_files = Files::new(&format!("{test}-issuer"));
    issuer_files.identity(&ca.leaf("issuer"));
    issuer_files.write("client-ca.crt", &ca.pem());
    let (issuer_context, _) = with_tls(&h.context, &issuer_files.args(true));
    let issuer = Server::spawn(&issuer_context, Role::Issuer, listener().await);

    let validator_files = Files::new(&format!("{test}-validator"));
    validator_files.identity(&ca.leaf("validator"));
    validator_files.write("ca.crt", &trusted.pem());
    let (validator_context, validator_tls) = with_tls(&h.context, &validator_files.args(false));
    let validator = Server::spawn(
        &validator_context,
        Role::Validator {
            issuer: issuer.address,
        },
        listener().await,
    );
    IssuerAndValidator {
        issuer,
        validator,
        validator_tls,
        validator_files,
        _issuer_files: issuer_files,
    }
}

/// A JWT for alice from an EdDSA `orders` template, minted on `h`.
async fn orders_jwt(h: &Harness) -> String {
    let (key, _) = alice(h).await;
    put(h, template("orders", pb::SigningAlgorithm::Eddsa)).await;
    token(h, &key, "orders").await.jwt
}

/// VerifyToken of `jwt` for the audience `orders` tokens carry.
fn verify_request(jwt: &str) -> pb::VerifyTokenRequest {
    pb::VerifyTokenRequest {
        jwt: jwt.to_owned(),
        audience: "shop.example".into(),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_validator_fetches_keys_from_the_issuer_over_mtls() {
    let h = Harness::memory().await;
    let minted = orders_jwt(&h).await;
    let ca = Ca::new("sigil test CA");
    let pair = issuer_and_validator(&h, &ca, &ca, "keys").await;

    let channel = tls_channel(pair.validator.address, &ca, None)
        .await
        .unwrap();
    let verified = ValidatorServiceClient::new(channel)
        .verify_token(verify_request(&minted))
        .await
        .expect("verified with keys fetched over TLS")
        .into_inner();
    assert_eq!(verified.subject, "alice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_issuer_the_ca_does_not_vouch_for_is_not_trusted() {
    let h = Harness::memory().await;
    let minted = orders_jwt(&h).await;
    let ca = Ca::new("sigil test CA");
    let other = Ca::new("another CA");
    let pair = issuer_and_validator(&h, &ca, &other, "wrong-ca").await;

    let channel = tls_channel(pair.validator.address, &ca, None)
        .await
        .unwrap();
    let result = ValidatorServiceClient::new(channel)
        .verify_token(verify_request(&minted))
        .await;
    crate::harness::assert_error(result, Code::Unavailable, "STORE_UNAVAILABLE");

    // The cause, as the validator logs it: the certificate is not trusted.
    let issuer_url = format!("https://{}", pair.issuer.address);
    let channel =
        sigil_runtime::connect_lazy(&issuer_url, Some(&pair.validator_tls), |e| e).unwrap();
    let status = IssuerServiceClient::new(channel)
        .get_jwks(pb::GetJwksRequest {})
        .await
        .expect_err("the issuer's certificate is not trusted");
    assert_eq!(status.code(), Code::Unavailable);
    let chain = error_chain(&status);
    assert!(chain.contains("invalid peer certificate"), "{chain}");
}

#[test]
fn an_https_url_without_a_ca_is_a_startup_error() {
    let error = sigil_runtime::connect_lazy("https://issuer:50051", None, |e| e).unwrap_err();
    assert!(error.contains("SIGIL_TLS_CA"), "{error}");
}

#[test]
fn bad_tls_settings_are_startup_errors_naming_the_setting() {
    let ca = Ca::new("sigil test CA");
    let files = Files::new("startup");
    let leaf = ca.leaf("sigil");
    let check = |args: TlsArgs, setting: &str| {
        let error = args.load().expect_err("refused");
        assert!(error.contains(setting), "{error} names {setting}");
        assert!(!error.contains("PRIVATE KEY"), "{error} quotes no key");
    };
    // Missing files, and halves of a pair.
    check(files.args(false), "SIGIL_TLS_CERT");
    files.identity(&leaf);
    check(
        TlsArgs {
            tls_key: None,
            ..files.args(false)
        },
        "SIGIL_TLS_KEY",
    );
    check(files.args(true), "SIGIL_TLS_CLIENT_CA");
    // Not PEM, no key in the key file, a key of another certificate.
    files.write("tls.crt", "hello");
    check(files.args(false), "SIGIL_TLS_CERT");
    files.write("tls.crt", &leaf.cert);
    files.write("tls.key", &leaf.cert);
    check(files.args(false), "SIGIL_TLS_KEY");
    files.write("tls.key", &ca.leaf("other").key);
    check(files.args(false), "SIGIL_TLS_KEY");
    files.identity(&leaf);
    assert!(files.args(false).load().unwrap().is_some());
    assert!(TlsArgs::default().load().unwrap().is_none());
}

fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_get_plaintext_health_and_nothing_else_beside_a_tls_port() {
    let h = Harness::memory().await;
    let ca = Ca::new("sigil test CA");
    let files = Files::new("probes");
    files.identity(&ca.leaf("sigil"));
    files.write("client-ca.crt", &ca.pem());
    let (context, _tls) = with_tls(&h.context, &files.args(true));
    let mut services = sigil_runtime::Services::default();
    sigil_issuer::add_to(&mut services, &context);
    let health = listener().await;
    let health_address = health.local_addr().unwrap();
    services.serve_health_on(health);
    let main = listener().await;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(async move {
        sigil_runtime::serve(main, services, &context, Duration::from_millis(20), async {
            let _ = stopped.await;
        })
        .await
    });

    let channel = channel_to(health_address).await;
    eventually("the issuer reported SERVING on the probe port", || {
        let mut health = HealthClient::new(channel.clone());
        async move {
            let request = tonic_health::pb::HealthCheckRequest {
                service: "sigil.v1.IssuerService".into(),
            };
            health.check(request).await.is_ok_and(|answer| {
                answer.into_inner().status()
                    == tonic_health::pb::health_check_response::ServingStatus::Serving
            })
        }
    })
    .await;
    let result = IssuerServiceClient::new(channel)
        .create_session(pb::CreateSessionRequest::default())
        .await;
    assert_eq!(result.unwrap_err().code(), Code::Unimplemented);
    let _ = stop.send(());
    served.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replaced_client_ca_decides_new_connections_without_a_restart() {
    let h = Harness::memory().await;
    let ca = Ca::new("sigil test CA");
    let old_clients = Ca::new("old clients CA");
    let new_clients = Ca::new("new clients CA");
    let files = Files::new("client-ca");
    files.identity(&ca.leaf("sigil"));
    files.write("client-ca.crt", &old_clients.pem());
    let (context, tls) = with_tls(&h.context, &files.args(true));
    let server = Server::spawn(&context, Role::All, listener().await);
    let watcher = tokio::spawn(sigil_runtime::watch_tls(tls.clone(), tls.reload_interval()));
    let (old_client, new_client) = (old_clients.leaf("old"), new_clients.leaf("new"));
    assert!(health_answers(server.address, &ca, Some(&old_client)).await);
    assert!(!health_answers(server.address, &ca, Some(&new_client)).await);

    files.write("client-ca.crt", &new_clients.pem());
    eventually("a client of the new CA admitted", || {
        health_answers(server.address, &ca, Some(&new_client))
    })
    .await;
    assert!(!health_answers(server.address, &ca, Some(&old_client)).await);
    watcher.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_validator_trusts_a_ca_written_after_it_started() {
    let h = Harness::memory().await;
    let minted = orders_jwt(&h).await;
    let ca = Ca::new("sigil test CA");
    let other = Ca::new("another CA");
    let pair = issuer_and_validator(&h, &ca, &other, "late-ca").await;
    let channel = tls_channel(pair.validator.address, &ca, None)
        .await
        .unwrap();
    let mut client = ValidatorServiceClient::new(channel);
    let result = client.verify_token(verify_request(&minted)).await;
    assert_eq!(result.unwrap_err().code(), Code::Unavailable);

    let tls = pair.validator_tls.clone();
    let watcher = tokio::spawn(sigil_runtime::watch_tls(tls.clone(), tls.reload_interval()));
    pair.validator_files.write("ca.crt", &ca.pem());
    eventually("the validator verifying with keys from the issuer", || {
        let mut client = client.clone();
        let request = verify_request(&minted);
        async move { client.verify_token(request).await.is_ok() }
    })
    .await;
    watcher.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_per_peer_rate_limit_still_sees_the_peer_behind_tls() {
    use sigil_runtime::{CreateSessionRates, RateLimits};
    let h = Harness::memory().await;
    let ca = Ca::new("sigil test CA");
    let files = Files::new("peer");
    files.identity(&ca.leaf("sigil"));
    let (mut context, _tls) = with_tls(&h.context, &files.args(false));
    context.rate_limits = RateLimits::new(CreateSessionRates {
        per_peer: 3,
        global: 0,
    });
    let server = Server::spawn(&context, Role::Issuer, listener().await);
    let mut issuer =
        IssuerServiceClient::new(tls_channel(server.address, &ca, None).await.unwrap());
    let mut limited = 0;
    for _ in 0..20 {
        let result = issuer
            .create_session(pb::CreateSessionRequest::default())
            .await;
        if let Err(status) = result {
            assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
            limited += 1;
        }
    }
    assert!(
        limited > 0,
        "20 calls at once from one peer, 3 a second allowed"
    );
}
