//! `payhost check` refuses every bad config with a message that names the instance,
//! the key and what to do.

use payhost_tests::{check_config, plugin_wasm};

fn faulty(name: &str, mount: &str) -> String {
    format!(
        "[[plugins]]\nname = \"{name}\"\ncomponent = {:?}\nmount = \"{mount}\"\nallowed_hosts = [\"probe.invalid\"]\n[plugins.secrets]\nprobe_key = {{ env = \"PROBE_KEY\" }}\n",
        plugin_wasm("faulty").display().to_string()
    )
}

fn assert_refused(config: &str, env: &[(&str, &str)], expected: &[&str]) {
    let (ok, out) = check_config(config, env);
    assert!(!ok, "config was accepted:\n{config}\n{out}");
    for e in expected {
        assert!(out.contains(e), "message lacks {e:?}:\n{out}");
    }
}

#[test]
fn a_good_config_passes() {
    let (ok, out) = check_config(&faulty("a", "/a"), &[("PROBE_KEY", "k")]);
    assert!(ok, "{out}");
    assert!(out.contains("config OK: 1 plugin instance(s)"), "{out}");
    assert!(out.contains("a at /a: faulty"), "{out}");
}

#[test]
fn unknown_key() {
    let config = faulty("a", "/a").replace("mount =", "mout = \"/x\"\nmount =");
    assert_refused(&config, &[("PROBE_KEY", "k")], &["unknown field `mout`"]);
}

#[test]
fn overlapping_mounts() {
    let config = format!("{}{}", faulty("a", "/pay"), faulty("b", "/pay/v2"));
    assert_refused(&config, &[("PROBE_KEY", "k")], &["plugin `b`", "mount `/pay/v2` overlaps mount `/pay` of plugin `a`"]);
}

#[test]
fn missing_component() {
    let config = faulty("a", "/a").replace("payhost_plugin_faulty.wasm", "no_such_plugin.wasm");
    assert_refused(&config, &[("PROBE_KEY", "k")], &["plugin `a`: component", "does not exist", "cargo xtask build-plugins"]);
}

#[test]
fn unset_secret_env_var() {
    assert_refused(&faulty("a", "/a"), &[], &["plugin `a`: secret `probe_key`", "`PROBE_KEY` is not set"]);
}

#[test]
fn secret_needed_but_not_granted() {
    let config = faulty("a", "/a").replace("probe_key = { env = \"PROBE_KEY\" }", "");
    assert_refused(&config, &[], &["plugin `a`", "needs secret `probe_key`", "[plugins.secrets]"]);
}

#[test]
fn host_needed_but_not_granted() {
    let config = faulty("a", "/a").replace("allowed_hosts = [\"probe.invalid\"]", "allowed_hosts = []");
    assert_refused(&config, &[("PROBE_KEY", "k")], &["plugin `a`", "needs outbound host `probe.invalid`", "allowed_hosts"]);
}

#[test]
fn plugin_built_against_another_wit_version() {
    // The same component with every `payhost:gateway/...@0.2.2` name turned into 0.9.0:
    // exactly what a plugin built against a future WIT would import and export.
    let bytes = std::fs::read(plugin_wasm("faulty")).unwrap();
    let mut patched = bytes.clone();
    let (from, to) = (b"@0.2.2", b"@0.9.0");
    let prefix = b"payhost:gateway/";
    let mut i = 0;
    while i + prefix.len() < patched.len() {
        if patched[i..].starts_with(prefix) {
            let end = (i..patched.len().min(i + 64)).find(|&j| patched[j..].starts_with(from));
            if let Some(j) = end {
                patched[j..j + from.len()].copy_from_slice(to);
            }
        }
        i += 1;
    }
    assert_ne!(bytes, patched);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("future.wasm");
    std::fs::write(&path, patched).unwrap();
    let config = faulty("a", "/a").replace(&plugin_wasm("faulty").display().to_string(), &path.display().to_string());
    assert_refused(
        &config,
        &[("PROBE_KEY", "k")],
        &[
            "plugin `a`",
            "built against payhost:gateway@0.9.0, which this host does not serve",
            "it serves payhost:gateway@0.1.0 and payhost:gateway@0.2.2",
            "Rebuild the plugin",
        ],
    );
}

#[test]
fn payment_system_that_does_not_exist() {
    let config = faulty("a", "/a").replace("allowed_hosts", "payment_systems = [\"stripe\"]\nallowed_hosts");
    assert_refused(&config, &[("PROBE_KEY", "k")], &["plugin `a`", "payment_systems names `stripe`"]);
}

#[test]
fn shipped_config_is_valid_as_is_and_with_every_provider_enabled() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf();
    let text = std::fs::read_to_string(root.join("config.toml")).unwrap();
    let plugin_dir = plugin_wasm("template").parent().unwrap().display().to_string();
    let absolute = |t: &str| t.replace("\"target/wasm32-wasip2/plugin", &format!("\"{plugin_dir}"));

    let (ok, out) = check_config(&absolute(&text), &[]);
    assert!(ok, "{out}");

    // Uncomment the provider blocks: lines that are TOML (a table or `key = value`).
    let enabled: Vec<String> = text
        .lines()
        .map(|line| match line.strip_prefix("# ") {
            Some(rest) if rest.starts_with('[') || rest.split_once(" = ").is_some_and(|(k, _)| k.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')) => rest.to_string(),
            _ => line.to_string(),
        })
        .collect();
    let enabled = absolute(&enabled.join("\n"));
    for p in ["webtv", "platform24", "netflix", "stripe"] {
        plugin_wasm(p);
        assert!(enabled.contains(&format!("name = \"{p}\"\n")), "block {p} not enabled");
    }
    let env = [
        ("STRIPE_SECRET_KEY", "sk_test_x"),
        ("STRIPE_WEBHOOK_SECRET", "whsec_x"),
        ("WEBTV_KEY", "k"),
        ("PLATFORM24_PRIVATE_KEY", "k"),
        ("PLATFORM24_API_TOKEN", "t"),
        ("PLATFORM24_ADMIN_TOKEN", "t"),
        ("NETFLIX_PARTNER_KEY", "c2VjcmV0"),
        ("NETFLIX_ADMIN_TOKEN", "t"),
    ];
    let (ok, out) = check_config(&enabled, &env);
    assert!(ok, "{out}\n{enabled}");
    assert!(out.contains("config OK: 5 plugin instance(s)"), "{out}");
}
