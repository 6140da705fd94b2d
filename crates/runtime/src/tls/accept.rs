//! The server side: TCP connections accepted, their TLS handshakes run
//! concurrently, each bounded by the handshake timeout, so a slow or
//! failing client holds up no one; only completed connections reach the
//! server.

use std::{io, net::SocketAddr};

use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::{TcpListener, TcpStream},
    sync::mpsc,
};
use tokio_rustls::{TlsAcceptor, server::TlsStream};
use tokio_stream::{Stream, StreamExt};

use super::{Protocols, Tls};

/// How many completed handshakes may wait for the server to take them.
const BACKLOG: usize = 128;

/// Accepts connections on `listener` and yields those whose handshake
/// completed, with the configuration in force when each arrived. The task
/// accepting ends when the receiver is dropped.
pub(crate) fn accept(
    listener: TcpListener,
    tls: Tls,
    protocols: Protocols,
) -> mpsc::Receiver<io::Result<TlsStream<TcpStream>>> {
    let (sender, receiver) = mpsc::channel(BACKLOG);
    tokio::spawn(async move {
        loop {
            let (stream, peer) = tokio::select! {
                accepted = crate::server::next_connection(&listener) => accepted,
                () = sender.closed() => return,
            };
            if !handshake(stream, peer, &tls, protocols, &sender) {
                return;
            }
        }
    });
    receiver
}

/// Runs the TLS handshake of each connection `streams` yields (accepted
/// elsewhere, `TCP_NODELAY` set), with its peer's address, and yields
/// those that completed. Ends when `streams` does or the receiver is
/// dropped.
pub(crate) fn handshake_each<Io>(
    mut streams: impl Stream<Item = (Io, SocketAddr)> + Send + Unpin + 'static,
    tls: Tls,
    protocols: Protocols,
) -> mpsc::Receiver<io::Result<TlsStream<Io>>>
where
    Io: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (sender, receiver) = mpsc::channel(BACKLOG);
    tokio::spawn(async move {
        loop {
            let stream = tokio::select! {
                stream = streams.next() => stream,
                () = sender.closed() => return,
            };
            let Some((stream, peer)) = stream else { return };
            if !handshake(stream, peer, &tls, protocols, &sender) {
                return;
            }
        }
    });
    receiver
}

/// Starts the handshake of `stream` with the configuration in force now,
/// sending it to `sender` once complete. False when TLS is no longer
/// configured.
fn handshake<Io>(
    stream: Io,
    peer: SocketAddr,
    tls: &Tls,
    protocols: Protocols,
    sender: &mpsc::Sender<io::Result<TlsStream<Io>>>,
) -> bool
where
    Io: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let Some(config) = tls.server_config(protocols) else {
        return false;
    };
    let sender = sender.clone();
    let timeout = tls.handshake_timeout();
    tokio::spawn(async move {
        let handshake = TlsAcceptor::from(config).accept(stream);
        let result = match tokio::time::timeout(timeout, handshake).await {
            Ok(Ok(stream)) => {
                let _ = sender.send(Ok(stream)).await;
                "ok"
            }
            Ok(Err(error)) => {
                tracing::debug!(%peer, %error, "TLS handshake failed");
                "failed"
            }
            Err(_) => {
                tracing::debug!(%peer, "TLS handshake timed out");
                "timeout"
            }
        };
        metrics::counter!("sigil_tls_handshakes_total", "result" => result).increment(1);
    });
    true
}

/// An axum listener over [`accept`], for HTTP/1.1-only ports.
pub(crate) struct TlsListener {
    connections: mpsc::Receiver<io::Result<TlsStream<TcpStream>>>,
    local: SocketAddr,
}

impl TlsListener {
    /// Serves TLS on `listener`.
    pub(crate) fn new(listener: TcpListener, tls: Tls) -> io::Result<TlsListener> {
        let local = listener.local_addr()?;
        Ok(TlsListener {
            connections: accept(listener, tls, Protocols::Http1),
            local,
        })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.connections.recv().await {
                Some(Ok(stream)) => {
                    let peer = stream.get_ref().0.peer_addr().unwrap_or(self.local);
                    return (stream, peer);
                }
                Some(Err(_)) => continue,
                // The accepting task is gone: nothing will arrive again.
                None => std::future::pending().await,
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.local)
    }
}
