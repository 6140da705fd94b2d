//! A TCP proxy of the test's own between two loopback peers (a replica and
//! its primary), which the test can cut: a network partition without `tc`
//! or toxiproxy, neither of which this machine has.

use std::net::SocketAddr;

use tokio::{
    io::copy_bidirectional,
    net::{TcpListener, TcpStream},
    sync::watch,
    task::JoinHandle,
};

/// Forwards every connection to `upstream` until [`cut`](Self::cut); then
/// closes the open ones and drops every new one at once. Stops on drop.
pub struct TcpProxy {
    /// Where to connect instead of the upstream.
    pub address: SocketAddr,
    cut: watch::Sender<bool>,
    accepting: JoinHandle<()>,
}

impl TcpProxy {
    /// A proxy to `upstream` on a free loopback port.
    pub async fn start(upstream: SocketAddr) -> TcpProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("local address");
        let (cut, cut_seen) = watch::channel(false);
        let accepting = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if *cut_seen.borrow() {
                    continue;
                }
                let mut cut_seen = cut_seen.clone();
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    // Either side closing, or the cut, ends both.
                    tokio::select! {
                        _ = copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut_seen.wait_for(|cut| *cut) => {}
                    }
                });
            }
        });
        TcpProxy {
            address,
            cut,
            accepting,
        }
    }

    /// Partitions the peers: every connection through the proxy closes,
    /// and new ones are closed as soon as they are accepted.
    pub fn cut(&self) {
        self.cut.send_replace(true);
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.cut();
        self.accepting.abort();
    }
}
