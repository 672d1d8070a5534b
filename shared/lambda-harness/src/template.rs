//! `template.yaml` read as data: its functions (build binary, runtime, environment, IAM actions),
//! its HTTP routes (method, path, authorization, target function) and its table. YAML short-form
//! intrinsics (`!Ref X`, `!GetAtt X.Arn`, `!Sub "…"`) and their long forms (`{"Ref": X}`, …)
//! both read as [`Intrinsic`]s.
//!
//! A policy statement written `!If [Condition, statement, !Ref AWS::NoValue]` is a [`Grant`]
//! with [`Grant::when`]. A [`Deployment`] is one set of parameter values (the others take their
//! `Default`): with it the template's `Conditions` and `Rules` are evaluated
//! ([`Deployment::condition`], [`Deployment::rules`]), a function's statements narrowed to those
//! that deployment gets ([`Function::under`]) and its environment resolved as CloudFormation
//! would ([`Template::resolved_env`]).

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

/// One Allow statement of a function's inline policy: its actions, resources and condition, and
/// the template condition it depends on, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub actions: Vec<String>,
    /// `Condition.ForAllValues:StringLike.dynamodb:LeadingKeys`, e.g. `IDEMPOTENCY#*`.
    pub leading_keys: Option<Vec<String>>,
    /// Its `Resource` (one or several), as written.
    pub resources: Vec<Value>,
    /// Its `Condition` block, as written.
    pub condition: Option<Value>,
    /// `Some((name, true))`: the statement is written `!If [name, statement, !Ref AWS::NoValue]`,
    /// so a deployment has it only while template condition `name` holds (`false`: the else
    /// branch, only while it does not). `None`: always there.
    pub when: Option<(String, bool)>,
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

    /// The text of each `!Sub` resource (`arn:${AWS::Partition}:ssm:…:parameter${Name}`).
    pub fn resource_texts(&self) -> Vec<String> {
        self.resources.iter().filter_map(|r| sub_text(r).or_else(|| r.as_str().map(str::to_owned))).collect()
    }

    /// The values its `Condition` gives `operator` / `key` (one or a list), as `!Sub` text or
    /// literal text, e.g. `StringEquals` / `kms:EncryptionContext:PARAMETER_ARN`.
    pub fn condition_values(&self, operator: &str, key: &str) -> Vec<String> {
        let Some(v) = self.condition.as_ref().and_then(|c| get(c, &[operator, key])) else { return Vec::new() };
        let one = |v: &Value| sub_text(v).or_else(|| v.as_str().map(str::to_owned));
        match v {
            Value::Sequence(list) => list.iter().filter_map(one).collect(),
            other => one(other).into_iter().collect(),
        }
    }
}

/// The template parameter a `!Sub` text ends with, as in `…:parameter${Name}` → `Name`.
pub fn trailing_parameter(text: &str) -> Option<&str> {
    text.strip_suffix('}')?.rsplit_once("${").map(|(_, name)| name).filter(|n| !n.contains("::"))
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
    /// Every IAM action of its inline policy statements (`Policies`), e.g. `dynamodb:Query`,
    /// conditional statements included (see [`Function::under`]).
    pub actions: BTreeSet<String>,
    /// Each Allow statement: actions, `dynamodb:LeadingKeys` patterns, resources, condition, and
    /// the template condition it depends on.
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
    /// `Conditions`: name → expression, as written.
    pub conditions: BTreeMap<String, Value>,
    /// `Rules`: name → `{RuleCondition, Assertions}`, as written.
    pub rules: BTreeMap<String, Value>,
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
                for item in policy.get("Statement").and_then(Value::as_sequence).into_iter().flatten() {
                    // `!If [Cond, statement, !Ref AWS::NoValue]`: the statement, when Cond holds.
                    let mut branches: Vec<(Value, Option<(String, bool)>)> = Vec::new();
                    match intrinsic(item) {
                        Some(i) if i.name == "Fn::If" => {
                            let Some([cond, then, otherwise]) = i.arg.as_sequence().map(Vec::as_slice) else {
                                return Err(format!("{id}: a policy statement's !If is not [condition, then, else]"));
                            };
                            let cond = cond.as_str().ok_or_else(|| format!("{id}: !If names no condition"))?;
                            for (branch, holds) in [(then, true), (otherwise, false)] {
                                if ref_target(branch).as_deref() != Some("AWS::NoValue") {
                                    branches.push((branch.clone(), Some((cond.to_owned(), holds))));
                                }
                            }
                        }
                        Some(i) => return Err(format!("{id}: a policy statement is {}, not a statement", i.name)),
                        None => branches.push((item.clone(), None)),
                    }
                    for (st, when) in branches {
                        let st = &st;
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
                        let statement_resources: Vec<Value> = match st.get("Resource") {
                            Some(Value::Sequence(list)) => list.clone(),
                            Some(r) => vec![r.clone()],
                            None => Vec::new(),
                        };
                        policy_resources.extend(statement_resources.iter().cloned());
                        grants.push(Grant {
                            actions: statement_actions,
                            leading_keys,
                            resources: statement_resources,
                            condition: st.get("Condition").cloned(),
                            when,
                        });
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
            conditions: map_of("Conditions"),
            rules: map_of("Rules"),
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

    /// The deployment that sets `values` (parameter name, value) and leaves every other
    /// parameter at its `Default` (one without a default and not given has no value). An unknown
    /// parameter or a value outside `AllowedValues` is an error; `AllowedPattern` is not checked.
    pub fn deployment(&self, values: &[(&str, &str)]) -> Result<Deployment, String> {
        let mut parameters = BTreeMap::new();
        for (name, decl) in &self.parameters {
            if let Some(d) = scalar(decl.get("Default")) {
                parameters.insert(name.clone(), d);
            }
        }
        for (name, value) in values {
            let decl = self.parameters.get(*name).ok_or_else(|| format!("template.yaml has no parameter {name}"))?;
            if let Some(allowed) = decl.get("AllowedValues").and_then(Value::as_sequence) {
                let ok = allowed.iter().filter_map(|a| scalar(Some(a))).any(|a| a == *value);
                if !ok {
                    return Err(format!("parameter {name}: {value:?} is not among its AllowedValues"));
                }
            }
            parameters.insert((*name).to_owned(), (*value).to_owned());
        }
        let mut conditions = BTreeMap::new();
        for name in self.conditions.keys() {
            let holds = eval_condition(self, &parameters, name, 0)?;
            conditions.insert(name.clone(), holds);
        }
        Ok(Deployment { parameters, conditions, rules: self.rules.clone() })
    }

    /// `function`'s environment as CloudFormation would set it in `deployment`: `!Ref` of a
    /// parameter its value; `!Ref` of a resource, `!GetAtt` and the pseudo parameters a fixed
    /// stand-in (`resource` gives the value of a `!Ref` to a resource, e.g. the table's name);
    /// `!Sub` with every `${…}` replaced the same way.
    pub fn resolved_env(
        &self,
        function: &Function,
        deployment: &Deployment,
        resource: &dyn Fn(&str) -> String,
    ) -> Result<BTreeMap<String, String>, String> {
        let name_value = |name: &str| -> String {
            match name {
                "AWS::Region" => "ap-south-1".to_owned(),
                "AWS::AccountId" => "123456789012".to_owned(),
                "AWS::Partition" => "aws".to_owned(),
                "AWS::URLSuffix" => "amazonaws.com".to_owned(),
                "AWS::StackName" => "parkpay".to_owned(),
                other => match deployment.parameters.get(other) {
                    Some(v) => v.clone(),
                    None => resource(other),
                },
            }
        };
        let mut env = BTreeMap::new();
        for (k, v) in &function.env {
            let value = if let Some(target) = ref_target(v) {
                name_value(&target)
            } else if let Some(text) = sub_text(v) {
                let mut out = String::new();
                let mut rest = text.as_str();
                while let Some(start) = rest.find("${") {
                    out.push_str(&rest[..start]);
                    let end = rest[start..].find('}').ok_or_else(|| format!("{k}: unclosed ${{ in {text}"))? + start;
                    out.push_str(&name_value(&rest[start + 2..end]));
                    rest = &rest[end + 1..];
                }
                out.push_str(rest);
                out
            } else if let Some(text) = scalar(Some(v)) {
                text
            } else {
                return Err(format!("{}: {k} = {v:?}: not a value this harness resolves", function.logical_id));
            };
            env.insert(k.clone(), value);
        }
        Ok(env)
    }
}

/// One set of template parameter values, with the template's conditions evaluated for it.
#[derive(Debug, Clone)]
pub struct Deployment {
    /// Every parameter that has a value (given, or its `Default`).
    pub parameters: BTreeMap<String, String>,
    /// Every template condition and whether it holds.
    pub conditions: BTreeMap<String, bool>,
    rules: BTreeMap<String, Value>,
}

impl Deployment {
    /// A parameter's value in this deployment.
    pub fn parameter(&self, name: &str) -> Option<&str> {
        self.parameters.get(name).map(String::as_str)
    }

    /// Whether template condition `name` holds (`None`: no such condition).
    pub fn condition(&self, name: &str) -> Option<bool> {
        self.conditions.get(name).copied()
    }

    /// The template's `Rules`, as CloudFormation checks them before creating or updating a stack:
    /// `Err` lists the `AssertDescription` of every assertion that fails (in a rule whose
    /// `RuleCondition` holds).
    pub fn rules(&self) -> Result<(), Vec<String>> {
        let mut failed = Vec::new();
        for (name, rule) in &self.rules {
            let applies = match rule.get("RuleCondition") {
                None => Ok(true),
                Some(c) => eval_rule_expr(&self.parameters, c),
            };
            match applies {
                Ok(false) => continue,
                Ok(true) => {}
                Err(e) => {
                    failed.push(format!("rule {name}: {e}"));
                    continue;
                }
            }
            for a in rule.get("Assertions").and_then(Value::as_sequence).into_iter().flatten() {
                let what = scalar(a.get("AssertDescription")).unwrap_or_else(|| format!("rule {name}"));
                match a.get("Assert").map(|x| eval_rule_expr(&self.parameters, x)) {
                    Some(Ok(true)) => {}
                    Some(Ok(false)) => failed.push(what),
                    Some(Err(e)) => failed.push(format!("rule {name}: {e}")),
                    None => failed.push(format!("rule {name}: an assertion without Assert")),
                }
            }
        }
        if failed.is_empty() { Ok(()) } else { Err(failed) }
    }
}

impl Function {
    /// This function as `deployment` gets it: only the statements whose template condition holds
    /// there (and `actions` and `resources` of those only).
    pub fn under(&self, deployment: &Deployment) -> Function {
        let grants: Vec<Grant> = self
            .grants
            .iter()
            .filter(|g| match &g.when {
                None => true,
                Some((name, holds)) => deployment.condition(name) == Some(*holds),
            })
            .cloned()
            .collect();
        Function {
            actions: grants.iter().flat_map(|g| g.actions.iter().cloned()).collect(),
            resources: grants.iter().flat_map(|g| g.resources.iter().cloned()).collect(),
            grants,
            ..self.clone()
        }
    }
}

/// A value in a condition or rule: a literal, or `!Ref` of a parameter.
fn operand(parameters: &BTreeMap<String, String>, v: &Value) -> Result<String, String> {
    if let Some(target) = ref_target(v) {
        return parameters.get(&target).cloned().ok_or_else(|| format!("!Ref {target}: no such parameter value"));
    }
    scalar(Some(v)).ok_or_else(|| format!("{v:?} is not a value"))
}

/// `Fn::Equals`, `Fn::Not`, `Fn::And`, `Fn::Or` over parameters; `Condition: X` (in `Conditions`)
/// through `named`.
fn eval_bool(
    parameters: &BTreeMap<String, String>,
    v: &Value,
    named: &mut dyn FnMut(&str) -> Result<bool, String>,
) -> Result<bool, String> {
    let i = intrinsic(v).ok_or_else(|| format!("{v:?} is not a condition function"))?;
    let args = || i.arg.as_sequence().cloned().ok_or_else(|| format!("{} takes a list", i.name));
    match i.name.as_str() {
        "Fn::Equals" => match args()?.as_slice() {
            [a, b] => Ok(operand(parameters, a)? == operand(parameters, b)?),
            _ => Err("Fn::Equals takes two values".into()),
        },
        "Fn::Not" => match args()?.as_slice() {
            [x] => Ok(!eval_bool(parameters, x, named)?),
            _ => Err("Fn::Not takes one condition".into()),
        },
        "Fn::And" | "Fn::Or" => {
            let mut results = Vec::new();
            for x in args()? {
                results.push(eval_bool(parameters, &x, named)?);
            }
            Ok(if i.name == "Fn::And" { results.iter().all(|b| *b) } else { results.iter().any(|b| *b) })
        }
        "Condition" => named(i.arg.as_str().ok_or("Condition names no condition")?),
        other => Err(format!("{other} is not evaluated by this harness")),
    }
}

fn eval_condition(
    t: &Template,
    parameters: &BTreeMap<String, String>,
    name: &str,
    depth: usize,
) -> Result<bool, String> {
    if depth > 16 {
        return Err(format!("condition {name}: conditions refer to each other in a loop"));
    }
    let expr = t.conditions.get(name).ok_or_else(|| format!("no condition {name}"))?;
    eval_bool(parameters, expr, &mut |other| eval_condition(t, parameters, other, depth + 1))
        .map_err(|e| format!("condition {name}: {e}"))
}

fn eval_rule_expr(parameters: &BTreeMap<String, String>, v: &Value) -> Result<bool, String> {
    eval_bool(parameters, v, &mut |name| Err(format!("a rule names condition {name}; rules cannot")))
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

    #[test]
    fn conditional_statements_conditions_rules_and_resolved_env() {
        let t = Template::parse(
            r#"
Parameters:
  A: {Type: String, Default: ""}
  V: {Type: String, Default: v1, AllowedValues: [v1, v2]}
Conditions:
  HasA: !Not [!Equals [!Ref A, ""]]
  Either: !Or [!Equals [!Ref V, v2], !Condition HasA]
Rules:
  V2NeedsA:
    RuleCondition: !Equals [!Ref V, v2]
    Assertions:
      - Assert: !Not [!Equals [!Ref A, ""]]
        AssertDescription: v2 needs A
Resources:
  F:
    Type: AWS::Serverless::Function
    Properties:
      Environment:
        Variables:
          NAME: !Ref A
          ARN: !Sub "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter${A}"
          TABLE: !Ref T
      Policies:
        - Statement:
            - Effect: Allow
              Action: dynamodb:Query
              Resource: !GetAtt T.Arn
            - !If
              - HasA
              - Effect: Allow
                Action: [ssm:GetParameter]
                Resource: !Sub "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter${A}"
                Condition:
                  StringEquals:
                    kms:EncryptionContext:PARAMETER_ARN: [!Sub "x${A}", "y"]
              - !Ref AWS::NoValue
"#,
        )
        .unwrap();
        let f = &t.functions["F"];
        assert_eq!(f.grants.len(), 2);
        assert_eq!(f.grants[1].when, Some(("HasA".to_owned(), true)));
        assert_eq!(f.grants[1].condition_values("StringEquals", "kms:EncryptionContext:PARAMETER_ARN"), ["x${A}", "y"]);
        assert_eq!(trailing_parameter(&f.grants[1].resource_texts()[0]), Some("A"));
        assert!(f.actions.contains("ssm:GetParameter"), "actions count every statement");

        let defaults = t.deployment(&[]).unwrap();
        assert_eq!((defaults.condition("HasA"), defaults.condition("Either")), (Some(false), Some(false)));
        assert!(defaults.rules().is_ok());
        let under = f.under(&defaults);
        assert_eq!(under.grants.len(), 1);
        assert!(!under.actions.contains("ssm:GetParameter"));

        let v2 = t.deployment(&[("V", "v2"), ("A", "/p")]).unwrap();
        assert_eq!((v2.condition("HasA"), v2.condition("Either")), (Some(true), Some(true)));
        assert!(v2.rules().is_ok());
        assert_eq!(f.under(&v2).grants.len(), 2);
        let env = t.resolved_env(f, &v2, &|r| format!("{r}-1")).unwrap();
        assert_eq!(env["NAME"], "/p");
        assert_eq!(env["ARN"], "arn:aws:ssm:ap-south-1:123456789012:parameter/p");
        assert_eq!(env["TABLE"], "T-1");

        let broken = t.deployment(&[("V", "v2")]).unwrap();
        assert_eq!(broken.rules(), Err(vec!["v2 needs A".to_owned()]));
        assert!(t.deployment(&[("V", "v3")]).is_err());
        assert!(t.deployment(&[("Nope", "x")]).is_err());
    }
}
