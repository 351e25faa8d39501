//! A real S3 implementation for tests: Moto's server (`pip install "moto[server]"`), started on
//! a free loopback port. Cloudflare R2 speaks the S3 API, so this is what the emulator's
//! `r2://` Logpush destinations write to and what LangGuard's bucket import reads, in tests.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};

/// A running `moto_server`; stopped when dropped. Moto accepts any credentials.
#[derive(Debug)]
pub struct MotoServer {
    child: Child,
    pub endpoint: String,
    http: reqwest::Client,
}

impl MotoServer {
    /// Starts `moto_server` and waits until it answers (up to 30 s).
    pub async fn start() -> anyhow::Result<Self> {
        // A port the OS just gave out and took back: free unless something grabs it first.
        let port = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
            .and_then(|l| l.local_addr())
            .context("finding a free port")?
            .port();
        let child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting moto_server (pip install \"moto[server]\")")?;
        let server = Self {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if server.http.get(&server.endpoint).send().await.is_ok() {
                return Ok(server);
            }
            if Instant::now() > deadline {
                bail!(
                    "moto_server did not answer on {} within 30 s",
                    server.endpoint
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Creates a bucket (Moto takes unsigned requests).
    pub async fn create_bucket(&self, bucket: &str) -> anyhow::Result<()> {
        let response = self
            .http
            .put(format!("{}/{bucket}", self.endpoint))
            .send()
            .await?;
        if !response.status().is_success() {
            bail!("creating bucket {bucket}: HTTP {}", response.status());
        }
        Ok(())
    }

    /// Writes an object.
    pub async fn put_object(&self, bucket: &str, key: &str, body: Vec<u8>) -> anyhow::Result<()> {
        let response = self
            .http
            .put(format!("{}/{bucket}/{key}", self.endpoint))
            .body(body)
            .send()
            .await?;
        if !response.status().is_success() {
            bail!("writing {bucket}/{key}: HTTP {}", response.status());
        }
        Ok(())
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
