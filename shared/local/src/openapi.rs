//! The API's OpenAPI document (`docs/openapi.yaml`, written by hand), served by the local server:
//!
//! - `GET /openapi.json`: the document as JSON (keys in the YAML's order);
//! - `GET /docs/`: a page rendered from it here, without scripts, styles from elsewhere or any
//!   network: every operation in the route table's order with its summary, description,
//!   security, parameters, request body and answers, schemas inlined as pretty JSON, and the
//!   error codes each status can carry.
//!
//! The YAML is compiled in and parsed once, on first use; `shared/local/tests/openapi_drift.rs`
//! fails when it does not parse or drifts from the code.

use std::fmt::Write as _;
use std::sync::LazyLock;

use axum::Router;
use axum::body::Body as AxumBody;
use axum::http::{Response as AxumResponse, header};
use axum::response::IntoResponse;
use axum::routing::get;
use parkpay_api::http::ApiError;
use serde_norway::Value;

/// The document as written.
pub const YAML: &str = include_str!("../../../docs/openapi.yaml");

struct Parsed {
    doc: Value,
    json: String,
    html: String,
}

static PARSED: LazyLock<Result<Parsed, String>> = LazyLock::new(|| {
    let doc: Value = serde_norway::from_str(YAML).map_err(|e| format!("docs/openapi.yaml: {e}"))?;
    let json = serde_json::to_string_pretty(&doc).map_err(|e| format!("docs/openapi.yaml as JSON: {e}"))?;
    let html = render_html(&doc);
    Ok(Parsed { doc, json, html })
});

/// The document as JSON text, or why the YAML could not be read.
pub fn json() -> Result<&'static str, String> {
    PARSED.as_ref().map(|p| p.json.as_str()).map_err(Clone::clone)
}

/// The document as a value (mappings keep the YAML's order).
pub fn document() -> Result<&'static Value, String> {
    PARSED.as_ref().map(|p| &p.doc).map_err(Clone::clone)
}

/// The `/docs/` page.
pub fn html() -> Result<&'static str, String> {
    PARSED.as_ref().map(|p| p.html.as_str()).map_err(Clone::clone)
}

/// `GET /openapi.json` and `GET /docs/`.
pub(crate) fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new().route("/openapi.json", get(serve_json)).route("/docs/", get(serve_html))
}

async fn serve_json() -> AxumResponse<AxumBody> {
    match json() {
        Ok(text) => ([(header::CONTENT_TYPE, "application/json")], text).into_response(),
        Err(e) => crate::api_error(ApiError::internal(e)),
    }
}

async fn serve_html() -> AxumResponse<AxumBody> {
    match html() {
        Ok(page) => ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], page).into_response(),
        Err(e) => crate::api_error(ApiError::internal(e)),
    }
}

// ---------------------------------------------------------------------------------------------
// The page.

const METHODS: [&str; 8] = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:0;color:#1b1b1b;line-height:1.45}\
main{max-width:72rem;margin:0 auto;padding:1rem 1.5rem 4rem}\
h2{border-top:2px solid #ccc;padding-top:1rem;margin-top:2.5rem}\
h3{margin-bottom:.3rem}\
code,pre{font-family:ui-monospace,monospace;font-size:.9em}\
pre{background:#f5f5f5;padding:.6rem;overflow-x:auto;border-radius:4px}\
details{margin:.3rem 0}summary{cursor:pointer}\
table{border-collapse:collapse;margin:.4rem 0}td,th{border:1px solid #ccc;padding:.2rem .5rem;text-align:left;vertical-align:top}\
.op{border:1px solid #ddd;border-radius:6px;padding:.2rem 1rem 1rem;margin:1.2rem 0}\
.method{font-weight:bold;text-transform:uppercase;padding:.1rem .4rem;border-radius:3px;background:#e3ecfa}\
.status{font-weight:bold}.codes code{margin-right:.4rem}.muted{color:#666}";

fn render_html(doc: &Value) -> String {
    let info = &doc["info"];
    let title = info["title"].as_str().unwrap_or("API");
    let version = info["version"].as_str().unwrap_or("");
    let mut out = String::with_capacity(256 * 1024);
    let _ = write!(
        out,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{t} {v}: HTTP API</title><style>{STYLE}</style></head><body><main>\
         <h1>{t} <span class=\"muted\">{v}</span></h1>",
        t = esc(title),
        v = esc(version),
    );
    if let Some(s) = info["summary"].as_str() {
        let _ = write!(out, "<p><strong>{}</strong></p>", esc(s));
    }
    out.push_str(
        "<p class=\"muted\">Rendered from <code>docs/openapi.yaml</code>; the document itself is at \
         <a href=\"/openapi.json\"><code>/openapi.json</code></a>.</p>",
    );
    out.push_str(&markdown(info["description"].as_str().unwrap_or("")));

    let ops = operations(doc);
    out.push_str("<h2 id=\"operations\">Operations</h2><table><tr><th>method</th><th>path</th><th>summary</th></tr>");
    for (path, method, op) in &ops {
        let _ = write!(
            out,
            "<tr><td><span class=\"method\">{m}</span></td><td><a href=\"#{id}\"><code>{p}</code></a></td><td>{s}</td></tr>",
            m = esc(method),
            id = esc(&anchor(path, method, op)),
            p = esc(path),
            s = esc(op["summary"].as_str().unwrap_or("")),
        );
    }
    out.push_str("</table>");
    if let Some(servers) = doc["servers"].as_sequence() {
        out.push_str("<h3>Servers</h3><ul>");
        for s in servers {
            let _ = write!(
                out,
                "<li><code>{}</code> {}</li>",
                esc(s["url"].as_str().unwrap_or("")),
                inline(s["description"].as_str().unwrap_or(""))
            );
        }
        out.push_str("</ul>");
    }

    for (path, method, op) in &ops {
        render_operation(&mut out, doc, path, method, op);
    }

    if let Some(schemes) = doc["components"]["securitySchemes"].as_mapping() {
        out.push_str("<h2 id=\"security\">Security schemes</h2>");
        for (name, scheme) in schemes {
            let name = name.as_str().unwrap_or("");
            let _ = write!(out, "<h3 id=\"security-{n}\">{n}</h3>", n = esc(name));
            let kind = match (scheme["type"].as_str(), scheme["scheme"].as_str(), scheme["name"].as_str()) {
                (Some("http"), Some(s), _) => format!("HTTP `{s}`"),
                (Some("apiKey"), _, Some(h)) => format!("header `{h}`"),
                (Some(t), _, _) => format!("`{t}`"),
                _ => String::new(),
            };
            out.push_str(&markdown(&kind));
            out.push_str(&markdown(scheme["description"].as_str().unwrap_or("")));
        }
    }
    if let Some(schemas) = doc["components"]["schemas"].as_mapping() {
        out.push_str("<h2 id=\"schemas\">Schemas</h2>");
        for (name, schema) in schemas {
            let name = name.as_str().unwrap_or("");
            let _ = write!(out, "<h3 id=\"schema-{n}\">{n}</h3>", n = esc(name));
            out.push_str(&pre_json(schema));
        }
    }
    out.push_str("</main></body></html>\n");
    out
}

/// Every operation: the route table's first, in its order, then any other the document has.
fn operations(doc: &Value) -> Vec<(String, String, &Value)> {
    let mut ops: Vec<(String, String, &Value)> = Vec::new();
    for route in parkpay_api::ROUTES {
        let method = route.method.to_ascii_lowercase();
        if let Some(op) = doc["paths"].get(route.path).and_then(|p| p.get(method.as_str())) {
            ops.push((route.path.to_owned(), method, op));
        }
    }
    if let Some(paths) = doc["paths"].as_mapping() {
        for (path, item) in paths {
            let Some(path) = path.as_str() else { continue };
            for method in METHODS {
                if let Some(op) = item.get(method)
                    && !ops.iter().any(|(p, m, _)| p == path && m == method)
                {
                    ops.push((path.to_owned(), method.to_owned(), op));
                }
            }
        }
    }
    ops
}

fn anchor(path: &str, method: &str, op: &Value) -> String {
    match op["operationId"].as_str() {
        Some(id) => format!("op-{id}"),
        None => format!("op-{method}-{}", path.replace(['/', '{', '}'], "-")),
    }
}

fn render_operation(out: &mut String, doc: &Value, path: &str, method: &str, op: &Value) {
    let _ = write!(
        out,
        "<section class=\"op\" id=\"{id}\"><h2><span class=\"method\">{m}</span> <code>{p}</code></h2>",
        id = esc(&anchor(path, method, op)),
        m = esc(method),
        p = esc(path),
    );
    if let Some(s) = op["summary"].as_str() {
        let _ = write!(out, "<p><strong>{}</strong></p>", esc(s));
    }
    if let Some(id) = op["operationId"].as_str() {
        let _ = write!(out, "<p class=\"muted\">operationId <code>{}</code></p>", esc(id));
    }
    out.push_str(&markdown(op["description"].as_str().unwrap_or("")));

    // Security: the operation's own, else the document's.
    let security = op.get("security").or_else(|| doc.get("security"));
    let names: Vec<String> = security
        .and_then(Value::as_sequence)
        .map(|reqs| reqs.iter().filter_map(Value::as_mapping).flat_map(|m| m.keys()).filter_map(Value::as_str))
        .into_iter()
        .flatten()
        .map(|n| format!("<a href=\"#security-{n}\"><code>{n}</code></a>", n = esc(n)))
        .collect();
    let _ = write!(
        out,
        "<p><strong>Security:</strong> {}</p>",
        if names.is_empty() { "none (no token)".to_owned() } else { names.join(" or ") }
    );

    // Parameters: the path item's and the operation's.
    let params: Vec<Value> = [doc["paths"][path].get("parameters"), op.get("parameters")]
        .into_iter()
        .flatten()
        .filter_map(Value::as_sequence)
        .flatten()
        .map(|p| resolve(doc, p, 0))
        .collect();
    if !params.is_empty() {
        out.push_str(
            "<h3>Parameters</h3><table><tr><th>name</th><th>in</th><th>required</th><th>schema</th><th>description</th></tr>",
        );
        for p in &params {
            let _ = write!(
                out,
                "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td></tr>",
                esc(p["name"].as_str().unwrap_or("")),
                esc(p["in"].as_str().unwrap_or("")),
                if p["required"].as_bool() == Some(true) { "yes" } else { "no" },
                esc(&serde_json::to_string(&p["schema"]).unwrap_or_default()),
                inline(p["description"].as_str().unwrap_or("")),
            );
        }
        out.push_str("</table>");
    }

    // Request body.
    if let Some(body) = op.get("requestBody") {
        let body = resolve(doc, body, 0);
        let required = if body["required"].as_bool() == Some(true) { "required" } else { "optional" };
        let _ = write!(out, "<h3>Request body <span class=\"muted\">({required})</span></h3>");
        out.push_str(&markdown(body["description"].as_str().unwrap_or("")));
        render_content(out, doc, &body["content"], true);
    }

    // Answers.
    out.push_str("<h3>Responses</h3>");
    if let Some(responses) = op["responses"].as_mapping() {
        for (status, response) in responses {
            let status = match status {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                _ => continue,
            };
            let response = resolve(doc, response, 0);
            let _ = write!(out, "<h4><span class=\"status\">{}</span></h4>", esc(&status));
            out.push_str(&markdown(response["description"].as_str().unwrap_or("")));
            let mut codes = Vec::new();
            for media in response["content"].as_mapping().into_iter().flat_map(|m| m.values()) {
                error_codes(&media["schema"], &mut codes);
            }
            if !codes.is_empty() {
                out.push_str("<p class=\"codes\"><strong>Error codes:</strong> ");
                for c in &codes {
                    let _ = write!(out, "<code>{}</code>", esc(c));
                }
                out.push_str("</p>");
            }
            if let Some(headers) = response["headers"].as_mapping() {
                out.push_str("<table><tr><th>header</th><th>required</th><th>schema</th><th>description</th></tr>");
                for (name, h) in headers {
                    let _ = write!(
                        out,
                        "<tr><td><code>{}</code></td><td>{}</td><td><code>{}</code></td><td>{}</td></tr>",
                        esc(name.as_str().unwrap_or("")),
                        if h["required"].as_bool() == Some(true) { "yes" } else { "no" },
                        esc(&serde_json::to_string(&h["schema"]).unwrap_or_default()),
                        inline(h["description"].as_str().unwrap_or("")),
                    );
                }
                out.push_str("</table>");
            }
            // Successes unfolded; an error's schema is the error shape, its codes listed above.
            render_content(out, doc, &response["content"], status.starts_with('2'));
        }
    }
    out.push_str("</section>");
}

/// Each media type's fields (for an object), schema (inlined; folded unless `open`) and examples.
fn render_content(out: &mut String, doc: &Value, content: &Value, open: bool) {
    let Some(content) = content.as_mapping() else { return };
    for (media, m) in content {
        let media = media.as_str().unwrap_or("");
        let schema = resolve(doc, &m["schema"], 0);
        fields_table(out, &schema);
        let _ = write!(
            out,
            "<details{}><summary>schema, <code>{}</code></summary>",
            if open { " open" } else { "" },
            esc(media)
        );
        out.push_str(&pre_json(&schema));
        out.push_str("</details>");
        if let Some(examples) = m["examples"].as_mapping() {
            for (name, example) in examples {
                let example = resolve(doc, example, 0);
                let _ = write!(
                    out,
                    "<details><summary>example <code>{}</code>{}</summary>",
                    esc(name.as_str().unwrap_or("")),
                    example["summary"].as_str().map(|s| format!(": {}", esc(s))).unwrap_or_default()
                );
                out.push_str(&pre_json(&example["value"]));
                out.push_str("</details>");
            }
        }
    }
}

/// A table of an object schema's fields: name, type, required, description.
fn fields_table(out: &mut String, schema: &Value) {
    let Some(props) = schema["properties"].as_mapping() else { return };
    let required: Vec<&str> =
        schema["required"].as_sequence().map(|r| r.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
    out.push_str("<table><tr><th>field</th><th>type</th><th>required</th><th>description</th></tr>");
    for (name, p) in props {
        let name = name.as_str().unwrap_or("");
        let _ = write!(
            out,
            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(name),
            esc(&type_of(p)),
            if required.contains(&name) { "yes" } else { "no" },
            inline(&p["description"].as_str().unwrap_or("").split_whitespace().collect::<Vec<_>>().join(" ")),
        );
    }
    out.push_str("</table>");
}

/// A short description of a schema's type: `string`, `string | null`, `array of object`,
/// `one of A, B`, `date-time`.
fn type_of(schema: &Value) -> String {
    if let Some(values) = schema["enum"].as_sequence() {
        let values: Vec<String> = values.iter().map(scalar).collect();
        return format!("one of {}", values.join(", "));
    }
    if !schema["const"].is_null() {
        return format!("= {}", scalar(&schema["const"]));
    }
    if let Some(options) = schema["oneOf"].as_sequence() {
        return options.iter().map(type_of).collect::<Vec<_>>().join(" | ");
    }
    let base = match &schema["type"] {
        Value::String(t) if t == "array" => format!("array of {}", type_of(&schema["items"])),
        Value::String(t) => t.clone(),
        Value::Sequence(ts) => ts.iter().map(scalar).collect::<Vec<_>>().join(" | "),
        _ => "any".to_owned(),
    };
    match schema["format"].as_str() {
        Some(f) => format!("{base} ({f})"),
        None => base,
    }
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "null".to_owned(),
        other => serde_json::to_string(other).unwrap_or_default(),
    }
}

/// The error codes a response schema allows: every `enum` under `properties.error.properties.code`.
fn error_codes(schema: &Value, out: &mut Vec<String>) {
    match schema {
        Value::Mapping(m) => {
            if let Some(codes) = schema["properties"]["error"]["properties"]["code"]["enum"].as_sequence() {
                for c in codes.iter().filter_map(Value::as_str) {
                    if !out.iter().any(|o| o == c) {
                        out.push(c.to_owned());
                    }
                }
            }
            for v in m.values() {
                error_codes(v, out);
            }
        }
        Value::Sequence(s) => s.iter().for_each(|v| error_codes(v, out)),
        _ => {}
    }
}

/// `value` with every local `$ref` (`#/…`) replaced by what it points at (siblings of the `$ref`
/// kept), to a bounded depth.
fn resolve(doc: &Value, value: &Value, depth: usize) -> Value {
    if depth > 16 {
        return value.clone();
    }
    match value {
        Value::Mapping(m) => {
            let target = m.get("$ref").and_then(Value::as_str).and_then(|r| r.strip_prefix("#/")).and_then(|pointer| {
                pointer.split('/').try_fold(doc, |v, part| v.get(part.replace("~1", "/").replace("~0", "~").as_str()))
            });
            let mut base = match target {
                Some(t) => match resolve(doc, t, depth + 1) {
                    Value::Mapping(t) => t,
                    other => return other,
                },
                None => serde_norway::Mapping::new(),
            };
            for (k, v) in m {
                if target.is_some() && k.as_str() == Some("$ref") {
                    continue;
                }
                base.insert(k.clone(), resolve(doc, v, depth + 1));
            }
            Value::Mapping(base)
        }
        Value::Sequence(s) => Value::Sequence(s.iter().map(|v| resolve(doc, v, depth + 1)).collect()),
        other => other.clone(),
    }
}

fn pre_json(value: &Value) -> String {
    format!("<pre>{}</pre>", esc(&serde_json::to_string_pretty(value).unwrap_or_default()))
}

/// HTML-escaped text.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The little Markdown the document's descriptions use: paragraphs, `- ` lists, `code` and
/// **bold**. Everything is escaped first.
fn markdown(text: &str) -> String {
    let mut out = String::new();
    for block in text.split("\n\n").map(str::trim).filter(|b| !b.is_empty()) {
        if block.starts_with("- ") {
            out.push_str("<ul>");
            // An item runs on over the indented lines that follow it.
            let mut items: Vec<String> = Vec::new();
            for line in block.lines() {
                match line.strip_prefix("- ") {
                    Some(item) => items.push(item.to_owned()),
                    None => {
                        if let Some(last) = items.last_mut() {
                            last.push(' ');
                            last.push_str(line.trim());
                        }
                    }
                }
            }
            for item in items {
                let _ = write!(out, "<li>{}</li>", inline(&item));
            }
            out.push_str("</ul>");
        } else {
            let _ = write!(out, "<p>{}</p>", inline(&block.split_whitespace().collect::<Vec<_>>().join(" ")));
        }
    }
    out
}

/// Escaped text with `code` and **bold** spans.
fn inline(text: &str) -> String {
    let mut out = String::new();
    for (i, part) in text.split('`').enumerate() {
        if i % 2 == 1 {
            let _ = write!(out, "<code>{}</code>", esc(part));
        } else {
            for (j, piece) in part.split("**").enumerate() {
                if j % 2 == 1 {
                    let _ = write!(out, "<strong>{}</strong>", esc(piece));
                } else {
                    out.push_str(&esc(piece));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_parses_and_renders() {
        let doc = document().expect("docs/openapi.yaml parses");
        assert_eq!(doc["openapi"].as_str(), Some("3.1.0"));
        let json: serde_json::Value = serde_json::from_str(json().unwrap()).unwrap();
        // The API's routes: the console's page is no operation of the document.
        let api_routes: Vec<_> = parkpay_api::ROUTES.iter().filter(|r| parkpay_api::console::is_api_route(r)).collect();
        let api_paths: std::collections::BTreeSet<&str> = api_routes.iter().map(|r| r.path).collect();
        assert_eq!(json["paths"].as_object().map(|p| p.len()), Some(api_paths.len()));
        let page = html().unwrap();
        for route in api_routes {
            assert!(page.contains(&format!("<code>{}</code>", esc(route.path))), "{}", route.path);
        }
        assert!(page.contains("<code>GATEWAY_BUSY</code>"));
        assert!(!page.contains("<script"));
    }

    #[test]
    fn escaping_and_inline_markup() {
        assert_eq!(esc("<a href=\"x\">'&'</a>"), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
        assert_eq!(inline("a `<b>` **c<d**"), "a <code>&lt;b&gt;</code> <strong>c&lt;d</strong>");
        assert_eq!(markdown("x\ny\n\n- a\n  b\n- c"), "<p>x y</p><ul><li>a b</li><li>c</li></ul>");
    }
}
