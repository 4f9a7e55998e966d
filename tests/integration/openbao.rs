//! The vault-kv2 store against a real OpenBao dev server: AppRole login inside a namespace,
//! check-and-set, reads by version, merge writes that keep other fields, the drill guard, and
//! `store:` credential references resolved through it.

use keyfire::http::Http;
use keyfire::inventory::{Origin, StoreDef, StoreKind};
use keyfire::plan::{SecretBag, SecretRef};
use keyfire::secret::{Redactor, Secret};
use keyfire::store::{AnyStore, SecretLocation, StoreError, StoreOp, StoreOutput, StoreVersion};

use crate::emulators::Bao;

const NS: &str = "team-a";
const PATH: &str = "agents/support/llm";

fn store(bao: &Bao, role_id: &str, namespace: Option<&str>) -> AnyStore {
    let mut settings = serde_json::Map::new();
    settings.insert("mount".into(), "secret".into());
    settings.insert("auth".into(), "approle".into());
    settings.insert("role_id".into(), role_id.into());
    if let Some(ns) = namespace {
        settings.insert("namespace".into(), ns.into());
    }
    AnyStore::from_def(&StoreDef {
        id: "bao".into(),
        kind: StoreKind::VaultKv2,
        address: Some(bao.url()),
        credential: None,
        settings,
        origin: Origin { file: 0, line: 1 },
    })
}

fn loc() -> SecretLocation {
    SecretLocation {
        path: PATH.into(),
        field: "value".into(),
    }
}

async fn exec(
    s: &AnyStore,
    op: StoreOp,
    http: &Http,
    bag: &SecretBag,
) -> Result<StoreOutput, StoreError> {
    let plan = s.plan(&op, &loc())?;
    s.execute(&op, &loc(), &plan, http, bag).await
}

/// A namespace with KV v2 at `secret/` and an AppRole in it.
fn namespace_with_approle(bao: &Bao) -> (String, String) {
    let (s, v) = bao.api(
        "POST",
        &format!("/v1/sys/namespaces/{NS}"),
        None,
        serde_json::json!({}),
    );
    assert!((200..300).contains(&s), "create namespace: {s} {v}");
    let (s, v) = bao.api(
        "POST",
        "/v1/sys/mounts/secret",
        Some(NS),
        serde_json::json!({ "type": "kv", "options": { "version": "2" } }),
    );
    assert!((200..300).contains(&s), "mount kv: {s} {v}");
    bao.approle(Some(NS))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approle_in_a_namespace_writes_with_check_and_set_and_reads_by_version() {
    let Some(bao) = Bao::start(
        "openbao::approle_in_a_namespace_writes_with_check_and_set_and_reads_by_version",
    ) else {
        return;
    };
    let (role_id, secret_id) = namespace_with_approle(&bao);
    let v1 = bao.put(
        Some(NS),
        PATH,
        serde_json::json!({ "value": "sk-old-CANARY-0001", "model": "gpt-test" }),
    );
    assert_eq!(v1, 1);
    // The same path outside the namespace does not exist: the header is what finds it.
    let (status, _) = bao.api(
        "GET",
        &format!("/v1/secret/data/{PATH}"),
        None,
        serde_json::Value::Null,
    );
    assert_eq!(status, 404);

    let s = store(&bao, &role_id, Some(NS));
    let http = Http::new(false, Redactor::new()).unwrap();
    let mut bag = SecretBag {
        store_credential: Some(Secret::new(secret_id.clone())),
        ..SecretBag::default()
    };
    match exec(&s, StoreOp::Read { version: None }, &http, &bag)
        .await
        .unwrap()
    {
        StoreOutput::Value { value, version } => {
            assert_eq!(value.expose(), "sk-old-CANARY-0001");
            assert_eq!(version, StoreVersion::Number(1));
        }
        other => panic!("{other:?}"),
    }
    bag.new_key = Some(Secret::new("sk-new-CANARY-0002"));
    let write = |cas: u64| StoreOp::Write {
        cas: Some(StoreVersion::Number(cas)),
        pending: true,
        token: "t".into(),
        value: SecretRef::NewKey,
    };
    match exec(&s, write(1), &http, &bag).await.unwrap() {
        StoreOutput::Written { version } => assert_eq!(version, StoreVersion::Number(2)),
        other => panic!("{other:?}"),
    }
    // A second writer with the same stale version is refused.
    let err = exec(&s, write(1), &http, &bag).await.unwrap_err();
    assert!(matches!(err, StoreError::CasMismatch { .. }), "{err}");
    // The old version is still readable (for the revocation proof); the merge kept `model`.
    match exec(
        &s,
        StoreOp::Read {
            version: Some(StoreVersion::Number(1)),
        },
        &http,
        &bag,
    )
    .await
    .unwrap()
    {
        StoreOutput::Value { value, .. } => assert_eq!(value.expose(), "sk-old-CANARY-0001"),
        other => panic!("{other:?}"),
    }
    let (_, v) = bao.api(
        "GET",
        &format!("/v1/secret/data/{PATH}"),
        Some(NS),
        serde_json::Value::Null,
    );
    assert_eq!(v["data"]["data"]["value"], "sk-new-CANARY-0002");
    assert_eq!(v["data"]["data"]["model"], "gpt-test");
    assert_eq!(v["data"]["metadata"]["version"], 2);
    // Promote is a recorded no-op: KV v2 has no stages.
    match exec(
        &s,
        StoreOp::Promote {
            version: StoreVersion::Number(2),
            from: Some(StoreVersion::Number(1)),
        },
        &http,
        &bag,
    )
    .await
    .unwrap()
    {
        StoreOutput::Promoted { noop, .. } => assert!(noop),
        other => panic!("{other:?}"),
    }

    // A wrong secret id cannot log in, and says so.
    let wrong = SecretBag {
        store_credential: Some(Secret::new("00000000-0000-0000-0000-000000000000")),
        ..SecretBag::default()
    };
    let err = exec(
        &store(&bao, &role_id, Some(NS)),
        StoreOp::Read { version: None },
        &http,
        &wrong,
    )
    .await
    .unwrap_err();
    assert!(
        err.to_string().contains("400") || err.to_string().contains("invalid"),
        "{err}"
    );
    assert!(!err.to_string().contains(&secret_id));

    // In a drill the store refuses to send a write even if asked (the engine never asks).
    let drill = Http::new(true, Redactor::new()).unwrap();
    let err = exec(&s, write(2), &drill, &bag).await.unwrap_err();
    assert!(err.to_string().contains("drill"), "{err}");
    assert_eq!(bao.listing(Some(NS), PATH)["current_version"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_references_resolve_admin_credentials_through_openbao() {
    let Some(bao) =
        Bao::start("openbao::store_references_resolve_admin_credentials_through_openbao")
    else {
        return;
    };
    let (role_id, secret_id) = bao.approle(None);
    bao.put(
        None,
        "keyfire/admin",
        serde_json::json!({ "token": "fk-admin-CANARYfromBao12345" }),
    );
    let var = format!("KF_BAO_SECRET_ID_{}", std::process::id());
    // SAFETY: the variable name is unique to this test; nothing else reads or writes it.
    unsafe { std::env::set_var(&var, &secret_id) };
    let text = format!(
        r#"schema = 1
[[providers]]
id = "llm"
kind = "fake"
admin_credential = "store:bao:keyfire/admin#token"

[[stores]]
id = "bao"
kind = "vault-kv2"
address = "{}"
credential = "env:{var}"
settings = {{ auth = "approle", role_id = "{role_id}" }}
"#,
        bao.url()
    );
    let inv = keyfire::inventory::load_str(std::path::Path::new("inv.toml"), &text).unwrap();
    let http = Http::new(false, Redactor::new()).unwrap();
    let cref = inv
        .provider("llm")
        .unwrap()
        .admin_credential
        .clone()
        .unwrap();
    let secret = keyfire::credential::resolve(&cref, &inv, &http)
        .await
        .unwrap();
    assert_eq!(secret.expose(), "fk-admin-CANARYfromBao12345");
    // Both the secret id and the resolved value are now scrubbed from anything keyfire writes.
    let scrubbed = http
        .redactor()
        .scrub(&format!("{secret_id} fk-admin-CANARYfromBao12345"));
    assert!(
        !scrubbed.contains(&secret_id) && !scrubbed.contains("CANARYfromBao"),
        "{scrubbed}"
    );
}

/// A client token for the AppRole, as keyfire gets it.
fn approle_token(bao: &Bao, role_id: &str, secret_id: &str) -> String {
    let (status, text) = crate::emulators::http(
        bao.port,
        "POST",
        "/v1/auth/approle/login",
        &[],
        &serde_json::json!({ "role_id": role_id, "secret_id": secret_id }).to_string(),
    )
    .unwrap();
    assert_eq!(status, 200, "{text}");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["auth"]["client_token"].as_str().unwrap().to_string()
}

#[test]
fn live_incident_with_a_rotation_policy_and_approle_keeps_the_other_fields() {
    let Some(bao) = Bao::start(
        "openbao::live_incident_with_a_rotation_policy_and_approle_keeps_the_other_fields",
    ) else {
        return;
    };
    let env = crate::common::TestEnv::new();
    let v1 = bao.put(
        None,
        crate::common::OLD_PATH,
        serde_json::json!({ "value": env.canaries.old_key, "model": "gpt-test" }),
    );
    let (role_id, secret_id) = bao.approle(None);
    // The policy grants no `patch`: OpenBao refuses a PATCH from this role outright.
    let token = approle_token(&bao, &role_id, &secret_id);
    let (status, text) = crate::emulators::http(
        bao.port,
        "PATCH",
        &format!("/v1/secret/data/{}", crate::common::OLD_PATH),
        &[
            ("X-Vault-Token", token.as_str()),
            ("Content-Type", "application/merge-patch+json"),
        ],
        r#"{"data":{"model":"x"}}"#,
    )
    .unwrap();
    assert_eq!(status, 403, "{text}");

    let inventory = std::fs::read_to_string(env.inventory_path())
        .unwrap()
        .replace(
            &format!("address = \"{}\"", env.vault.address()),
            &format!("address = \"{}\"", bao.url()),
        )
        .replace(
            "settings = { mount = \"secret\" }",
            &format!(
                "settings = {{ mount = \"secret\", auth = \"approle\", role_id = \"{role_id}\" }}"
            ),
        );
    assert!(inventory.contains(&bao.url()) && inventory.contains(&role_id));
    std::fs::write(env.inventory_path(), inventory).unwrap();

    let out = env
        .cmd()
        .env(crate::common::VAULT_VAR, &secret_id)
        .args(["incident", "start", "support-llm", "--yes", "--no-tui"])
        .output()
        .unwrap();
    let text = crate::common::stdout(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}\n{}",
        crate::common::stderr(&out)
    );
    assert_eq!(
        bao.listing(None, crate::common::OLD_PATH)["current_version"],
        v1 + 1
    );
    let (_, v) = bao.api(
        "GET",
        &format!("/v1/secret/data/{}", crate::common::OLD_PATH),
        None,
        serde_json::Value::Null,
    );
    let new = v["data"]["data"]["value"].as_str().unwrap();
    assert_ne!(new, env.canaries.old_key);
    assert!(env.api.accepts(new), "the stored replacement works");
    assert!(!env.api.accepts(&env.canaries.old_key));
    assert_eq!(v["data"]["data"]["model"], "gpt-test", "{v}");
    assert!(!text.contains(new) && !text.contains(&secret_id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_latest_version_is_named_and_a_path_with_a_space_is_one_segment() {
    let Some(bao) = Bao::start(
        "openbao::a_deleted_latest_version_is_named_and_a_path_with_a_space_is_one_segment",
    ) else {
        return;
    };
    let (role_id, secret_id) = bao.approle(None);
    let s = store(&bao, &role_id, None);
    let http = Http::new(false, Redactor::new()).unwrap();
    let bag = SecretBag {
        store_credential: Some(Secret::new(secret_id)),
        new_key: Some(Secret::new("sk-new-CANARY-0003")),
        ..SecretBag::default()
    };
    let at = |path: &str| SecretLocation {
        path: path.into(),
        field: "value".into(),
    };
    let run = |op: StoreOp, loc: SecretLocation| {
        let s = s.clone();
        let http = http.clone();
        let bag = bag.clone();
        async move {
            let plan = s.plan(&op, &loc)?;
            s.execute(&op, &loc, &plan, &http, &bag).await
        }
    };

    // A space is %20 in a path segment: the secret written by the root token is found.
    bao.put(
        None,
        "agents/support%20bot/llm",
        serde_json::json!({ "value": "sk-old-CANARY-0004", "note": "kept" }),
    );
    match run(
        StoreOp::Read { version: None },
        at("agents/support bot/llm"),
    )
    .await
    .unwrap()
    {
        StoreOutput::Value { value, version } => {
            assert_eq!(value.expose(), "sk-old-CANARY-0004");
            assert_eq!(version, StoreVersion::Number(1));
        }
        other => panic!("{other:?}"),
    }
    let write = StoreOp::Write {
        cas: Some(StoreVersion::Number(1)),
        pending: false,
        token: "t".into(),
        value: SecretRef::NewKey,
    };
    assert!(matches!(
        run(write, at("agents/support bot/llm")).await.unwrap(),
        StoreOutput::Written { .. }
    ));
    let (_, v) = bao.api(
        "GET",
        "/v1/secret/data/agents/support%20bot/llm",
        None,
        serde_json::Value::Null,
    );
    assert_eq!(v["data"]["data"]["value"], "sk-new-CANARY-0003");
    assert_eq!(v["data"]["data"]["note"], "kept");

    // Soft-delete the latest version: it reads as 404, yet check-and-set still counts it.
    bao.put(
        None,
        PATH,
        serde_json::json!({ "value": "sk-old-CANARY-0005" }),
    );
    let (status, _) = bao.api(
        "DELETE",
        &format!("/v1/secret/data/{PATH}"),
        None,
        serde_json::Value::Null,
    );
    assert!((200..300).contains(&status), "{status}");
    let err = run(StoreOp::Read { version: None }, at(PATH))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::LatestVersionGone { version: 1, .. }),
        "{err}"
    );
    let text = err.to_string();
    assert!(
        text.contains("version (1)") || text.contains("(1)"),
        "{text}"
    );
    assert!(text.contains("soft-deleted"), "{text}");
    // A path that was never written is simply missing.
    assert!(matches!(
        run(StoreOp::Read { version: None }, at("agents/nobody"))
            .await
            .unwrap(),
        StoreOutput::Missing
    ));
}

/// The Vault simulator refuses what OpenBao refuses under the rotation policy, so tests that
/// use it cannot pass with a client OpenBao would reject.
#[test]
fn the_vault_simulator_enforces_the_rotation_policy_like_openbao() {
    let sim = keyfire::sim::VaultSim::start("secret", "tok").unwrap();
    let port = sim.addr().port();
    let call = |method: &str, path: &str, body: &str| {
        crate::emulators::http(
            port,
            method,
            path,
            &[
                ("X-Vault-Token", "tok"),
                ("Content-Type", "application/merge-patch+json"),
            ],
            body,
        )
        .unwrap()
    };
    let v = sim.put("a b/c", "value", "sk-old");
    sim.put("a b/c", "model", "m");
    assert_eq!(v, 1);
    // PATCH needs the patch capability, which the rotation policy does not grant.
    let (status, _) = call(
        "PATCH",
        "/v1/secret/data/a%20b/c",
        r#"{"data":{"value":"x"}}"#,
    );
    assert_eq!(status, 403);
    // A whole-secret POST with the right cas is accepted.
    let (status, text) = call(
        "POST",
        "/v1/secret/data/a%20b/c",
        r#"{"options":{"cas":2},"data":{"value":"sk-new","model":"m"}}"#,
    );
    assert_eq!(status, 200, "{text}");
    assert_eq!(sim.value("a b/c", "model", None).as_deref(), Some("m"));
    // `+` is a plus sign in a path, not a space.
    let (status, _) = call("GET", "/v1/secret/data/a+b/c", "");
    assert_eq!(status, 404);
    // A soft-deleted latest version reads as 404; the metadata says so.
    sim.delete_latest("a b/c");
    let (status, _) = call("GET", "/v1/secret/data/a%20b/c", "");
    assert_eq!(status, 404);
    let (status, text) = call("GET", "/v1/secret/metadata/a%20b/c", "");
    assert_eq!(status, 200, "{text}");
    let meta: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(meta["data"]["current_version"], 3);
    assert_ne!(meta["data"]["versions"]["3"]["deletion_time"], "");
    sim.grant("patch");
    let (status, _) = call(
        "PATCH",
        "/v1/secret/data/a%20b/c",
        r#"{"data":{"value":"x"}}"#,
    );
    assert_eq!(
        status, 404,
        "nothing to patch: the latest version is deleted"
    );
}
