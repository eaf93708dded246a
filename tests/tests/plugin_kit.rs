//! The third-party path end to end: `payhost plugin new` writes a crate outside this
//! workspace, it builds with its documented command, its native tests pass,
//! `payhost plugin check` checks it against a config, and a real host serves it.
//!
//! The crate builds with this workspace's lock file and target directory (a warm
//! cache), so it compiles only itself. The time from `plugin new` to the first answer
//! is printed (README, "Writing a plugin"); it is never asserted.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Instant;

use hmac::{Hmac, Mac};
use payhost_tests::build::{target_dir, workspace_root};
use payhost_tests::{payhost_binary, HostBuilder};
use serde_json::Value;

const NAME: &str = "acme-gateway";
const SECRET: &str = "kit-test-signing-key";

fn cargo(dir: &Path, args: &[&str]) -> Output {
    let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(args)
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", target_dir())
        .output()
        .expect("run cargo");
    assert!(out.status.success(), "cargo {args:?} failed:\n{}", String::from_utf8_lossy(&out.stderr));
    out
}

fn payhost(args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let mut cmd = Command::new(payhost_binary());
    cmd.args(args).env("PAYHOST_LOG", "warn");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run payhost");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_plugin_builds_tests_checks_and_serves_from_outside_the_workspace() {
    let binary = payhost_binary();
    let outside = tempfile::tempdir().expect("temp dir");
    assert!(!outside.path().starts_with(workspace_root()), "the temp dir must be outside the workspace");
    let started = Instant::now();

    let dir = outside.path().display().to_string();
    let (ok, out, err) = payhost(&["plugin", "new", NAME, "--dir", &dir], &[]);
    assert!(ok, "plugin new failed: {out}{err}");
    let root = outside.path().join(NAME);
    for file in ["Cargo.toml", ".cargo/config.toml", "README.md", "payhost.sample.toml", "src/lib.rs"] {
        assert!(root.join(file).is_file(), "plugin new wrote no {file}");
    }
    // The workspace's lock file: the same dependency versions, already downloaded and built.
    std::fs::copy(workspace_root().join("Cargo.lock"), root.join("Cargo.lock")).expect("copy lock file");

    // Its native unit test, then the documented component build.
    let tested = cargo(&root, &["test", "--quiet"]);
    assert!(String::from_utf8_lossy(&tested.stdout).contains("test result: ok. 1 passed"), "{}", String::from_utf8_lossy(&tested.stdout));
    cargo(&root, &["build", "--quiet", "--target", "wasm32-wasip2", "--profile", "plugin"]);
    let built = target_dir().join("wasm32-wasip2/plugin/acme_gateway.wasm");
    assert!(built.is_file(), "the documented build left no {}", built.display());
    // Where the build puts it without the shared target directory (the sample config's path).
    let wasm = root.join("target/wasm32-wasip2/plugin/acme_gateway.wasm");
    std::fs::create_dir_all(wasm.parent().unwrap()).unwrap();
    std::fs::copy(&built, &wasm).unwrap();
    let wasm_arg = wasm.display().to_string();

    // plugin check against the sample config: every grant matches.
    let sample = root.join("payhost.sample.toml").display().to_string();
    let env = [("ACME_GATEWAY_SECRET", SECRET)];
    let (ok, out, err) = payhost(&["plugin", "check", &wasm_arg, "--config", &sample, "--instance", NAME], &env);
    assert!(ok, "plugin check refused the sample config:\n{out}{err}");
    for expected in ["world          provider", "contract       payhost:gateway@0.2.2 (current)", "secrets        signing_key", "greeting (optional)"] {
        assert!(out.contains(expected), "plugin check lacks {expected:?}:\n{out}");
    }
    let signing = out.lines().find(|l| l.contains("payhost:gateway/signing@0.2.2")).unwrap_or_else(|| panic!("no signing import:\n{out}"));
    assert!(signing.contains("hmac"), "{signing}");
    assert!(out.contains("grants exactly what the plugin declares"), "{out}");

    // The sample config, but served by a real host with the built component.
    let block = std::fs::read_to_string(root.join("payhost.sample.toml")).unwrap();
    let block = &block[block.find("\n[[plugins]]").unwrap()..];
    let block = block.replace("target/wasm32-wasip2/plugin/acme_gateway.wasm", &wasm_arg);
    let host = HostBuilder::new().env("ACME_GATEWAY_SECRET", SECRET).config(&block).start().await;
    let answer: Value = host.get("/acme-gateway/").await.json().await.unwrap();
    let elapsed = started.elapsed();
    assert_eq!(answer["greeting"], "hello from acme-gateway");
    println!("plugin new -> first successful request: {:.1} s", elapsed.as_secs_f64());
    let signed: Value = host.post("/acme-gateway/sign", "text/plain", "abc").await.json().await.unwrap();
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(b"abc");
    assert_eq!(signed["hmac"], hex::encode(mac.finalize().into_bytes()));
    drop(binary);
}

#[test]
fn plugin_check_names_each_missing_and_undeclared_grant() {
    let component = payhost_tests::plugin_wasm("template");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[[plugins]]\nname = \"t\"\ncomponent = {:?}\nmount = \"/t\"\nallowed_hosts = [\"stray.example.com\"]\n\
             [plugins.secrets]\nextra_key = {{ env = \"EXTRA\" }}\n[plugins.settings]\ngreting = \"typo\"\n",
            component.display().to_string()
        ),
    )
    .unwrap();
    let (ok, out, err) = payhost(&["plugin", "check", &component.display().to_string(), "--config", &config.display().to_string(), "--instance", "t"], &[]);
    assert!(!ok, "plugin check passed:\n{out}");
    for expected in [
        "problem: plugin `t`: secret `extra_key` is granted but the plugin never declared it",
        "problem: plugin `t`: setting `greting` is set but the plugin never declared it (misspelt?); it declares `greeting`",
        "problem: plugin `t`: allowed host `stray.example.com` is granted but the plugin never declared it",
        "3 problem(s) found",
    ] {
        assert!(err.contains(expected), "lacks {expected:?}:\n{err}");
    }

    // The faulty plugin declares a secret and a host: without them, each is named.
    let faulty = payhost_tests::plugin_wasm("faulty");
    std::fs::write(&config, format!("[[plugins]]\nname = \"f\"\ncomponent = {:?}\nmount = \"/f\"\n", faulty.display().to_string())).unwrap();
    let (ok, _, err) = payhost(&["plugin", "check", &faulty.display().to_string(), "--config", &config.display().to_string(), "--instance", "f"], &[]);
    assert!(!ok);
    assert!(err.contains("problem: plugin `f`: the plugin needs secret `probe_key`"), "{err}");
    assert!(err.contains("problem: plugin `f`: the plugin needs outbound host `probe.invalid`"), "{err}");
    assert!(err.contains("2 problem(s) found"), "{err}");

    // A component of a contract this host does not serve is refused with its message.
    let mut bytes = std::fs::read(&faulty).unwrap();
    let (from, to) = (b"@0.2.2", b"@0.7.0");
    for i in 0..bytes.len().saturating_sub(from.len()) {
        if bytes[i..].starts_with(from) {
            bytes[i..i + from.len()].copy_from_slice(to);
        }
    }
    let future = dir.path().join("future.wasm");
    std::fs::write(&future, bytes).unwrap();
    let (ok, _, err) = payhost(&["plugin", "check", &future.display().to_string()], &[]);
    assert!(!ok);
    assert!(err.contains("built against payhost:gateway@0.7.0, which this host does not serve; it serves payhost:gateway@0.1.0 and payhost:gateway@0.2.2"), "{err}");

    // Without a config: what the component is and needs.
    let (ok, out, err) = payhost(&["plugin", "check", &faulty.display().to_string()], &[]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("secrets        probe_key") && out.contains("hosts          probe.invalid"), "{out}");
}

#[test]
fn payhost_check_warns_about_grants_the_plugin_never_declared() {
    let component = payhost_tests::plugin_wasm("template");
    let config = format!(
        "[[plugins]]\nname = \"t\"\ncomponent = {:?}\nmount = \"/t\"\n[plugins.settings]\ngreting = \"typo\"\n",
        component.display().to_string()
    );
    let (ok, out) = payhost_tests::check_config(&config, &[]);
    assert!(ok, "{out}");
    assert!(out.contains("warning: plugin `t`: setting `greting` is set but the plugin never declared it (misspelt?)"), "{out}");
}
