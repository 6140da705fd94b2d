//! Prometheus `/metrics`, scraped over plain HTTP as Prometheus would. The
//! recorder is process-wide and tests run in parallel, so each check is
//! "moved by at least", never an exact total.

use std::process::Command;

use sigil_proto::v1 as pb;

use crate::harness::Harness;

/// Fetches `/metrics` with Python's urllib (HTTP/1.1, a non-Rust client).
pub(crate) fn scrape(h: &Harness) -> String {
    scrape_at(h.address)
}

/// [`scrape`] from the server at `address`.
pub(crate) fn scrape_at(address: std::net::SocketAddr) -> String {
    let python = crate::harness::python();
    let script = "import sys, urllib.request\n\
        r = urllib.request.urlopen(f'http://{sys.argv[1]}/metrics')\n\
        assert r.status == 200 and r.headers['content-type'].startswith('text/plain')\n\
        sys.stdout.write(r.read().decode())";
    let output = Command::new(python)
        .args(["-c", script, &address.to_string()])
        .output()
        .expect("the .venv python runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("utf-8")
}

/// The value of the sample whose line starts with `series` (name and
/// labels, in the exporter's label order), or 0 when absent.
pub(crate) fn sample(metrics: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    metrics
        .lines()
        .filter(|line| line.starts_with(name) && !line.starts_with('#'))
        .filter(|line| {
            let series = line.rsplit_once(' ').map_or(*line, |(series, _)| series);
            series.split(['{', '}']).next() == Some(name)
                && labels
                    .iter()
                    .all(|(key, value)| series.contains(&format!("{key}=\"{value}\"")))
        })
        .filter_map(|line| line.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_calls_codes_and_sessions() {
    let h = Harness::memory().await;
    let create_ok = [
        ("service", "sigil.v1.IssuerService"),
        ("method", "CreateSession"),
        ("code", "Ok"),
    ];
    let whoami_denied = [("method", "WhoAmI"), ("code", "Unauthenticated")];
    let before = scrape(&h);

    let (created, _) = h.active_session("kate", &["token:read"], vec![]).await;
    let refused = h
        .validator()
        .await
        .who_am_i(pb::WhoAmIRequest {
            session_token: "sigil_sk_nope".into(),
            tokenize_as: String::new(),
            ..Default::default()
        })
        .await;
    assert!(refused.is_err());
    let validated = h
        .edge_tokens()
        .await
        .validate_tokens(pb::ValidateTokensRequest {
            tokens: vec!["default:development.nonsense".into()],
        })
        .await;
    assert!(validated.is_ok());
    h.issuer()
        .await
        .revoke_session(crate::harness::admin(pb::RevokeSessionRequest {
            session_id: created.session_id,
        }))
        .await
        .unwrap();

    let after = scrape(&h);
    for (name, labels) in [
        ("sigil_grpc_requests_total", &create_ok[..]),
        ("sigil_grpc_requests_total", &whoami_denied[..]),
        ("sigil_sessions_created_total", &[][..]),
        ("sigil_sessions_authorized_total", &[][..]),
        ("sigil_sessions_revoked_total", &[][..]),
        (
            "sigil_api_tokens_validated_total",
            &[("result", "invalid")][..],
        ),
        ("sigil_grpc_request_duration_seconds_count", &create_ok[..2]),
    ] {
        let moved = sample(&after, name, labels) - sample(&before, name, labels);
        assert!(moved >= 1.0, "{name} {labels:?} moved by {moved}");
    }
    assert!(after.contains("# TYPE sigil_grpc_request_duration_seconds histogram"));
}

/// The validator's key and template caches count into
/// `sigil_cache_requests_total` (their counter handles are made once, on
/// first use, so this shows they were made after the recorder was).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verifying_counts_the_key_and_template_caches() {
    let h = Harness::memory().await;
    crate::jwt::put(
        &h,
        crate::jwt::template("metered", pb::SigningAlgorithm::Eddsa),
    )
    .await;
    let (key, _) = crate::jwt::alice(&h).await;
    let jwt = crate::jwt::token(&h, &key, "metered").await.jwt;
    let jwks_hits = [("cache", "jwks"), ("result", "hit")];
    let template_reads = [("cache", "template")];
    let before = scrape(&h);
    let mut validator = h.validator().await;
    // The first call may fetch the JWKS; the second finds the key cached.
    for _ in 0..2 {
        validator
            .verify_token(pb::VerifyTokenRequest {
                jwt: jwt.clone(),
                ..Default::default()
            })
            .await
            .expect("verified");
    }
    let after = scrape(&h);
    for labels in [&jwks_hits[..], &template_reads[..]] {
        let name = "sigil_cache_requests_total";
        let moved = sample(&after, name, labels) - sample(&before, name, labels);
        assert!(moved >= 1.0, "{name} {labels:?} moved by {moved}");
    }
}
