//! The PhonePe client's TLS: it verifies the server's certificate against the compiled-in roots
//! (`parkpay_gateway::tls`). A TLS server whose certificate chains to no public root is refused
//! during the handshake: no request byte reaches it, and the error says nothing was sent.
//! (A handshake with PhonePe itself needs the network, which tests here do not have.)

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use parkpay_gateway::{GatewayError, Instrument, PaymentGateway};
use support::*;
use tokio::io::AsyncReadExt;

/// A TLS server on 127.0.0.1 with a self-signed certificate for `localhost`; counts the
/// handshakes that completed and the bytes it was sent after one.
async fn untrusted_tls_server() -> (u16, Arc<AtomicUsize>, Arc<AtomicUsize>) {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let key = rustls_pki_key(cert.signing_key.serialize_der());
    let provider = Arc::new(tokio_rustls::rustls::crypto::aws_lc_rs::default_provider());
    let config = tokio_rustls::rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.cert.der().clone()], key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (handshakes, bytes) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (h, b) = (handshakes.clone(), bytes.clone());
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else { return };
            let (acceptor, h, b) = (acceptor.clone(), h.clone(), b.clone());
            tokio::spawn(async move {
                if let Ok(mut tls) = acceptor.accept(tcp).await {
                    h.fetch_add(1, Ordering::SeqCst);
                    let mut buf = [0u8; 4096];
                    while let Ok(n @ 1..) = tls.read(&mut buf).await {
                        b.fetch_add(n, Ordering::SeqCst);
                    }
                }
            });
        }
    });
    (port, handshakes, bytes)
}

fn rustls_pki_key(der: Vec<u8>) -> tokio_rustls::rustls::pki_types::PrivateKeyDer<'static> {
    tokio_rustls::rustls::pki_types::PrivateKeyDer::Pkcs8(der.into())
}

#[tokio::test]
async fn untrusted_certificate_is_refused_before_anything_is_sent() {
    let rig = Rig::start().await;
    let (port, handshakes, bytes) = untrusted_tls_server().await;
    let base = url::Url::parse(&format!("https://localhost:{port}/")).unwrap();
    let client = client_for(base, &rig.rx, MERCHANT, keys(), Duration::from_secs(3));
    for r in [
        client.pay(&rig.pay_request("TLS-1", Instrument::PayPage)).await.map(|_| ()),
        client.status(&txn("TLS-1")).await.map(|_| ()),
        client.refund(&rig.refund_request("TLS-R", "TLS-1", 100)).await.map(|_| ()),
    ] {
        match r {
            Err(e @ GatewayError::Unreachable { .. }) => assert!(!e.outcome_unknown(), "nothing was sent: {e}"),
            other => panic!("expected Unreachable (certificate refused), got {other:?}"),
        }
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(handshakes.load(Ordering::SeqCst), 0, "the client must not complete a handshake");
    assert_eq!(bytes.load(Ordering::SeqCst), 0, "no request byte may reach an untrusted server");
}

#[test]
fn the_compiled_in_trust_store_is_mozillas() {
    let roots = parkpay_gateway::tls::root_certs();
    assert!(roots.len() > 100, "{} roots", roots.len());
    assert!(parkpay_gateway::tls::client_config().is_ok());
}
