use std::time::Duration;

use getrandom::{SysRng, rand_core::UnwrapErr};

use super::*;

const NOW: Timestamp = Timestamp::from_unix_ms(1_800_000_000_000);

fn strings(names: &[&str]) -> Vec<String> {
    names.iter().map(|name| name.to_string()).collect()
}

fn issue(
    token_type: ApiTokenType,
    projects: &[&str],
    environment: &str,
) -> (ApiTokenRecord, ApiTokenSecret) {
    NewApiToken::new(
        "ci",
        Some(token_type),
        &strings(projects),
        environment,
        None,
    )
    .expect("valid")
    .issue(NOW, &mut UnwrapErr(SysRng))
    .expect("issued")
}

fn accepts(record: &ApiTokenRecord, text: &str) -> bool {
    PresentedApiToken::parse(text).is_some_and(|presented| record.accepts(&presented, NOW))
}

#[test]
fn token_strings_follow_unleash_forms() {
    let check = |token_type, projects: &[&str], environment, prefix: &str| {
        let (record, secret) = issue(token_type, projects, environment);
        let text = secret.expose();
        assert!(text.starts_with(prefix), "{text} starts with {prefix}");
        let secret_part = text.rsplit_once('.').expect("dot").1;
        assert_eq!(secret_part.len(), 70);
        assert!(
            secret_part
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_')
        );
        assert!(accepts(&record, text), "{text} validates");
    };
    check(
        ApiTokenType::Backend,
        &["default"],
        "development",
        "default:development.",
    );
    check(
        ApiTokenType::Client,
        &["a", "b"],
        "production",
        "[]:production.",
    );
    check(ApiTokenType::Frontend, &["*"], "dev.eu", "*:dev.eu.");
    check(ApiTokenType::Admin, &[], "", "*:*.");
    check(ApiTokenType::Admin, &["*"], "*", "*:*.");
}

#[test]
fn bad_requests_name_the_field() {
    let check = |name: &str, token_type, projects: &[&str], environment: &str, field: &str| {
        let result = NewApiToken::new(name, token_type, &strings(projects), environment, None);
        match result {
            Err(Error::InvalidField { field: got, .. }) => assert_eq!(got.as_str(), field),
            other => panic!("expected {field} invalid, got {other:?}"),
        }
    };
    let backend = Some(ApiTokenType::Backend);
    check("", backend, &["p"], "dev", "token_name");
    check("a\nb", backend, &["p"], "dev", "token_name");
    check(&"n".repeat(129), backend, &["p"], "dev", "token_name");
    check("ci", None, &["p"], "dev", "type");
    check("ci", backend, &[], "dev", "projects");
    check("ci", backend, &["*", "p"], "dev", "projects");
    check("ci", backend, &["p", "bad name"], "dev", "projects[1]");
    check("ci", backend, &["p:q"], "dev", "projects[0]");
    check("ci", backend, &["p"], "", "environment");
    check("ci", backend, &["p"], "*", "environment");
    check("ci", backend, &["p"], &"e".repeat(101), "environment");
    check("ci", Some(ApiTokenType::Admin), &["p"], "", "projects");
    check("ci", Some(ApiTokenType::Admin), &[], "dev", "environment");
}

#[test]
fn expiry_must_be_future_and_ends_validity() {
    let past = NewApiToken::new(
        "ci",
        Some(ApiTokenType::Backend),
        &strings(&["p"]),
        "dev",
        Some(NOW),
    )
    .expect("valid")
    .issue(NOW, &mut UnwrapErr(SysRng));
    assert!(matches!(past, Err(Error::InvalidField { .. })));

    let expires_at = NOW.plus(Duration::from_secs(60));
    let (record, secret) = NewApiToken::new(
        "ci",
        Some(ApiTokenType::Backend),
        &strings(&["p"]),
        "dev",
        Some(expires_at),
    )
    .expect("valid")
    .issue(NOW, &mut UnwrapErr(SysRng))
    .expect("issued");
    let presented = PresentedApiToken::parse(secret.expose()).expect("well formed");
    assert!(record.accepts(&presented, NOW));
    assert!(!record.accepts(&presented, expires_at));
}

#[test]
fn altered_strings_are_malformed_or_refused() {
    let (record, secret) = issue(ApiTokenType::Backend, &["default"], "development");
    let text = secret.expose();
    let (prefix, secret_part) = text.rsplit_once('.').expect("dot");
    let mut flipped = secret_part.as_bytes().to_vec();
    flipped[40] = if flipped[40] == b'A' { b'B' } else { b'A' };
    let flipped = format!("{prefix}.{}", String::from_utf8(flipped).expect("ascii"));
    for malformed in [
        "",
        "default:development.",
        "*:development.",
        "default.development.abc",
        &format!("{prefix}.{secret_part}="),
        &format!("{prefix}.{}+", &secret_part[1..]),
        &format!("{prefix}.{}", &secret_part[1..]),
        &flipped,
        &format!("{}{text}", "x".repeat(300)),
    ] {
        assert!(PresentedApiToken::parse(malformed).is_none(), "{malformed}");
    }
    // Well formed, but another project or environment than issued.
    assert!(!accepts(
        &record,
        &format!("other:development.{secret_part}")
    ));
    assert!(!accepts(
        &record,
        &format!("default:production.{secret_part}")
    ));
    assert!(!accepts(&record, &format!("*:development.{secret_part}")));
}

#[test]
fn batch_keeps_request_order_and_answers_each_string_once() {
    let (_, first) = issue(ApiTokenType::Backend, &["p"], "dev");
    let (_, second) = issue(ApiTokenType::Frontend, &["p"], "dev");
    let texts = strings(&[second.expose(), "garbage", first.expose(), second.expose()]);
    let batch: Vec<&str> = parse_batch(&texts)
        .into_iter()
        .map(|(text, _)| text)
        .collect();
    assert_eq!(batch, [second.expose(), first.expose()]);
}

#[test]
fn secrets_never_show_in_debug_or_records() {
    let (record, secret) = issue(ApiTokenType::Backend, &["p"], "dev");
    let secret_part = secret.expose().rsplit_once('.').expect("dot").1;
    let random_part = &secret_part[22..64];
    let presented = PresentedApiToken::parse(secret.expose()).expect("well formed");
    for shown in [
        format!("{secret:?}"),
        format!("{presented:?}"),
        format!("{record:?}"),
        serde_json::to_string(&record).expect("serializes"),
    ] {
        assert!(!shown.contains(random_part), "{shown}");
    }
}

#[test]
fn filter_matches_type_project_environment_and_liveness() {
    let (backend, _) = issue(ApiTokenType::Backend, &["a", "b"], "dev");
    let (admin, _) = issue(ApiTokenType::Admin, &[], "");
    let project = |name| Some(ProjectName::parse(name, "project").expect("valid"));
    let environment = |name| Some(Environment::parse(name, "environment").expect("valid"));
    let check = |filter: ApiTokenFilter, expected: [bool; 2]| {
        let got = [&backend, &admin].map(|record| filter.matches(&record.token, NOW));
        assert_eq!(got, expected, "{filter:?}");
    };
    check(ApiTokenFilter::default(), [true, true]);
    check(
        ApiTokenFilter {
            token_type: Some(ApiTokenType::Admin),
            ..Default::default()
        },
        [false, true],
    );
    check(
        ApiTokenFilter {
            project: project("b"),
            ..Default::default()
        },
        [true, true],
    );
    check(
        ApiTokenFilter {
            project: project("c"),
            ..Default::default()
        },
        [false, true],
    );
    check(
        ApiTokenFilter {
            environment: environment("prod"),
            ..Default::default()
        },
        [false, true],
    );
}
