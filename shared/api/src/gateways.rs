//! The PhonePe APIs a deployment talks to, and which one serves what.
//!
//! New payments use the configured API (`PHONEPE_API_VERSION`); every payment and refund
//! records the API that made it ([`GatewayApi`]), and its status reads, refunds and callbacks go
//! to that API. So a deployment switching from PG v1 to PG v2 keeps both clients while v1's
//! records are still open, and loses nothing. A record whose API is not configured (the v1
//! settings removed too early) gets a clean [`GatewayError::Unreachable`]: its obligation keeps
//! being retried and, once overdue, shows on the operators' attention list.

use std::sync::Arc;

use async_trait::async_trait;
use parkpay_domain::GatewayApi;
use parkpay_gateway::{
    CallbackError, GatewayError, MerchantTxnId, Notice, PayRequest, PayStarted, PaymentGateway, RefundRequest,
    RefundStarted, StatusReport,
};

/// The clients of one deployment, by API.
#[derive(Clone)]
pub struct Gateways {
    api: GatewayApi,
    v1: Option<Arc<dyn PaymentGateway>>,
    v2: Option<Arc<dyn PaymentGateway>>,
}

impl Gateways {
    /// `api` for new payments, with the clients configured. The one of `api` must be there.
    pub fn new(
        api: GatewayApi,
        v1: Option<Arc<dyn PaymentGateway>>,
        v2: Option<Arc<dyn PaymentGateway>>,
    ) -> Result<Self, crate::ConfigError> {
        let present = match api {
            GatewayApi::V1 => v1.is_some(),
            GatewayApi::V2 => v2.is_some(),
        };
        if !present {
            return Err(crate::ConfigError::new(
                "PHONEPE_API_VERSION",
                format!("names {}, whose settings are missing", api.as_str()),
            ));
        }
        Ok(Self { api, v1, v2 })
    }

    /// One API only.
    pub fn only(api: GatewayApi, gateway: Arc<dyn PaymentGateway>) -> Self {
        match api {
            GatewayApi::V1 => Self { api, v1: Some(gateway), v2: None },
            GatewayApi::V2 => Self { api, v1: None, v2: Some(gateway) },
        }
    }

    /// Every client wrapped by `wrap` (metrics).
    pub fn map(self, wrap: impl Fn(Arc<dyn PaymentGateway>) -> Arc<dyn PaymentGateway>) -> Self {
        Self { api: self.api, v1: self.v1.map(&wrap), v2: self.v2.map(&wrap) }
    }

    /// The API new payments use.
    pub fn api(&self) -> GatewayApi {
        self.api
    }

    /// Whether `api`'s client is configured.
    pub fn has(&self, api: GatewayApi) -> bool {
        self.slot(api).is_some()
    }

    fn slot(&self, api: GatewayApi) -> Option<&Arc<dyn PaymentGateway>> {
        match api {
            GatewayApi::V1 => self.v1.as_ref(),
            GatewayApi::V2 => self.v2.as_ref(),
        }
    }

    /// The client for new payments.
    pub fn current(&self) -> Arc<dyn PaymentGateway> {
        self.of(self.api)
    }

    /// The client of `api` (a record's), or one that answers every call
    /// [`GatewayError::Unreachable`] when this deployment has no settings for it.
    pub fn of(&self, api: GatewayApi) -> Arc<dyn PaymentGateway> {
        match self.slot(api) {
            Some(g) => g.clone(),
            None => Arc::new(NotConfigured(api)),
        }
    }

    /// The API a server-to-server notification comes from, by its authentication header: PG v1
    /// signs with `X-VERIFY`, PG v2 webhooks carry `Authorization`. Without either, the
    /// configured API (which refuses it as unsigned). A header of an API not configured here
    /// goes to the configured one, which refuses it the same way.
    pub fn notice_api(&self, headers: &http::HeaderMap) -> GatewayApi {
        let named = if headers.contains_key(parkpay_gateway::phonepe_v1::X_VERIFY) {
            Some(GatewayApi::V1)
        } else if headers.contains_key(parkpay_gateway::phonepe_v2::AUTHORIZATION) {
            Some(GatewayApi::V2)
        } else {
            None
        };
        named.filter(|api| self.has(*api)).unwrap_or(self.api)
    }
}

/// The client of an API this deployment has no settings for.
struct NotConfigured(GatewayApi);

impl NotConfigured {
    fn error(&self) -> GatewayError {
        GatewayError::Unreachable {
            reason: format!(
                "PhonePe PG {} is not configured in this deployment, and this record was made with it",
                self.0.as_str()
            ),
        }
    }
}

#[async_trait]
impl PaymentGateway for NotConfigured {
    async fn pay(&self, _: &PayRequest) -> Result<PayStarted, GatewayError> {
        Err(self.error())
    }

    async fn status(&self, _: &MerchantTxnId) -> Result<StatusReport, GatewayError> {
        Err(self.error())
    }

    async fn refund(&self, _: &RefundRequest) -> Result<RefundStarted, GatewayError> {
        Err(self.error())
    }

    async fn verify_notice(&self, _: &http::HeaderMap, _: &[u8]) -> Result<Notice, CallbackError> {
        Err(CallbackError::KeysUnavailable(self.error().to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Named;

    #[async_trait]
    impl PaymentGateway for Named {
        async fn pay(&self, _: &PayRequest) -> Result<PayStarted, GatewayError> {
            Err(GatewayError::Rejected { code: "NAMED".into(), message: String::new() })
        }
        async fn status(&self, _: &MerchantTxnId) -> Result<StatusReport, GatewayError> {
            Err(GatewayError::Rejected { code: "NAMED".into(), message: String::new() })
        }
        async fn refund(&self, _: &RefundRequest) -> Result<RefundStarted, GatewayError> {
            Err(GatewayError::Rejected { code: "NAMED".into(), message: String::new() })
        }
        async fn verify_notice(&self, _: &http::HeaderMap, _: &[u8]) -> Result<Notice, CallbackError> {
            Err(CallbackError::MissingSignature)
        }
    }

    fn headers(name: &str) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        h.insert(http::HeaderName::from_bytes(name.as_bytes()).unwrap(), "x".parse().unwrap());
        h
    }

    #[tokio::test]
    async fn records_go_to_their_api_and_notices_by_header() {
        let both = Gateways::new(GatewayApi::V2, Some(Arc::new(Named)), Some(Arc::new(Named))).unwrap();
        assert_eq!(both.api(), GatewayApi::V2);
        assert_eq!(both.notice_api(&headers("X-VERIFY")), GatewayApi::V1);
        assert_eq!(both.notice_api(&headers("Authorization")), GatewayApi::V2);
        assert_eq!(both.notice_api(&http::HeaderMap::new()), GatewayApi::V2);

        let v2_only = Gateways::only(GatewayApi::V2, Arc::new(Named));
        // a v1 record in a deployment without v1: a clean "unreachable", never a panic
        let txn = MerchantTxnId::parse("T1").unwrap();
        let e = v2_only.of(GatewayApi::V1).status(&txn).await.unwrap_err();
        assert!(matches!(e, GatewayError::Unreachable { .. }) && e.to_string().contains("PG v1"), "{e}");
        assert_eq!(v2_only.of(GatewayApi::V2).status(&txn).await.unwrap_err().code(), Some("NAMED"));
        // a v1-signed callback where v1 is not configured goes to v2, which refuses it
        assert_eq!(v2_only.notice_api(&headers("X-VERIFY")), GatewayApi::V2);

        assert!(Gateways::new(GatewayApi::V2, Some(Arc::new(Named)), None).is_err());
    }
}
