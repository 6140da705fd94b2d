//! Issue 8's targets, decided from one run's figures: each a ratio of a
//! Sigil figure and a bound made of figures measured in the same run.

use crate::{
    jwts::Algorithm,
    report::{Ceilings, Measurement, Scaling, ServerMemory, Target},
};

/// Most RSS the Sigil may hold idle, in MiB.
const IDLE_RSS_MIB: f64 = 20.0;
/// Most RSS under the mixed profile, in MiB.
const MIXED_RSS_MIB: f64 = 64.0;

/// The targets `measurements` and `ceilings` decide; a target whose
/// figures the run did not measure is left out.
pub fn decide(
    measurements: &[Measurement],
    ceilings: &Ceilings,
    scaling: &[Scaling],
    idle: Option<&ServerMemory>,
) -> Vec<Target> {
    let find = |name: &str| {
        measurements
            .iter()
            .find(|measurement| measurement.name == name)
    };
    let mut targets = Vec::new();
    if let Some(whoami) = find("whoami").and_then(|whoami| whoami.against_baseline.as_ref()) {
        targets.push(at_least(
            "WhoAmI req/s over baseline-get",
            whoami.requests_per_second,
            0.70,
            format!(
                "{:.2} × CPU",
                whoami.server_cpu_per_call.unwrap_or(f64::NAN)
            ),
        ));
        targets.push(at_most(
            "WhoAmI p99 over baseline-get",
            whoami.p99,
            1.5,
            String::new(),
        ));
    }
    if let Some(check) = find("check-access").and_then(|check| check.against_baseline.as_ref()) {
        targets.push(at_least(
            "CheckAccess req/s over baseline-get",
            check.requests_per_second,
            0.65,
            format!("{:.2} × CPU", check.server_cpu_per_call.unwrap_or(f64::NAN)),
        ));
    }
    for verify in &ceilings.jwt_verify {
        let name = format!("verify-token-{}", algorithm_name(verify.algorithm));
        let Some(figure) = find(&name) else { continue };
        let Some(ratio) = &figure.against_baseline else {
            continue;
        };
        // The echo and the raw verify done one after the other on one core.
        let echo = ratio.baseline_requests_per_second;
        let bound = 1.0 / (1.0 / echo + 1.0 / verify.per_cpu_second);
        let cpu = figure
            .server_cpu_micros_per_call
            .zip(ratio.baseline_cpu_micros_per_call)
            .map_or_else(String::new, |(sigil, echo_cpu)| {
                format!(
                    "; server CPU {sigil:.1} µs against echo {echo_cpu:.1} + raw verify {:.1} µs",
                    1e6 / verify.per_cpu_second
                )
            });
        targets.push(at_least(
            &format!("{name} req/s over 1/(1/echo + 1/raw verify)"),
            figure.requests_per_second / bound,
            0.8,
            format!(
                "{:.0}/s against {bound:.0}/s (echo {echo:.0}/s, raw verify {:.0}/CPU-s){cpu}",
                figure.requests_per_second, verify.per_cpu_second
            ),
        ));
    }
    for name in ["validate-tokens-1000", "validate-tokens-1000-alone"] {
        if let Some(commands) =
            find(name).and_then(|figure| figure.redis_commands_per_call.as_ref())
        {
            let total: u64 = commands.values().sum();
            targets.push(Target {
                target: format!("{name}: Redis commands per batch"),
                value: total as f64,
                goal: "== 1".into(),
                met: total == 1,
                detail: format!("{commands:?}"),
            });
            break;
        }
    }
    let mget = ceilings.mget.iter().find(|mget| mget.keys == 1000);
    let parsing = ceilings
        .parsing
        .iter()
        .find(|parsing| parsing.tokens == 1000);
    if let (Some(alone), Some(mget), Some(parsing)) =
        (find("validate-tokens-1000-alone"), mget, parsing)
    {
        let bound = mget.p50_micros as f64 + parsing.micros_per_batch;
        targets.push(at_most(
            "ValidateTokens 1000 p50 over (raw MGET 1000 p50 + parsing)",
            alone.latency_micros.p50 as f64 / bound,
            2.0,
            format!(
                "{} µs against {} + {:.0} µs",
                alone.latency_micros.p50, mget.p50_micros, parsing.micros_per_batch
            ),
        ));
    }
    if let (Some(http), Some(grpc)) = (find("edge-validate-10"), find("validate-tokens-10")) {
        targets.push(at_least(
            "edge-validate-10 req/s over validate-tokens-10",
            http.requests_per_second / grpc.requests_per_second.max(f64::EPSILON),
            0.6,
            format!(
                "{:.0}/s against {:.0}/s",
                http.requests_per_second, grpc.requests_per_second
            ),
        ));
    }
    for scaling in scaling {
        targets.push(at_least(
            &format!("{} on CPUs {} over one CPU", scaling.scenario, scaling.cpus),
            scaling.ratio,
            1.7,
            format!(
                "{:.0}/s against {:.0}/s",
                scaling.wide_requests_per_second, scaling.narrow_requests_per_second
            ),
        ));
    }
    if let Some(idle) = idle {
        targets.push(at_most(
            "Sigil RSS idle, MiB",
            idle.memory.rss_kib as f64 / 1024.0,
            IDLE_RSS_MIB,
            String::new(),
        ));
    }
    if let Some(memory) = find("mixed").and_then(|mixed| mixed.server_memory) {
        targets.push(at_most(
            "Sigil RSS after the mixed profile, MiB",
            memory.memory.rss_kib as f64 / 1024.0,
            MIXED_RSS_MIB,
            format!("peak {:.1} MiB", memory.memory.peak_rss_kib as f64 / 1024.0),
        ));
    }
    targets
}

fn at_least(target: &str, value: f64, goal: f64, detail: String) -> Target {
    Target {
        target: target.to_owned(),
        value,
        goal: format!(">= {goal}"),
        met: value >= goal,
        detail,
    }
}

fn at_most(target: &str, value: f64, goal: f64, detail: String) -> Target {
    Target {
        target: target.to_owned(),
        value,
        goal: format!("<= {goal}"),
        met: value <= goal,
        detail,
    }
}

fn algorithm_name(algorithm: Algorithm) -> &'static str {
    match algorithm {
        Algorithm::EdDsa => "eddsa",
        Algorithm::Es256 => "es256",
        Algorithm::Rs256 => "rs256",
        Algorithm::Hs256 => "hs256",
    }
}
