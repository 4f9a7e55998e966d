//! Conformance against the providers' published documents, not only against our simulators:
//!
//! - OpenAI: the vendored part of `openapi.yaml` (`tests/fixtures/spec/openai/`). keyfire's
//!   provider runs every operation against the simulator; each request it sent must be a
//!   documented operation with documented query parameters (enum values and `limit` bounds
//!   included), and each answer the simulator gives must validate against the operation's
//!   response schema, turned into a JSON Schema. Objects keyfire reads are checked strictly:
//!   a field the schema does not declare (such as a `status` on a project key) fails.
//! - AWS: the botocore service models of every call keyfire and the CloudTrail stand-in make
//!   (`tests/fixtures/spec/aws/calls.json`), loaded by botocore itself.
//! - SendGrid: the vendored part of twilio/sendgrid-oai (`tests/fixtures/spec/sendgrid/`):
//!   every request is a documented operation, and the simulator's answers (errors included)
//!   validate against the response schemas, key objects held to their declared fields.
//! - LiteLLM: the field names of `schema.prisma` (`tests/fixtures/spec/litellm/`): what the
//!   provider reads and what the simulator answers in key objects and spend-log rows.
//! - Anthropic and Vault: field lists from their API references, each with its source link
//!   (`tests/fixtures/spec/api-fields.json`), checked against the simulators' answers.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::process::Command;

use keyfire::http::Http;
use keyfire::inventory::{Origin, ProviderDef, ProviderKind};
use keyfire::plan::SecretBag;
use keyfire::provider::{AnyProvider, Op, OpOutput, UsageBucket, Which};
use keyfire::secret::{Redactor, Secret};
use keyfire::sim::openai::UsageEndpoint;
use keyfire::sim::{AnthropicSim, CloudTrailSim, LoggedRequest, OpenAiSim, TrailEvent, VaultSim};
use serde_json::{Value, json};

use crate::emulators::{http, skip, which};

fn fixture(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/spec")
        .join(rel)
}

fn load(rel: &str) -> Value {
    let text = std::fs::read_to_string(fixture(rel)).unwrap();
    serde_json::from_str(&text).unwrap()
}

// ---------------------------------------------------------------------------------------
// OpenAI

const ADMIN: &str = "sk-admin-CANARYspecAdmin7Q2x9LmZ4bV8nR1tY6wK3xx";
const OLD: &str = "sk-proj-CANARYspecOldKey3Fg6Hj9Kl2Mn5Pq8Rs1T3BlbkFJ";
const SPARE: &str = "sk-proj-CANARYspecSpare3Fg6Hj9Kl2Mn5Pq8Rs1T3BlbkFJ";
const SA_KEY: &str = "sk-svcacct-CANARYspecSvcKey3Fg6Hj9Kl2Mn5Pq8Rs1T3BlbkFJ";
const PROJECT: &str = "proj_keyfire";

/// Schemas of the objects keyfire reads, held to their declared fields.
const STRICT: &[&str] = &[
    "ProjectListResponse",
    "Project",
    "ProjectApiKey",
    "ProjectApiKeyListResponse",
    "ProjectApiKeyOwnerUser",
    "ProjectApiKeyOwnerServiceAccount",
    "ProjectApiKeyDeleteResponse",
    "ProjectServiceAccount",
    "ProjectServiceAccountListResponse",
    "ProjectServiceAccountCreateResponse",
    "ProjectServiceAccountApiKey",
    "ProjectServiceAccountDeleteResponse",
    "UsageResponse",
    "UsageTimeBucket",
    "UsageCompletionsResult",
    "UsageEmbeddingsResult",
    "UsageModerationsResult",
    "UsageImagesResult",
    "UsageAudioSpeechesResult",
    "UsageAudioTranscriptionsResult",
    "UsageWebSearchCallsResult",
    "UsageFileSearchCallsResult",
    "CostsResult",
    "ListAuditLogsResponse",
    "Error",
    "ErrorResponse",
];

/// Every object schema with declared properties refuses undeclared ones. `$ref`s are left
/// alone: the schema they name is strict only if it is listed too.
fn make_strict(v: &mut Value) {
    match v {
        Value::Object(m) => {
            if m.contains_key("properties")
                && !m.contains_key("additionalProperties")
                && !m.contains_key("unevaluatedProperties")
            {
                m.insert("unevaluatedProperties".into(), Value::Bool(false));
            }
            for (k, child) in m.iter_mut() {
                if k != "$ref" {
                    make_strict(child);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(make_strict),
        _ => {}
    }
}

struct Spec {
    doc: Value,
    /// The document's components with the strict schemas tightened.
    components: Value,
}

impl Spec {
    fn openai() -> Self {
        let doc = load("openai/openapi-subset.json");
        let mut components = doc["components"].clone();
        for name in STRICT {
            let s = components["schemas"]
                .get_mut(*name)
                .unwrap_or_else(|| panic!("{name} is not in the vendored document"));
            make_strict(s);
        }
        Self { doc, components }
    }

    /// The documented operation a request made: (path template, its operation object).
    fn operation(&self, method: &str, path: &str) -> Option<(String, &Value)> {
        let path = path.strip_prefix("/v1")?;
        let segments: Vec<&str> = path.split('/').collect();
        self.doc["paths"]
            .as_object()?
            .iter()
            .find(|(template, _)| {
                let t: Vec<&str> = template.split('/').collect();
                t.len() == segments.len()
                    && t.iter()
                        .zip(&segments)
                        .all(|(t, s)| t.starts_with('{') || t == s)
            })
            .and_then(|(template, item)| {
                item.get(method.to_ascii_lowercase())
                    .map(|op| (template.clone(), op))
            })
    }

    fn validate(&self, schema: &Value, body: &Value, what: &str) {
        let root = json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "components": self.components,
            "allOf": [schema],
        });
        let v = jsonschema::validator_for(&root).unwrap();
        let errors: Vec<String> = v
            .iter_errors(body)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(
            errors.is_empty(),
            "{what}: the simulator's answer does not follow the spec:\n{}\n{body:#}",
            errors.join("\n")
        );
    }

    fn response_schema<'a>(&self, op: &'a Value, status: &str) -> &'a Value {
        &op["responses"][status]["content"]["application/json"]["schema"]
    }
}

/// The largest `limit` a parameter description allows (`max: 31` for daily buckets,
/// `between 1 and 100`).
fn documented_max_limit(description: &str) -> Option<u64> {
    let digits = |s: &str| -> Option<u64> {
        s.chars()
            .take_while(char::is_ascii_digit)
            .collect::<String>()
            .parse()
            .ok()
    };
    if let Some(at) = description.find("`bucket_width=1d`") {
        let rest = &description[at..];
        return rest.find("max: ").and_then(|m| digits(&rest[m + 5..]));
    }
    description
        .find("between 1 and ")
        .and_then(|m| digits(&description[m + 14..]))
}

/// keyfire sent only documented query parameters, with documented values.
fn check_query(r: &LoggedRequest, template: &str, op: &Value) {
    let params = op["parameters"].as_array().cloned().unwrap_or_default();
    for (name, value) in url::form_urlencoded::parse(r.query.as_bytes()) {
        // `effective_at[gte]` is the deep-object form of the documented `effective_at`.
        let base = match name.find('[') {
            Some(i) if !name.ends_with("[]") => &name[..i],
            _ => name.as_ref(),
        };
        let p = params
            .iter()
            .find(|p| p["name"] == base && p["in"] == "query")
            .unwrap_or_else(|| {
                panic!(
                    "{} {template}: query parameter {name} is not in the spec",
                    r.method
                )
            });
        let schema = &p["schema"];
        let allowed = schema["enum"]
            .as_array()
            .or_else(|| schema["items"]["enum"].as_array());
        if let Some(allowed) = allowed {
            assert!(
                allowed.iter().any(|a| a == value.as_ref()),
                "{template}: {name}={value} is not one of {allowed:?}"
            );
        }
        if name == "limit" {
            let n: u64 = value.parse().unwrap();
            let max = documented_max_limit(p["description"].as_str().unwrap_or(""))
                .unwrap_or_else(|| panic!("{template}: no documented limit bound"));
            assert!(
                (1..=max).contains(&n),
                "{template}: limit={n} is outside 1..={max}"
            );
        }
    }
}

fn day_buckets(n: u64) -> Vec<UsageBucket> {
    let today = chrono::Utc::now()
        .date_naive()
        .and_time(chrono::NaiveTime::MIN)
        .and_utc();
    (0..40)
        .map(|i| {
            let start = today - chrono::Duration::days(i);
            UsageBucket {
                start,
                end: start + chrono::Duration::days(1),
                requests: n,
                input_tokens: n * 10,
                output_tokens: n * 3,
                cost_usd: n as f64 * 0.01,
            }
        })
        .collect()
}

fn openai_provider(sim: &OpenAiSim) -> AnyProvider {
    AnyProvider::from_def(&ProviderDef {
        id: "openai".into(),
        kind: ProviderKind::OpenAi,
        admin_credential: None,
        base_url: Some(sim.base_url()),
        settings: json!({ "project_id": PROJECT })
            .as_object()
            .cloned()
            .unwrap(),
        origin: Origin { file: 0, line: 1 },
    })
}

#[test]
fn openai_requests_and_simulator_answers_follow_the_openapi_document() {
    let spec = Spec::openai();
    let sim = OpenAiSim::start().unwrap();
    sim.add_admin_key(ADMIN);
    for i in 0..3 {
        sim.add_user_key(
            PROJECT,
            &format!("other-{i}"),
            &format!("sk-proj-other{i:04}abcdefghijklmnopqrstuvwxyz{i:04}"),
        );
    }
    let old = sim.add_user_key(PROJECT, "old", OLD);
    let spare = sim.add_user_key(PROJECT, "spare", SPARE);
    let (sa, sa_key) = sim.add_service_account(PROJECT, "bot", SA_KEY);
    for e in UsageEndpoint::ALL {
        sim.set_endpoint_usage(&old, e, day_buckets(5));
    }
    sim.add_audit_event(
        "api_key.updated",
        &old,
        "oncall@example.com",
        "203.0.113.7",
        chrono::Utc::now() - chrono::Duration::hours(1),
    );

    // keyfire runs every operation it has.
    let provider = openai_provider(&sim);
    let redactor = Redactor::new();
    let bag = SecretBag {
        admin: Some(Secret::new(ADMIN)),
        old_key: Some(Secret::new(OLD)),
        ..SecretBag::default()
    };
    let client = Http::new(false, redactor).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let end = chrono::Utc::now();
    let start = end - chrono::Duration::days(45);
    let ops = [
        Op::Locate {
            id: Some(old.clone()),
            name: None,
            hint: None,
        },
        Op::Locate {
            id: None,
            name: None,
            hint: Some(format!("sk-proj-...{}", &OLD[OLD.len() - 4..])),
        },
        Op::Locate {
            id: Some(sa_key.clone()),
            name: None,
            hint: None,
        },
        Op::Verify { which: Which::Old },
        Op::Usage {
            id: old.clone(),
            start,
            end,
        },
        Op::AuditLog {
            id: old.clone(),
            start,
            end,
        },
        Op::AuditLog {
            id: sa_key.clone(),
            start,
            end,
        },
        Op::Create {
            name: "keyfire-spec-1".into(),
            idempotency_key: "spec-1".into(),
        },
        Op::Revoke { id: old.clone() },
        Op::Revoke { id: sa_key.clone() },
    ];
    rt.block_on(async {
        for op in &ops {
            let plan = provider.plan(op).unwrap();
            let out = provider.execute(op, &plan, &client, &bag).await;
            assert!(out.is_ok(), "{op:?}: {out:?}");
            if let (Op::Usage { .. }, Ok(OpOutput::Usage(u))) = (op, &out) {
                assert!(u.requests() > 0);
            }
        }
    });

    // `inventory discover`'s listing too: every project the admin key sees, then their keys.
    sim.add_project("proj_other");
    sim.add_user_key(
        "proj_other",
        "stray",
        "sk-proj-otherproject0000abcdefghijklmnop",
    );
    let lister = AnyProvider::from_def(&ProviderDef {
        id: "openai".into(),
        kind: ProviderKind::OpenAi,
        admin_credential: None,
        base_url: Some(sim.base_url()),
        settings: json!({ "project_id": PROJECT, "discover_projects": "all" })
            .as_object()
            .cloned()
            .unwrap(),
        origin: Origin { file: 0, line: 1 },
    });
    let plan = lister.list_plan().unwrap();
    let listing = rt.block_on(lister.list_keys(&plan, &client, &bag)).unwrap();
    assert!(
        listing
            .keys
            .iter()
            .any(|k| k.within.as_deref() == Some("project proj_other"))
    );

    // Every request keyfire sent is a documented operation with documented parameters.
    let requests = sim.requests();
    let mut usage_read = BTreeSet::new();
    for r in &requests {
        let (template, op) = spec
            .operation(&r.method, &r.path)
            .unwrap_or_else(|| panic!("{} {} is not in the spec", r.method, r.path));
        check_query(r, &template, op);
        if let Some(u) = template.strip_prefix("/organization/usage/") {
            usage_read.insert(u.to_string());
        }
    }
    // ... and the usage endpoints it read are exactly those that filter by api_key_ids.
    let by_key: BTreeSet<String> = spec.doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .filter_map(|(p, item)| {
            let u = p.strip_prefix("/organization/usage/")?;
            item["get"]["parameters"]
                .as_array()?
                .iter()
                .any(|x| x["name"] == "api_key_ids")
                .then(|| u.to_string())
        })
        .collect();
    assert_eq!(usage_read, by_key);

    // The simulator's answers to keyfire's reads, asked again, follow the response schemas.
    let port = sim.addr().port();
    let admin = [("Authorization", format!("Bearer {ADMIN}"))];
    let admin: Vec<(&str, &str)> = admin.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut seen = HashMap::new();
    for r in requests.iter().filter(|r| r.method == "GET") {
        let (template, op) = spec.operation(&r.method, &r.path).unwrap();
        let target = if r.query.is_empty() {
            r.path.clone()
        } else {
            format!("{}?{}", r.path, r.query)
        };
        let (status, body) = if template == "/models" {
            http(
                port,
                "GET",
                &target,
                &[("Authorization", &format!("Bearer {SPARE}"))],
                "",
            )
        } else {
            http(port, "GET", &target, &admin, "")
        }
        .unwrap();
        if template.ends_with("{api_key_id}") && status == 404 {
            continue; // a key deleted since: the error shape is checked below
        }
        assert_eq!(status, 200, "{target}: {body}");
        let body: Value = serde_json::from_str(&body).unwrap();
        spec.validate(spec.response_schema(op, "200"), &body, &target);
        *seen.entry(template).or_insert(0) += 1;
    }
    for must in [
        "/models",
        "/organization/projects",
        "/organization/projects/{project_id}/api_keys",
        "/organization/usage/completions",
        "/organization/usage/web_search_calls",
        "/organization/costs",
        "/organization/audit_logs",
    ] {
        assert!(
            seen.contains_key(must),
            "{must} was not validated: {seen:?}"
        );
    }

    // Writes are validated on calls of their own (replaying one would change the state).
    let project = format!("/v1/organization/projects/{PROJECT}");
    let write = |method: &str, path: &str, body: &str, schema: &str| {
        let (status, text) = http(
            port,
            method,
            path,
            &[admin[0], ("Content-Type", "application/json")],
            body,
        )
        .unwrap();
        assert_eq!(status, 200, "{method} {path}: {text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        let (_, op) = spec.operation(method, path).unwrap();
        assert_eq!(
            spec.response_schema(op, "200")["$ref"],
            format!("#/components/schemas/{schema}")
        );
        spec.validate(spec.response_schema(op, "200"), &v, path);
        v
    };
    let created = write(
        "POST",
        &format!("{project}/service_accounts"),
        r#"{"name":"spec-check"}"#,
        "ProjectServiceAccountCreateResponse",
    );
    let new_sa = created["id"].as_str().unwrap().to_string();
    // A key of each owner kind, by id (keyfire's own lookups were of keys deleted since).
    let new_key = created["api_key"]["id"].as_str().unwrap().to_string();
    let by_sa = write(
        "GET",
        &format!("{project}/api_keys/{new_key}"),
        "",
        "ProjectApiKey",
    );
    assert_eq!(by_sa["owner"]["type"], "service_account");
    let by_user = write(
        "GET",
        &format!("{project}/api_keys/{spare}"),
        "",
        "ProjectApiKey",
    );
    assert_eq!(by_user["owner"]["type"], "user");
    write(
        "GET",
        &format!("{project}/service_accounts"),
        "",
        "ProjectServiceAccountListResponse",
    );
    write(
        "GET",
        &format!("{project}/service_accounts/{new_sa}"),
        "",
        "ProjectServiceAccount",
    );
    write(
        "DELETE",
        &format!("{project}/api_keys/{spare}"),
        "",
        "ProjectApiKeyDeleteResponse",
    );
    write(
        "DELETE",
        &format!("{project}/service_accounts/{new_sa}"),
        "",
        "ProjectServiceAccountDeleteResponse",
    );

    // Errors have the documented shape; a deleted key is refused with `invalid_api_key`.
    let error = json!({ "$ref": "#/components/schemas/ErrorResponse" });
    let (status, text) = http(
        port,
        "GET",
        "/v1/models",
        &[("Authorization", &format!("Bearer {OLD}"))],
        "",
    )
    .unwrap();
    assert_eq!(status, 401);
    let v: Value = serde_json::from_str(&text).unwrap();
    spec.validate(&error, &v, "401 from /v1/models");
    assert_eq!(v["error"]["code"], "invalid_api_key");
    let (status, text) = http(
        port,
        "GET",
        &format!("{project}/api_keys/{old}"),
        &admin,
        "",
    )
    .unwrap();
    assert_eq!(status, 404);
    spec.validate(
        &error,
        &serde_json::from_str(&text).unwrap(),
        "404 for a deleted key",
    );

    // Deleting the service account was logged on its id, as the audit-log search expects.
    let (_, text) = http(
        port,
        "GET",
        &format!("/v1/organization/audit_logs?resource_ids[]={sa}"),
        &admin,
        "",
    )
    .unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    assert!(
        v["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["type"] == "service_account.deleted"),
        "{v:#}"
    );
}

#[test]
fn the_strict_check_refuses_a_field_the_openai_schema_does_not_declare() {
    // The check itself can fail: a project key carrying a `status` (which the spec does not
    // have) or lacking `owner_project_access` is refused.
    let spec = Spec::openai();
    let schema = json!({ "$ref": "#/components/schemas/ProjectApiKey" });
    let owner = json!({ "type": "user", "user": {
        "id": "user_1", "email": "a@example.com", "name": "A", "created_at": 1, "role": "owner"
    } });
    let good = json!({
        "object": "organization.project.api_key", "redacted_value": "sk-proj-ab...wxyz",
        "name": "k", "created_at": 1, "last_used_at": null, "id": "key_1",
        "owner_project_access": "active", "owner": owner,
    });
    spec.validate(&schema, &good, "a key as the spec has it");
    let root = |body: &Value| {
        let root = json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "components": spec.components,
            "allOf": [schema],
        });
        jsonschema::validator_for(&root).unwrap().is_valid(body)
    };
    let mut with_status = good.clone();
    with_status["status"] = json!("active");
    assert!(!root(&with_status));
    let mut without_access = good.clone();
    without_access
        .as_object_mut()
        .unwrap()
        .remove("owner_project_access");
    assert!(!root(&without_access));
    let mut owner_without_email = good.clone();
    owner_without_email["owner"]["user"]
        .as_object_mut()
        .unwrap()
        .remove("email");
    assert!(!root(&owner_without_email));
}

// ---------------------------------------------------------------------------------------
// AWS: botocore service models

/// `python3` with botocore, or why not.
fn botocore_python() -> Result<PathBuf, String> {
    let python = which("python3").ok_or("python3 is not on PATH")?;
    let ok = Command::new(&python)
        .args(["-c", "import botocore"])
        .output()
        .map_err(|e| e.to_string())?
        .status
        .success();
    if ok {
        Ok(python)
    } else {
        Err("botocore is not installed for python3 (pip install boto3)".into())
    }
}

#[test]
fn aws_calls_and_the_cloudtrail_stand_in_follow_the_botocore_service_models() {
    const TEST: &str = "spec_conformance::aws_calls_and_the_cloudtrail_stand_in_follow_the_botocore_service_models";
    let python = match botocore_python() {
        Ok(p) => p,
        Err(why) => return skip(TEST, &why),
    };
    let out = Command::new(python)
        .arg(fixture("aws/check_models.py"))
        .arg(fixture("aws/calls.json"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let missing: Vec<&Value> = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["found"] != true)
        .collect();
    assert!(
        missing.is_empty(),
        "botocore {} does not know what keyfire uses: {missing:#?}",
        report["botocore_version"]
    );
    assert!(report["results"].as_array().unwrap().len() > 40);

    // The stand-in answers with the output members of the model, and refuses what the model
    // bounds.
    let ct = &report["cloudtrail"];
    let members: BTreeSet<&str> = ct["event_members"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(ct["max_results"], json!([1, 50]), "{ct}");
    assert!(
        ct["target_prefix"]
            .as_str()
            .is_some_and(|t| t == "CloudTrail_20131101"
                || t == "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101"),
        "{ct}"
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    let sim = rt.block_on(async { CloudTrailSim::start() }).unwrap();
    sim.add(TrailEvent {
        region: "us-east-1".into(),
        access_key_id: "AKIASPEC".into(),
        time: chrono::Utc::now(),
        name: "ListBuckets".into(),
        source_ip: "203.0.113.7".into(),
        user_agent: "aws-cli/2".into(),
        error_code: None,
    });
    let port: u16 = sim.address().rsplit(':').next().unwrap().parse().unwrap();
    let call = |body: &str| {
        http(
            port,
            "POST",
            "/",
            &[
                ("X-Amz-Target", "CloudTrail_20131101.LookupEvents"),
                ("Content-Type", "application/x-amz-json-1.1"),
                (
                    "Authorization",
                    "AWS4-HMAC-SHA256 Credential=AKIAADMIN/20261127/us-east-1/cloudtrail/aws4_request, SignedHeaders=host, Signature=00",
                ),
            ],
            body,
        )
        .unwrap()
    };
    let (status, text) = call(
        r#"{"LookupAttributes":[{"AttributeKey":"AccessKeyId","AttributeValue":"AKIASPEC"}]}"#,
    );
    assert_eq!(status, 200, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    let top: Vec<&String> = v.as_object().unwrap().keys().collect();
    for k in &top {
        assert!(
            ct["output_members"]
                .as_array()
                .unwrap()
                .iter()
                .any(|m| m == k.as_str()),
            "{k}"
        );
    }
    let event = &v["Events"][0];
    for k in event.as_object().unwrap().keys() {
        assert!(
            members.contains(k.as_str()),
            "Events[].{k} is not in the model: {members:?}"
        );
    }
    let errors: BTreeSet<&str> = ct["errors"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for (body, code) in [
        (r#"{"MaxResults":51}"#, "InvalidMaxResultsException"),
        (r#"{"MaxResults":0}"#, "InvalidMaxResultsException"),
        (
            r#"{"StartTime":1700000100,"EndTime":1700000000}"#,
            "InvalidTimeRangeException",
        ),
        (
            r#"{"LookupAttributes":[{"AttributeKey":"AccessKeyId","AttributeValue":"A"},{"AttributeKey":"AccessKeyId","AttributeValue":"B"}]}"#,
            "InvalidLookupAttributesException",
        ),
        (
            r#"{"NextToken":"not-a-token"}"#,
            "InvalidNextTokenException",
        ),
    ] {
        let (status, text) = call(body);
        assert_eq!(status, 400, "{body}: {text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["__type"], code, "{body}");
        assert!(
            errors.contains(code),
            "{code} is not an error of LookupEvents: {errors:?}"
        );
    }
    let (status, _) = call(r#"{"MaxResults":50}"#);
    assert_eq!(status, 200);
    drop(rt);
}

// ---------------------------------------------------------------------------------------
// Anthropic and Vault: field lists from the API references

/// Every dotted path (`a.b`, `data[].c`) the reference lists is in the answer.
fn missing_fields(body: &Value, fields: &[Value]) -> Vec<String> {
    fn has(v: &Value, path: &[&str]) -> bool {
        let Some((first, rest)) = path.split_first() else {
            return true;
        };
        if let Some(name) = first.strip_suffix("[]") {
            return match v.get(name).and_then(Value::as_array) {
                // An empty list cannot show its items' fields: the caller seeds data.
                Some(items) => !items.is_empty() && items.iter().all(|i| has(i, rest)),
                None => false,
            };
        }
        match v.get(*first) {
            Some(child) => rest.is_empty() || has(child, rest),
            None => false,
        }
    }
    fields
        .iter()
        .filter_map(Value::as_str)
        .filter(|f| !has(body, &f.split('.').collect::<Vec<_>>()))
        .map(str::to_string)
        .collect()
}

fn reference(provider: &str, call: &str) -> (Vec<Value>, String) {
    let all = load("api-fields.json");
    let c = &all[provider][call];
    assert!(
        c["source"]
            .as_str()
            .is_some_and(|s| s.starts_with("https://")),
        "{provider} {call} needs its source link"
    );
    (
        c["fields"].as_array().cloned().unwrap_or_default(),
        c["source"].as_str().unwrap_or("").to_string(),
    )
}

fn check(provider: &str, call: &str, body: &Value) {
    let (fields, source) = reference(provider, call);
    assert!(!fields.is_empty(), "{provider} {call}: no fields listed");
    let missing = missing_fields(body, &fields);
    assert!(
        missing.is_empty(),
        "{provider} {call}: the simulator's answer lacks {missing:?}, listed in {source}:\n{body:#}"
    );
}

#[test]
fn anthropic_simulator_answers_carry_the_fields_of_the_api_reference() {
    const ADMIN_KEY: &str = "sk-ant-admin01-CANARYspecAdmin7Q2x9LmZ4bV8nR1tY6-AA";
    const KEY: &str = "sk-ant-api03-CANARYspecOldKey3Fg6Hj9Kl2Mn5Pq8Rs1-igAA";
    let sim = AnthropicSim::start().unwrap();
    sim.add_admin_key(ADMIN_KEY);
    let id = sim.add_key("support-bot", KEY);
    sim.set_usage(&id, day_buckets(3));
    let port = sim.addr().port();
    let admin = [
        ("x-api-key", ADMIN_KEY),
        ("anthropic-version", "2023-06-01"),
    ];
    let get = |path: &str, headers: &[(&str, &str)]| {
        let (status, text) = http(port, "GET", path, headers, "").unwrap();
        assert_eq!(status, 200, "{path}: {text}");
        serde_json::from_str::<Value>(&text).unwrap()
    };
    check(
        "anthropic",
        "get_api_key",
        &get(&format!("/v1/organizations/api_keys/{id}"), &admin),
    );
    check(
        "anthropic",
        "list_api_keys",
        &get("/v1/organizations/api_keys?limit=1000", &admin),
    );
    let today = chrono::Utc::now().date_naive();
    check(
        "anthropic",
        "messages_usage_report",
        &get(
            &format!(
                "/v1/organizations/usage_report/messages?starting_at={}T00:00:00Z&bucket_width=1d&api_key_ids[]={id}&limit=31",
                today - chrono::Duration::days(5)
            ),
            &admin,
        ),
    );
    check(
        "anthropic",
        "list_models",
        &get(
            "/v1/models?limit=1",
            &[("x-api-key", KEY), ("anthropic-version", "2023-06-01")],
        ),
    );
    let (status, text) = http(
        port,
        "POST",
        &format!("/v1/organizations/api_keys/{id}"),
        &[admin[0], admin[1], ("content-type", "application/json")],
        r#"{"status":"archived"}"#,
    )
    .unwrap();
    assert_eq!(status, 200, "{text}");
    check(
        "anthropic",
        "update_api_key",
        &serde_json::from_str(&text).unwrap(),
    );
    let (status, text) = http(
        port,
        "GET",
        "/v1/models?limit=1",
        &[("x-api-key", KEY), ("anthropic-version", "2023-06-01")],
        "",
    )
    .unwrap();
    assert_eq!(status, 401);
    check("anthropic", "error", &serde_json::from_str(&text).unwrap());
}

#[test]
fn vault_simulator_answers_carry_the_fields_of_the_api_reference() {
    let token = "hvs.CANARYspecVaultToken7Q2x9LmZ4";
    let sim = VaultSim::start("secret", token).unwrap();
    let port = sim.addr().port();
    let h = [
        ("X-Vault-Token", token),
        ("Content-Type", "application/json"),
    ];
    let call = |method: &str, path: &str, body: &str| {
        let (status, text) = http(port, method, path, &h, body).unwrap();
        (
            status,
            serde_json::from_str::<Value>(&text).unwrap_or(Value::Null),
        )
    };
    let (status, written) = call(
        "POST",
        "/v1/secret/data/agents/spec",
        r#"{"options":{"cas":0},"data":{"value":"v1","other":"kept"}}"#,
    );
    assert_eq!(status, 200, "{written}");
    check("vault", "create_update_secret", &written);
    let (status, read) = call("GET", "/v1/secret/data/agents/spec", "");
    assert_eq!(status, 200, "{read}");
    check("vault", "read_secret_version", &read);
    let (status, meta) = call("GET", "/v1/secret/metadata/agents/spec", "");
    assert_eq!(status, 200, "{meta}");
    check("vault", "read_secret_metadata", &meta);
    let (status, err) = call(
        "POST",
        "/v1/secret/data/agents/spec",
        r#"{"options":{"cas":0},"data":{"value":"v2"}}"#,
    );
    assert_eq!(status, 400, "a stale cas is refused: {err}");
    check("vault", "error", &err);
}

// ---------------------------------------------------------------------------------------
// SendGrid: the vendored part of twilio/sendgrid-oai (`tests/fixtures/spec/sendgrid/`).

const SG_ADMIN: &str = "SG.CANARYspecAdmin7Q2x9Lm.CANARYspecAdminSecret8nR1tY6wK3xxFg6Hj9Kl2Mn";
const SG_OLD: &str = "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";

impl Spec {
    fn sendgrid() -> Self {
        let mut doc = load("sendgrid/openapi-subset.json");
        // The documents say OpenAPI 3.1 but mark nullable fields the 3.0 way
        // (`nullable: true`, which JSON Schema ignores); their examples answer `field: null`.
        nullable_to_type(&mut doc);
        let mut components = doc["components"].clone();
        for name in ["ApiKeyResponse", "ApiKeyScopesResponse", "ErrorResponse"] {
            make_strict(&mut components["schemas"][name]);
        }
        Self { doc, components }
    }

    /// An operation's response schema, through a `$ref` to `components.responses`.
    fn response_schema_of(&self, op: &Value, status: &str) -> Value {
        let mut resp = &op["responses"][status];
        if let Some(r) = resp["$ref"].as_str() {
            let name = r.trim_start_matches("#/components/responses/");
            resp = &self.doc["components"]["responses"][name];
        }
        let schema = resp["content"]["application/json"]["schema"].clone();
        assert!(!schema.is_null(), "no schema for {status}");
        schema
    }

    /// The documented operation of a request, matching the whole path.
    fn operation_at(&self, method: &str, path: &str) -> Option<(String, &Value)> {
        let segments: Vec<&str> = path.split('/').collect();
        self.doc["paths"]
            .as_object()?
            .iter()
            .find(|(template, _)| {
                let t: Vec<&str> = template.split('/').collect();
                t.len() == segments.len()
                    && t.iter()
                        .zip(&segments)
                        .all(|(t, s)| t.starts_with('{') || t == s)
            })
            .and_then(|(template, item)| {
                item.get(method.to_ascii_lowercase())
                    .map(|op| (template.clone(), op))
            })
    }
}

/// `{type: T, nullable: true}` becomes `{type: [T, "null"]}`.
fn nullable_to_type(v: &mut Value) {
    match v {
        Value::Object(m) => {
            if m.get("nullable") == Some(&Value::Bool(true))
                && let Some(Value::String(t)) = m.get("type").cloned()
            {
                m.insert("type".into(), json!([t, "null"]));
            }
            m.values_mut().for_each(nullable_to_type);
        }
        Value::Array(a) => a.iter_mut().for_each(nullable_to_type),
        _ => {}
    }
}

#[test]
fn sendgrid_requests_and_simulator_answers_follow_the_openapi_document() {
    let spec = Spec::sendgrid();
    let sim = keyfire::sim::SendGridSim::start().unwrap();
    sim.add_admin_key(SG_ADMIN);
    let old = sim.add_key("mailer", SG_OLD, &["mail.send", "stats.read"]);
    let provider = AnyProvider::from_def(&ProviderDef {
        id: "mail".into(),
        kind: ProviderKind::SendGrid,
        admin_credential: None,
        base_url: Some(sim.base_url()),
        settings: Default::default(),
        origin: Origin { file: 0, line: 1 },
    });
    let bag = SecretBag {
        admin: Some(Secret::new(SG_ADMIN)),
        old_key: Some(Secret::new(SG_OLD)),
        ..SecretBag::default()
    };
    let client = Http::new(false, Redactor::new()).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let ops = [
        Op::Locate {
            id: Some(old.clone()),
            name: None,
            hint: None,
        },
        Op::Locate {
            id: None,
            name: None,
            hint: Some(format!(
                "{}...{}",
                &SG_OLD[..12],
                &SG_OLD[SG_OLD.len() - 4..]
            )),
        },
        Op::Verify { which: Which::Old },
        Op::Create {
            name: "keyfire-spec-1".into(),
            idempotency_key: "spec-1".into(),
        },
        Op::Revoke { id: old.clone() },
        Op::Verify { which: Which::Old },
    ];
    let mut created = None;
    rt.block_on(async {
        for op in &ops {
            let plan = provider.plan(op).unwrap();
            let out = provider.execute(op, &plan, &client, &bag).await;
            assert!(out.is_ok(), "{op:?}: {out:?}");
            if let Ok(OpOutput::Created { id, .. }) = out {
                created = Some(id);
            }
        }
    });
    // The replacement carries the leaked key's scopes, never full access.
    let new = sim.key(&created.expect("created")).expect("replacement");
    assert_eq!(new.scopes, ["mail.send", "stats.read"]);

    let requests = sim.requests();
    let mut seen = BTreeSet::new();
    for r in &requests {
        let (template, op) = spec
            .operation_at(&r.method, &r.path)
            .unwrap_or_else(|| panic!("{} {} is not in the spec", r.method, r.path));
        for (name, _) in url::form_urlencoded::parse(r.query.as_bytes()) {
            let documented = op["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|p| p["name"] == name.as_ref() && p["in"] == "query");
            assert!(
                documented,
                "{template}: query parameter {name} is not in the spec"
            );
        }
        seen.insert(format!("{} {template}", r.method));
    }
    for must in [
        "GET /v3/api_keys",
        "GET /v3/api_keys/{api_key_id}",
        "GET /v3/scopes",
        "POST /v3/api_keys",
        "DELETE /v3/api_keys/{api_key_id}",
    ] {
        assert!(seen.contains(must), "{must} was not sent: {seen:?}");
    }

    // The simulator's answers follow the response schemas (asked again).
    let port = sim.addr().port();
    let auth = |key: &str| format!("Bearer {key}");
    let (admin, old_auth) = (auth(SG_ADMIN), auth(SG_OLD));
    let checks: [(&str, String, &str, &str, u16); 5] = [
        (
            "GET",
            "/v3/api_keys?limit=100".into(),
            admin.as_str(),
            "",
            200,
        ),
        ("GET", "/v3/api_keys/nope".into(), admin.as_str(), "", 404),
        ("GET", "/v3/scopes".into(), admin.as_str(), "", 200),
        // The deleted key: SendGrid's documented invalid-credential answer.
        ("GET", "/v3/scopes".into(), old_auth.as_str(), "", 401),
        (
            "POST",
            "/v3/api_keys".into(),
            admin.as_str(),
            r#"{"name":"spec-check","scopes":["mail.send"]}"#,
            201,
        ),
    ];
    for (method, target, who, body, want) in checks {
        let (status, text) = http(
            port,
            method,
            &target,
            &[("Authorization", who), ("Content-Type", "application/json")],
            body,
        )
        .unwrap();
        assert_eq!(status, want, "{method} {target}: {text}");
        let path = target.split('?').next().unwrap();
        let (_, op) = spec.operation_at(method, path).unwrap();
        let v: Value = serde_json::from_str(&text).unwrap();
        spec.validate(
            &spec.response_schema_of(op, &want.to_string()),
            &v,
            &format!("{method} {target}"),
        );
    }
    let (_, get) = spec
        .operation_at("GET", "/v3/api_keys/{api_key_id}")
        .unwrap();
    let id = sim.keys()[0].id.clone();
    let (status, text) = http(
        port,
        "GET",
        &format!("/v3/api_keys/{id}"),
        &[("Authorization", &admin)],
        "",
    )
    .unwrap();
    assert_eq!(status, 200);
    spec.validate(
        &spec.response_schema_of(get, "200"),
        &serde_json::from_str(&text).unwrap(),
        "GetApiKey",
    );
}

// ---------------------------------------------------------------------------------------
// LiteLLM: field names of schema.prisma (`tests/fixtures/spec/litellm/schema-fields.json`).

#[test]
fn litellm_reads_and_simulator_objects_use_the_field_names_of_schema_prisma() {
    let doc = load("litellm/schema-fields.json");
    let columns = |model: &str| -> BTreeSet<String> {
        doc[model]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect()
    };
    let (tokens, spend) = (
        columns("LiteLLM_VerificationToken"),
        columns("LiteLLM_SpendLogs"),
    );
    for (model, cols) in [
        ("LiteLLM_VerificationToken", &tokens),
        ("LiteLLM_SpendLogs", &spend),
    ] {
        for f in doc["keyfire_reads"][model].as_array().unwrap() {
            assert!(
                cols.contains(f.as_str().unwrap()),
                "keyfire reads {f}, which is not a column of {model}"
            );
        }
    }

    const MASTER: &str = "sk-CANARYspecMaster7Q2x9LmZ4bV8nR1tY6";
    const VKEY: &str = "sk-CANARYspecVirtual3Fg6Hj9Kl2Mn5Pq8";
    let sim = keyfire::sim::LiteLlmSim::start().unwrap();
    sim.add_master_key(MASTER);
    let token = sim.add_key(Some("support"), VKEY, &["gpt-4o"]);
    sim.set_usage(&token, &day_buckets(3));
    let port = sim.addr().port();
    let admin = format!("Bearer {MASTER}");
    let get = |target: &str| -> Value {
        let (status, text) = http(port, "GET", target, &[("Authorization", &admin)], "").unwrap();
        assert_eq!(status, 200, "{target}: {text}");
        serde_json::from_str(&text).unwrap()
    };
    let undeclared = |obj: &Value, cols: &BTreeSet<String>| -> Vec<String> {
        obj.as_object()
            .unwrap()
            .keys()
            .filter(|k| !cols.contains(*k))
            .cloned()
            .collect()
    };
    let info = get(&format!("/key/info?key={token}"));
    assert_eq!(undeclared(&info["info"], &tokens), Vec::<String>::new());
    let list = get("/key/list?return_full_object=true&size=100&page=1");
    for k in list["keys"].as_array().unwrap() {
        assert_eq!(undeclared(k, &tokens), Vec::<String>::new());
    }
    let end = chrono::Utc::now() + chrono::Duration::days(1);
    let logs = get(&format!(
        "/spend/logs?api_key={token}&start_date=2000-01-01&end_date={}&summarize=false",
        end.format("%Y-%m-%d")
    ));
    let rows = logs.as_array().unwrap();
    assert!(!rows.is_empty());
    for row in rows {
        assert_eq!(undeclared(row, &spend), Vec::<String>::new());
        assert_eq!(
            row["api_key"],
            token.as_str(),
            "the hashed token, never the key"
        );
    }
    // `/key/generate` answers a key object and the value (`GenerateKeyResponse.key`).
    let (status, text) = http(
        port,
        "POST",
        "/key/generate",
        &[
            ("Authorization", &admin),
            ("Content-Type", "application/json"),
        ],
        r#"{"key_alias":"spec-new","models":["gpt-4o"]}"#,
    )
    .unwrap();
    assert_eq!(status, 200, "{text}");
    let generated: Value = serde_json::from_str(&text).unwrap();
    let mut without_value = generated.clone();
    without_value.as_object_mut().unwrap().remove("key");
    assert_eq!(undeclared(&without_value, &tokens), Vec::<String>::new());
    assert_eq!(
        generated["token"].as_str().unwrap(),
        keyfire::audit::fingerprint::of_value(generated["key"].as_str().unwrap()),
        "the token is the SHA-256 hex of the key"
    );
}
