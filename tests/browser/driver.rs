//! Headless Chromium through Debian's `chromedriver`, driven with fantoccini.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};

/// Debian's browser; never a downloaded one.
pub const CHROMIUM: &str = "/usr/bin/chromium";
/// Debian's driver for it.
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// Why the browser tests cannot run here, if they cannot.
pub fn missing() -> Option<String> {
    [CHROMIUM, CHROMEDRIVER]
        .iter()
        .find(|p| !Path::new(p).exists())
        .map(|p| format!("{p} is not installed (apt-get install chromium chromium-driver; scripts/test.sh does)"))
}

/// A chromedriver process and a browser session; both end when this is dropped or closed.
pub struct Browser {
    /// The WebDriver session.
    pub client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver on a free port and opens a headless Chromium session.
    pub async fn start() -> Browser {
        let port = free_port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            // A zone other than the machine's UTC, so the screenshots show that times are local.
            .env("TZ", "Europe/Berlin")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let profile = tempfile::tempdir().unwrap();
        let args = [
            "--headless".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--hide-scrollbars".to_owned(),
            "--window-size=1440,900".to_owned(),
            "--lang=en-GB".to_owned(),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        let mut caps = serde_json::Map::new();
        caps.insert("browserName".into(), json!("chrome"));
        caps.insert("goog:chromeOptions".into(), json!({ "binary": CHROMIUM, "args": args }));
        let url = format!("http://127.0.0.1:{port}");
        let mut last = None;
        // chromedriver takes a moment to listen.
        for _ in 0..100 {
            match ClientBuilder::new(HttpConnector::new()).capabilities(caps.clone()).connect(&url).await {
                Ok(client) => {
                    return Browser { client, driver, _profile: profile };
                }
                Err(e) => last = Some(e),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("no WebDriver session: {last:?}");
    }

    /// Ends the session and the driver.
    pub async fn close(mut self) {
        let _ = self.client.clone().close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }

    /// Runs a script in the page and returns its result.
    pub async fn js(&self, script: &str) -> Value {
        self.client.execute(script, vec![]).await.unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// Polls `script` until it returns a truthy value; panics with `what` after `secs` seconds.
    pub async fn until(&self, what: &str, secs: u64, script: &str) {
        if !self.try_until(secs, script).await {
            self.shot("failure").await;
            panic!("timed out after {secs}s waiting for {what} (screenshot: failure.png)");
        }
    }

    /// Polls `script` for up to `secs` seconds; whether it returned a truthy value.
    pub async fn try_until(&self, secs: u64, script: &str) -> bool {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            let v = self.js(script).await;
            if !matches!(v, Value::Null | Value::Bool(false)) && v != json!(0) && v != json!("") {
                return true;
            }
            if tokio::time::Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Waits for an element.
    pub async fn element(&self, css: &str, secs: u64) -> fantoccini::elements::Element {
        match self.client.wait().at_most(Duration::from_secs(secs)).for_element(Locator::Css(css)).await {
            Ok(el) => el,
            Err(e) => {
                self.shot("failure").await;
                panic!("no element {css} within {secs}s: {e}");
            }
        }
    }

    /// Clicks the element `css` selects, found and clicked in one script: live updates
    /// re-render rows, so an element handle held across two WebDriver calls can go stale.
    pub async fn click(&self, css: &str, secs: u64) {
        let script = format!(
            "const el = document.querySelector({}); if (!el) return false; el.click(); return true",
            json!(css)
        );
        self.until(&format!("{css} to click"), secs, &script).await;
    }

    /// The text of the element `css` selects (empty when there is none), read in one script.
    pub async fn text(&self, css: &str) -> String {
        let script = format!("const el = document.querySelector({}); return el ? el.innerText : ''", json!(css));
        self.js(&script).await.as_str().unwrap_or_default().to_owned()
    }

    /// Saves a screenshot as `<target>/screenshots/<name>.png` and returns its path.
    pub async fn shot(&self, name: &str) -> PathBuf {
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.png"));
        let png = self.client.screenshot().await.unwrap();
        std::fs::write(&path, png).unwrap();
        eprintln!("screenshot: {}", path.display());
        path
    }

    /// Errors the page caught (see `window.__errors` in main.js).
    pub async fn page_errors(&self) -> Vec<String> {
        let v = self.js("return window.__errors || []").await;
        serde_json::from_value(v).unwrap_or_default()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
    }
}

/// `target/screenshots`, or under `CARGO_TARGET_DIR` when that is set.
pub fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("screenshots")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}
