//! The serverless checks, in one test binary:
//!
//! - `drift`: template.yaml ↔ `parkpay_api::ROUTES` (functions, routes, authorization, build
//!   binaries, the workspace's `[[bin]]`s), events/ ↔ functions, the table ↔
//!   `table_definition`, and each function's IAM actions and secrets.
//! - `events_in_process`: every file in events/ through `lambda_http::request::from_str` and
//!   `parkpay_api::handle`, on an embedded store seeded with the fixtures, against the simulator.
//! - `events_through_built_binaries`: the same files through the real function executables,
//!   each started against the Lambda Runtime API stand-in with the environment template.yaml
//!   gives it, on DynamoDB Local (`PARKPAY_DYNAMODB_ENDPOINT`) and the simulator.
//!
//! The scheduled function (`parkpay_api::SCHEDULED`: reconciliation) is checked the same ways:
//! its schedule, policy and event in `drift`, its event through `Reconciler::run_invocation` in
//! process and through its built binary (run first, see `lambda_harness::fixtures`).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use parkpay_api::reconcile::Reconciler;
use parkpay_api::state::Stores;
use parkpay_api::{Endpoint, ROUTES, SCHEDULED};
use parkpay_lambda_harness::dynamo_proxy::DynamoProxy;
use parkpay_lambda_harness::events::{self, EXPECTATIONS, EventFile};
use parkpay_lambda_harness::template::{self, Deployment, Function, Template, getatt_target, ref_target, sub_text};
use parkpay_lambda_harness::world::{self, Apis, Offline, World};
use parkpay_lambda_harness::{fixtures, process, workspace};
use parkpay_store::dynamo::table_definition;

fn template() -> Template {
    Template::load(&workspace::template_path()).unwrap_or_else(|e| panic!("{e}"))
}

fn event_files() -> Vec<EventFile> {
    events::load_dir(&workspace::events_dir()).unwrap_or_else(|e| panic!("{e}"))
}

/// The DynamoDB actions each function's code path uses (`parkpay_store::dynamo` module docs:
/// load_session = Query, find_txn = GetItem, commit = an UpdateItem of the session item after
/// PutItems of pointers, or a TransactWriteItems, which IAM authorizes per item as UpdateItem,
/// ConditionCheckItem and PutItem; Idempotency-Key records: PutItem, UpdateItem, DeleteItem).
/// `events_through_built_binaries` also checks each item-level call against the statements'
/// `dynamodb:LeadingKeys` conditions.
/// Change it with the code, and the template with it. `events_through_built_binaries` checks
/// the other direction: every call a function really made is allowed by its policy.
fn dynamodb_actions(endpoint: Endpoint) -> &'static [&'static str] {
    match endpoint {
        Endpoint::ListLots => &[],
        Endpoint::CreateSession => &["dynamodb:PutItem"],
        Endpoint::GetSession => &["dynamodb:Query"],
        // + resuming a payment by its merchant transaction id: find_txn = GetItem
        // + Idempotency-Key: acquire = PutItem, complete = UpdateItem, release = DeleteItem
        Endpoint::CreatePayment | Endpoint::Refund | Endpoint::ExtendSession => &[
            "dynamodb:ConditionCheckItem",
            "dynamodb:DeleteItem",
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:Query",
            "dynamodb:UpdateItem",
        ],
        Endpoint::VerifyPayment | Endpoint::PhonePeCallback => &[
            "dynamodb:ConditionCheckItem",
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:Query",
            "dynamodb:UpdateItem",
        ],
        // list_attention = Query on GSI1; the overdue list also Queries GSI2 (late attempts) and
        // reads those obligations with BatchGetItem.
        Endpoint::ListObligations => &["dynamodb:BatchGetItem", "dynamodb:Query"],
        // list_sessions_page = Query of the USER# partition and on GSI1 (earlier versions'
        // sessions), BatchGetItem of the sessions listed.
        Endpoint::ListSessions => &["dynamodb:BatchGetItem", "dynamodb:Query"],
        // load_session only (the pass is signed with the pass keys, from SSM).
        Endpoint::GetPass | Endpoint::GetPassQr | Endpoint::GetReceipt => &["dynamodb:Query"],
        // the JWKS: the pass keys only, no DynamoDB at all.
        Endpoint::PassKeys => &[],
        // list_revoked = Query on GSI3 only.
        Endpoint::RevokedPasses => &["dynamodb:Query"],
        // load_session, then one conditional UpdateItem of the session's item.
        Endpoint::RecordEntry | Endpoint::RecordExit => &["dynamodb:Query", "dynamodb:UpdateItem"],
        // find_txn = GetItem of the pointer, then load_session.
        Endpoint::PaymentQr => &["dynamodb:GetItem", "dynamodb:Query"],
        // the console's static files: no DynamoDB at all.
        Endpoint::Console => &[],
        // sessions_by_vehicle = Query on GSI4, find_txn = GetItem of the pointer,
        // find_by_provider_ref = Query on GSI2 and GSI3; then load_session (Query) of each.
        Endpoint::SearchSessions => &["dynamodb:GetItem", "dynamodb:Query"],
        // list_ledger = Query on GSI1 (a day's 8 shards) only.
        Endpoint::SettlementReport => &["dynamodb:Query"],
    }
}

/// Where each function may use DynamoDB, by action: the table or one of its indexes, and the
/// partition key prefixes (`dynamodb:LeadingKeys`) it is limited to (`None`: any). For the routes
/// added with the entry passes and since (the operators' search and settlement report), whose
/// policies name exactly these (and the events test proves every call of theirs is within them,
/// and each of these used by some event); the older routes are checked by [`dynamodb_actions`].
fn dynamodb_scope(endpoint: Endpoint) -> Option<&'static [(&'static str, &'static str, Option<&'static str>)]> {
    const TABLE: &str = "table";
    Some(match endpoint {
        Endpoint::ListSessions => &[
            ("dynamodb:Query", TABLE, Some("USER#*")),
            ("dynamodb:BatchGetItem", TABLE, Some("SESSION#*")),
            ("dynamodb:Query", "GSI1", None),
        ],
        Endpoint::GetPass | Endpoint::GetPassQr | Endpoint::GetReceipt => {
            &[("dynamodb:Query", TABLE, Some("SESSION#*"))]
        }
        Endpoint::PassKeys | Endpoint::Console => &[],
        Endpoint::RevokedPasses => &[("dynamodb:Query", "GSI3", None)],
        Endpoint::RecordEntry | Endpoint::RecordExit => {
            &[("dynamodb:Query", TABLE, Some("SESSION#*")), ("dynamodb:UpdateItem", TABLE, Some("SESSION#*"))]
        }
        Endpoint::PaymentQr => {
            &[("dynamodb:GetItem", TABLE, Some("TXN#*")), ("dynamodb:Query", TABLE, Some("SESSION#*"))]
        }
        Endpoint::SearchSessions => &[
            ("dynamodb:Query", "GSI4", None),
            ("dynamodb:GetItem", TABLE, Some("TXN#*")),
            ("dynamodb:Query", "GSI2", None),
            ("dynamodb:Query", "GSI3", None),
            ("dynamodb:Query", TABLE, Some("SESSION#*")),
        ],
        Endpoint::SettlementReport => &[("dynamodb:Query", "GSI1", None)],
        _ => return None,
    })
}

/// The policy settings (`parkpay_api::state::Policy`, from the environment) each route's code
/// path uses, and the template parameter each comes from: only these functions get them. Every
/// function reads the policy at start-up, so a variable a function does not get takes its
/// default, which is what a function that never uses it should see.
fn policy_variables(endpoint: Endpoint) -> &'static [(&'static str, &'static str)] {
    match endpoint {
        // check_cancellation: a driver's refund is refused outside the rule.
        Endpoint::Refund => &[
            ("PARKPAY_CANCELLATION_RULE", "CancellationRule"),
            ("PARKPAY_CANCEL_WINDOW_MINUTES", "CancelWindowMinutes"),
        ],
        // the pass's validity: booked end + grace.
        Endpoint::GetPass | Endpoint::GetPassQr => &[("PARKPAY_PASS_GRACE_MINUTES", "PassGraceMinutes")],
        _ => &[],
    }
}

/// The variable a pass function gets the pass keys' SSM parameter name in, and its parameter.
const PASS_KEYS_VARIABLE: &str = "PARKPAY_PASS_KEYS_SSM_PARAMETER";
const PASS_KEYS_PARAMETER: &str = "PassKeysParameterName";
/// `arn:…:ssm:…:parameter` as the template writes it, before the parameter's `${Name}`.
const SSM_ARN: &str = "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter";

/// The template parameters naming the SSM parameters `f`'s policy (every statement, whatever
/// its condition) lets it `ssm:GetParameter`, and those it may `kms:Decrypt` for. A grant on
/// anything but one parameter, or a `kms:Decrypt` not limited to SSM in the region, shows as an
/// entry in angle brackets (so it never equals what the code reads).
fn ssm_parameters(f: &Function) -> (BTreeSet<String>, BTreeSet<String>) {
    let parameter_of = |text: &str| -> String {
        text.strip_prefix(SSM_ARN)
            .and_then(template::trailing_parameter)
            .map_or_else(|| format!("<not one parameter: {text}>"), str::to_owned)
    };
    let (mut readable, mut decryptable) = (BTreeSet::new(), BTreeSet::new());
    for g in &f.grants {
        if g.actions.iter().any(|a| a == "ssm:GetParameter") {
            readable.extend(g.resource_texts().iter().map(|t| parameter_of(t)));
        }
        if g.actions.iter().any(|a| a == "kms:Decrypt") {
            let via = g.condition_values("StringEquals", "kms:ViaService");
            if g.resource_texts() != ["arn:${AWS::Partition}:kms:${AWS::Region}:${AWS::AccountId}:key/*"]
                || via != ["ssm.${AWS::Region}.${AWS::URLSuffix}"]
            {
                decryptable.insert(format!("<kms:Decrypt not limited to SSM in the region: {:?}>", g.resources));
            }
            let contexts = g.condition_values("StringEquals", "kms:EncryptionContext:PARAMETER_ARN");
            if contexts.is_empty() {
                decryptable.insert("<kms:Decrypt for any parameter>".to_owned());
            }
            decryptable.extend(contexts.iter().map(|t| parameter_of(t)));
        }
    }
    (readable, decryptable)
}

/// Each DynamoDB action `f`'s policy grants, where (`table`, or an index's name), and limited to
/// which partitions (`dynamodb:LeadingKeys` pattern, `None`: any), one entry per combination.
fn dynamodb_grants(f: &Function, table: &str) -> BTreeSet<(String, String, Option<String>)> {
    let mut out = BTreeSet::new();
    for g in &f.grants {
        for action in g.actions.iter().filter(|a| a.starts_with("dynamodb:")) {
            for res in &g.resources {
                let on = if getatt_target(res) == Some((table.to_owned(), "Arn".to_owned())) {
                    "table".to_owned()
                } else {
                    let text = sub_text(res).unwrap_or_else(|| format!("{res:?}"));
                    text.strip_prefix(&format!("${{{table}.Arn}}/index/")).map_or(text.clone(), str::to_owned)
                };
                match &g.leading_keys {
                    None => {
                        out.insert((action.clone(), on.clone(), None));
                    }
                    Some(keys) => {
                        for k in keys {
                            out.insert((action.clone(), on.clone(), Some(k.clone())));
                        }
                    }
                }
            }
        }
    }
    out
}

#[test]
fn drift() {
    let t = template();
    let bins = workspace::workspace_bins().unwrap_or_else(|e| panic!("{e}"));
    let files = event_files();
    let mut problems: Vec<String> = Vec::new();

    // Scheduled functions against SCHEDULED: built like the others, run by their schedule, no
    // route, PhonePe's salt, and exactly the DynamoDB actions (and index) reconciliation uses.
    for s in SCHEDULED {
        let Some(f) = t.functions.get(s.function) else {
            problems.push(format!("SCHEDULED has {}; template.yaml has no such function", s.function));
            continue;
        };
        if f.binary.as_deref() != Some(s.binary) || f.build_method.as_deref() != Some("rust-cargolambda") {
            problems.push(format!(
                "{}: build {:?} / {:?}, want rust-cargolambda {}",
                s.function, f.build_method, f.binary, s.binary
            ));
        }
        if f.runtime.as_deref() != Some("provided.al2023") || f.architectures != ["arm64"] {
            problems.push(format!(
                "{}: runtime {:?} on {:?}, want provided.al2023 on arm64",
                s.function, f.runtime, f.architectures
            ));
        }
        let schedules: Vec<String> = f
            .events
            .values()
            .filter(|e| matches!(e.get("Type").and_then(|t| t.as_str()), Some("Schedule" | "ScheduleV2")))
            .filter_map(|e| {
                let p = e.get("Properties")?;
                p.get("Schedule").or_else(|| p.get("ScheduleExpression"))?.as_str().map(str::to_owned)
            })
            .collect();
        if schedules != [s.schedule] {
            problems.push(format!("{}: schedules {schedules:?}, want [{:?}]", s.function, s.schedule));
        }
        if t.routes.iter().any(|r| r.function.as_deref() == Some(s.function)) {
            problems.push(format!("{}: a scheduled function has an HTTP route", s.function));
        }
        let got: BTreeSet<&str> = f.actions.iter().map(String::as_str).filter(|a| a.starts_with("dynamodb:")).collect();
        // list_due = Query on GSI2, load_session = Query, commit = UpdateItem of session items,
        // Puts, ConditionChecks; automatic refunds (stray successes) go through the refund use
        // case: find_txn = GetItem; the attention lists' sizes (metrics): Query on GSI1 and GSI2,
        // BatchGetItem of late attempts.
        let want: BTreeSet<&str> = [
            "dynamodb:BatchGetItem",
            "dynamodb:ConditionCheckItem",
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:Query",
            "dynamodb:UpdateItem",
        ]
        .into_iter()
        .collect();
        if got != want {
            problems.push(format!("{}: DynamoDB actions {got:?}, reconciliation uses {want:?}", s.function));
        }
        let texts: Vec<String> = f.resources.iter().filter_map(sub_text).collect();
        if !texts.iter().any(|r| r == "${Table.Arn}/index/GSI2") {
            problems.push(format!(
                "{}: its policy does not name ${{Table.Arn}}/index/GSI2 (the pending index)",
                s.function
            ));
        }
        if f.env.contains_key("PHONEPE_SALT_KEY_SSM_PARAMETER") != s.uses_phonepe
            || f.actions.contains("ssm:GetParameter") != s.uses_phonepe
        {
            problems.push(format!(
                "{}: PHONEPE_SALT_KEY_SSM_PARAMETER / ssm:GetParameter do not match uses_phonepe",
                s.function
            ));
        }
        for e in files.iter().filter(|e| e.function == s.name) {
            if let Err(p) = events::check_scheduled_shape(e) {
                problems.push(p);
            }
        }
    }
    for f in t.functions.values() {
        let known =
            ROUTES.iter().any(|r| r.function == f.logical_id) || SCHEDULED.iter().any(|s| s.function == f.logical_id);
        if !known {
            problems.push(format!("{}: in template.yaml but neither in ROUTES nor in SCHEDULED", f.logical_id));
        }
    }

    // Functions and routes against ROUTES.
    for r in ROUTES {
        let route_text = format!("{} {}", r.method, r.path);
        match t.functions.get(r.function) {
            None => {
                problems.push(format!("ROUTES has {} ({route_text}); template.yaml has no such function", r.function))
            }
            Some(f) => {
                let want = |what: &str, got: Option<&str>, want: &str, problems: &mut Vec<String>| {
                    if got != Some(want) {
                        problems.push(format!("{}: {what} is {got:?}, want {want:?}", r.function));
                    }
                };
                want("BuildProperties.Binary", f.binary.as_deref(), r.binary, &mut problems);
                // One binary serves every route; the function's environment names its route.
                let endpoint = f.env.get(parkpay_api::ENDPOINT_VARIABLE).and_then(|v| v.as_str());
                want(parkpay_api::ENDPOINT_VARIABLE, endpoint, r.name, &mut problems);
                want("Metadata.BuildMethod", f.build_method.as_deref(), "rust-cargolambda", &mut problems);
                want("Runtime", f.runtime.as_deref(), "provided.al2023", &mut problems);
                want("Handler", f.handler.as_deref(), "bootstrap", &mut problems);
                want("CodeUri", f.code_uri.as_deref(), ".", &mut problems);
                if f.architectures != ["arm64"] {
                    problems.push(format!("{}: Architectures {:?}, want [arm64]", r.function, f.architectures));
                }
                if !f.events.is_empty() {
                    problems
                        .push(format!("{}: HTTP routes are ApiGatewayV2 resources here, not SAM Events", r.function));
                }
            }
        }
        let found: Vec<_> = t.routes.iter().filter(|tr| tr.method == r.method && tr.path == r.path).collect();
        let [tr] = found.as_slice() else {
            problems.push(format!("template.yaml has {} routes for {route_text}, want 1", found.len()));
            continue;
        };
        if tr.function.as_deref() != Some(r.function) {
            problems.push(format!("{route_text} ({}) invokes {:?}, want {}", tr.logical_id, tr.function, r.function));
        }
        let jwt = tr.authorization == "JWT" && tr.authorizer.as_ref().is_some_and(|a| t.jwt_authorizers.contains(a));
        if r.requires_token && !jwt {
            problems.push(format!("{route_text} needs a token: AuthorizationType JWT with the JWT authorizer"));
        }
        if !r.requires_token && (tr.authorization != "NONE" || tr.authorizer.is_some()) {
            problems.push(format!("{route_text} takes no token (ROUTES): AuthorizationType NONE"));
        }
        if tr.payload_format.as_deref() != Some("2.0") {
            problems.push(format!("{route_text}: integration payload format {:?}, want 2.0", tr.payload_format));
        }
        if !tr.invoke_permission {
            problems.push(format!("{route_text}: no AWS::Lambda::Permission lets API Gateway invoke {}", r.function));
        }
    }
    for tr in &t.routes {
        if !ROUTES.iter().any(|r| r.method == tr.method && r.path == tr.path) {
            problems.push(format!(
                "template route {} {} ({}) is not in ROUTES: the local server would not serve it",
                tr.method, tr.path, tr.logical_id
            ));
        }
    }

    // Every function: a real [[bin]], an event file; routeless functions invoked by no route.
    for f in t.functions.values() {
        let Some(binary) = f.binary.as_deref() else {
            problems.push(format!("{}: no Metadata.BuildProperties.Binary", f.logical_id));
            continue;
        };
        if !bins.contains_key(binary) {
            problems.push(format!("{}: no [[bin]] named {binary} in the workspace", f.logical_id));
        }
        let name = ROUTES
            .iter()
            .find(|r| r.function == f.logical_id)
            .map(|r| r.name)
            .or_else(|| SCHEDULED.iter().find(|s| s.function == f.logical_id).map(|s| s.name));
        if let Some(name) = name
            && !files.iter().any(|e| e.function == name && e.case.is_none())
        {
            problems.push(format!("{}: no events/{name}.json", f.logical_id));
        }
        if !ROUTES.iter().any(|r| r.function == f.logical_id)
            && t.routes.iter().any(|tr| tr.function.as_deref() == Some(f.logical_id.as_str()))
        {
            problems.push(format!("{}: has an HTTP route but is not in ROUTES", f.logical_id));
        }
    }

    // events/ files: each names a function, has its expected answer, and fits its route.
    for e in &files {
        if t.function_named(&e.function).is_none() {
            problems.push(format!("events/{}: no function in template.yaml is named {}", e.name, e.function));
        }
        if events::expectation(&e.name).is_none() {
            problems.push(format!("events/{}: no entry in lambda_harness::events::EXPECTATIONS", e.name));
        }
        if e.route().is_some()
            && let Err(p) = events::check_shape(e)
        {
            problems.push(p);
        }
    }
    for x in EXPECTATIONS {
        if !files.iter().any(|e| e.name == x.file) {
            problems.push(format!("EXPECTATIONS names events/{}, which does not exist", x.file));
        }
    }

    // The table, as parkpay_store::dynamo::table_definition says.
    let def = table_definition("parkpay");
    match t.tables.as_slice() {
        [table] => {
            let want_attrs: Vec<(String, String)> =
                def.attribute_definitions().iter().map(|a| (a.name.to_owned(), a.attribute_type.to_owned())).collect();
            if table.attributes != want_attrs {
                problems.push(format!("table AttributeDefinitions {:?}, want {want_attrs:?}", table.attributes));
            }
            let want_key = (Some(def.partition_key.name.to_owned()), Some(def.sort_key.name.to_owned()));
            if table.key != want_key {
                problems.push(format!("table KeySchema {:?}, want {want_key:?}", table.key));
            }
            let want_indexes: Vec<_> = def
                .global_secondary_indexes
                .iter()
                .map(|i| {
                    (
                        i.index_name.to_owned(),
                        Some(i.partition_key.name.to_owned()),
                        Some(i.sort_key.name.to_owned()),
                        Some(i.projection_type.to_owned()),
                    )
                })
                .collect();
            if table.indexes != want_indexes {
                problems.push(format!("table GlobalSecondaryIndexes {:?}, want {want_indexes:?}", table.indexes));
            }
            if table.billing_mode.as_deref() != Some(def.billing_mode) {
                problems.push(format!("table BillingMode {:?}, want {}", table.billing_mode, def.billing_mode));
            }
            if !table.point_in_time_recovery {
                problems.push("table: point-in-time recovery is off".into());
            }
            if table.ttl_attribute.as_deref() != Some("expires_at_epoch") {
                problems.push(format!("table: TTL {:?}, want expires_at_epoch enabled", table.ttl_attribute));
            }
            // Least privilege, secrets, table name.
            for r in ROUTES {
                let Some(f) = t.functions.get(r.function) else { continue };
                let got: BTreeSet<&str> =
                    f.actions.iter().map(String::as_str).filter(|a| a.starts_with("dynamodb:")).collect();
                let want: BTreeSet<&str> = dynamodb_actions(r.endpoint).iter().copied().collect();
                if got != want {
                    problems.push(format!("{}: DynamoDB actions {got:?}, its code path uses {want:?}", r.function));
                }
                for res in &f.resources {
                    let table_arn = getatt_target(res) == Some((table.logical_id.clone(), "Arn".to_owned()));
                    let text = sub_text(res).or_else(|| res.as_str().map(str::to_owned)).unwrap_or_default();
                    let index = text.starts_with(&format!("${{{}.Arn}}/index/", table.logical_id));
                    if !table_arn && !index && (text == "*" || !text.starts_with("arn:${AWS::Partition}:")) {
                        problems.push(format!(
                            "{}: policy resource {res:?} is neither the table nor a named ARN",
                            r.function
                        ));
                    }
                }
                let salt = r.uses_phonepe;
                if f.env.contains_key("PHONEPE_SALT_KEY_SSM_PARAMETER") != salt {
                    problems.push(format!(
                        "{}: PHONEPE_SALT_KEY_SSM_PARAMETER {}",
                        r.function,
                        if salt { "is needed (it signs or verifies checksums)" } else { "is not needed" }
                    ));
                }
                // ssm:GetParameter / kms:Decrypt on exactly the parameters it reads: PhonePe's
                // (checked per deployment in phonepe_parameters_rules_settings_and_iam) and the
                // pass keys' (uses_pass_keys).
                let (readable, decryptable) = ssm_parameters(f);
                let mut want: BTreeSet<String> = BTreeSet::new();
                if r.uses_phonepe {
                    want.extend(
                        [
                            "PhonePeSaltKeyParameterName",
                            "PhonePeClientSecretParameterName",
                            "PhonePeWebhookPasswordParameterName",
                        ]
                        .map(str::to_owned),
                    );
                }
                if r.uses_pass_keys {
                    want.insert(PASS_KEYS_PARAMETER.to_owned());
                }
                if readable != want || decryptable != want {
                    problems.push(format!(
                        "{}: ssm:GetParameter on {readable:?} and kms:Decrypt for {decryptable:?}; it reads {want:?}",
                        r.function
                    ));
                }
                let pass_keys = f.env.get(PASS_KEYS_VARIABLE).and_then(ref_target);
                if r.uses_pass_keys != pass_keys.is_some()
                    || pass_keys.as_deref().is_some_and(|p| p != PASS_KEYS_PARAMETER)
                {
                    problems.push(format!(
                        "{}: {PASS_KEYS_VARIABLE} is {pass_keys:?}; uses_pass_keys is {}, so want {}",
                        r.function,
                        r.uses_pass_keys,
                        if r.uses_pass_keys { "!Ref PassKeysParameterName" } else { "none" }
                    ));
                }
                // The policy settings it uses, each from its parameter, and no other.
                let want_policy: BTreeMap<&str, &str> = policy_variables(r.endpoint).iter().copied().collect();
                for var in world::POLICY_VARIABLES {
                    let got = f.env.get(var).map(|v| ref_target(v).unwrap_or_else(|| format!("{v:?}")));
                    if got.as_deref() != want_policy.get(var).copied() {
                        problems.push(format!(
                            "{}: {var} is {got:?}, its code path wants {:?}",
                            r.function,
                            want_policy.get(var).map(|p| format!("!Ref {p}"))
                        ));
                    }
                }
                // Where it may use DynamoDB: the table or an index, limited to which partitions.
                if let Some(scope) = dynamodb_scope(r.endpoint) {
                    let got = dynamodb_grants(f, &table.logical_id);
                    let want: BTreeSet<(String, String, Option<String>)> = scope
                        .iter()
                        .map(|(a, on, k)| ((*a).to_owned(), (*on).to_owned(), k.map(str::to_owned)))
                        .collect();
                    if got != want {
                        problems.push(format!("{}: DynamoDB grants {got:?}, its code path needs {want:?}", r.function));
                    }
                }
                if f.env.get("PARKPAY_TABLE").and_then(ref_target).as_deref() != Some(table.logical_id.as_str()) {
                    problems.push(format!("{}: PARKPAY_TABLE is not !Ref {}", r.function, table.logical_id));
                }
            }
        }
        other => problems.push(format!("template.yaml has {} DynamoDB tables, want 1", other.len())),
    }
    for f in t.functions.values() {
        for plain in ["PHONEPE_SALT_KEY", "PHONEPE_API_KEY"] {
            if f.env.contains_key(plain) {
                problems.push(format!("{}: {plain} in plain text; pass PHONEPE_SALT_KEY_SSM_PARAMETER", f.logical_id));
            }
        }
    }

    // A variable the template sets is one the code reads (or the harness knows as its own).
    let known_variables: BTreeSet<&str> = ["PARKPAY_TABLE", "PARKPAY_LOTS_JSON", "PARKPAY_SERVICE", PASS_KEYS_VARIABLE]
        .into_iter()
        .chain([parkpay_api::ENDPOINT_VARIABLE])
        .chain(world::POLICY_VARIABLES)
        .collect();
    for f in t.functions.values() {
        for k in f.env.keys() {
            if !known_variables.contains(k.as_str()) && !k.starts_with("PHONEPE_") && k != "PARKPAY_REDIRECT_URL" {
                problems.push(format!("{}: template.yaml sets {k}, which no code path reads", f.logical_id));
            }
        }
    }

    // PhonePe settings go only to the functions that talk to PhonePe.
    let uses_phonepe = |id: &str| {
        ROUTES.iter().any(|r| r.function == id && r.uses_phonepe)
            || SCHEDULED.iter().any(|s| s.function == id && s.uses_phonepe)
    };
    for f in t.functions.values() {
        let phonepe_vars: Vec<&String> =
            f.env.keys().filter(|k| k.starts_with("PHONEPE_") || *k == "PARKPAY_REDIRECT_URL").collect();
        if !uses_phonepe(&f.logical_id) && !phonepe_vars.is_empty() {
            problems.push(format!("{}: never talks to PhonePe but gets {phonepe_vars:?}", f.logical_id));
        }
    }

    // The callback URL the functions send PhonePe is the API's own callback route, and an output.
    let callback = ROUTES.iter().find(|r| r.endpoint == Endpoint::PhonePeCallback).map(|r| r.path).unwrap_or_default();
    for f in t.functions.values().filter(|f| uses_phonepe(&f.logical_id)) {
        match f.env.get("PHONEPE_CALLBACK_URL").and_then(sub_text) {
            Some(url) if url.starts_with("https://${HttpApi}.execute-api.") && url.ends_with(callback) => {}
            other => {
                problems.push(format!("{}: PHONEPE_CALLBACK_URL {other:?} is not the API's {callback}", f.logical_id))
            }
        }
    }
    for out in ["ApiUrl", "CallbackUrl"] {
        if !t.outputs.contains_key(out) {
            problems.push(format!("no output {out}"));
        }
    }

    assert!(problems.is_empty(), "template.yaml / events/ / code drift:\n  {}", problems.join("\n  "));
}

/// The template parameters without a default, as a deployer gives them.
const REQUIRED_PARAMETERS: [(&str, &str); 4] = [
    ("JwtIssuer", "https://cognito-idp.ap-south-1.amazonaws.com/ap-south-1_Ab12Cd34E"),
    ("JwtAudience", "3q2b8c9d0e1f2g3h4i5j6k7l8m"),
    ("RedirectUrl", "https://app.parkpay.example/payment-complete/"),
    ("AlarmTopicArn", "arn:aws:sns:ap-south-1:123456789012:parkpay-alarms"),
];

/// The functions that talk to PhonePe (routes and scheduled), by logical id.
fn phonepe_functions() -> Vec<&'static str> {
    ROUTES
        .iter()
        .filter(|r| r.uses_phonepe)
        .map(|r| r.function)
        .chain(SCHEDULED.iter().filter(|s| s.uses_phonepe).map(|s| s.function))
        .collect()
}

/// What one PhonePe function gets on AWS in `d` (its environment resolved as CloudFormation
/// would, no simulation) checked against the code and the function's policy there:
///
/// - `parkpay_api::config::Settings` takes that environment (`Err`: its one-line error); `Ok`
///   has the variables it read (for the caller's check that every `PHONEPE_*` variable the
///   template sets is read in some deployment) and the problems found;
/// - PG v1 is configured exactly when the template's condition `HasSaltKey` holds, PG v2 exactly
///   when `HasV2Client` does, and new payments use `PhonePeApiVersion`;
/// - every secret comes from SSM, and the SSM parameters the function may `ssm:GetParameter` and
///   `kms:Decrypt` (through SSM, for that parameter only) are exactly those it reads;
/// - it may `GetItem` and `UpdateItem` the `TOKEN#…` item exactly when PG v2 is configured.
fn check_phonepe_function(
    t: &Template,
    d: &Deployment,
    f: &Function,
) -> Result<(BTreeSet<String>, Vec<String>), String> {
    use parkpay_api::config::{SaltSource, SecretSource, Settings};
    let env = t.resolved_env(f, d, &|resource| match resource {
        "Table" => "parkpay-Table-1A2B3C4D5E6F".to_owned(),
        "HttpApi" => "k7x2m9p4qa".to_owned(),
        other => format!("{other}-id"),
    })?;
    let asked = std::cell::RefCell::new(BTreeSet::new());
    let lookup = |k: &str| {
        asked.borrow_mut().insert(k.to_owned());
        env.get(k).cloned()
    };
    let settings = Settings::from_lookup(&lookup).map_err(|e| e.to_string())?;
    let id = &f.logical_id;
    let mut problems = Vec::new();
    let cond = |name: &str| d.condition(name).unwrap_or_else(|| panic!("template.yaml has no condition {name}"));
    if settings.v1().is_some() != cond("HasSaltKey") || settings.v2().is_some() != cond("HasV2Client") {
        problems.push(format!(
            "{id}: the code configures v1 {} and v2 {}; the template's conditions say HasSaltKey {} and HasV2Client {}",
            settings.v1().is_some(),
            settings.v2().is_some(),
            cond("HasSaltKey"),
            cond("HasV2Client")
        ));
    }
    if Some(settings.api.as_str()) != d.parameter("PhonePeApiVersion") {
        problems.push(format!("{id}: new payments use {}, not PhonePeApiVersion", settings.api.as_str()));
    }
    // The SSM parameters the code reads.
    let mut read = BTreeSet::new();
    if let Some(v1) = settings.v1() {
        match &v1.salt {
            SaltSource::Ssm { parameter, .. } => {
                read.insert(parameter.clone());
            }
            other => problems.push(format!("{id}: the salt key does not come from SSM: {other:?}")),
        }
    }
    if let Some(v2) = settings.v2() {
        for (what, source) in [("client secret", &v2.client_secret), ("webhook password", &v2.webhook_password)] {
            match source {
                SecretSource::Ssm { parameter } => {
                    read.insert(parameter.clone());
                }
                SecretSource::Inline(_) => problems.push(format!("{id}: the v2 {what} is inline, not from SSM")),
            }
        }
    }
    // The parameters its policy (in this deployment) lets it read and decrypt.
    let under = f.under(d);
    let parameter_of = |text: &str, prefix: &str| -> Option<String> {
        let name = template::trailing_parameter(text.strip_prefix(prefix)?)?;
        d.parameter(name).map(str::to_owned)
    };
    const SSM_ARN: &str = "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter";
    let mut readable = BTreeSet::new();
    let mut decryptable = BTreeSet::new();
    for g in &under.grants {
        if g.actions.iter().any(|a| a == "ssm:GetParameter") {
            for text in g.resource_texts() {
                match parameter_of(&text, SSM_ARN) {
                    Some(name) => {
                        readable.insert(name);
                    }
                    None => problems.push(format!("{id}: ssm:GetParameter on {text}, not on one parameter")),
                }
            }
        }
        if g.actions.iter().any(|a| a == "kms:Decrypt") {
            let via = g.condition_values("StringEquals", "kms:ViaService");
            if g.resource_texts() != ["arn:${AWS::Partition}:kms:${AWS::Region}:${AWS::AccountId}:key/*"]
                || via != ["ssm.${AWS::Region}.${AWS::URLSuffix}"]
            {
                problems.push(format!("{id}: kms:Decrypt not limited to SSM in the region: {g:?}"));
            }
            for text in g.condition_values("StringEquals", "kms:EncryptionContext:PARAMETER_ARN") {
                match parameter_of(&text, SSM_ARN) {
                    Some(name) => {
                        decryptable.insert(name);
                    }
                    None => problems.push(format!("{id}: kms:Decrypt for {text}, not for one parameter")),
                }
            }
        }
    }
    if readable != read || decryptable != read {
        problems.push(format!(
            "{id}: reads SSM parameters {read:?}; its policy allows ssm:GetParameter on {readable:?} and kms:Decrypt for {decryptable:?}"
        ));
    }
    // The deployment's one PG v2 token: the item TOKEN#phonepe-v2#<client id>.
    let token = settings.v2().is_some();
    for action in ["dynamodb:GetItem", "dynamodb:UpdateItem"] {
        let allowed = under.grants.iter().any(|g| g.allows(action, Some("TOKEN#")));
        // GetItem is granted on the whole table anyway (find_txn); UpdateItem must follow v2.
        if (action == "dynamodb:UpdateItem" && allowed != token) || (token && !allowed) {
            problems.push(format!("{id}: {action} on the TOKEN# item allowed: {allowed}, PG v2 configured: {token}"));
        }
    }
    if let Some(v2) = settings.v2()
        && !v2.token_name().starts_with("phonepe-v2#")
    {
        problems.push(format!("{id}: token name {} (the policy allows TOKEN#* items)", v2.token_name()));
    }
    Ok((asked.into_inner(), problems))
}

/// The PhonePe parameters, per deployment: the four offline ones (`world::Apis`: the template's
/// defaults, both APIs, switching, PG v2 only) pass the template's `Rules` and give every PhonePe
/// function working settings, the secrets and the token it needs and nothing more
/// ([`check_phonepe_function`]); and over every combination of the parameters that decide which
/// API is configured (version, salt key, merchant, client id, client secret, webhook username and
/// password: 128), CloudFormation's `Rules` accept exactly the combinations the code starts
/// with, and where it starts, its IAM is exactly what it reads.
#[test]
fn phonepe_parameters_rules_settings_and_iam() {
    let t = template();
    let functions: Vec<&Function> = phonepe_functions().iter().map(|id| &t.functions[*id]).collect();
    assert_eq!(functions.len(), 6, "the PhonePe functions");
    let mut problems: Vec<String> = Vec::new();
    let mut read: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    let deployment = |values: &[(&str, &str)]| {
        let all: Vec<(&str, &str)> = REQUIRED_PARAMETERS.iter().chain(values).copied().collect();
        t.deployment(&all).unwrap_or_else(|e| panic!("{e}"))
    };
    for apis in Apis::ALL {
        let d = deployment(&apis.parameters());
        if let Err(e) = d.rules() {
            problems.push(format!("{apis:?}: the template's Rules refuse it: {e:?}"));
        }
        for f in &functions {
            match check_phonepe_function(&t, &d, f) {
                Ok((asked, p)) => {
                    read.entry(f.logical_id.as_str()).or_default().extend(asked);
                    problems.extend(p.into_iter().map(|p| format!("{apis:?}: {p}")));
                }
                Err(e) => problems.push(format!("{apis:?}: {}: the code refuses its settings: {e}", f.logical_id)),
            }
        }
    }
    for f in &functions {
        for k in f.env.keys().filter(|k| k.starts_with("PHONEPE_")) {
            if !read[f.logical_id.as_str()].contains(k) {
                problems
                    .push(format!("{}: template.yaml sets {k}, which the code reads in no deployment", f.logical_id));
            }
        }
    }

    let salt = t.parameter_default("PhonePeSaltKeyParameterName").expect("a default salt parameter");
    let (mut accepted, mut both) = (0, 0);
    for mask in 0u32..128 {
        let bit = |i: u32| mask & (1 << i) != 0;
        let pick = |i: u32, v: &'static str| if bit(i) { v } else { "" };
        let values = [
            ("PhonePeApiVersion", if bit(0) { "v2" } else { "v1" }),
            ("PhonePeSaltKeyParameterName", if bit(1) { salt.as_str() } else { "" }),
            ("PhonePeMerchantId", pick(2, "M22PARKPAYUAT")),
            ("PhonePeClientId", pick(3, "M22PARKPAYUAT_2511271015")),
            ("PhonePeClientSecretParameterName", pick(4, world::CLIENT_SECRET_PARAMETER)),
            ("PhonePeWebhookUsername", pick(5, "parkpay-webhooks")),
            ("PhonePeWebhookPasswordParameterName", pick(6, world::WEBHOOK_PASSWORD_PARAMETER)),
        ];
        let d = deployment(&values);
        let rules = d.rules();
        let mut refused = Vec::new();
        for f in &functions {
            match check_phonepe_function(&t, &d, f) {
                Ok((_, p)) => problems.extend(p.into_iter().map(|p| format!("{values:?}: {p}"))),
                Err(e) => refused.push(format!("{}: {e}", f.logical_id)),
            }
        }
        if !refused.is_empty() && refused.len() != functions.len() {
            problems.push(format!("{values:?}: only some PhonePe functions start: {refused:?}"));
        }
        match (&rules, refused.first()) {
            (Ok(()), None) => {
                accepted += 1;
                if d.condition("HasSaltKey") == Some(true) && d.condition("HasV2Client") == Some(true) {
                    both += 1;
                }
            }
            (Err(_), Some(_)) => {}
            (Ok(()), Some(e)) => {
                problems.push(format!("{values:?}: the Rules accept it, but the functions would not start: {e}"))
            }
            (Err(r), None) => {
                problems.push(format!("{values:?}: the functions would start, but the Rules refuse: {r:?}"))
            }
        }
    }
    assert!(problems.is_empty(), "PhonePe parameters:\n  {}", problems.join("\n  "));
    eprintln!(
        "PhonePe parameters: {accepted} of 128 combinations deployable ({both} with both APIs); rules and code agree"
    );
}

/// The entry pass and policy parameters, as CloudFormation resolves them for each route function
/// (no simulation), against what the code makes of them:
///
/// - the pass functions (`uses_pass_keys`) read the pass keys from SSM, under the parameter's
///   default name, which is a full SSM path; every other function has no pass keys at all;
/// - `parkpay_api::Policy` accepts every function's environment, and the refund function's
///   cancellation rule and the pass functions' grace period are the parameters' (defaults, and
///   the other allowed values);
/// - each Number parameter's `MinValue` / `MaxValue` are exactly the range the code accepts (the
///   bound accepted, one past it refused), and `CancellationRule`'s `AllowedValues` exactly the
///   rules it knows: a value CloudFormation lets through never stops a function at start-up.
#[test]
fn pass_and_policy_parameters_as_the_code_reads_them() {
    use parkpay_api::passes::PassKeySetting;
    use parkpay_domain::CancellationRule;
    let t = template();
    let mut problems: Vec<String> = Vec::new();
    let deployment = |values: &[(&str, &str)]| {
        let all: Vec<(&str, &str)> = REQUIRED_PARAMETERS.iter().chain(values).copied().collect();
        t.deployment(&all).unwrap_or_else(|e| panic!("{e}"))
    };
    let env_of = |f: &Function, d: &Deployment| {
        t.resolved_env(f, d, &|resource| format!("{resource}-id")).unwrap_or_else(|e| panic!("{e}"))
    };
    let lookup = |env: &BTreeMap<String, String>| {
        let env = env.clone();
        move |k: &str| env.get(k).cloned()
    };
    let defaults = deployment(&[]);
    let keys_name = t.parameter_default(PASS_KEYS_PARAMETER).expect("PassKeysParameterName has a default");
    assert_eq!(keys_name, "/parkpay/passes/keys");
    for r in ROUTES {
        let f = &t.functions[r.function];
        let env = env_of(f, &defaults);
        match PassKeySetting::from_lookup(&lookup(&env)) {
            Ok(PassKeySetting::Ssm { parameter }) if r.uses_pass_keys && parameter == keys_name => {}
            Ok(PassKeySetting::Absent) if !r.uses_pass_keys => {}
            other => {
                problems.push(format!("{}: pass keys {other:?} (uses_pass_keys {})", r.function, r.uses_pass_keys))
            }
        }
        match parkpay_api::Policy::from_lookup(&lookup(&env)) {
            Ok(policy) => {
                let default = parkpay_api::Policy::default();
                if policy.cancellation != (CancellationRule::BeforeEntry { window_ms: 15 * 60_000 })
                    || policy.pass_grace_minutes != 15
                    || policy.cancellation != default.cancellation
                {
                    problems.push(format!("{}: the defaults give {policy:?}", r.function));
                }
            }
            Err(e) => problems.push(format!("{}: the code refuses its policy settings: {e}", r.function)),
        }
    }
    // The other values each parameter allows, through the function that uses it.
    let refund = &t.functions[Endpoint::Refund.route().function];
    let pass = &t.functions[Endpoint::GetPass.route().function];
    let policy_in = |f: &Function, values: &[(&str, &str)]| {
        let d = deployment(values);
        parkpay_api::Policy::from_lookup(&lookup(&env_of(f, &d))).map_err(|e| e.to_string())
    };
    let rules = t.parameters["CancellationRule"]["AllowedValues"].as_sequence().cloned().unwrap_or_default();
    let rules: Vec<String> = rules.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect();
    assert_eq!(rules, ["before_entry", "any_time"], "CancellationRule's AllowedValues");
    match policy_in(refund, &[("CancellationRule", "any_time")]) {
        Ok(p) if p.cancellation == CancellationRule::AnyTime => {}
        other => problems.push(format!("CancellationRule=any_time gives {other:?}")),
    }
    match policy_in(refund, &[("CancelWindowMinutes", "60")]) {
        Ok(p) if p.cancellation == CancellationRule::BeforeEntry { window_ms: 60 * 60_000 } => {}
        other => problems.push(format!("CancelWindowMinutes=60 gives {other:?}")),
    }
    match policy_in(pass, &[("PassGraceMinutes", "0")]) {
        Ok(p) if p.pass_grace_minutes == 0 => {}
        other => problems.push(format!("PassGraceMinutes=0 gives {other:?}")),
    }
    for (parameter, f) in [("CancelWindowMinutes", refund), ("PassGraceMinutes", pass)] {
        let bound = |key: &str| -> i64 {
            let v = &t.parameters[parameter][key];
            v.as_i64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                .unwrap_or_else(|| panic!("{parameter}: no {key}"))
        };
        let (min, max) = (bound("MinValue"), bound("MaxValue"));
        for (value, accepted) in [(min, true), (max, true), (min - 1, false), (max + 1, false)] {
            let text = value.to_string();
            if policy_in(f, &[(parameter, text.as_str())]).is_ok() != accepted {
                problems.push(format!(
                    "{parameter}={value}: the code {} it, the template's MinValue {min} / MaxValue {max} {}",
                    if accepted { "refuses" } else { "accepts" },
                    if accepted { "allow it" } else { "refuse it" }
                ));
            }
        }
    }
    assert!(problems.is_empty(), "pass and policy parameters:\n  {}", problems.join("\n  "));
}

/// Logs, tracing and alarms in template.yaml (README, "Observability"): every function writes
/// to a log group of its own (`LoggingConfig.LogGroup`, so the group exists before the function)
/// kept `LogRetentionDays`, is traced by X-Ray and names its metrics' `Service` dimension; every
/// alarm notifies `AlarmTopicArn` when it fires and when it clears; the alarms on parkpay's own
/// metrics read metrics the code emits (`parkpay_api::telemetry::METRICS`) with the dimension
/// the functions set; the throttles alarm watches every function.
#[test]
fn observability_in_template() {
    use parkpay_api::telemetry;
    let t = template();
    let mut problems: Vec<String> = Vec::new();
    let is_ref = |v: &serde_norway::Value, target: &str| ref_target(v).as_deref() == Some(target);

    if !t.parameters.contains_key("AlarmTopicArn") || !t.parameters.contains_key("LogRetentionDays") {
        problems.push("parameters AlarmTopicArn and LogRetentionDays are needed".into());
    }
    let mut groups_used = BTreeSet::new();
    for f in t.functions.values() {
        let id = &f.logical_id;
        match f.log_group.as_ref().and_then(ref_target).and_then(|g| t.log_groups.get(&g)) {
            None => problems.push(format!("{id}: LoggingConfig.LogGroup is not !Ref to an AWS::Logs::LogGroup")),
            Some(g) => {
                if !groups_used.insert(g.logical_id.clone()) {
                    problems.push(format!("{id}: log group {} is another function's too", g.logical_id));
                }
                if !g.retention.as_ref().is_some_and(|r| is_ref(r, "LogRetentionDays")) {
                    problems.push(format!("{}: RetentionInDays is not !Ref LogRetentionDays", g.logical_id));
                }
                let name = g.name.as_ref().and_then(sub_text).or_else(|| g.name.as_ref()?.as_str().map(str::to_owned));
                if !name.as_deref().is_some_and(|n| n.starts_with("/aws/lambda/")) {
                    problems.push(format!("{}: LogGroupName {name:?} is not under /aws/lambda/", g.logical_id));
                }
            }
        }
        if f.tracing.as_deref() != Some("Active") {
            problems.push(format!("{id}: Tracing is {:?}, want Active (X-Ray)", f.tracing));
        }
        if !f.env.get(telemetry::SERVICE_VARIABLE).is_some_and(|v| is_ref(v, "AWS::StackName")) {
            problems.push(format!("{id}: {} is not !Ref AWS::StackName", telemetry::SERVICE_VARIABLE));
        }
    }

    if t.alarms.is_empty() {
        problems.push("template.yaml has no alarms".into());
    }
    let ours: BTreeSet<&str> = telemetry::METRICS
        .iter()
        .map(|m| m.name)
        .chain(t.metric_filters.iter().filter(|m| m.namespace == telemetry::NAMESPACE).map(|m| m.name.as_str()))
        .collect();
    let mut throttled = BTreeSet::new();
    for a in t.alarms.values() {
        let id = &a.logical_id;
        for (what, actions) in [("AlarmActions", &a.alarm_actions), ("OKActions", &a.ok_actions)] {
            if actions.len() != 1 || !is_ref(&actions[0], "AlarmTopicArn") {
                problems.push(format!("{id}: {what} is not [!Ref AlarmTopicArn]"));
            }
        }
        if a.metrics.is_empty() {
            problems.push(format!("{id}: reads no metric"));
        }
        for m in &a.metrics {
            if m.namespace == telemetry::NAMESPACE {
                if !ours.contains(m.name.as_str()) {
                    problems.push(format!("{id}: {} is no metric parkpay emits (telemetry::METRICS)", m.name));
                }
                let service = m.dimensions.iter().find(|(n, _)| n == telemetry::SERVICE_DIMENSION);
                let from_filter = t.metric_filters.iter().any(|f| f.name == m.name);
                if !from_filter && !service.is_some_and(|(_, v)| is_ref(v, "AWS::StackName")) {
                    problems.push(format!("{id}: {} without dimension Service = !Ref AWS::StackName", m.name));
                }
                let labels = telemetry::METRICS.iter().find(|x| x.name == m.name).map(|x| x.labels).unwrap_or_default();
                if !labels.is_empty() {
                    problems.push(format!("{id}: {} has labels {labels:?}: alarm on a metric without", m.name));
                }
            }
            if m.namespace == "AWS/Lambda" && m.name == "Throttles" {
                throttled.extend(
                    m.dimensions.iter().filter(|(n, _)| n == "FunctionName").filter_map(|(_, v)| ref_target(v)),
                );
            }
        }
    }
    for f in t.functions.keys() {
        if !throttled.contains(f) {
            problems.push(format!("{f}: no alarm watches its Lambda Throttles"));
        }
    }
    // CloudWatch refuses an alarm whose metric math reads more than 10 metrics (a hard limit).
    for a in t.alarms.values() {
        if a.metrics.len() > 10 {
            problems.push(format!("{}: reads {} metrics; an alarm may read at most 10", a.logical_id, a.metrics.len()));
        }
    }
    assert!(problems.is_empty(), "template.yaml observability:\n  {}", problems.join("\n  "));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_in_process() {
    let t = template();
    let dir = tempfile::tempdir().unwrap();
    let stores = Stores::new(parkpay_store::embedded::EmbeddedStore::open(dir.path().join("events.redb")).unwrap());
    let sim = world::spawn_simulator().await.unwrap();
    let offline = Offline {
        table: "unused".into(),
        simulator_url: sim.base_url.to_string(),
        dynamodb_endpoint: None,
        deployment: Apis::Both.deployment(&t).unwrap_or_else(|e| panic!("{e}")),
    };
    // Each function's state from its own template environment, all on the one store.
    let mut states = BTreeMap::new();
    for r in ROUTES {
        let f = t.functions.get(r.function).unwrap_or_else(|| panic!("{} not in template.yaml", r.function));
        let env = world::function_env(f, &offline).unwrap_or_else(|e| panic!("{e}"));
        states.insert(
            r.name,
            world::app_state(&stores, &env, r.uses_phonepe).unwrap_or_else(|e| panic!("{}: {e}", r.function)),
        );
    }
    world::seed(&states["create-payment"], &sim.simulator).await.unwrap_or_else(|e| panic!("{e}"));

    let mut failures = Vec::new();
    let files = event_files();
    // The scheduled events first (fixtures: only fixture 8 is old enough to be due).
    for s in SCHEDULED {
        let f = t.functions.get(s.function).unwrap_or_else(|| panic!("{} not in template.yaml", s.function));
        let env = world::function_env(f, &offline).unwrap_or_else(|e| panic!("{e}"));
        let reconciler = Reconciler::new(
            world::app_state(&stores, &env, s.uses_phonepe).unwrap_or_else(|e| panic!("{}: {e}", s.function)),
        );
        for file in files.iter().filter(|e| e.function == s.name) {
            let expect = events::expectation(&file.name).unwrap_or_else(|| panic!("no expectation for {}", file.name));
            // The handler reads nothing from the event but its deadline: 7 s, so about 2 s of ticks.
            file.json().unwrap_or_else(|e| panic!("{e}"));
            let deadline =
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64 + 7_000;
            let r = reconciler.run_invocation(deadline).await;
            let body = serde_json::json!({
                "pending": r.pending, "checked": r.checked, "applied": r.applied, "expired": r.expired, "errors": r.errors,
            });
            if let Err(e) = events::check(expect, 0, Some("application/json"), &body) {
                failures.push(e);
            }
        }
    }
    for file in files.iter().filter(|f| events::scheduled_of(f).is_none()) {
        let endpoint = events::endpoint_of(file).unwrap_or_else(|e| panic!("{e}"));
        let expect = events::expectation(&file.name).unwrap_or_else(|| panic!("no expectation for {}", file.name));
        let request = events::to_request(file).unwrap_or_else(|e| panic!("{e}"));
        let resp = parkpay_api::handle(&states[file.function.as_str()], endpoint, request).await;
        match process::answer_of(resp).await {
            Ok(answer) => {
                if let Err(e) = events::check_answer(expect, &answer) {
                    failures.push(e);
                }
            }
            Err(e) => failures.push(format!("{}: {e}", file.name)),
        }
    }
    assert!(failures.is_empty(), "events in process:\n  {}", failures.join("\n  "));
    fixtures::check_after_events(stores.store.as_ref()).await.unwrap_or_else(|e| panic!("after the events: {e}"));
    eprintln!("events_in_process: {} events answered as expected", files.len());
    sim.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_through_built_binaries() {
    let Some(endpoint) = world::dynamodb_endpoint().unwrap_or_else(|e| panic!("{e}")) else {
        eprintln!("SKIPPED: events through the built binaries (PARKPAY_SKIP_DYNAMODB=1)");
        return;
    };
    let t = template();
    let mut binaries: Vec<&str> = ROUTES.iter().map(|r| r.binary).chain(SCHEDULED.iter().map(|s| s.binary)).collect();
    binaries.dedup();
    let bin_dir = workspace::built_binaries(&binaries).unwrap_or_else(|e| panic!("{e}"));
    let world = World::dynamodb(&endpoint, &t, "events").await.unwrap_or_else(|e| panic!("{e}"));
    let files = event_files();
    // The functions reach DynamoDB Local through a proxy that notes every call's IAM action.
    let proxy = DynamoProxy::start(&endpoint).await.unwrap();
    let offline = Offline { dynamodb_endpoint: Some(proxy.url.clone()), ..world.offline.clone() };

    let mut failures = Vec::new();
    let mut answered = 0;
    // The scheduled function first (see `events_in_process`).
    for s in SCHEDULED {
        let f = &t.functions[s.function];
        let running = start_checked(f, &bin_dir.join(s.binary), &offline, &proxy, &mut failures).await;
        for file in files.iter().filter(|e| e.function == s.name) {
            let expect = events::expectation(&file.name).unwrap_or_else(|| panic!("no expectation for {}", file.name));
            // An 8 s function timeout: the reconciler ticks for about 3 s, then answers.
            match running.invoke(&file.text, Duration::from_secs(8)).await {
                Ok(a) if a.ok => {
                    let body: serde_json::Value = serde_json::from_slice(&a.body).unwrap_or_default();
                    match events::check(expect, 0, Some("application/json"), &body) {
                        Ok(()) => answered += 1,
                        Err(e) => failures.push(format!("{e}\n{}", running.logs())),
                    }
                }
                Ok(a) => failures.push(format!("{}: the function returned an error: {}", file.name, a.body_text())),
                Err(e) => failures.push(format!("{}: {e}\n{}", file.name, running.logs())),
            }
        }
        running.stop();
        check_calls(s.function, &f.under(&offline.deployment), &proxy.take(), &mut failures);
    }
    for r in ROUTES {
        let f = &t.functions[r.function];
        let running = start_checked(f, &bin_dir.join(r.binary), &offline, &proxy, &mut failures).await;
        for file in files.iter().filter(|e| e.function == r.name) {
            let expect = events::expectation(&file.name).unwrap_or_else(|| panic!("no expectation for {}", file.name));
            let answer = match running.invoke(&file.text, Duration::from_secs(30)).await {
                Ok(a) => a,
                Err(e) => {
                    failures.push(format!("{}: {e}\n{}", file.name, running.logs()));
                    continue;
                }
            };
            if !answer.ok {
                failures.push(format!(
                    "{}: the function returned an error to the runtime: {}",
                    file.name,
                    answer.body_text()
                ));
                continue;
            }
            // As API Gateway reads it: a binary answer (the QR images) base64-encoded with
            // isBase64Encoded, decoded here before its bytes are checked.
            match process::http_answer(&answer.body) {
                Ok(a) => match events::check_answer(expect, &a) {
                    Ok(()) => answered += 1,
                    Err(e) => failures.push(e),
                },
                Err(e) => failures.push(format!("{}: {e}", file.name)),
            }
        }
        running.stop();
        let calls = proxy.take();
        check_calls(r.function, &f.under(&offline.deployment), &calls, &mut failures);
        // The other way round, for the routes whose grants name where (dynamodb_scope, which
        // drift holds the policies to): each grant was needed by some call of its events.
        for (action, on, key) in dynamodb_scope(r.endpoint).unwrap_or_default() {
            let used = calls.iter().any(|c| {
                c.action == *action
                    && c.index.as_deref().unwrap_or("table") == *on
                    && key.is_none_or(|k| {
                        c.leading_key.as_deref().is_some_and(|p| k.strip_suffix('*').is_some_and(|k| p.starts_with(k)))
                    })
            });
            if !used {
                failures.push(format!(
                    "{}: its policy grants {action} on {on}{} but no event made such a call",
                    r.function,
                    key.map(|k| format!(" ({k})")).unwrap_or_default()
                ));
            }
        }
    }
    assert!(failures.is_empty(), "events through the built binaries:\n  {}", failures.join("\n  "));
    assert_eq!(answered, files.len(), "every event file drives a built function");
    fixtures::check_after_events(world.stores.store.as_ref()).await.unwrap_or_else(|e| panic!("after the events: {e}"));
    eprintln!(
        "events_through_built_binaries: {answered} events answered as expected by {} binaries",
        ROUTES.len() + SCHEDULED.len()
    );
}

/// Start `f`'s built binary `exe` with the environment the template gives it (offline values),
/// and note it as a failure if it called DynamoDB before its first invocation.
async fn start_checked(
    f: &parkpay_lambda_harness::template::Function,
    exe: &std::path::Path,
    offline: &Offline,
    proxy: &DynamoProxy,
    failures: &mut Vec<String>,
) -> process::Running {
    let env = world::function_env(f, offline).unwrap_or_else(|e| panic!("{e}"));
    let launch = process::Launch { exe: exe.to_owned(), function_name: f.logical_id.clone(), env };
    let running = process::start(&launch, Duration::from_secs(30)).await.unwrap_or_else(|e| panic!("{e}"));
    let at_init = proxy.take();
    if !at_init.is_empty() {
        failures.push(format!("{} called DynamoDB during init: {at_init:?}", f.logical_id));
    }
    running
}

/// Least privilege, the other way round from `drift`: every DynamoDB call `function` really
/// made (through the recording proxy) is allowed by its policy (`f`: the function as the
/// deployment gets it, [`Function::under`](parkpay_lambda_harness::template::Function::under)),
/// indexes included.
fn check_calls(
    function: &str,
    f: &parkpay_lambda_harness::template::Function,
    calls: &BTreeSet<parkpay_lambda_harness::dynamo_proxy::Call>,
    failures: &mut Vec<String>,
) {
    let used: Vec<String> = calls
        .iter()
        .map(|c| {
            let on = match (&c.index, &c.leading_key) {
                (Some(i), _) => format!(" on {i}"),
                (None, Some(k)) => format!(" on {k}…"),
                (None, None) => String::new(),
            };
            format!("{}{on}", c.action)
        })
        .collect();
    eprintln!("{function}: DynamoDB calls {used:?}");
    // A statement covers a call when it names the call's resource (the table's ARN, or the
    // index's: `${Table.Arn}/index/<name>` or `/index/*`), allows its action, and, when it has a
    // `dynamodb:LeadingKeys` condition, the partition the call names (judged on the table only:
    // the conditions here are written for the table's `PK`).
    let names = |g: &parkpay_lambda_harness::template::Grant, index: Option<&str>| {
        g.resources.iter().any(|r| match index {
            None => getatt_target(r).is_some_and(|(_, att)| att == "Arn"),
            Some(i) => {
                sub_text(r).is_some_and(|text| text.ends_with(&format!("/index/{i}")) || text.ends_with("/index/*"))
            }
        })
    };
    for call in calls {
        let on = call.index.as_deref();
        let key = if on.is_none() { call.leading_key.as_deref() } else { None };
        if !f.actions.contains(&call.action) {
            failures.push(format!("{function} called {} but template.yaml does not allow it", call.action));
        } else if !f.grants.iter().any(|g| names(g, on) && g.actions.contains(&call.action)) {
            failures.push(match on {
                Some(i) => {
                    format!("{function} called {} on index {i} but its policy names no index ARN for it", call.action)
                }
                None => {
                    format!("{function} called {} on the table but its policy allows it only on an index", call.action)
                }
            });
        } else if !f.grants.iter().any(|g| names(g, on) && g.allows(&call.action, key)) {
            failures.push(format!(
                "{function} called {} on a {} item, but its policy allows that only on other items (LeadingKeys)",
                call.action,
                call.leading_key.as_deref().unwrap_or("?")
            ));
        }
    }
}

/// The functions that never talk to PhonePe (`Route::uses_phonepe` false) start, as built
/// binaries, with only what template.yaml gives them, outside simulation mode and with no PhonePe
/// setting at all (a function that still needed one would fail at init on AWS).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn functions_without_phonepe_start_with_the_template_environment() {
    let t = template();
    let mut without: Vec<&str> = ROUTES.iter().filter(|r| !r.uses_phonepe).map(|r| r.binary).collect();
    assert!(!without.is_empty());
    without.dedup();
    let bin_dir = workspace::built_binaries(&without).unwrap_or_else(|e| panic!("{e}"));
    let offline = Offline {
        table: "unused".into(),
        simulator_url: String::new(),
        dynamodb_endpoint: None,
        deployment: Apis::V1Only.deployment(&t).unwrap_or_else(|e| panic!("{e}")),
    };
    for r in ROUTES.iter().filter(|r| !r.uses_phonepe) {
        let mut env = world::function_env(&t.functions[r.function], &offline).unwrap();
        env.retain(|(k, _)| !k.starts_with("PHONEPE_") && k != "PARKPAY_REDIRECT_URL");
        let launch = process::Launch { exe: bin_dir.join(r.binary), function_name: r.function.to_owned(), env };
        if let Err(e) = process::start(&launch, Duration::from_secs(30)).await {
            panic!("{}: {e}", r.function);
        }
    }
}
