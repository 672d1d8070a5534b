//! What the PhonePe clients (PG v1 and v2) share about HTTP: how the client is built, and what a
//! transport failure means for the call.

use std::time::Duration;

use crate::GatewayError;

/// A client with our trust store ([`crate::tls`]), the given timeouts, and pooled connections
/// recycled after 60 s idle.
pub(crate) fn client(connect_timeout: Duration, read_timeout: Duration) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .connect_timeout(connect_timeout)
        .read_timeout(read_timeout)
        // A whole exchange never takes longer than connecting plus reading.
        .timeout(connect_timeout + read_timeout)
        .pool_idle_timeout(Duration::from_secs(60))
        .user_agent(concat!("parkpay/", env!("CARGO_PKG_VERSION")))
        .tls_backend_preconfigured(crate::tls::client_config()?)
        .build()
        .map_err(|e| e.to_string())
}

/// A request that failed in transport: never sent (could not connect) is safe to retry; anything
/// else (timed out or cut off after the request may have been written) has an unknown outcome.
pub(crate) fn transport_error(e: reqwest::Error) -> GatewayError {
    if e.is_connect() {
        GatewayError::Unreachable { reason: e.to_string() }
    } else {
        GatewayError::OutcomeUnknown { reason: e.to_string() }
    }
}
