//! Push ingest: what a gateway (or an instrumented app) pushes for an integration — OTLP spans
//! and Logpush files — decoded, stored through the one ingest path the pull uses (rows,
//! bodies and rollups in one transaction, idempotent), and counted. The caller has already
//! proved it holds an ingest key of `integration` (the server's shared auth).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use langguard_push::crypto::{generate_key_pair, FieldDecryptor};
use langguard_push::otlp::Encoding;
use langguard_push::{body, logpush, otlp, Record};
use langguard_secrets::Binding;
use langguard_store::{
    IngestSource, Integration, IntegrationId, PushMinute, PushedInteraction, SealFor,
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tracing::instrument;

use crate::{OpsError, OpsResult, Services};

/// Largest OTLP body taken once decompressed (the OpenTelemetry Collector's default is ~20
/// MiB; exporters send a few MB).
pub const MAX_OTLP_INFLATED_BYTES: usize = 32 * 1024 * 1024;
/// Largest Logpush file taken once decompressed (Logpush's batches default to a few MB).
pub const MAX_INFLATED_BYTES: usize = 64 * 1024 * 1024;

/// Pushes decoded and written at once; one more is refused with a retry hint rather than
/// queued (pushers retry; a queue would only grow memory while the writer is behind). With the
/// size limits above this bounds what pushes can hold in memory.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 8;

/// Rows per store transaction: a huge push doesn't hold the writer for long at a time (rows
/// are idempotent, so a push cut between chunks is retried whole without double counting).
const CHUNK_ROWS: usize = 5_000;

/// Gateways one push may name; more are rejected (each is a row, a transaction, a label).
const MAX_GATEWAYS_PER_PUSH: usize = 64;

/// Logs from further in the future than this are refused (a clock that wrong is a bug, and a
/// far-future time would sit in the rollups beyond any retention).
const MAX_FUTURE_MS: i64 = 86_400_000;
/// Nothing LLM-shaped happened before this (2015-01-01).
const MIN_TIME_MS: i64 = 1_420_070_400_000;

/// Seconds a refused pusher is asked to wait.
const RETRY_AFTER_SECS: u64 = 1;

/// An integration's opened Logpush key, with the sealed value it was opened from (a new key
/// pair replaces it).
type OpenedKey = (Vec<u8>, Arc<FieldDecryptor>);

/// Admission to the writer, and each integration's opened Logpush key.
pub struct Ingest {
    in_flight: Arc<Semaphore>,
    /// Logpush files decrypt one at a time, on every core: RSA unwraps are milliseconds each,
    /// and files decrypting side by side would only starve everything else.
    decrypting: Semaphore,
    decryptors: Mutex<HashMap<IntegrationId, OpenedKey>>,
}

impl Ingest {
    pub fn new(max_in_flight: usize) -> Self {
        Self {
            in_flight: Arc::new(Semaphore::new(max_in_flight.max(1))),
            decrypting: Semaphore::new(1),
            decryptors: Mutex::new(HashMap::new()),
        }
    }

    /// A writer slot, or `Busy` when every slot is taken.
    fn admit(&self) -> OpsResult<Admission> {
        let permit = self.in_flight.clone().try_acquire_owned().map_err(|_| {
            metrics::counter!("langguard_ingest_refused_total").increment(1);
            OpsError::Busy {
                message: "LangGuard is writing as fast as it can; retry this batch shortly".into(),
                retry_after_secs: RETRY_AFTER_SECS,
            }
        })?;
        metrics::gauge!("langguard_ingest_in_flight").increment(1.0);
        Ok(Admission(permit))
    }
}

/// A push's writer slot, taken before its body is read (so refused pushers hold no memory)
/// and held until it is answered.
pub struct Admission(#[allow(dead_code)] OwnedSemaphorePermit);

/// Takes a writer slot for a push, or `Busy` (429 with `Retry-After`) when all are taken.
pub fn admit(ops: &Services) -> OpsResult<Admission> {
    ops.ingest.admit()
}

/// Waits for a writer slot: for importers that pull (bucket imports), which can wait their
/// turn instead of being told to come back.
pub async fn admit_waiting(ops: &Services) -> OpsResult<Admission> {
    let permit = ops
        .ingest
        .in_flight
        .clone()
        .acquire_owned()
        .await
        .map_err(|_| OpsError::Unavailable("shutting down".into()))?;
    metrics::gauge!("langguard_ingest_in_flight").increment(1.0);
    Ok(Admission(permit))
}

impl Drop for Admission {
    fn drop(&mut self) {
        metrics::gauge!("langguard_ingest_in_flight").decrement(1.0);
    }
}

/// What a push did, for the answer and the telemetry.
#[derive(Debug, Default, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct PushReport {
    /// Logs (spans, lines) in the request that describe a GenAI call.
    pub received: u64,
    /// Newly stored.
    pub stored: u64,
    /// Already stored (a re-sent batch or line).
    pub duplicates: u64,
    /// Left out: their gateway counts another source at their time (see the integration's
    /// push setup).
    pub other_source: u64,
    /// Not storable, each for the reason in `errors`.
    pub rejected: u64,
    /// OTLP spans that are not GenAI calls (an app's own spans): counted, not stored.
    pub not_genai: u64,
    /// Logpush fields that did not decrypt (their logs are stored without them).
    pub undecryptable_fields: u64,
    /// Why logs were rejected or left out (the first few).
    pub errors: Vec<String>,
}

/// Reasons kept per answer.
const MAX_ERRORS: usize = 10;

impl PushReport {
    fn note(&mut self, reason: String) {
        if self.errors.len() < MAX_ERRORS {
            self.errors.push(reason);
        }
    }

    /// Spans the OTLP answer reports as rejected: what will never be stored.
    pub fn rejected_spans(&self) -> i64 {
        (self.rejected + self.other_source) as i64
    }
}

/// A gateway name a pusher gives (header or query): what Cloudflare allows in a gateway id,
/// plus capitals and dots for apps' own names.
pub fn check_gateway(name: &str) -> OpsResult<&str> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(name)
    } else {
        Err(OpsError::invalid(
            "invalid_gateway",
            "the gateway name must be 1 to 64 letters, digits, '-', '_' or '.'",
        ))
    }
}

/// Stores the GenAI spans of an OTLP export request.
#[instrument(skip_all, fields(integration_id = integration.id))]
pub async fn otlp(
    ops: &Services,
    _admitted: Admission,
    integration: &Integration,
    body: Bytes,
    gzip: bool,
    encoding: Encoding,
    gateway: Option<&str>,
) -> OpsResult<PushReport> {
    let bodies = integration.bodies;
    let engine = ops.engine.clone();
    let gateway = gateway.map(str::to_owned);
    // Inflating and decoding are CPU work: off the async workers.
    let decoded = tokio::task::spawn_blocking(move || -> OpsResult<otlp::Decoded> {
        let body = inflate(&body, gzip, MAX_OTLP_INFLATED_BYTES, IngestSource::Otlp)?;
        let request = otlp::decode_request(&body, encoding).map_err(|e| {
            count_request(IngestSource::Otlp, "undecodable");
            OpsError::invalid("undecodable", e.to_string())
        })?;
        drop(body);
        Ok(otlp::records(
            request,
            gateway.as_deref(),
            &bodies,
            engine.pricer(),
        ))
    })
    .await
    .map_err(|e| OpsError::Internal(anyhow::anyhow!("OTLP decoding stopped: {e}")))??;
    let mut report = PushReport {
        received: decoded.records.len() as u64 + decoded.rejected_total,
        rejected: decoded.rejected_total,
        not_genai: decoded.not_genai,
        ..PushReport::default()
    };
    for why in decoded.rejected {
        report.note(why);
    }
    store(
        ops,
        integration,
        IngestSource::Otlp,
        decoded.records,
        &mut report,
    )
    .await?;
    finish(ops, integration, IngestSource::Otlp, &report).await;
    Ok(report)
}

/// What a Logpush upload was.
#[derive(Debug, Clone, PartialEq)]
pub enum LogpushOutcome {
    /// Logpush's destination check (`{"content":"tests"}`): answered, nothing stored.
    Validation,
    Stored(PushReport),
}

/// Stores a Logpush file of `ai_gateway_events`.
#[instrument(skip_all, fields(integration_id = integration.id))]
pub async fn logpush(
    ops: &Services,
    integration: &Integration,
    _admitted: Admission,
    body: Bytes,
    gzip: bool,
) -> OpsResult<LogpushOutcome> {
    let body = tokio::task::spawn_blocking(move || {
        inflate(&body, gzip, MAX_INFLATED_BYTES, IngestSource::Logpush).map(|b| b.into_owned())
    })
    .await
    .map_err(|e| OpsError::Internal(anyhow::anyhow!("Logpush inflating stopped: {e}")))??;
    if logpush::is_validation(&body) {
        count_request(IngestSource::Logpush, "validation");
        return Ok(LogpushOutcome::Validation);
    }
    let decryptor = decryptor(ops, integration)?;
    let bodies = integration.bodies;
    let engine = ops.engine.clone();
    let _turn = ops
        .ingest
        .decrypting
        .acquire()
        .await
        .map_err(|_| OpsError::Unavailable("shutting down".into()))?;
    // Unwrapping keys is milliseconds of CPU per log: off the async workers.
    let decoded = tokio::task::spawn_blocking(move || {
        let key = decryptor.as_deref();
        let before = key.map_or((0, 0), FieldDecryptor::counts);
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let decoded = logpush::decode_parallel(&body, threads, key, &bodies, engine.pricer());
        if let Some(key) = key {
            let after = key.counts();
            metrics::counter!("langguard_ingest_key_unwraps_total")
                .increment(after.0.saturating_sub(before.0));
            metrics::counter!("langguard_ingest_key_cache_hits_total")
                .increment(after.1.saturating_sub(before.1));
        }
        decoded
    })
    .await
    .ok()
    .flatten()
    .ok_or_else(|| OpsError::Internal(anyhow::anyhow!("Logpush decoding stopped")))?;
    drop(_turn);
    let mut report = PushReport {
        received: decoded.records.len() as u64 + decoded.rejected_total,
        rejected: decoded.rejected_total,
        undecryptable_fields: decoded.undecryptable,
        ..PushReport::default()
    };
    for (line, why) in &decoded.rejected {
        report.note(format!("line {line}: {why}"));
    }
    if let Some(why) = decoded.undecryptable_reason {
        tracing::warn!(integration = %integration.name, fields = decoded.undecryptable, reason = %why, "Logpush fields did not decrypt; their logs are stored without them");
        report.note(format!(
            "{} encrypted fields left out: {why}",
            decoded.undecryptable
        ));
    }
    store(
        ops,
        integration,
        IngestSource::Logpush,
        decoded.records,
        &mut report,
    )
    .await?;
    finish(ops, integration, IngestSource::Logpush, &report).await;
    Ok(LogpushOutcome::Stored(report))
}

fn inflate(
    body: &[u8],
    gzip: bool,
    limit: usize,
    source: IngestSource,
) -> OpsResult<std::borrow::Cow<'_, [u8]>> {
    body::inflate(body, gzip, limit).map_err(|e| {
        count_request(source, "undecodable");
        match e {
            body::BodyError::TooLarge { .. } => OpsError::TooLarge(e.to_string()),
            body::BodyError::Gzip(_) => OpsError::invalid("undecodable", e.to_string()),
        }
    })
}

/// The integration's opened private key (kept between requests: parsing it is not free, and
/// the unwrapped-key cache lives in it), or `None` before it has one.
fn decryptor(ops: &Services, integration: &Integration) -> OpsResult<Option<Arc<FieldDecryptor>>> {
    let Some(sealed) = &integration.sealed_push_private_key else {
        return Ok(None);
    };
    let mut cache = ops
        .ingest
        .decryptors
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some((known, decryptor)) = cache.get(&integration.id) {
        if known == sealed {
            return Ok(Some(decryptor.clone()));
        }
    }
    let pem = ops
        .sealer
        .open(sealed, Binding::PushPrivateKey(integration.id))
        .map_err(|e| {
            OpsError::Internal(anyhow::anyhow!(
                "the Logpush key of integration {}: {e}",
                integration.id
            ))
        })?;
    let decryptor = Arc::new(FieldDecryptor::from_pem(&pem).map_err(|e| {
        OpsError::Internal(anyhow::anyhow!(
            "the Logpush key of integration {}: {e}",
            integration.id
        ))
    })?);
    cache.insert(integration.id, (sealed.clone(), decryptor.clone()));
    Ok(Some(decryptor))
}

/// Stores records gateway by gateway, [`CHUNK_ROWS`] per transaction. Records naming a
/// gateway that isn't a valid name, too many gateways, or an impossible time are rejected.
async fn store(
    ops: &Services,
    integration: &Integration,
    source: IngestSource,
    records: Vec<Record>,
    report: &mut PushReport,
) -> OpsResult<()> {
    let now = langguard_clock::now_ms();
    let mut by_gateway: BTreeMap<String, Vec<PushedInteraction>> = BTreeMap::new();
    for record in records {
        let at = record.pushed.interaction.created_at_ms;
        let why = if check_gateway(&record.gateway).is_err() {
            Some(format!(
                "gateway name {:?} is not 1 to 64 letters, digits, '-', '_' or '.'",
                record.gateway.chars().take(80).collect::<String>()
            ))
        } else if !(MIN_TIME_MS..=now + MAX_FUTURE_MS).contains(&at) {
            Some(format!(
                "time {} is before 2015 or more than a day ahead",
                langguard_clock::format_ms(at)
            ))
        } else if !by_gateway.contains_key(&record.gateway)
            && by_gateway.len() >= MAX_GATEWAYS_PER_PUSH
        {
            Some(format!(
                "more than {MAX_GATEWAYS_PER_PUSH} gateways in one push"
            ))
        } else {
            None
        };
        match why {
            Some(why) => {
                report.rejected += 1;
                report.note(why);
            }
            None => by_gateway
                .entry(record.gateway)
                .or_default()
                .push(record.pushed),
        }
    }
    for (gateway, mut batch) in by_gateway {
        while !batch.is_empty() {
            let rest = batch.split_off(batch.len().min(CHUNK_ROWS));
            let chunk = std::mem::replace(&mut batch, rest);
            let outcome = ops
                .store
                .ingest_pushed(integration.id, &gateway, source, chunk)
                .await?;
            langguard_sync::record_traffic(&integration.name, &gateway, &outcome.traffic);
            report.stored += outcome.inserted;
            report.duplicates += outcome.duplicates;
            if outcome.other_source > 0 {
                report.other_source += outcome.other_source;
                report.note(format!(
                    "{} logs of gateway {gateway:?} left out: it counts another source at their \
                     time (see the integration's push setup)",
                    outcome.other_source
                ));
            }
        }
    }
    Ok(())
}

fn count_request(source: IngestSource, outcome: &'static str) {
    metrics::counter!("langguard_ingest_requests_total", "source" => source.as_str(), "outcome" => outcome)
        .increment(1);
}

/// Counts a stored push in the metrics and the integration's push history. The records are
/// committed by now: a history that cannot be written is logged, not the push's failure.
async fn finish(
    ops: &Services,
    integration: &Integration,
    source: IngestSource,
    report: &PushReport,
) {
    let now = langguard_clock::now_ms();
    let minute = PushMinute {
        minute_ms: now - now.rem_euclid(60_000),
        source: source.as_str().to_owned(),
        requests: 1,
        received: report.received as i64,
        stored: report.stored as i64,
        duplicates: report.duplicates as i64,
        other_source: report.other_source as i64,
        rejected: report.rejected as i64,
    };
    if let Err(e) = ops.store.record_push(integration.id, minute).await {
        tracing::warn!(integration = %integration.name, error = %e, "could not add to the push history");
    }
    count_request(source, "stored");
    let s = source.as_str();
    for (outcome, n) in [
        ("stored", report.stored),
        ("duplicate", report.duplicates),
        ("other_source", report.other_source),
        ("rejected", report.rejected),
        ("not_genai", report.not_genai),
    ] {
        metrics::counter!("langguard_ingest_records_total", "source" => s, "outcome" => outcome)
            .increment(n);
    }
}

/// HELP texts of the ingest metrics.
pub fn describe_metrics() {
    metrics::describe_counter!(
        "langguard_ingest_requests_total",
        "Push requests (OTLP, Logpush) by source and outcome (stored, validation, undecodable)"
    );
    metrics::describe_counter!(
        "langguard_ingest_records_total",
        "Pushed logs by source and outcome (stored, duplicate, other_source, rejected, not_genai)"
    );
    metrics::describe_counter!(
        "langguard_ingest_refused_total",
        "Pushes refused with Retry-After because every writer slot was taken"
    );
    metrics::describe_gauge!(
        "langguard_ingest_in_flight",
        "Pushes being decoded and written now"
    );
    metrics::describe_counter!(
        "langguard_ingest_key_unwraps_total",
        "RSA unwraps of Logpush field keys"
    );
    metrics::describe_counter!(
        "langguard_ingest_key_cache_hits_total",
        "Logpush field keys found already unwrapped"
    );
}

/// The integration with its Logpush key pair, made now if it has none (RSA key generation
/// takes tens of milliseconds, off the async workers).
pub async fn ensure_push_key(ops: &Services, integration: Integration) -> OpsResult<Integration> {
    if integration.push_public_key.is_some() {
        return Ok(integration);
    }
    let pair = tokio::task::spawn_blocking(generate_key_pair)
        .await
        .map_err(|e| OpsError::Internal(anyhow::anyhow!("key generation stopped: {e}")))?
        .map_err(|e| OpsError::Internal(anyhow::anyhow!(e)))?;
    let sealer = ops.sealer.clone();
    let private = pair.private_pem;
    Ok(ops
        .store
        .set_push_key(
            integration.id,
            &pair.public_pem,
            SealFor::new(move |id| sealer.seal(&private, Binding::PushPrivateKey(id))),
        )
        .await?)
}
