//! `template.yaml` read as data: its functions (build binary, runtime, environment, IAM actions),
//! its HTTP routes (method, path, authorization, target function) and its table. YAML short-form
//! intrinsics (`!Ref X`, `!GetAtt X.Arn`, `!Sub "…"`) and their long forms (`{"Ref": X}`, …)
//! both read as [`Intrinsic`]s.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_norway::Value;

/// A value that is an intrinsic function: `Ref`, `Fn::GetAtt`, `Fn::Sub`, … and its argument.
#[derive(Debug, Clone, PartialEq)]
pub struct Intrinsic {
    pub name: String,
    pub arg: Value,
}

/// The intrinsic in `v`, if it is one.
pub fn intrinsic(v: &Value) -> Option<Intrinsic> {
    match v {
        Value::Tagged(t) => {
            let tag = t.tag.to_string();
            let short = tag.trim_start_matches('!');
            let name = if short == "Ref" || short == "Condition" { short.to_owned() } else { format!("Fn::{short}") };
            Some(Intrinsic { name, arg: t.value.clone() })
        }
        Value::Mapping(m) if m.len() == 1 => {
            let (k, arg) = m.iter().next()?;
            let k = k.as_str()?;
            (k == "Ref" || k.starts_with("Fn::")).then(|| Intrinsic { name: k.to_owned(), arg: arg.clone() })
        }
        _ => None,
    }
}

/// `!Ref X` → `X`.
pub fn ref_target(v: &Value) -> Option<String> {
    let i = intrinsic(v)?;
    (i.name == "Ref").then(|| i.arg.as_str().map(str::to_owned)).flatten()
}

/// `!GetAtt X.Arn` or `{"Fn::GetAtt": [X, Arn]}` → (`X`, `Arn`).
pub fn getatt_target(v: &Value) -> Option<(String, String)> {
    let i = intrinsic(v)?;
    if i.name != "Fn::GetAtt" {
        return None;
    }
    match &i.arg {
        Value::String(s) => s.split_once('.').map(|(a, b)| (a.to_owned(), b.to_owned())),
        Value::Sequence(seq) if seq.len() == 2 => Some((seq[0].as_str()?.to_owned(), seq[1].as_str()?.to_owned())),
        _ => None,
    }
}

/// `!Sub "text"` → `text`.
pub fn sub_text(v: &Value) -> Option<String> {
    let i = intrinsic(v)?;
    if i.name != "Fn::Sub" {
        return None;
    }
    match &i.arg {
        Value::String(s) => Some(s.clone()),
        Value::Sequence(seq) => seq.first()?.as_str().map(str::to_owned),
        _ => None,
    }
}

fn get<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(v, |v, key| v.get(*key))
}

fn scalar(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// One Allow statement of a function's inline policy, as far as DynamoDB's item-level condition
/// goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub actions: Vec<String>,
    /// `Condition.ForAllValues:StringLike.dynamodb:LeadingKeys`, e.g. `IDEMPOTENCY#*`.
    pub leading_keys: Option<Vec<String>>,
}

impl Grant {
    /// Whether this statement allows `action` on an item whose partition key starts with
    /// `leading_key` (`None`: not a call on one item, so a condition on the key is not judged).
    pub fn allows(&self, action: &str, leading_key: Option<&str>) -> bool {
        self.actions.iter().any(|a| a == action)
            && match (&self.leading_keys, leading_key) {
                (None, _) | (Some(_), None) => true,
                (Some(patterns), Some(key)) => patterns.iter().any(|p| match p.strip_suffix('*') {
                    Some(prefix) => key.starts_with(prefix) || prefix.starts_with(key),
                    None => p == key,
                }),
            }
    }
}

/// An `AWS::Serverless::Function`, with `Globals.Function` applied.
#[derive(Debug, Clone)]
pub struct Function {
    pub logical_id: String,
    pub build_method: Option<String>,
    /// `Metadata.BuildProperties.Binary`.
    pub binary: Option<String>,
    pub runtime: Option<String>,
    pub architectures: Vec<String>,
    pub handler: Option<String>,
    pub code_uri: Option<String>,
    /// Environment variables (globals then the function's own), values as written.
    pub env: BTreeMap<String, Value>,
    /// Every IAM action of its inline policy statements (`Policies`), e.g. `dynamodb:Query`.
    pub actions: BTreeSet<String>,
    /// Each Allow statement's actions with its `dynamodb:LeadingKeys` patterns (`None`: no such
    /// condition).
    pub grants: Vec<Grant>,
    /// Every resource those statements name (as written, e.g. `GetAtt Table.Arn`).
    pub resources: Vec<Value>,
    /// Its SAM `Events` (none for the HTTP functions: routes are ApiGatewayV2 resources).
    pub events: BTreeMap<String, Value>,
    /// `LoggingConfig.LogGroup` (the function's, else the globals'), as written.
    pub log_group: Option<Value>,
    /// `Tracing` (X-Ray), e.g. `Active`.
    pub tracing: Option<String>,
}

/// An `AWS::Logs::LogGroup`.
#[derive(Debug, Clone)]
pub struct LogGroup {
    pub logical_id: String,
    /// `LogGroupName`, as written.
    pub name: Option<Value>,
    /// `RetentionInDays`, as written.
    pub retention: Option<Value>,
}

/// A metric an alarm or a metric filter names.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricRef {
    pub namespace: String,
    pub name: String,
    /// (name, value as written)
    pub dimensions: Vec<(String, Value)>,
}

/// An `AWS::CloudWatch::Alarm`.
#[derive(Debug, Clone)]
pub struct Alarm {
    pub logical_id: String,
    pub alarm_actions: Vec<Value>,
    pub ok_actions: Vec<Value>,
    /// The metrics it reads: its own (`MetricName`), or those of its `Metrics` (`MetricStat`).
    pub metrics: Vec<MetricRef>,
}

/// An `AWS::ApiGatewayV2::Route` and what it leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRoute {
    pub logical_id: String,
    pub method: String,
    pub path: String,
    /// `JWT` or `NONE`.
    pub authorization: String,
    /// The authorizer's logical id (for `JWT`).
    pub authorizer: Option<String>,
    /// The function its integration invokes (logical id).
    pub function: Option<String>,
    /// The integration's payload format version.
    pub payload_format: Option<String>,
    /// Whether some `AWS::Lambda::Permission` lets API Gateway invoke that function.
    pub invoke_permission: bool,
}

/// A global secondary index: (name, hash key, range key, projection type).
pub type Index = (String, Option<String>, Option<String>, Option<String>);

/// The key attributes, keys and indexes of an `AWS::DynamoDB::Table`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Table {
    pub logical_id: String,
    pub billing_mode: Option<String>,
    /// (name, type), sorted by name.
    pub attributes: Vec<(String, String)>,
    /// (hash, range).
    pub key: (Option<String>, Option<String>),
    pub indexes: Vec<Index>,
    pub point_in_time_recovery: bool,
    pub ttl_attribute: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Template {
    pub functions: BTreeMap<String, Function>,
    pub routes: Vec<HttpRoute>,
    pub tables: Vec<Table>,
    pub log_groups: BTreeMap<String, LogGroup>,
    pub alarms: BTreeMap<String, Alarm>,
    /// The metrics `AWS::Logs::MetricFilter`s publish.
    pub metric_filters: Vec<MetricRef>,
    /// Logical ids of `AWS::ApiGatewayV2::Authorizer`s of type JWT.
    pub jwt_authorizers: BTreeSet<String>,
    pub parameters: BTreeMap<String, Value>,
    pub outputs: BTreeMap<String, Value>,
}

impl Template {
    pub fn load(path: &Path) -> Result<Template, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Self::parse(&text)
    }

    pub fn parse(text: &str) -> Result<Template, String> {
        let doc: Value = serde_norway::from_str(text).map_err(|e| format!("template.yaml: {e}"))?;
        let resources = doc.get("Resources").and_then(Value::as_mapping).ok_or("template.yaml has no Resources")?;
        let globals = get(&doc, &["Globals", "Function"]).cloned().unwrap_or(Value::Null);
        let by_type = |ty: &'static str| {
            resources
                .iter()
                .filter(move |(_, r)| r.get("Type").and_then(Value::as_str) == Some(ty))
                .filter_map(|(k, r)| Some((k.as_str()?.to_owned(), r)))
        };

        let mut functions = BTreeMap::new();
        for (id, res) in by_type("AWS::Serverless::Function") {
            let props = res.get("Properties").cloned().unwrap_or(Value::Null);
            let prop = |name: &str| props.get(name).or_else(|| globals.get(name));
            let mut env = BTreeMap::new();
            for source in [get(&globals, &["Environment", "Variables"]), get(&props, &["Environment", "Variables"])] {
                if let Some(vars) = source.and_then(Value::as_mapping) {
                    for (k, v) in vars {
                        if let Some(k) = k.as_str() {
                            env.insert(k.to_owned(), v.clone());
                        }
                    }
                }
            }
            let mut actions = BTreeSet::new();
            let mut grants = Vec::new();
            let mut policy_resources = Vec::new();
            for policy in props.get("Policies").and_then(Value::as_sequence).into_iter().flatten() {
                for st in policy.get("Statement").and_then(Value::as_sequence).into_iter().flatten() {
                    let mut statement_actions = Vec::new();
                    match st.get("Action") {
                        Some(Value::String(a)) => statement_actions.push(a.clone()),
                        Some(Value::Sequence(list)) => {
                            statement_actions.extend(list.iter().filter_map(|a| a.as_str().map(str::to_owned)))
                        }
                        _ => {}
                    }
                    let leading_keys = get(st, &["Condition", "ForAllValues:StringLike", "dynamodb:LeadingKeys"])
                        .and_then(Value::as_sequence)
                        .map(|l| l.iter().filter_map(|p| p.as_str().map(str::to_owned)).collect());
                    actions.extend(statement_actions.iter().cloned());
                    grants.push(Grant { actions: statement_actions, leading_keys });
                    match st.get("Resource") {
                        Some(Value::Sequence(list)) => policy_resources.extend(list.iter().cloned()),
                        Some(r) => policy_resources.push(r.clone()),
                        None => {}
                    }
                }
            }
            let events = props
                .get("Events")
                .and_then(Value::as_mapping)
                .map(|m| m.iter().filter_map(|(k, v)| Some((k.as_str()?.to_owned(), v.clone()))).collect())
                .unwrap_or_default();
            functions.insert(
                id.clone(),
                Function {
                    logical_id: id.clone(),
                    build_method: scalar(get(res, &["Metadata", "BuildMethod"])),
                    binary: scalar(get(res, &["Metadata", "BuildProperties", "Binary"])),
                    runtime: scalar(prop("Runtime")),
                    architectures: prop("Architectures")
                        .and_then(Value::as_sequence)
                        .map(|s| s.iter().filter_map(|a| a.as_str().map(str::to_owned)).collect())
                        .unwrap_or_default(),
                    handler: scalar(prop("Handler")),
                    code_uri: scalar(prop("CodeUri")),
                    env,
                    actions,
                    grants,
                    resources: policy_resources,
                    events,
                    log_group: get(&props, &["LoggingConfig", "LogGroup"])
                        .or_else(|| get(&globals, &["LoggingConfig", "LogGroup"]))
                        .cloned(),
                    tracing: scalar(prop("Tracing")),
                },
            );
        }

        // Integration id -> (function, payload format)
        let integrations: BTreeMap<String, (Option<String>, Option<String>)> =
            by_type("AWS::ApiGatewayV2::Integration")
                .map(|(id, res)| {
                    let props = res.get("Properties").cloned().unwrap_or(Value::Null);
                    let function = props.get("IntegrationUri").and_then(getatt_target).map(|(f, _)| f);
                    (id, (function, scalar(props.get("PayloadFormatVersion"))))
                })
                .collect();
        let permitted: BTreeSet<String> = by_type("AWS::Lambda::Permission")
            .filter_map(|(_, res)| {
                let props = res.get("Properties")?;
                let principal = props.get("Principal")?.as_str()?;
                let action = props.get("Action")?.as_str()?;
                (principal == "apigateway.amazonaws.com" && action == "lambda:InvokeFunction")
                    .then(|| ref_target(props.get("FunctionName")?))
                    .flatten()
            })
            .collect();
        let mut routes = Vec::new();
        for (id, res) in by_type("AWS::ApiGatewayV2::Route") {
            let props = res.get("Properties").cloned().unwrap_or(Value::Null);
            let key = scalar(props.get("RouteKey")).unwrap_or_default();
            let (method, path) =
                key.split_once(' ').map(|(m, p)| (m.to_owned(), p.to_owned())).unwrap_or((key.clone(), String::new()));
            // Target: !Sub "integrations/${XIntegration}"
            let integration = props
                .get("Target")
                .and_then(sub_text)
                .and_then(|t| t.strip_prefix("integrations/${").and_then(|r| r.strip_suffix('}')).map(str::to_owned));
            let (function, payload_format) =
                integration.and_then(|i| integrations.get(&i).cloned()).unwrap_or((None, None));
            routes.push(HttpRoute {
                logical_id: id,
                method,
                path,
                authorization: scalar(props.get("AuthorizationType")).unwrap_or_else(|| "NONE".to_owned()),
                authorizer: props.get("AuthorizerId").and_then(ref_target),
                invoke_permission: function.as_ref().is_some_and(|f| permitted.contains(f)),
                function,
                payload_format,
            });
        }

        let mut tables = Vec::new();
        for (id, res) in by_type("AWS::DynamoDB::Table") {
            let props = res.get("Properties").cloned().unwrap_or(Value::Null);
            let mut attributes: Vec<(String, String)> = props
                .get("AttributeDefinitions")
                .and_then(Value::as_sequence)
                .into_iter()
                .flatten()
                .filter_map(|a| Some((scalar(a.get("AttributeName"))?, scalar(a.get("AttributeType"))?)))
                .collect();
            attributes.sort();
            let key_of = |schema: Option<&Value>, kind: &str| {
                schema
                    .and_then(Value::as_sequence)
                    .into_iter()
                    .flatten()
                    .find(|k| k.get("KeyType").and_then(Value::as_str) == Some(kind))
                    .and_then(|k| scalar(k.get("AttributeName")))
            };
            let indexes = props
                .get("GlobalSecondaryIndexes")
                .and_then(Value::as_sequence)
                .into_iter()
                .flatten()
                .map(|g| {
                    (
                        scalar(g.get("IndexName")).unwrap_or_default(),
                        key_of(g.get("KeySchema"), "HASH"),
                        key_of(g.get("KeySchema"), "RANGE"),
                        scalar(get(g, &["Projection", "ProjectionType"])),
                    )
                })
                .collect();
            let ttl_enabled =
                get(&props, &["TimeToLiveSpecification", "Enabled"]).and_then(Value::as_bool) == Some(true);
            tables.push(Table {
                logical_id: id,
                billing_mode: scalar(props.get("BillingMode")),
                attributes,
                key: (key_of(props.get("KeySchema"), "HASH"), key_of(props.get("KeySchema"), "RANGE")),
                indexes,
                point_in_time_recovery: get(
                    &props,
                    &["PointInTimeRecoverySpecification", "PointInTimeRecoveryEnabled"],
                )
                .and_then(Value::as_bool)
                    == Some(true),
                ttl_attribute: if ttl_enabled {
                    scalar(get(&props, &["TimeToLiveSpecification", "AttributeName"]))
                } else {
                    None
                },
            });
        }

        let log_groups = by_type("AWS::Logs::LogGroup")
            .map(|(id, r)| {
                let group = LogGroup {
                    logical_id: id.clone(),
                    name: get(r, &["Properties", "LogGroupName"]).cloned(),
                    retention: get(r, &["Properties", "RetentionInDays"]).cloned(),
                };
                (id, group)
            })
            .collect();
        let dimensions = |v: Option<&Value>, name_key: &str, value_key: &str| -> Vec<(String, Value)> {
            v.and_then(Value::as_sequence)
                .into_iter()
                .flatten()
                .filter_map(|d| Some((scalar(d.get(name_key))?, d.get(value_key)?.clone())))
                .collect()
        };
        let alarms = by_type("AWS::CloudWatch::Alarm")
            .map(|(id, r)| {
                let props = r.get("Properties").cloned().unwrap_or(Value::Null);
                let list = |key: &str| props.get(key).and_then(Value::as_sequence).cloned().unwrap_or_default();
                let mut metrics = Vec::new();
                if let (Some(namespace), Some(name)) = (scalar(props.get("Namespace")), scalar(props.get("MetricName")))
                {
                    metrics.push(MetricRef {
                        namespace,
                        name,
                        dimensions: dimensions(props.get("Dimensions"), "Name", "Value"),
                    });
                }
                for q in list("Metrics") {
                    let Some(m) = get(&q, &["MetricStat", "Metric"]) else { continue };
                    if let (Some(namespace), Some(name)) = (scalar(m.get("Namespace")), scalar(m.get("MetricName"))) {
                        metrics.push(MetricRef {
                            namespace,
                            name,
                            dimensions: dimensions(m.get("Dimensions"), "Name", "Value"),
                        });
                    }
                }
                let alarm = Alarm {
                    logical_id: id.clone(),
                    alarm_actions: list("AlarmActions"),
                    ok_actions: list("OKActions"),
                    metrics,
                };
                (id, alarm)
            })
            .collect();
        let metric_filters = by_type("AWS::Logs::MetricFilter")
            .flat_map(|(_, r)| {
                get(r, &["Properties", "MetricTransformations"])
                    .and_then(Value::as_sequence)
                    .cloned()
                    .unwrap_or_default()
            })
            .filter_map(|t| {
                Some(MetricRef {
                    namespace: scalar(t.get("MetricNamespace"))?,
                    name: scalar(t.get("MetricName"))?,
                    dimensions: dimensions(t.get("Dimensions"), "Key", "Value"),
                })
            })
            .collect();
        let jwt_authorizers = by_type("AWS::ApiGatewayV2::Authorizer")
            .filter(|(_, r)| get(r, &["Properties", "AuthorizerType"]).and_then(Value::as_str) == Some("JWT"))
            .map(|(id, _)| id)
            .collect();
        let map_of = |key: &str| -> BTreeMap<String, Value> {
            doc.get(key)
                .and_then(Value::as_mapping)
                .map(|m| m.iter().filter_map(|(k, v)| Some((k.as_str()?.to_owned(), v.clone()))).collect())
                .unwrap_or_default()
        };
        Ok(Template {
            functions,
            routes,
            tables,
            log_groups,
            alarms,
            metric_filters,
            jwt_authorizers,
            parameters: map_of("Parameters"),
            outputs: map_of("Outputs"),
        })
    }

    /// The function with short name `name` (`Route::name` or `ScheduledFunction::name`): its
    /// logical id comes from `ROUTES` / `SCHEDULED`.
    pub fn function_named(&self, name: &str) -> Option<&Function> {
        let logical_id = parkpay_api::ROUTES
            .iter()
            .find(|r| r.name == name)
            .map(|r| r.function)
            .or_else(|| parkpay_api::SCHEDULED.iter().find(|s| s.name == name).map(|s| s.function))?;
        self.functions.get(logical_id)
    }

    /// A parameter's `Default`, as text.
    pub fn parameter_default(&self, name: &str) -> Option<String> {
        scalar(self.parameters.get(name)?.get("Default"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intrinsics_short_and_long() {
        let v: Value = serde_norway::from_str(
            "a: !Ref X\nb: {Ref: Y}\nc: !GetAtt T.Arn\nd: {'Fn::GetAtt': [U, Arn]}\ne: !Sub 'x/${I}'",
        )
        .unwrap();
        assert_eq!(ref_target(&v["a"]).as_deref(), Some("X"));
        assert_eq!(ref_target(&v["b"]).as_deref(), Some("Y"));
        assert_eq!(getatt_target(&v["c"]), Some(("T".into(), "Arn".into())));
        assert_eq!(getatt_target(&v["d"]), Some(("U".into(), "Arn".into())));
        assert_eq!(sub_text(&v["e"]).as_deref(), Some("x/${I}"));
        assert_eq!(ref_target(&v["c"]), None);
    }
}
