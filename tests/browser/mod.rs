//! A small Chrome DevTools Protocol client for the report tests: starts Debian's headless
//! `chromium` (installed by scripts/setup-test-env.sh), opens one page over the browser's
//! WebSocket and records what the page logs and requests.

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{json, Value};
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

/// A headless Chromium with one attached page.
pub struct Browser {
    child: Child,
    ws: WebSocket<MaybeTlsStream<TcpStream>>,
    session: String,
    next_id: u64,
    /// Every event received so far (method and params).
    pub events: Vec<Value>,
}

/// The chromium binary, or None where it is not installed.
pub fn chromium() -> Option<&'static str> {
    ["chromium", "chromium-browser"]
        .into_iter()
        .find(|b| Command::new(b).arg("--version").output().is_ok_and(|o| o.status.success()))
}

impl Browser {
    /// Starts chromium with an empty profile in `profile` and attaches to a blank page with the
    /// Runtime, Log, Network and Page domains enabled.
    pub fn start(binary: &str, profile: &Path) -> Browser {
        let mut child = Command::new(binary)
            .args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"])
            .args([
                "--no-default-browser-check",
                "--disable-extensions",
                "--disable-dev-shm-usage",
                "--hide-scrollbars",
                "--window-size=1400,1000",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .args(["--remote-debugging-port=0", "about:blank"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start chromium");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("DevTools listening on ") {
                    let _ = tx.send(url.trim().to_owned());
                }
            }
        });
        let url = rx.recv_timeout(Duration::from_secs(60)).expect("chromium printed no DevTools URL within 60 s");
        let (ws, _) = tungstenite::connect(url.as_str()).expect("connect to DevTools");
        let mut b = Browser { child, ws, session: String::new(), next_id: 0, events: Vec::new() };
        let target = b.call_browser("Target.createTarget", json!({"url": "about:blank"}));
        let attached =
            b.call_browser("Target.attachToTarget", json!({"targetId": target["targetId"], "flatten": true}));
        b.session = attached["sessionId"].as_str().expect("sessionId").to_owned();
        for domain in ["Runtime", "Log", "Network", "Page"] {
            b.call(&format!("{domain}.enable"), json!({}));
        }
        b
    }

    fn send(&mut self, method: &str, params: Value, session: Option<String>) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if let Some(s) = session {
            msg["sessionId"] = json!(s);
        }
        self.ws.send(Message::text(msg.to_string())).expect("send to DevTools");
        loop {
            let text = match self.ws.read().expect("read from DevTools") {
                Message::Text(t) => t.to_string(),
                _ => continue,
            };
            let v: Value = serde_json::from_str(&text).expect("DevTools JSON");
            if v["id"] == json!(id) {
                assert!(v.get("error").is_none(), "{method}: {}", v["error"]);
                return v["result"].clone();
            }
            if v.get("method").is_some() {
                self.events.push(v);
            }
        }
    }

    fn call_browser(&mut self, method: &str, params: Value) -> Value {
        self.send(method, params, None)
    }

    /// A command to the page.
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        let session = Some(self.session.clone());
        self.send(method, params, session)
    }

    /// Evaluates `expression` in the page and returns its value (panics on an exception).
    pub fn eval(&mut self, expression: &str) -> Value {
        let r = self
            .call("Runtime.evaluate", json!({"expression": expression, "returnByValue": true, "awaitPromise": true}));
        assert!(r.get("exceptionDetails").is_none(), "{expression}: {}", r["exceptionDetails"]);
        r["result"]["value"].clone()
    }

    /// Opens `file` and waits until the report marks itself ready (`body[data-ready]`); the
    /// events of earlier pages are forgotten.
    pub fn open(&mut self, file: &Path) -> String {
        self.eval("1");
        self.events.clear();
        let url = format!("file://{}", file.canonicalize().expect("report path").display());
        self.call("Page.navigate", json!({"url": url}));
        let start = Instant::now();
        while self.eval("document.body ? document.body.getAttribute('data-ready') : null") != json!("true") {
            assert!(start.elapsed() < Duration::from_secs(60), "the report did not draw itself within 60 s");
            std::thread::sleep(Duration::from_millis(100));
        }
        url
    }

    /// A real mouse click (pressed and released) in the middle of the element `selector`.
    pub fn click(&mut self, selector: &str) {
        let quoted = serde_json::to_string(selector).expect("selector");
        let rect = self.eval(&format!(
            "(() => {{ const e = document.querySelector({quoted}); e.scrollIntoView({{block: 'center'}}); \
             const r = e.getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; }})()"
        ));
        let (x, y) = (rect[0].as_f64().expect("x"), rect[1].as_f64().expect("y"));
        for kind in ["mousePressed", "mouseReleased"] {
            self.call(
                "Input.dispatchMouseEvent",
                json!({"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1}),
            );
        }
    }

    /// Saves a PNG screenshot of the page.
    pub fn screenshot(&mut self, to: &Path) {
        let r = self.call("Page.captureScreenshot", json!({"format": "png"}));
        let png = base64::engine::general_purpose::STANDARD.decode(r["data"].as_str().expect("data")).expect("base64");
        std::fs::create_dir_all(to.parent().expect("parent")).expect("screenshot dir");
        std::fs::write(to, png).expect("write screenshot");
    }

    /// Console errors, uncaught exceptions and error log entries (CSP violations included).
    pub fn console_errors(&mut self) -> Vec<String> {
        self.eval("1"); // drain pending events
        let mut out = Vec::new();
        for e in &self.events {
            let p = &e["params"];
            match e["method"].as_str() {
                Some("Runtime.exceptionThrown") => out.push(p["exceptionDetails"].to_string()),
                Some("Runtime.consoleAPICalled")
                    if matches!(p["type"].as_str(), Some("error" | "assert" | "warning")) =>
                {
                    out.push(p["args"].to_string())
                }
                Some("Log.entryAdded") if matches!(p["entry"]["level"].as_str(), Some("error" | "warning")) => {
                    out.push(p["entry"]["text"].to_string())
                }
                _ => {}
            }
        }
        out
    }

    /// URLs of every request the page made.
    pub fn requests(&self) -> Vec<String> {
        self.events
            .iter()
            .filter(|e| e["method"] == "Network.requestWillBeSent")
            .map(|e| e["params"]["request"]["url"].as_str().unwrap_or("").to_owned())
            .collect()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
