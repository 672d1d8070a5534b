//! One trust store for every outgoing TLS connection (PhonePe here, AWS in `parkpay-api`):
//! Mozilla's root certificates compiled into the binary (`webpki-root-certs`).
//!
//! Why not the platform's: loading those (rustls-native-certs) parses the system bundle and
//! every file of its certificate directory, at client construction. On a Lambda cold start that
//! was most of the init time (docs/serverless.md has the measurements). Compiled-in roots read
//! no file; they change with a rebuild, like everything else in a Lambda zip. PhonePe's and
//! AWS's API certificates chain to public roots in that set.

use std::sync::Arc;

/// Mozilla's roots, DER.
pub fn root_certs() -> &'static [rustls::pki_types::CertificateDer<'static>] {
    webpki_root_certs::TLS_SERVER_ROOT_CERTS
}

/// The same roots as PEM text (for clients configured with PEM, such as the AWS SDK's).
pub fn root_certs_pem() -> String {
    use base64::Engine;
    let mut pem = String::with_capacity(root_certs().len() * 2200);
    for der in root_certs() {
        let b64 = base64::engine::general_purpose::STANDARD.encode(der.as_ref());
        pem.push_str("-----BEGIN CERTIFICATE-----\n");
        for line in b64.as_bytes().chunks(64) {
            // base64 output is ASCII
            pem.push_str(std::str::from_utf8(line).unwrap_or_default());
            pem.push('\n');
        }
        pem.push_str("-----END CERTIFICATE-----\n");
    }
    pem
}

/// rustls (aws-lc-rs) trusting exactly [`root_certs`], TLS 1.2 and 1.3.
pub fn client_config() -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore::empty();
    let (_, ignored) = roots.add_parsable_certificates(root_certs().iter().cloned());
    if ignored > 0 || roots.is_empty() {
        return Err(format!("{ignored} compiled-in root certificates could not be parsed"));
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roots_parse_and_round_trip_through_pem() {
        assert!(root_certs().len() > 100, "Mozilla's set has well over a hundred roots");
        assert!(client_config().is_ok());
        let pem = root_certs_pem();
        let back: Vec<Vec<u8>> = pem
            .split("-----BEGIN CERTIFICATE-----\n")
            .skip(1)
            .map(|block| {
                use base64::Engine;
                let b64: String = block.split("-----END").next().unwrap().lines().collect();
                base64::engine::general_purpose::STANDARD.decode(b64).unwrap()
            })
            .collect();
        assert_eq!(back.len(), root_certs().len());
        assert!(back.iter().zip(root_certs()).all(|(a, b)| a.as_slice() == b.as_ref()));
    }
}
