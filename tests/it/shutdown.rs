//! Graceful shutdown: on the signal the server stops accepting, drains and
//! returns.

use sigil_proto::v1 as pb;

use crate::harness::Harness;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_signal_stops_the_server() {
    let h = Harness::memory().await;
    let address = h.address;
    let created = h
        .issuer()
        .await
        .create_session(pb::CreateSessionRequest::default())
        .await;
    assert!(created.is_ok());

    // Returns only once `serve` has returned.
    h.stop().await;

    let refused = tokio::net::TcpStream::connect(address).await;
    assert!(
        refused.is_err(),
        "still accepting connections after shutdown"
    );
}
