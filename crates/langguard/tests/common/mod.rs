//! `langguard serve` as a child process, for the tests that kill one (SIGKILL) or run several.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

/// A `langguard serve` process and the address it serves on; killed when dropped.
pub struct Instance {
    pub child: Child,
    pub base: String,
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `cmd` (a `langguard` command with its environment) as `serve --no-scheduler` on a
/// free port and waits until it says where it serves.
pub async fn serve(mut cmd: Command) -> Instance {
    let mut child = cmd
        .args(["serve", "--no-scheduler"])
        .env("LANGGUARD_LISTEN", "127.0.0.1:0")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("serve");
    let stderr = child.stderr.take().expect("stderr");
    let address = tokio::task::spawn_blocking(move || {
        use std::io::BufRead;
        let mut lines = std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok);
        let address = lines.by_ref().find_map(|l| {
            l.split("is serving on ")
                .nth(1)
                .and_then(|rest| rest.split_whitespace().next())
                .map(str::to_owned)
        });
        // Keep draining, so the server never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        address
    });
    let base = tokio::time::timeout(Duration::from_secs(60), address)
        .await
        .expect("the instance started in time")
        .expect("read")
        .expect("the instance says where it serves");
    Instance { child, base }
}

/// One API call: status and JSON body (`null` when the body is not JSON).
pub async fn call(
    http: &reqwest::Client,
    base: &str,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (reqwest::StatusCode, Value) {
    let mut req = http.request(method, format!("{base}{path}"));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.expect("response");
    let status = resp.status();
    let text = resp.text().await.expect("body");
    let value = serde_json::from_str(&text).unwrap_or(Value::Null);
    (status, value)
}
