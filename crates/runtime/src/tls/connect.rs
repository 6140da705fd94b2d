//! The client side: calls to other Sigil services (the validator's to the
//! issuer). An `https://` URL is dialled over TLS with the configuration in
//! force at each new connection, so a reloaded CA or client certificate
//! takes effect without a restart.

use std::{io, sync::Arc};

use http::Uri;
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tonic::transport::{Channel, Endpoint};

use super::Tls;

/// A channel to `url` that connects on first use: plaintext for
/// `http://`, TLS verified against `SIGIL_TLS_CA` for `https://` (which
/// then needs `tls`). `configure` sets timeouts and the like.
pub fn connect_lazy(
    url: &str,
    tls: Option<&Tls>,
    configure: impl FnOnce(Endpoint) -> Endpoint,
) -> Result<Channel, String> {
    let uri: Uri = url
        .parse()
        .map_err(|error| format!("bad URL {url:?}: {error}"))?;
    if uri.scheme_str() != Some("https") {
        let endpoint = Endpoint::from_shared(url.to_owned())
            .map_err(|error| format!("bad URL {url:?}: {error}"))?;
        return Ok(configure(endpoint).connect_lazy());
    }
    let Some(tls) = tls.filter(|tls| tls.connects()) else {
        return Err(format!(
            "{url}: an https:// URL needs SIGIL_TLS_CA, the CA to verify the server with"
        ));
    };
    let host = uri
        .host()
        .ok_or_else(|| format!("bad URL {url:?}: no host"))?;
    // An IPv6 address comes in brackets; the certificate names it bare.
    let name = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let server_name =
        ServerName::try_from(name.clone()).map_err(|error| format!("bad URL {url:?}: {error}"))?;
    let port = uri.port_u16().unwrap_or(443);
    // tonic dials what the endpoint names and would refuse `https://`
    // without a TLS config of its own: give it the plain address, do TLS in
    // the connector, and keep `https` as the origin requests carry.
    let plain = format!("http://{host}:{port}");
    let endpoint = Endpoint::from_shared(plain)
        .map_err(|error| format!("bad URL {url:?}: {error}"))?
        .origin(uri);
    let tls = tls.clone();
    let connector = tower::service_fn(move |_: Uri| {
        let (tls, name, server_name) = (tls.clone(), name.clone(), server_name.clone());
        async move {
            let config = tls
                .client_config()
                .ok_or_else(|| io::Error::other("no TLS client configuration"))?;
            let stream = TcpStream::connect((name.as_str(), port)).await?;
            let _ = stream.set_nodelay(true);
            let stream = TlsConnector::from(Arc::clone(&config))
                .connect(server_name, stream)
                .await
                .map_err(|error| {
                    io::Error::new(
                        error.kind(),
                        format!("TLS handshake with {name}:{port} failed: {error}"),
                    )
                })?;
            Ok::<_, io::Error>(TokioIo::new(stream))
        }
    });
    Ok(configure(endpoint).connect_with_connector_lazy(connector))
}
