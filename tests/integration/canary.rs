//! Secrets are radioactive: run live incidents and drills with canary values and grep every
//! byte keyfire wrote (data directory, inventory, stdout, stderr).

use crate::common::{TestEnv, files_under, stderr, stdout};

#[test]
fn no_secret_value_reaches_any_file_or_output() {
    let env = TestEnv::new();
    let mut outputs = Vec::new();
    // Each command must also have done its job: a canary grep over the output of a command
    // that failed early proves nothing.
    for args in [
        &[
            "incident",
            "start",
            "support-llm",
            "research-llm",
            "--dry-run",
        ][..],
        &[
            "incident",
            "start",
            "support-llm",
            "research-llm",
            "sales-crm",
            "--yes",
            "--no-tui",
        ],
        &["incident", "list", "--json"],
        &["inventory", "show", "support-llm", "--json"],
    ] {
        let out = env.run(args);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}{}",
            stdout(&out),
            stderr(&out)
        );
        outputs.push((format!("{args:?}"), stdout(&out) + &stderr(&out)));
    }
    for id in env.incident_ids() {
        for args in [
            &["incident", "show", id.as_str(), "--json"][..],
            &["record", "verify", id.as_str(), "--json"],
        ] {
            let out = env.run(args);
            assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
            outputs.push((format!("{args:?}"), stdout(&out) + &stderr(&out)));
        }
    }
    // The replacements keyfire created are secrets too.
    let mut secrets = vec![
        env.canaries.admin.clone(),
        env.canaries.vault_token.clone(),
        env.canaries.old_key.clone(),
        env.canaries.other_key.clone(),
    ];
    let new: Vec<String> = env
        .api
        .live_keys()
        .into_iter()
        .filter(|k| k.name.starts_with("keyfire-"))
        .map(|k| k.value().to_string())
        .collect();
    assert_eq!(new.len(), 2, "both keys were replaced");
    secrets.extend(new);
    // The record signing key's private part (PKCS#8, hex) is a secret as well.
    let signing_key = std::fs::read_to_string(env.signing_key_path()).expect("signing key created");
    assert!(signing_key.trim().len() > 64);
    secrets.push(signing_key.trim().to_string());

    let mut files = files_under(env.dir.path());
    files.retain(|p| p.extension().is_none_or(|e| e != "toml") || p.ends_with("inventory.toml"));
    assert!(files.iter().any(|p| p.ends_with("record.jsonl")));
    assert!(files.iter().any(|p| p.ends_with("report.md")));
    // The signing key lives outside the data directory; every other file is scanned.
    assert!(!env.signing_key_path().starts_with(env.data_dir()));
    files.retain(|p| *p != env.signing_key_path());
    for secret in &secrets {
        // The distinctive middle of each value: a hint (prefix + last 4) is allowed.
        let needle = &secret[4..secret.len() - 4];
        for f in &files {
            let bytes = std::fs::read(f).unwrap();
            assert!(
                !String::from_utf8_lossy(&bytes).contains(needle),
                "secret found in {}",
                f.display()
            );
        }
        for (what, text) in &outputs {
            assert!(
                !text.contains(needle),
                "secret found in the output of {what}"
            );
        }
    }
}

/// The same check for the real provider kinds (OpenAI, Anthropic, SendGrid, LiteLLM): live
/// incident and drill on each, with their own canary admin keys, leaked keys, Vault token,
/// (Anthropic) pasted replacement and the replacements keyfire had the provider create.
#[test]
fn no_secret_value_reaches_any_file_or_output_with_every_http_provider_kind() {
    use crate::llm::{KEY, LlmEnv};
    for env in [
        LlmEnv::openai(),
        LlmEnv::anthropic(),
        LlmEnv::sendgrid(),
        LlmEnv::litellm(),
    ] {
        let mut outputs = Vec::new();
        let drill = env.drill();
        assert_eq!(drill.status.code(), Some(0), "{}", stdout(&drill));
        outputs.push(("drill".to_string(), stdout(&drill) + &stderr(&drill)));
        let live = env.live_incident();
        assert_eq!(live.status.code(), Some(0), "{}", stdout(&live));
        outputs.push(("live".to_string(), stdout(&live) + &stderr(&live)));
        for args in [
            &["incident", "list", "--json"][..],
            &["inventory", "show", KEY, "--json"],
        ] {
            let out = env.run(args);
            assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
            outputs.push((format!("{args:?}"), stdout(&out) + &stderr(&out)));
        }
        for id in env.incident_ids() {
            for args in [
                &["incident", "show", id.as_str(), "--json"][..],
                &["record", "verify", id.as_str(), "--json"],
            ] {
                let out = env.run(args);
                assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
                outputs.push((format!("{args:?}"), stdout(&out) + &stderr(&out)));
            }
        }
        let mut secrets = env.canaries.all();
        // The replacement keyfire had OpenAI create is a secret too.
        if let crate::llm::Sim::OpenAi(sim) = &env.sim {
            let made: Vec<String> = sim
                .live_keys()
                .into_iter()
                .filter(|k| k.value().starts_with("sk-svcacct-"))
                .map(|k| k.value().to_string())
                .collect();
            assert_eq!(made.len(), 1);
            secrets.extend(made);
        }
        // So are SendGrid's and LiteLLM's replacements.
        if let crate::llm::Sim::SendGrid(sim) = &env.sim {
            let made: Vec<String> = sim
                .keys()
                .into_iter()
                .filter(|k| k.name.starts_with("keyfire-"))
                .map(|k| k.value().to_string())
                .collect();
            assert_eq!(made.len(), 1);
            secrets.extend(made);
        }
        if let crate::llm::Sim::LiteLlm(sim) = &env.sim {
            let made: Vec<String> = sim
                .keys()
                .into_iter()
                .filter(|k| {
                    k.key_alias
                        .as_deref()
                        .is_some_and(|a| a.starts_with("keyfire-"))
                })
                .map(|k| k.value().to_string())
                .collect();
            assert_eq!(made.len(), 1);
            secrets.extend(made);
        }
        let files = files_under(env.dir.path());
        assert!(files.iter().any(|p| p.ends_with("record.jsonl")));
        assert!(files.iter().any(|p| p.ends_with("report.md")));
        for secret in &secrets {
            let needle = &secret[4..secret.len() - 4];
            for f in &files {
                let bytes = std::fs::read(f).unwrap();
                assert!(
                    !String::from_utf8_lossy(&bytes).contains(needle),
                    "{:?}: secret found in {}",
                    env.kind,
                    f.display()
                );
            }
            for (what, text) in &outputs {
                assert!(
                    !text.contains(needle),
                    "{:?}: secret found in the output of {what}",
                    env.kind
                );
            }
        }
    }
}

/// The corpus of fake credentials (one or more per recognized format, each in every placement)
/// given where an operator or an attacker can put text: an incident's `--reason` (live and
/// drill), and inventory values that fail to load. Nothing of any value reaches a file or an
/// output.
#[test]
fn no_corpus_credential_reaches_any_file_or_output() {
    use crate::corpus;
    let env = TestEnv::new();
    let mut reason = String::from("leak report:");
    for s in corpus::samples() {
        for (_, text) in corpus::placements(&s.text()) {
            reason.push('\n');
            reason.push_str(&text);
        }
    }
    let mut outputs = Vec::new();
    for args in [
        &[
            "incident",
            "start",
            "support-llm",
            "--dry-run",
            "--no-tui",
            "--reason",
            &reason,
        ][..],
        &[
            "incident",
            "start",
            "research-llm",
            "--yes",
            "--no-tui",
            "--reason",
            &reason,
        ],
        &["incident", "list", "--json"],
    ] {
        let out = env.run(args);
        assert!(
            matches!(out.status.code(), Some(0 | 1)),
            "{:?} ran: {}",
            &args[..3],
            stderr(&out)
        );
        outputs.push((format!("{:?}", &args[..3]), stdout(&out) + &stderr(&out)));
    }
    for id in env.incident_ids() {
        for args in [&["incident", "show", &id, "--json"][..], &["report", &id]] {
            let out = env.run(args);
            assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
            outputs.push((format!("{args:?}"), stdout(&out) + &stderr(&out)));
        }
    }
    // Inventory values that fail to load: pasted unquoted, and quoted in a typed field.
    let bad = env.dir.path().join("bad.toml");
    for s in corpus::samples() {
        for line in [
            format!("hint = {}", s.text()),
            format!("rotation_days = \"{}\"", corpus::json_escaped(&s.text())),
        ] {
            std::fs::write(
                &bad,
                format!("schema = 1\n[[providers]]\nid = \"p\"\nkind = \"manual\"\n[[agents]]\nid = \"a\"\n[[keys]]\nid = \"k\"\nagents = [\"a\"]\nprovider = \"p\"\n{line}\n"),
            )
            .unwrap();
            let out = env
                .cmd()
                .args(["inventory", "lint", "--inventory"])
                .arg(&bad)
                .output()
                .unwrap();
            assert_eq!(out.status.code(), Some(2), "{}: {}", s.format, stderr(&out));
            assert!(
                stderr(&out).contains(":11:"),
                "{}: {}",
                s.format,
                stderr(&out)
            );
            outputs.push((
                format!("lint with {}", s.format),
                stdout(&out) + &stderr(&out),
            ));
        }
    }
    std::fs::remove_file(&bad).unwrap();

    let files = files_under(env.dir.path());
    assert!(files.iter().filter(|p| p.ends_with("record.jsonl")).count() >= 2);
    assert!(files.iter().any(|p| p.ends_with("report.md")));
    for f in &files {
        let text = String::from_utf8_lossy(&std::fs::read(f).unwrap()).into_owned();
        if let Some(which) = corpus::survivor(&text) {
            panic!("{which} survived in {}", f.display());
        }
    }
    for (what, text) in &outputs {
        if let Some(which) = corpus::survivor(text) {
            panic!("{which} survived in the output of {what}");
        }
    }
}

/// `keyfire scan` over the corpus, placed in a `.env`, a configuration file and a gitleaks
/// report's `Secret` fields: the text and JSON output name formats and places, never a value.
#[test]
fn scan_output_holds_no_corpus_credential() {
    use crate::corpus;
    let env = TestEnv::new();
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::new();
    let mut report = Vec::new();
    for s in corpus::samples() {
        for (_, placed) in corpus::placements(&s.text()) {
            text.push_str(&placed);
            text.push('\n');
        }
        report.push(serde_json::json!({
            "RuleID": s.format, "Description": "corpus", "StartLine": 1, "EndLine": 1,
            "StartColumn": 1, "EndColumn": 2, "Match": s.text(), "Secret": s.value,
            "File": "corpus.env", "SymlinkFile": "", "Commit": "", "Entropy": 4.0,
            "Author": "", "Email": "", "Date": "", "Message": "", "Tags": [],
            "Fingerprint": "corpus.env:1"
        }));
    }
    std::fs::write(dir.path().join(".env"), &text).unwrap();
    std::fs::write(dir.path().join("config.yaml"), &text).unwrap();
    let report_path = dir.path().join("gitleaks.json");
    std::fs::write(&report_path, serde_json::to_string(&report).unwrap()).unwrap();
    let root = dir.path().to_str().unwrap();
    let report_arg = report_path.to_str().unwrap();
    for args in [
        &["scan", root, "--report", report_arg, "--json"][..],
        &["scan", root, "--report", report_arg],
    ] {
        let out = env.run(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stderr(&out));
        let all = stdout(&out) + &stderr(&out);
        if args.contains(&"--json") {
            // The scan did its job: every sample was found somewhere.
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            let n = v["findings"].as_array().unwrap().len();
            assert!(n >= 2 * corpus::samples().len(), "{n} findings");
        }
        if let Some(which) = corpus::survivor(&all) {
            panic!("{which} survived in the output of {args:?}");
        }
        // The copy kept for the console's Leaks view holds every finding and no value.
        let last = env.data_dir().join("scans").join("last.json");
        let saved = std::fs::read_to_string(&last).unwrap();
        let v: serde_json::Value = serde_json::from_str(&saved).unwrap();
        assert!(
            v["findings"].as_array().unwrap().len() >= 2 * corpus::samples().len(),
            "{args:?}: the saved scan has the findings"
        );
        if let Some(which) = corpus::survivor(&saved) {
            panic!("{which} survived in {} after {args:?}", last.display());
        }
    }
}
