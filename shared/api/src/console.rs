//! The operators' console (`GET /console/`): a page where an operator signs in with their token,
//! finds a session, refunds, sees what needs a person and downloads a day's settlement report.
//! Its three static files (`console/` at the repository root) are compiled into the binary and
//! served by this one handler, on the local server and by `ConsoleFunction` on AWS alike. The
//! route takes no token: the page asks the operator for theirs and calls the API on the same
//! origin with it.
//!
//! One route serves all three files, because each route here is one function with one path:
//! `/console/` is the page, `/console/?asset=console.js` its script and
//! `/console/?asset=console.css` its stylesheet. The page has no inline script or style, so its
//! Content-Security-Policy allows nothing but its own origin.

use http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderName};
use http::{HeaderValue, StatusCode};
use lambda_http::{Body, Response};

use crate::http::ApiError;

/// The console's path (its route in `crate::ROUTES`).
pub const PATH: &str = "/console/";

/// Whether `route` is one of the API's (docs/openapi.yaml describes those): every route of
/// `crate::ROUTES` but the console's page.
pub fn is_api_route(route: &crate::Route) -> bool {
    route.endpoint != crate::Endpoint::Console
}

/// The query parameter naming one of the page's files ([`ASSETS`]).
pub const ASSET_PARAMETER: &str = "asset";

/// Every console answer's policy: scripts, styles and connections only from the page's own
/// origin (the API), no plugins, no `<base>`, forms only to itself, never framed. `blob:` images
/// are not needed (the report is downloaded through a `blob:` link, which is a navigation).
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
     frame-ancestors 'none'";

/// One file of the console.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Asset {
    /// Its `?asset=` name; `None` for the page itself.
    pub name: Option<&'static str>,
    pub content_type: &'static str,
    pub text: &'static str,
}

/// The page, its script and its stylesheet.
pub const ASSETS: &[Asset] = &[
    Asset { name: None, content_type: "text/html; charset=utf-8", text: include_str!("../../../console/index.html") },
    Asset {
        name: Some("console.js"),
        content_type: "text/javascript; charset=utf-8",
        text: include_str!("../../../console/console.js"),
    },
    Asset {
        name: Some("console.css"),
        content_type: "text/css; charset=utf-8",
        text: include_str!("../../../console/console.css"),
    },
];

/// The file `asset` names (`None`: the page); `None` for a name that is none of them.
pub fn asset(asset: Option<&str>) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.name == asset)
}

/// `GET /console/[?asset=NAME]`: the file, with the headers every console answer carries
/// (`Content-Security-Policy`, `X-Content-Type-Options: nosniff`, `Cache-Control: no-store`:
/// a new deployment's page is never mixed with an old script); 404 `ROUTE_NOT_FOUND` for an
/// asset name that is none of [`ASSETS`].
pub fn respond(asset_name: Option<&str>) -> Result<Response<Body>, ApiError> {
    let file = asset(asset_name)
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "ROUTE_NOT_FOUND", "the console has no such asset"))?;
    let mut resp = Response::new(Body::Text(file.text.to_owned()));
    *resp.status_mut() = StatusCode::OK;
    let headers = resp.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(file.content_type));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers
        .insert(HeaderName::from_static("content-security-policy"), HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    headers.insert(HeaderName::from_static("x-content-type-options"), HeaderValue::from_static("nosniff"));
    headers.insert(HeaderName::from_static("referrer-policy"), HeaderValue::from_static("no-referrer"));
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(resp: &Response<Body>) -> &str {
        match resp.body() {
            Body::Text(t) => t,
            other => panic!("a text body, not {other:?}"),
        }
    }

    #[test]
    fn serves_the_page_and_its_files_with_their_headers() {
        for (name, content_type, holds) in [
            (None, "text/html; charset=utf-8", "<!doctype html>"),
            (Some("console.js"), "text/javascript; charset=utf-8", "sessionStorage"),
            (Some("console.css"), "text/css; charset=utf-8", "body"),
        ] {
            let resp = respond(name).unwrap();
            assert_eq!(resp.status(), StatusCode::OK);
            let h = resp.headers();
            assert_eq!(h[CONTENT_TYPE], content_type, "{name:?}");
            assert_eq!(h[CACHE_CONTROL], "no-store");
            assert_eq!(h["x-content-type-options"], "nosniff");
            assert_eq!(h["content-security-policy"], CONTENT_SECURITY_POLICY);
            assert!(text(&resp).contains(holds), "{name:?}");
        }
        let e = respond(Some("../Cargo.toml")).unwrap_err();
        assert_eq!(e.into_response().status(), StatusCode::NOT_FOUND);
        assert!(respond(Some("")).is_err());
    }

    #[test]
    fn the_route_table_serves_it_without_a_token() {
        let crate::RouteMatch::Found { route, .. } = crate::match_route("GET", PATH) else {
            panic!("{PATH} is routed")
        };
        assert_eq!(route.endpoint, crate::Endpoint::Console);
        assert!(!route.requires_token && !route.uses_phonepe && !route.uses_pass_keys);
        assert!(!is_api_route(route));
        assert!(crate::ROUTES.iter().filter(|r| !is_api_route(r)).all(|r| r.endpoint == crate::Endpoint::Console));
    }

    /// The page loads its script and stylesheet through [`ASSET_PARAMETER`], and has no inline
    /// script, style or event handler the policy would block.
    #[test]
    fn the_page_keeps_to_its_policy() {
        let page = asset(None).unwrap().text;
        assert!(page.starts_with("<!doctype html>"), "hostile.rs and the events test know a page by this");
        assert!(page.contains(r#"<script src="?asset=console.js" defer></script>"#));
        assert!(page.contains(r#"<link rel="stylesheet" href="?asset=console.css">"#));
        assert_eq!(page.matches("<script").count(), 1, "one script, the file");
        assert!(!page.contains("<style") && !page.contains(" style="), "no inline style");
        let lower = page.to_ascii_lowercase();
        let handler = lower.match_indices(" on").any(|(i, _)| {
            let rest = &lower[i + 3..];
            let name_len = rest.bytes().take_while(u8::is_ascii_lowercase).count();
            name_len > 0 && rest[name_len..].trim_start().starts_with('=')
        });
        assert!(!handler, "no inline event handler attribute");
        let script = asset(Some("console.js")).unwrap().text;
        for sink in ["innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("] {
            assert!(!script.contains(sink), "console.js uses {sink}: build elements and set textContent");
        }
        assert!(!script.contains("localStorage"), "the token is kept in sessionStorage only");
    }
}
