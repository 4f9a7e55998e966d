//! Secrets are radioactive: run live incidents and drills with canary values and grep every
//! byte keyfire wrote (data directory, inventory, stdout, stderr).

use crate::common::{TestEnv, files_under, stderr, stdout};

#[test]
fn no_secret_value_reaches_any_file_or_output() {
    let env = TestEnv::new();
    let mut outputs = Vec::new();
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
        &["record", "verify", "--json"],
    ] {
        let out = env.run(args);
        outputs.push((format!("{args:?}"), stdout(&out) + &stderr(&out)));
    }
    for id in env.incident_ids() {
        let out = env.run(&["incident", "show", &id, "--json"]);
        outputs.push((format!("show {id}"), stdout(&out) + &stderr(&out)));
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

/// The same check for the real provider kinds: live incident and drill on each, with their
/// own canary admin keys, leaked keys, Vault token and (Anthropic) pasted replacement.
#[test]
fn no_secret_value_reaches_any_file_or_output_with_openai_and_anthropic() {
    use crate::llm::{KEY, LlmEnv};
    for env in [LlmEnv::openai(), LlmEnv::anthropic()] {
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
            &["record", "verify", "--json"],
        ] {
            let out = env.run(args);
            outputs.push((format!("{args:?}"), stdout(&out) + &stderr(&out)));
        }
        for id in env.incident_ids() {
            let out = env.run(&["incident", "show", &id, "--json"]);
            outputs.push((format!("show {id}"), stdout(&out) + &stderr(&out)));
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
