//! Reading the PEM files into rustls configurations: all of them or none,
//! with errors that name the setting and never quote a key.

use std::{path::Path, sync::Arc};

use rustls::{
    ClientConfig, RootCertStore, ServerConfig,
    crypto::CryptoProvider,
    pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject},
    server::WebPkiClientVerifier,
};

use super::{Configs, TlsArgs};

impl Configs {
    /// Everything the settings name, read and built now.
    pub(super) fn read(args: &TlsArgs) -> Result<Configs, String> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let identity = match (&args.tls_cert, &args.tls_key) {
            (Some(cert), Some(key)) => Some((
                read_certs(cert, "SIGIL_TLS_CERT")?,
                read_key(key, "SIGIL_TLS_KEY")?,
            )),
            _ => None,
        };
        let client_roots = args
            .tls_client_ca
            .as_deref()
            .map(|path| read_roots(path, "SIGIL_TLS_CLIENT_CA"))
            .transpose()?;
        let server = |alpn: &[&[u8]]| -> Result<Option<Arc<ServerConfig>>, String> {
            let Some((certs, key)) = &identity else {
                return Ok(None);
            };
            let builder = ServerConfig::builder_with_provider(provider.clone())
                .with_safe_default_protocol_versions()
                .map_err(|error| format!("TLS: {error}"))?;
            let builder = match &client_roots {
                Some(roots) => builder.with_client_cert_verifier(
                    WebPkiClientVerifier::builder_with_provider(
                        Arc::new(roots.clone()),
                        provider.clone(),
                    )
                    .build()
                    .map_err(|error| format!("SIGIL_TLS_CLIENT_CA: {error}"))?,
                ),
                None => builder.with_no_client_auth(),
            };
            let mut config = builder
                .with_single_cert(certs.clone(), key.clone_key())
                .map_err(|error| format!("SIGIL_TLS_CERT and SIGIL_TLS_KEY: {error}"))?;
            config.alpn_protocols = alpn.iter().map(|protocol| protocol.to_vec()).collect();
            Ok(Some(Arc::new(config)))
        };
        let grpc = server(&[b"h2", b"http/1.1"])?;
        let http = server(&[b"http/1.1"])?;
        let client = args
            .tls_ca
            .as_deref()
            .map(|path| client_config(path, identity.as_ref(), &provider))
            .transpose()?;
        Ok(Configs { grpc, http, client })
    }
}

fn client_config(
    ca: &Path,
    identity: Option<&(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<ClientConfig>, String> {
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|error| format!("TLS: {error}"))?
        .with_root_certificates(read_roots(ca, "SIGIL_TLS_CA")?);
    let mut config = match identity {
        Some((certs, key)) => builder
            .with_client_auth_cert(certs.clone(), key.clone_key())
            .map_err(|error| format!("SIGIL_TLS_CERT and SIGIL_TLS_KEY: {error}"))?,
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(config))
}

fn read_file(path: &Path, setting: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|error| format!("{setting} {}: {error}", path.display()))
}

fn read_certs(path: &Path, setting: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let bytes = read_file(path, setting)?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| format!("{setting} {}: not PEM: {error}", path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "{setting} {}: no PEM certificate in it",
            path.display()
        ));
    }
    Ok(certs)
}

fn read_key(path: &Path, setting: &str) -> Result<PrivateKeyDer<'static>, String> {
    let bytes = read_file(path, setting)?;
    // The parser's message may quote the file: say only that it failed.
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|_| {
        format!(
            "{setting} {}: no PEM private key (PKCS#8, PKCS#1 or SEC1) in it",
            path.display()
        )
    })
}

fn read_roots(path: &Path, setting: &str) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    for cert in read_certs(path, setting)? {
        roots
            .add(cert)
            .map_err(|error| format!("{setting} {}: {error}", path.display()))?;
    }
    Ok(roots)
}
