//! Who is calling. Behind API Gateway the HTTP API's JWT authorizer has already verified the
//! token and put its claims in the request context; the local server verifies the token itself
//! and fills the same context. Handlers read only the context, never the `Authorization` header.

use lambda_http::RequestExt;
use lambda_http::request::RequestContext;
use parkpay_domain::UserId;

use crate::http::ApiError;

/// The group that marks an operator (Cognito group name or our `groups` claim).
pub const OPERATOR_GROUP: &str = "operator";
/// The group of a parking gate (or its attendant's device): it may record entries and exits and
/// read the revoked passes, nothing else an operator may.
pub const GATE_GROUP: &str = "gate";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub user_id: UserId,
    pub is_operator: bool,
    pub is_gate: bool,
}

/// The verified caller, or 401 when the request carries no usable identity.
pub fn caller(req: &lambda_http::Request) -> Result<Caller, ApiError> {
    let claims = match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => {
            ctx.authorizer.as_ref().and_then(|a| a.jwt.as_ref()).map(|j| &j.claims)
        }
        _ => None,
    };
    let claims = claims.ok_or_else(|| ApiError::unauthenticated("a bearer token is required"))?;
    let sub = claims.get("sub").ok_or_else(|| ApiError::unauthenticated("the token has no subject"))?;
    let user_id =
        UserId::parse(sub).map_err(|_| ApiError::unauthenticated("the token's subject is not a valid user id"))?;
    let in_group = |group: &str| {
        ["groups", "cognito:groups"]
            .iter()
            .filter_map(|k| claims.get(*k))
            .any(|v| parse_groups(v).iter().any(|g| g == group))
    };
    Ok(Caller { user_id, is_operator: in_group(OPERATOR_GROUP), is_gate: in_group(GATE_GROUP) })
}

/// The groups in a group claim. API Gateway flattens an array claim into `[operator admin]`:
/// split on spaces only, since a group name may contain a comma. A JSON array text
/// (`["operator"]`) is read element by element; a plain value without brackets is split on
/// spaces too.
pub fn parse_groups(value: &str) -> Vec<String> {
    if let Ok(list) = serde_json::from_str::<Vec<String>>(value) {
        return list;
    }
    let value = value.trim();
    let inner = value.strip_prefix('[').and_then(|v| v.strip_suffix(']')).unwrap_or(value);
    inner.split(' ').filter(|s| !s.is_empty()).map(str::to_owned).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_claim_forms() {
        assert_eq!(parse_groups("[operator admin]"), vec!["operator", "admin"]);
        assert_eq!(parse_groups(r#"["operator","x"]"#), vec!["operator", "x"]);
        assert_eq!(parse_groups("operator"), vec!["operator"]);
        assert!(parse_groups("[]").is_empty());
        assert_eq!(parse_groups("[operators]"), vec!["operators"]);
        // A comma belongs to the group's name: "ops,admin" is one group, not an operator.
        assert_eq!(parse_groups("[ops,admin operator]"), vec!["ops,admin", "operator"]);
        assert_eq!(parse_groups("ops,admin"), vec!["ops,admin"]);
        assert_eq!(parse_groups(r#"["ops,admin"]"#), vec!["ops,admin"]);
        assert_eq!(parse_groups("a, operator"), vec!["a,", "operator"]);
        assert_eq!(parse_groups("[x,operator]"), vec!["x,operator"]);
        assert_eq!(parse_groups(" [a  b] "), vec!["a", "b"]);
    }
}
