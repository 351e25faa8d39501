//! The emulator as a gateway that pushes: each request appended to a gateway configured for
//! push leaves as an OpenTelemetry span to each of its `otel` exporters and as an
//! `ai_gateway_events` line to each enabled Logpush job of the account (HTTP destination or an
//! R2-style bucket), gzip, encrypted, at least once.
//!
//! Requests are queued when appended and delivered by [`flush`] — on a timer when the emulator
//! serves (`EmulatorConfig::push_interval`), or when a test calls `Emulator::flush_pushes` so
//! it decides exactly when data leaves. Deliveries retry 429, 5xx and broken connections with
//! backoff (honouring `Retry-After` up to a cap), give up on other 4xx, and can be sent twice on
//! purpose ([`PushFaults::duplicate_every`]) as Logpush's at-least-once delivery does.

pub(crate) mod encode;
pub(crate) mod routes;
pub(crate) mod settings;

use std::collections::BTreeMap;
use std::io::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use flate2::write::GzEncoder;
use flate2::Compression;
use futures_util::stream::{self, StreamExt};
use object_store::aws::AmazonS3Builder;
use object_store::{ObjectStore, PutPayload};
use serde::Serialize;

use crate::emulator::{lock, read, Shared};
use crate::log_record::{format_millis, LogRecord, UnixMillis};
use encode::Sealer;
use settings::{Destination, LogpushJob, OtelExporter};

/// Spans per OTLP export request.
const OTLP_BATCH: usize = 100;

/// Faults of the push side.
#[derive(Clone, Debug, Default)]
pub struct PushFaults {
    /// Every Nth delivery (OTLP request or Logpush file) is sent a second time after it
    /// succeeded, as at-least-once delivery does. 0 = never.
    pub duplicate_every: u32,
}

/// Which log system an account is on (API-NOTES §0).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogSystem {
    /// Created before 2026-09-24: the REST Logs API returns the gateway's logs.
    #[default]
    Legacy,
    /// Created since: "Logs powered by Workers Observability". The REST Logs API lists nothing;
    /// only pushes (OTLP, Logpush) carry the requests.
    WorkersObservability,
}

/// One request as delivered (the first time), for tests comparing what arrived with what left.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PushedRecord {
    pub account: String,
    pub gateway: String,
    /// `otlp` or `logpush`.
    pub via: &'static str,
    pub created_at_ms: i64,
    pub provider: String,
    pub model: String,
    pub status_code: u16,
    pub tokens_in: Option<u32>,
    pub tokens_out: Option<u32>,
}

/// Counters of the push side (see [`crate::Stats`]).
#[derive(Debug, Default)]
pub(crate) struct PushCounters {
    pub deliveries: AtomicU64,
    pub attempts: AtomicU64,
    pub retries: AtomicU64,
    pub duplicates: AtomicU64,
    pub failures: AtomicU64,
    pub validation_uploads: AtomicU64,
}

/// A request waiting to be pushed.
struct Pending {
    account: String,
    gateway: String,
    record: Arc<LogRecord>,
}

/// The push side's state inside [`Shared`].
pub(crate) struct PushState {
    queue: Mutex<Vec<Pending>>,
    /// One flush at a time, so deliveries leave in append order.
    flushing: tokio::sync::Mutex<()>,
    http: reqwest::Client,
    pub counters: PushCounters,
    pub faults: Mutex<PushFaults>,
    delivered: Mutex<Vec<PushedRecord>>,
    files: AtomicU64,
}

impl Default for PushState {
    fn default() -> Self {
        Self {
            queue: Mutex::default(),
            flushing: tokio::sync::Mutex::new(()),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap_or_default(),
            counters: PushCounters::default(),
            faults: Mutex::default(),
            delivered: Mutex::default(),
            files: AtomicU64::new(0),
        }
    }
}

impl PushState {
    /// Queues freshly appended requests of a gateway that pushes.
    pub(crate) fn enqueue(&self, account: &str, gateway: &str, records: Vec<Arc<LogRecord>>) {
        if records.is_empty() {
            return;
        }
        lock(&self.queue).extend(records.into_iter().map(|record| Pending {
            account: account.to_owned(),
            gateway: gateway.to_owned(),
            record,
        }));
    }

    pub(crate) fn queued(&self) -> usize {
        lock(&self.queue).len()
    }

    pub(crate) fn delivered(&self) -> Vec<PushedRecord> {
        lock(&self.delivered).clone()
    }
}

/// Where one delivery goes.
#[derive(Clone)]
enum Target {
    Otlp(OtelExporter),
    Logpush {
        job_id: u64,
        destination: Destination,
    },
}

/// One OTLP request or Logpush file, encoded once and re-sent byte for byte on retry.
struct Delivery {
    account: String,
    target: Target,
    body: Vec<u8>,
    content_type: &'static str,
    gzip: bool,
    /// For the delivered list.
    records: Vec<PushedRecord>,
    /// Bucket object name (Logpush to R2).
    object: Option<String>,
}

/// Delivers everything queued so far and returns how many deliveries were made.
pub(crate) async fn flush(shared: &Arc<Shared>) -> usize {
    let push = &shared.push;
    let _one_at_a_time = push.flushing.lock().await;
    let pending = std::mem::take(&mut *lock(&push.queue));
    if pending.is_empty() {
        return 0;
    }
    let deliveries = plan(shared, &pending);
    let count = deliveries.len();
    let concurrency = shared.config.push_concurrency.max(1);
    stream::iter(deliveries)
        .for_each_concurrent(concurrency, |delivery| deliver(shared, delivery))
        .await;
    count
}

/// Encodes the queued requests into deliveries, from the settings in force now.
fn plan(shared: &Shared, pending: &[Pending]) -> Vec<Delivery> {
    let store = read(&shared.store);
    // (account, gateway) → records, in append order.
    let mut groups: BTreeMap<(&str, &str), Vec<&LogRecord>> = BTreeMap::new();
    for p in pending {
        groups
            .entry((p.account.as_str(), p.gateway.as_str()))
            .or_default()
            .push(&p.record);
    }
    let mut deliveries = Vec::new();
    // Logpush lines per (account, job): one job's files hold every gateway of the account.
    let mut lines: BTreeMap<(&str, u64), Vec<(String, PushedRecord)>> = BTreeMap::new();
    let mut jobs: BTreeMap<(&str, u64), LogpushJob> = BTreeMap::new();
    for ((account, gateway_id), records) in &groups {
        let Some(gateway) = store.gateway(account, gateway_id) else {
            continue;
        };
        for exporter in &gateway.settings.otel {
            for chunk in records.chunks(OTLP_BATCH) {
                let (body, content_type) = if exporter.protobuf() {
                    (encode::otlp_protobuf(chunk), "application/x-protobuf")
                } else {
                    (encode::otlp_json(chunk), "application/json")
                };
                deliveries.push(Delivery {
                    account: (*account).to_owned(),
                    target: Target::Otlp(exporter.clone()),
                    body,
                    content_type,
                    gzip: false,
                    records: chunk
                        .iter()
                        .map(|r| pushed(account, gateway_id, "otlp", r))
                        .collect(),
                    object: None,
                });
            }
        }
        let sealer = gateway.settings.logpush_key().and_then(Sealer::new);
        let Some(sealer) = sealer else {
            continue;
        };
        for job in store.logpush_jobs(account).iter().filter(|j| j.enabled) {
            let format = job
                .output_options
                .timestamp_format
                .clone()
                .unwrap_or_else(|| "unixnano".into());
            jobs.entry((account, job.id)).or_insert_with(|| job.clone());
            let out = lines.entry((account, job.id)).or_default();
            for record in records {
                out.push((
                    encode::logpush_line(record, gateway_id, &sealer, &format),
                    pushed(account, gateway_id, "logpush", record),
                ));
            }
        }
    }
    for ((account, job_id), job_lines) in lines {
        let Some(job) = jobs.get(&(account, job_id)) else {
            continue;
        };
        let Ok(destination) =
            Destination::parse(&job.destination_conf, shared.config.allow_http_push)
        else {
            continue;
        };
        let per_file = usize::try_from(job.max_upload_records.max(1)).unwrap_or(usize::MAX);
        for chunk in job_lines.chunks(per_file) {
            let mut ndjson = Vec::new();
            for (line, _) in chunk {
                ndjson.extend_from_slice(line.as_bytes());
                ndjson.push(b'\n');
            }
            let first = chunk
                .iter()
                .map(|(_, r)| r.created_at_ms)
                .min()
                .unwrap_or(0);
            let last = chunk
                .iter()
                .map(|(_, r)| r.created_at_ms)
                .max()
                .unwrap_or(0);
            let n = shared.push.files.fetch_add(1, Ordering::Relaxed);
            deliveries.push(Delivery {
                account: account.to_owned(),
                object: Some(object_name(&destination, first, last, n)),
                target: Target::Logpush {
                    job_id,
                    destination: destination.clone(),
                },
                body: gzip(&ndjson),
                content_type: "application/x-ndjson",
                gzip: true,
                records: chunk.iter().map(|(_, r)| r.clone()).collect(),
            });
        }
    }
    deliveries
}

fn pushed(account: &str, gateway: &str, via: &'static str, record: &LogRecord) -> PushedRecord {
    PushedRecord {
        account: account.to_owned(),
        gateway: gateway.to_owned(),
        via,
        created_at_ms: record.created_at,
        provider: record.provider.to_owned(),
        model: record.model.to_owned(),
        status_code: record.status_code,
        tokens_in: record.tokens_in,
        tokens_out: record.tokens_out,
    }
}

pub(crate) fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
    // Writing to a Vec cannot fail.
    let _ = encoder.write_all(bytes);
    encoder.finish().unwrap_or_default()
}

/// Logpush's object naming: `{prefix}/{YYYYMMDD}/{start}_{end}_{n}.log.gz`, `{DATE}` in the
/// prefix replaced by the day.
fn object_name(destination: &Destination, first: UnixMillis, last: UnixMillis, n: u64) -> String {
    let Destination::R2 { prefix, .. } = destination else {
        return String::new();
    };
    let compact = |ms: UnixMillis| {
        let t = format_millis(ms);
        // 2026-11-30T12:00:00.000Z → 20261130T120000Z
        format!(
            "{}{}{}T{}{}{}Z",
            &t[0..4],
            &t[5..7],
            &t[8..10],
            &t[11..13],
            &t[14..16],
            &t[17..19]
        )
    };
    let day = &compact(first)[..8];
    let prefix = prefix.replace("{DATE}", day);
    let name = format!("{}_{}_{n:08x}.log.gz", compact(first), compact(last));
    if prefix.is_empty() {
        format!("{day}/{name}")
    } else if prefix.contains(day) {
        format!("{prefix}/{name}")
    } else {
        format!("{prefix}/{day}/{name}")
    }
}

/// Sends one delivery until it is accepted, refused for good or out of attempts; then, if the
/// duplicate fault says so, once more.
async fn deliver(shared: &Arc<Shared>, delivery: Delivery) {
    let counters = &shared.push.counters;
    let n = counters.deliveries.fetch_add(1, Ordering::Relaxed) + 1;
    let outcome = send_with_retries(shared, &delivery, delivery.object.as_deref()).await;
    match &outcome {
        Ok(()) => {
            lock(&shared.push.delivered).extend(delivery.records.iter().cloned());
            let every = lock(&shared.push.faults).duplicate_every;
            if every > 0 && n.is_multiple_of(u64::from(every)) {
                counters.duplicates.fetch_add(1, Ordering::Relaxed);
                // A bucket gets the same file under a second name, as a re-run upload would.
                let again = delivery
                    .object
                    .as_ref()
                    .map(|o| o.replace(".log.gz", "-retry.log.gz"));
                let _ = send_with_retries(shared, &delivery, again.as_deref()).await;
            }
        }
        Err(error) => {
            counters.failures.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(%error, "push delivery failed");
        }
    }
    if let Target::Logpush { job_id, .. } = &delivery.target {
        let now = format_millis(crate::log_record::now_millis());
        crate::emulator::write(&shared.store).record_job_outcome(
            &delivery.account,
            *job_id,
            &now,
            outcome.err(),
        );
    }
}

async fn send_with_retries(
    shared: &Shared,
    delivery: &Delivery,
    object: Option<&str>,
) -> Result<(), String> {
    let counters = &shared.push.counters;
    let mut attempt = 1;
    loop {
        counters.attempts.fetch_add(1, Ordering::Relaxed);
        let result = send_once(shared, delivery, object).await;
        let (retry, wait) = match result {
            Ok(()) => return Ok(()),
            Err(Failure::Permanent(e)) => return Err(e),
            Err(Failure::Transient { error, retry_after }) => (error, retry_after),
        };
        if attempt >= shared.config.push_max_attempts.max(1) {
            return Err(format!("gave up after {attempt} attempts: {retry}"));
        }
        counters.retries.fetch_add(1, Ordering::Relaxed);
        let base = shared.config.push_retry_delay;
        let backoff = base.saturating_mul(1 << (attempt - 1).min(10));
        let delay = wait
            .unwrap_or(backoff)
            .min(shared.config.push_retry_max_delay);
        tokio::time::sleep(delay).await;
        attempt += 1;
    }
}

enum Failure {
    Permanent(String),
    Transient {
        error: String,
        retry_after: Option<Duration>,
    },
}

async fn send_once(
    shared: &Shared,
    delivery: &Delivery,
    object: Option<&str>,
) -> Result<(), Failure> {
    let (url, headers) = match &delivery.target {
        Target::Otlp(exporter) => match url::Url::parse(&exporter.url) {
            Ok(url) => (url, exporter.headers.clone().into_iter().collect()),
            Err(e) => return Err(Failure::Permanent(format!("bad exporter URL: {e}"))),
        },
        Target::Logpush {
            destination: Destination::Http { url, headers },
            ..
        } => (url.clone(), headers.clone()),
        Target::Logpush {
            destination: destination @ Destination::R2 { .. },
            ..
        } => {
            return put_object(
                shared,
                &delivery.account,
                destination,
                object,
                &delivery.body,
            )
            .await;
        }
    };
    post(
        &shared.push.http,
        url,
        &headers,
        delivery.content_type,
        delivery.gzip,
        delivery.body.clone(),
    )
    .await
}

async fn post(
    http: &reqwest::Client,
    url: url::Url,
    headers: &Vec<(String, String)>,
    content_type: &str,
    gzip: bool,
    body: Vec<u8>,
) -> Result<(), Failure> {
    let mut request = http
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, content_type)
        .body(body);
    if gzip {
        request = request.header(reqwest::header::CONTENT_ENCODING, "gzip");
    }
    for (name, value) in headers {
        request = request.header(name.as_str(), value.as_str());
    }
    let response = request.send().await.map_err(|e| Failure::Transient {
        error: format!("could not reach the destination: {e}"),
        retry_after: None,
    })?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let error = format!("the destination answered HTTP {status}");
    if status.as_u16() == 429 || status.is_server_error() {
        Err(Failure::Transient { error, retry_after })
    } else {
        Err(Failure::Permanent(error))
    }
}

/// Writes one file to the account's R2 (the emulator's configured S3-compatible endpoint).
async fn put_object(
    shared: &Shared,
    account: &str,
    destination: &Destination,
    object: Option<&str>,
    body: &[u8],
) -> Result<(), Failure> {
    let Destination::R2 {
        bucket,
        access_key_id,
        secret_access_key,
        ..
    } = destination
    else {
        return Err(Failure::Permanent("not a bucket destination".into()));
    };
    let endpoint = shared
        .config
        .r2_endpoint
        .clone()
        .unwrap_or_else(|| format!("https://{account}.r2.cloudflarestorage.com"));
    let store = AmazonS3Builder::new()
        .with_endpoint(&endpoint)
        .with_allow_http(endpoint.starts_with("http://"))
        .with_region("auto")
        .with_bucket_name(bucket)
        .with_access_key_id(access_key_id)
        .with_secret_access_key(secret_access_key)
        .with_virtual_hosted_style_request(false)
        .build()
        .map_err(|e| Failure::Permanent(format!("bad R2 destination: {e}")))?;
    let path = object_store::path::Path::from(object.unwrap_or("logpush.log.gz"));
    store
        .put(&path, PutPayload::from(body.to_vec()))
        .await
        .map(|_| ())
        .map_err(|e| Failure::Transient {
            error: format!("could not write to R2: {e}"),
            retry_after: None,
        })
}

/// The small gzip upload Logpush sends to an HTTP destination when a job is created; the job
/// is refused when the destination does not answer 2xx.
pub(crate) async fn validate_destination(
    shared: &Shared,
    destination: &Destination,
) -> Result<(), String> {
    let Destination::Http { url, headers } = destination else {
        return Ok(());
    };
    shared
        .push
        .counters
        .validation_uploads
        .fetch_add(1, Ordering::Relaxed);
    let body = gzip(br#"{"content":"tests"}"#);
    post(
        &shared.push.http,
        url.clone(),
        headers,
        "application/x-ndjson",
        true,
        body,
    )
    .await
    .map_err(|failure| match failure {
        Failure::Permanent(e) | Failure::Transient { error: e, .. } => e,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_objects_are_named_like_logpush_files() {
        let destination = Destination::R2 {
            bucket: "b".into(),
            prefix: "ai/{DATE}".into(),
            access_key_id: "k".into(),
            secret_access_key: "s".into(),
        };
        let name = object_name(&destination, 1_764_460_800_000, 1_764_460_860_000, 7);
        assert_eq!(
            name,
            "ai/20251130/20251130T000000Z_20251130T000100Z_00000007.log.gz"
        );
        let plain = Destination::R2 {
            bucket: "b".into(),
            prefix: "logs".into(),
            access_key_id: "k".into(),
            secret_access_key: "s".into(),
        };
        assert!(object_name(&plain, 1_764_460_800_000, 1_764_460_800_000, 1)
            .starts_with("logs/20251130/"));
    }
}
