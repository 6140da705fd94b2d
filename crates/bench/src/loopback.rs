//! sigil-bench talks to loopback addresses only: it is a load generator,
//! and must not be pointed at someone else's machine by a typo.

use std::net::IpAddr;

/// Checks that `url` starts with `scheme` and names a loopback host.
pub fn require_loopback(url: &str, scheme: &str, flag: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix(scheme)
        .ok_or_else(|| format!("{flag} must start with {scheme}"))?;
    let authority = rest.split('/').next().unwrap_or_default();
    // Credentials come before the last '@'; never echo them.
    let host_port = authority.rsplit('@').next().unwrap_or_default();
    let host = match host_port.strip_prefix('[') {
        Some(bracketed) => bracketed.split(']').next().unwrap_or_default(),
        None => host_port.split(':').next().unwrap_or_default(),
    };
    let loopback = host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
    if loopback {
        Ok(())
    } else {
        Err(format!(
            "{flag} must name a loopback host (127.0.0.1, ::1, localhost)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(url: &str, expected: bool) {
        assert_eq!(
            require_loopback(url, "redis://", "--redis-url").is_ok(),
            expected,
            "{url}"
        );
    }

    #[test]
    fn only_loopback_hosts_are_accepted() {
        check("redis://127.0.0.1:6379", true);
        check("redis://localhost:6379/2", true);
        check("redis://[::1]:6379", true);
        check("redis://user:p%40ss@127.0.0.1:6379", true);
        check("redis://10.0.0.1:6379", false);
        check("redis://127.0.0.1.example.com:6379", false);
        check("redis://user:127.0.0.1@example.com", false);
        check("http://127.0.0.1:6379", false);
        check("", false);
    }
}
