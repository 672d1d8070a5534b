//! Local HS256 tokens: minted for a user or an operator, verified by the local server the way
//! API Gateway's JWT authorizer would, and flattened into the same string claims.

use std::collections::HashMap;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub const ISSUER: &str = "parkpay-local";
pub const AUDIENCE: &str = "parkpay";

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    iss: String,
    aud: String,
    iat: u64,
    exp: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    groups: Vec<String>,
}

/// Why a token was refused (the message is safe to show; it never includes the token).
#[derive(Debug, thiserror::Error)]
#[error("invalid token: {0}")]
pub struct TokenError(String);

pub struct JwtKeys {
    secret: SecretString,
}

impl std::fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JwtKeys([REDACTED])")
    }
}

impl JwtKeys {
    pub fn new(secret: SecretString) -> Self {
        Self { secret }
    }

    /// A token for `sub`, valid for `ttl_secs`; operators carry `"groups": ["operator"]`.
    pub fn mint(&self, sub: &str, operator: bool, ttl_secs: u64) -> Result<String, TokenError> {
        let groups: &[&str] = if operator { &[parkpay_api::identity::OPERATOR_GROUP] } else { &[] };
        self.mint_in(sub, groups, ttl_secs)
    }

    /// A token for `sub` in `groups` (`operator`, `gate`).
    pub fn mint_in(&self, sub: &str, groups: &[&str], ttl_secs: u64) -> Result<String, TokenError> {
        let now = now_secs();
        let claims = Claims {
            sub: sub.to_owned(),
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            iat: now,
            exp: now + ttl_secs,
            groups: groups.iter().map(|g| (*g).to_owned()).collect(),
        };
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(self.secret.expose_secret().as_bytes()),
        )
        .map_err(|e| TokenError(e.to_string()))
    }

    /// Verify signature, algorithm, issuer, audience and expiry; return the claims as API
    /// Gateway hands them to a function: every value a string, arrays as `[a b]`.
    pub fn verify(&self, token: &str) -> Result<HashMap<String, String>, TokenError> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "sub", "iss", "aud"]);
        let data = jsonwebtoken::decode::<HashMap<String, Value>>(
            token,
            &DecodingKey::from_secret(self.secret.expose_secret().as_bytes()),
            &validation,
        )
        .map_err(|e| TokenError(e.kind_name()))?;
        Ok(data.claims.into_iter().map(|(k, v)| (k, flatten(&v))).collect())
    }
}

trait KindName {
    fn kind_name(&self) -> String;
}

impl KindName for jsonwebtoken::errors::Error {
    fn kind_name(&self) -> String {
        use jsonwebtoken::errors::ErrorKind::*;
        match self.kind() {
            ExpiredSignature => "expired".into(),
            InvalidSignature => "bad signature".into(),
            InvalidIssuer => "wrong issuer".into(),
            InvalidAudience => "wrong audience".into(),
            InvalidAlgorithm => "wrong algorithm".into(),
            MissingRequiredClaim(c) => format!("missing claim {c}"),
            _ => "malformed".into(),
        }
    }
}

fn flatten(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(items) => format!("[{}]", items.iter().map(flatten).collect::<Vec<_>>().join(" ")),
        other => other.to_string(),
    }
}

fn now_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(s: &str) -> JwtKeys {
        JwtKeys::new(SecretString::from(s.to_owned()))
    }

    #[test]
    fn mint_and_verify() {
        let k = keys("local-secret");
        let claims = k.verify(&k.mint("driver-1", false, 60).unwrap()).unwrap();
        assert_eq!(claims["sub"], "driver-1");
        assert!(!claims.contains_key("groups"));
        let claims = k.verify(&k.mint("op", true, 60).unwrap()).unwrap();
        assert_eq!(claims["groups"], "[operator]");
    }

    #[test]
    fn refusals() {
        let k = keys("local-secret");
        let token = k.mint("driver-1", false, 60).unwrap();
        assert!(keys("other-secret").verify(&token).is_err());
        assert!(k.verify("not.a.token").is_err());
        assert!(k.verify("").is_err());
        // tampered payload
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        parts[1] = parts[1].chars().rev().collect();
        assert!(k.verify(&parts.join(".")).is_err());
        // "none" algorithm
        let none = format!("eyJhbGciOiJub25lIn0.{}.", token.split('.').nth(1).unwrap());
        assert!(k.verify(&none).is_err());
        assert!(!format!("{k:?}").contains("local-secret"));
    }
}
