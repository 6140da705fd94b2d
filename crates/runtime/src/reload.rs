//! When to look again at files that are reloaded while the process runs
//! (admin keys, TLS certificates): every poll interval, or at once on
//! SIGHUP.

use std::time::Duration;

/// Waits for the next moment to check for a change.
pub(crate) struct ReloadTrigger {
    poll: Duration,
    #[cfg(unix)]
    hangup: Option<tokio::signal::unix::Signal>,
}

impl ReloadTrigger {
    /// Polls every `poll`, and listens for SIGHUP where there is one (if
    /// the handler cannot be installed, polling alone goes on).
    pub(crate) fn new(poll: Duration) -> Self {
        ReloadTrigger {
            poll,
            #[cfg(unix)]
            hangup: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok(),
        }
    }

    /// Returns after the next poll interval (`false`) or SIGHUP (`true`:
    /// reload whether or not anything seems to have changed).
    pub(crate) async fn next(&mut self) -> bool {
        #[cfg(unix)]
        let hung_up = async {
            match self.hangup.as_mut() {
                Some(signal) => signal.recv().await.is_some(),
                None => std::future::pending().await,
            }
        };
        #[cfg(not(unix))]
        let hung_up = std::future::pending::<bool>();
        tokio::select! {
            got = hung_up => got,
            () = tokio::time::sleep(self.poll) => false,
        }
    }
}
