//! A headless Chromium driven over WebDriver (Debian's `chromium` and `chromium-driver`,
//! which `cargo xtask test` installs), for the console's browser tests. Each test gets
//! its own chromedriver on a loopback port and a fresh profile directory, so tests share
//! no cookies and can run side by side. Screenshots go to `target/test-artifacts/console/`.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{json, Value};

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// How long a step waits for the page to show what the test expects. A wait, not a
/// speed assertion: it only bounds how long a broken page takes to fail the test.
const PATIENCE: Duration = Duration::from_secs(30);

/// Desktop and phone window sizes the console is checked at.
pub const DESKTOP: (u32, u32) = (1280, 800);
pub const PHONE: (u32, u32) = (390, 844);

pub struct Browser {
    client: Option<Client>,
    driver: Child,
    profile: tempfile::TempDir,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind a free port").local_addr().expect("addr").port()
}

/// Where screenshots of a test run are kept (`target/test-artifacts/console`).
pub fn artifacts_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace").join("target").join("test-artifacts").join("console");
    std::fs::create_dir_all(&dir).expect("artifacts dir");
    dir
}

impl Browser {
    pub async fn start() -> Browser {
        for tool in [CHROMIUM, CHROMEDRIVER] {
            assert!(Path::new(tool).exists(), "{tool} is missing: `cargo xtask test` installs Debian's chromium and chromium-driver");
        }
        let profile = tempfile::tempdir().expect("profile dir");
        let port = free_port();
        let log = std::fs::File::create(profile.path().join("chromedriver.log")).expect("driver log");
        let driver = Command::new(CHROMEDRIVER)
            // Its own process group, so the drop can end Chromium with it (a killed
            // chromedriver leaves its browser running otherwise).
            .process_group(0)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log fd"))
            .stderr(log)
            .spawn()
            .expect("start chromedriver");
        let mut browser = Browser { client: None, driver, profile };
        let url = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        // Chromium stalls on a closed network without these: no first-run work, no
        // background fetches, no QUIC probes, no sandbox (tests run as root in CI).
        let user_data = browser.profile.path().join("user-data");
        let args = vec![
            "--headless".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--disable-dev-shm-usage".into(),
            format!("--window-size={},{}", DESKTOP.0, DESKTOP.1),
            format!("--user-data-dir={}", user_data.display()),
        ];
        let mut caps = serde_json::Map::new();
        caps.insert("browserName".into(), json!("chrome"));
        caps.insert("goog:chromeOptions".into(), json!({ "binary": CHROMIUM, "args": args }));
        let client = loop {
            match ClientBuilder::new(HttpConnector::new()).capabilities(caps.clone()).connect(&url).await {
                Ok(client) => break client,
                Err(e) => {
                    if started.elapsed() > Duration::from_secs(90) {
                        panic!("no WebDriver session from chromedriver: {e}\n{}", browser.driver_log());
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        };
        browser.client = Some(client);
        browser.resize(DESKTOP).await;
        browser
    }

    pub fn client(&self) -> &Client {
        self.client.as_ref().expect("browser is running")
    }

    fn driver_log(&self) -> String {
        std::fs::read_to_string(self.profile.path().join("chromedriver.log")).unwrap_or_default()
    }

    /// Sizes the window so the page itself (the viewport) is `width` x `height`.
    pub async fn resize(&self, (width, height): (u32, u32)) {
        self.client().set_window_size(width, height).await.expect("set window size");
        let inner = self.run("return [window.innerWidth, window.innerHeight]").await;
        let (w, h) = (inner[0].as_u64().unwrap_or(width as u64) as u32, inner[1].as_u64().unwrap_or(height as u64) as u32);
        if (w, h) != (width, height) {
            let (outer_w, outer_h) = (width + width.saturating_sub(w), height + height.saturating_sub(h));
            self.client().set_window_size(outer_w, outer_h).await.expect("set window size");
        }
    }

    pub async fn goto(&self, url: &str) {
        self.client().goto(url).await.unwrap_or_else(|e| panic!("open {url}: {e}"));
    }

    /// Saves a PNG of the window as `target/test-artifacts/console/NAME.png`.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.client().screenshot().await.expect("screenshot");
        assert!(png.starts_with(b"\x89PNG"), "the screenshot is not a PNG");
        let path = artifacts_dir().join(format!("{name}.png"));
        std::fs::write(&path, png).expect("write screenshot");
        path
    }

    /// The first element matching `css`, once it exists.
    pub async fn find(&self, css: &str) -> Element {
        match self.client().wait().at_most(PATIENCE).for_element(Locator::Css(css)).await {
            Ok(el) => el,
            Err(e) => panic!("no element {css}: {e}\npage text:\n{}", self.page_text().await),
        }
    }

    /// A button (or link) whose visible text is exactly `label`.
    pub async fn button(&self, label: &str) -> Element {
        let xpath = format!("//*[self::button or self::a][normalize-space()='{label}']");
        match self.client().wait().at_most(PATIENCE).for_element(Locator::XPath(&xpath)).await {
            Ok(el) => el,
            Err(e) => panic!("no button {label:?}: {e}\npage text:\n{}", self.page_text().await),
        }
    }

    pub async fn click(&self, label: &str) {
        self.button(label).await.click().await.unwrap_or_else(|e| panic!("click {label:?}: {e}"));
    }

    /// The form control labelled `label` (through `<label for>`), once it exists.
    pub async fn labelled(&self, label: &str) -> Element {
        let xpath = format!("//*[@id=//label[normalize-space()='{label}']/@for]");
        match self.client().wait().at_most(PATIENCE).for_element(Locator::XPath(&xpath)).await {
            Ok(el) => el,
            Err(e) => panic!("no control labelled {label:?}: {e}\npage text:\n{}", self.page_text().await),
        }
    }

    /// Types `text` into the control labelled `label`, replacing what it held.
    pub async fn fill(&self, label: &str, text: &str) {
        let el = self.labelled(label).await;
        el.clear().await.expect("clear input");
        el.send_keys(text).await.expect("type");
    }

    /// Everything the page shows, as text.
    pub async fn page_text(&self) -> String {
        match self.client().find(Locator::Css("body")).await {
            Ok(body) => body.text().await.unwrap_or_default(),
            Err(e) => format!("(no body: {e})"),
        }
    }

    /// Waits until the text of the first element matching `css` contains `needle`;
    /// returns that text.
    pub async fn wait_text(&self, css: &str, needle: &str) -> String {
        let started = Instant::now();
        let mut last = String::new();
        loop {
            if let Ok(el) = self.client().find(Locator::Css(css)).await {
                if let Ok(text) = el.text().await {
                    if text.contains(needle) {
                        return text;
                    }
                    last = text;
                }
            }
            if started.elapsed() > PATIENCE {
                panic!("{css} never showed {needle:?}; it showed:\n{last}\npage text:\n{}", self.page_text().await);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Runs `script` until what it returns satisfies `done`; returns that value. `what`
    /// names the wait in the failure message.
    pub async fn wait_for(&self, what: &str, script: &str, done: impl Fn(&Value) -> bool) -> Value {
        let started = Instant::now();
        loop {
            let value = self.run(script).await;
            if done(&value) {
                return value;
            }
            if started.elapsed() > PATIENCE {
                panic!("never saw {what}; the script last returned:\n{value}\npage text:\n{}", self.page_text().await);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Runs `script` in the page; its `return` value comes back as JSON.
    pub async fn run(&self, script: &str) -> Value {
        self.client().execute(script, vec![]).await.unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// Runs an async script: `arguments[0]` is the callback that returns its value.
    pub async fn run_async(&self, script: &str) -> Value {
        self.client().execute_async(script, vec![]).await.unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// Signs in on the console's sign-in page at `console_url` with `token`.
    pub async fn sign_in(&self, console_url: &str, token: &str) {
        self.goto(console_url).await;
        self.fill("Admin token", token).await;
        self.click("Sign in").await;
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // chromedriver and the Chromium it started, the whole process group.
        let group = format!("-{}", self.driver.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).stderr(Stdio::null()).status();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
