//! Logpush from an object store: for sites Cloudflare cannot reach, a Logpush job writes its
//! files to R2 or any S3-compatible bucket, and LangGuard lists the bucket on a schedule and
//! imports each new file (credentials sealed like the Cloudflare token).
//!
//! Exactly once, even when killed mid-file: a file's lines are stored in chunks, each line under
//! an id that is the hash of the line (as for Logpush over HTTP), and the file is recorded as
//! imported only after all of its chunks are committed. A file whose import was cut short is
//! read again from the start on the next pass; the lines already stored are recognised by their
//! ids and skipped, so every record ends up stored once, and the file is counted once.

use std::collections::HashSet;
use std::time::Duration;

use bytes::Bytes;
use futures::TryStreamExt;
use langguard_clock::{format_ms, now_ms};
use langguard_push::body::looks_gzipped;
use langguard_secrets::Binding;
use langguard_store::{
    BucketId, ImportedObject, Integration, IntegrationId, NewPushBucket, PushBucket, SealFor,
};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as ObjectPath;
use object_store::{ClientOptions, ObjectStore, RetryConfig};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::ingest::{self, LogpushOutcome};
use crate::{Actor, OpsError, OpsResult, Services};

/// Largest file imported (compressed), as for Logpush over HTTP; larger ones are recorded as
/// given up on, with why.
pub const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;
/// Imported files shown per bucket.
const RECENT_FILES: u32 = 20;
/// Files imported per pass at most; the next pass goes on.
pub const MAX_FILES_PER_PASS: usize = 1_000;
/// How long one instance holds a bucket's import before another may take it over; renewed
/// after every file, so only a stalled or dead instance's lease runs out.
const LEASE_MS: i64 = 5 * 60 * 1000;

/// A bucket to import from, as an admin enters it. Not `Debug`: it holds the secret.
#[derive(Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BucketInput {
    /// The S3 endpoint: `https://<account id>.r2.cloudflarestorage.com` for R2.
    pub endpoint: String,
    pub bucket: String,
    /// Only objects under this prefix (the job's path, e.g. `logs/ai-gateway`).
    #[serde(default)]
    pub prefix: String,
    /// `auto` for R2 (the default).
    #[serde(default)]
    pub region: Option<String>,
    pub access_key_id: String,
    pub secret_access_key: String,
}

/// A bucket as the API and the UI show it (never its secret).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BucketView {
    pub id: BucketId,
    pub integration_id: IntegrationId,
    pub endpoint: String,
    pub bucket: String,
    pub prefix: String,
    pub region: String,
    pub access_key_id: String,
    pub enabled: bool,
    pub created_at: String,
    pub last_listed_at: Option<String>,
    /// What went wrong on the last listing or import (`null`: nothing).
    pub last_error: Option<String>,
    pub files_imported: i64,
    pub records_imported: i64,
    /// The latest files imported, newest first.
    pub recent_files: Vec<ImportedFileView>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ImportedFileView {
    pub key: String,
    pub records: i64,
    /// Why the file was given up on (too large, not gzip NDJSON); `null` when imported.
    pub error: Option<String>,
    pub imported_at: String,
}

/// What one pass over a bucket did.
#[derive(Debug, Default, Serialize, utoipa::ToSchema)]
pub struct BucketImportReport {
    /// Objects under the prefix.
    pub files_listed: u64,
    /// Of those, not imported before.
    pub files_new: u64,
    /// Imported now (or given up on, with why, in `errors`).
    pub files_imported: u64,
    pub records_stored: u64,
    /// Records already stored (a file re-read after an interrupted import, a duplicate file).
    pub duplicates: u64,
    pub rejected: u64,
    pub errors: Vec<String>,
}

fn check_input(input: &BucketInput) -> OpsResult<(url::Url, String, String)> {
    let endpoint = url::Url::parse(input.endpoint.trim())
        .ok()
        .filter(|u| matches!(u.scheme(), "https" | "http") && u.has_host())
        .ok_or_else(|| {
            OpsError::invalid(
                "invalid_endpoint",
                "endpoint must be an http(s) URL, e.g. https://<account id>.r2.cloudflarestorage.com",
            )
        })?;
    let bucket = input.bucket.trim();
    let bucket_ok = (3..=63).contains(&bucket.len())
        && bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'.'));
    if !bucket_ok {
        return Err(OpsError::invalid(
            "invalid_bucket",
            "bucket must be 3 to 63 lowercase letters, digits, '-' or '.'",
        ));
    }
    let prefix = input.prefix.trim().trim_matches('/');
    if prefix.len() > 512 || prefix.contains("//") || prefix.chars().any(char::is_control) {
        return Err(OpsError::invalid(
            "invalid_prefix",
            "prefix must be a path of at most 512 characters, like logs/ai-gateway",
        ));
    }
    let region = input.region.as_deref().map(str::trim).unwrap_or("auto");
    if region.is_empty() || region.len() > 64 {
        return Err(OpsError::invalid(
            "invalid_region",
            "region must be 1 to 64 characters",
        ));
    }
    let key_ok = |v: &str, max: usize| {
        !v.is_empty() && v.len() <= max && v.bytes().all(|b| b.is_ascii_graphic())
    };
    if !key_ok(input.access_key_id.trim(), 128) || !key_ok(input.secret_access_key.trim(), 256) {
        return Err(OpsError::invalid(
            "invalid_credentials",
            "access_key_id and secret_access_key are the bucket token's key pair (printable, no spaces)",
        ));
    }
    Ok((endpoint, prefix.to_owned(), region.to_owned()))
}

/// An S3 client for the bucket. Few retries: a pass runs again on the next tick anyway.
fn client(
    endpoint: &url::Url,
    bucket: &str,
    region: &str,
    access_key_id: &str,
    secret: &str,
) -> OpsResult<AmazonS3> {
    let endpoint = endpoint.as_str().trim_end_matches('/');
    // The client options carry `allow_http` too: set them first, or they reset it.
    AmazonS3Builder::new()
        .with_client_options(
            ClientOptions::new()
                .with_timeout(Duration::from_secs(60))
                .with_connect_timeout(Duration::from_secs(10)),
        )
        .with_endpoint(endpoint)
        .with_allow_http(endpoint.starts_with("http://"))
        .with_region(region)
        .with_bucket_name(bucket)
        .with_access_key_id(access_key_id)
        .with_secret_access_key(secret)
        .with_virtual_hosted_style_request(false)
        .with_retry(RetryConfig {
            max_retries: 2,
            retry_timeout: Duration::from_secs(20),
            ..RetryConfig::default()
        })
        .build()
        .map_err(|e| OpsError::invalid("invalid_bucket", format!("the bucket settings: {e}")))
}

fn prefix_path(prefix: &str) -> Option<ObjectPath> {
    (!prefix.is_empty()).then(|| ObjectPath::from(prefix))
}

/// Why the bucket could not be read, for a person (no secrets in object_store's messages).
fn unreachable(e: &object_store::Error) -> String {
    match e {
        object_store::Error::NotFound { .. } => {
            "the bucket does not exist at that endpoint; check the endpoint and bucket name"
                .to_owned()
        }
        object_store::Error::PermissionDenied { .. }
        | object_store::Error::Unauthenticated { .. } => {
            "the bucket refused the key pair; check the access key id and secret, and that the \
             token may read this bucket"
                .to_owned()
        }
        other => format!("could not list the bucket: {other}"),
    }
}

/// Adds a bucket to an integration after listing it once with the credentials given. Audited.
pub async fn add(
    ops: &Services,
    actor: Actor<'_>,
    integration_id: IntegrationId,
    input: BucketInput,
) -> OpsResult<BucketView> {
    let (endpoint, prefix, region) = check_input(&input)?;
    ops.store.get_integration(integration_id).await?;
    let bucket = input.bucket.trim().to_owned();
    let access_key_id = input.access_key_id.trim().to_owned();
    let secret = input.secret_access_key.trim().to_owned();
    let s3 = client(&endpoint, &bucket, &region, &access_key_id, &secret)?;
    s3.list(prefix_path(&prefix).as_ref())
        .try_next()
        .await
        .map_err(|e| OpsError::unprocessable("bucket_unreachable", unreachable(&e)))?;
    let sealer = ops.sealer.clone();
    let created = ops
        .store
        .create_bucket(NewPushBucket {
            integration_id,
            endpoint: endpoint.as_str().trim_end_matches('/').to_owned(),
            bucket,
            prefix,
            region,
            access_key_id,
            secret_access_key: SealFor::new(move |id| {
                sealer.seal(&secret, Binding::BucketSecret(id))
            }),
        })
        .await?;
    ops.audit(
        actor,
        "bucket.added",
        Some(format!("integration:{integration_id}")),
        json!({"bucket_id": created.id, "endpoint": created.endpoint, "bucket": created.bucket,
            "prefix": created.prefix}),
        None,
    )
    .await;
    view(ops, created).await
}

pub async fn list(ops: &Services, integration_id: IntegrationId) -> OpsResult<Vec<BucketView>> {
    ops.store.get_integration(integration_id).await?;
    let mut out = Vec::new();
    for bucket in ops.store.list_buckets(Some(integration_id)).await? {
        out.push(view(ops, bucket).await?);
    }
    Ok(out)
}

/// The bucket, when it belongs to the integration (else "not found", as for any other id).
async fn owned(
    ops: &Services,
    integration_id: IntegrationId,
    bucket_id: BucketId,
) -> OpsResult<PushBucket> {
    let bucket = ops.store.get_bucket(bucket_id).await?;
    if bucket.integration_id != integration_id {
        return Err(OpsError::NotFound(format!(
            "bucket {bucket_id} does not exist"
        )));
    }
    Ok(bucket)
}

/// Stops importing from the bucket (what was imported stays). Audited.
pub async fn remove(
    ops: &Services,
    actor: Actor<'_>,
    integration_id: IntegrationId,
    bucket_id: BucketId,
) -> OpsResult<()> {
    let bucket = owned(ops, integration_id, bucket_id).await?;
    ops.store.delete_bucket(bucket_id).await?;
    ops.audit(
        actor,
        "bucket.removed",
        Some(format!("integration:{integration_id}")),
        json!({"bucket_id": bucket_id, "bucket": bucket.bucket}),
        None,
    )
    .await;
    Ok(())
}

async fn view(ops: &Services, b: PushBucket) -> OpsResult<BucketView> {
    let recent_files = ops
        .store
        .recent_imported_objects(b.id, RECENT_FILES)
        .await?
        .into_iter()
        .map(|o| ImportedFileView {
            key: o.key,
            records: o.records,
            error: o.error,
            imported_at: format_ms(o.imported_at_ms),
        })
        .collect();
    Ok(BucketView {
        id: b.id,
        integration_id: b.integration_id,
        endpoint: b.endpoint,
        bucket: b.bucket,
        prefix: b.prefix,
        region: b.region,
        access_key_id: b.access_key_id,
        enabled: b.enabled,
        created_at: format_ms(b.created_at_ms),
        last_listed_at: b.last_listed_at_ms.map(format_ms),
        last_error: b.last_error,
        files_imported: b.files_imported,
        records_imported: b.records_imported,
        recent_files,
    })
}

/// Imports the bucket's new files now ("Import now"); `Conflict` while a pass runs already
/// (here or on another instance).
pub async fn import_now(
    ops: &Services,
    integration_id: IntegrationId,
    bucket_id: BucketId,
) -> OpsResult<BucketImportReport> {
    let bucket = owned(ops, integration_id, bucket_id).await?;
    import(ops, &bucket).await?.ok_or_else(|| {
        OpsError::Conflict(format!(
            "bucket {bucket_id} is being imported right now; its files will be in shortly"
        ))
    })
}

fn lease_name(id: BucketId) -> String {
    format!("bucket-import:{id}")
}

/// One pass over a bucket, under the bucket's lease (`None`: another pass holds it): list,
/// then import each file not imported yet, oldest name first (Logpush names files by time).
/// The outcome is kept on the bucket (`last_error`).
pub async fn import(ops: &Services, bucket: &PushBucket) -> OpsResult<Option<BucketImportReport>> {
    let lease = lease_name(bucket.id);
    let holder = ops.engine.holder().to_owned();
    if !ops.store.acquire_lease(&lease, &holder, LEASE_MS).await? {
        // A pass of a process of this machine that died (killed mid-file, say) is not waited
        // out: its lease is released and this pass takes over.
        match ops.store.lease_holder(&lease).await? {
            Some(dead) if langguard_sync::holder_is_gone(&dead) => {
                ops.store.release_lease(&lease, &dead).await?;
                if !ops.store.acquire_lease(&lease, &holder, LEASE_MS).await? {
                    return Ok(None);
                }
            }
            _ => return Ok(None),
        }
    }
    let result = import_inner(ops, bucket, &lease, &holder).await;
    let error = match &result {
        Ok(report) => report.errors.first().cloned(),
        Err(e) => Some(e.to_string()),
    };
    let listed = ops
        .store
        .set_bucket_listed(bucket.id, now_ms(), error)
        .await;
    if let Err(e) = ops.store.release_lease(&lease, &holder).await {
        tracing::warn!(bucket = bucket.id, error = %e, "could not release a bucket lease");
    }
    listed?;
    result.map(Some)
}

/// Where the listing starts: the folder of the newest file imported (Logpush writes
/// `<prefix>/<day>/<start>_<end>_<n>.log.gz`, so that is today's folder), else the start of
/// the prefix. A pass reads what is new, not the bucket's whole history; a file that arrives
/// late in an older folder is not seen (Logpush writes a file once its batch is done).
fn listing_offset(bucket: &PushBucket, newest_imported: Option<&str>) -> Option<ObjectPath> {
    let folder = newest_imported?.rsplit_once('/')?.0;
    // Keys after the folder's own name: every file in it and in later folders.
    (folder.len() > bucket.prefix.len()).then(|| ObjectPath::from(folder))
}

async fn import_inner(
    ops: &Services,
    bucket: &PushBucket,
    lease: &str,
    holder: &str,
) -> OpsResult<BucketImportReport> {
    let integration = ops.store.get_integration(bucket.integration_id).await?;
    let secret = ops
        .sealer
        .open(&bucket.sealed_secret, Binding::BucketSecret(bucket.id))
        .map_err(|e| {
            OpsError::Internal(anyhow::anyhow!("the secret of bucket {}: {e}", bucket.id))
        })?;
    let endpoint = url::Url::parse(&bucket.endpoint)
        .map_err(|e| OpsError::Internal(anyhow::anyhow!("bucket {} endpoint: {e}", bucket.id)))?;
    let s3 = client(
        &endpoint,
        &bucket.bucket,
        &bucket.region,
        &bucket.access_key_id,
        &secret,
    )?;
    let done: HashSet<String> = ops
        .store
        .imported_object_keys(bucket.id)
        .await?
        .into_iter()
        .collect();
    let prefix = prefix_path(&bucket.prefix);
    let listing = match listing_offset(bucket, done.iter().max().map(String::as_str)) {
        Some(offset) => s3.list_with_offset(prefix.as_ref(), &offset),
        None => s3.list(prefix.as_ref()),
    };
    let mut objects: Vec<_> = listing
        .try_collect()
        .await
        .map_err(|e| OpsError::Unavailable(unreachable(&e)))?;
    let mut report = BucketImportReport {
        files_listed: objects.len() as u64,
        ..BucketImportReport::default()
    };
    objects.retain(|o| !done.contains(o.location.as_ref()));
    objects.sort_by(|a, b| a.location.cmp(&b.location));
    report.files_new = objects.len() as u64;
    objects.truncate(MAX_FILES_PER_PASS);
    let too_large = || format!("larger than {} MiB", MAX_FILE_BYTES / (1024 * 1024));
    for object in objects {
        let key = object.location.to_string();
        let outcome = if object.size > MAX_FILE_BYTES {
            Err(too_large())
        } else {
            // A writer slot first, then the download: a waiting import holds no file in memory.
            let admission = ingest::admit_waiting(ops).await?;
            match download(&s3, &object.location).await {
                Ok(bytes) => import_file(ops, &integration, admission, bytes, &mut report).await?,
                Err(Download::Gone) => Err("deleted before it could be read".to_owned()),
                Err(Download::TooLarge) => Err(too_large()),
                // This file, not the bucket: the files after it still go in, and it is tried
                // again on the next pass.
                Err(Download::Failed(why)) => {
                    report.errors.push(format!("could not read {key}: {why}"));
                    continue;
                }
            }
        };
        let (records, error) = match outcome {
            Ok(records) => (records, None),
            Err(why) => {
                report.errors.push(format!("{key}: {why}"));
                (0, Some(why))
            }
        };
        ops.store
            .record_imported_object(
                bucket.id,
                ImportedObject {
                    key,
                    records,
                    error,
                    imported_at_ms: now_ms(),
                },
            )
            .await?;
        report.files_imported += 1;
        if !ops.store.renew_lease(lease, holder, LEASE_MS).await? {
            // Taken over (this instance stalled past its lease): the other pass goes on.
            break;
        }
    }
    Ok(report)
}

enum Download {
    /// Deleted between the listing and the download.
    Gone,
    /// Bigger than [`MAX_FILE_BYTES`] (it grew after it was listed, or the listing lied).
    TooLarge,
    Failed(String),
}

/// The object, read into memory up to [`MAX_FILE_BYTES`] whatever size the listing or the
/// response claims.
async fn download(s3: &AmazonS3, location: &ObjectPath) -> Result<Bytes, Download> {
    let response = s3.get(location).await.map_err(|e| match e {
        object_store::Error::NotFound { .. } => Download::Gone,
        other => Download::Failed(other.to_string()),
    })?;
    let mut stream = response.into_stream();
    let mut bytes = Vec::new();
    while let Some(chunk) = stream
        .try_next()
        .await
        .map_err(|e| Download::Failed(e.to_string()))?
    {
        if (bytes.len() + chunk.len()) as u64 > MAX_FILE_BYTES {
            return Err(Download::TooLarge);
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(bytes))
}

/// Stores one file's records. `Ok(Err(why))`: the file can never be imported (not gzip, too
/// large once inflated) and is recorded as given up on; `Err`: a failure worth retrying (the
/// file stays for the next pass).
async fn import_file(
    ops: &Services,
    integration: &Integration,
    admission: ingest::Admission,
    bytes: Bytes,
    report: &mut BucketImportReport,
) -> OpsResult<Result<i64, String>> {
    let gzip = looks_gzipped(&bytes);
    match ingest::logpush(ops, integration, admission, bytes, gzip).await {
        Ok(LogpushOutcome::Validation) => Ok(Ok(0)),
        Ok(LogpushOutcome::Stored(push)) => {
            report.records_stored += push.stored;
            report.duplicates += push.duplicates;
            report.rejected += push.rejected;
            Ok(Ok(
                (push.stored + push.duplicates + push.other_source) as i64
            ))
        }
        Err(e @ (OpsError::TooLarge(_) | OpsError::Invalid { .. })) => Ok(Err(e.to_string())),
        Err(e) => Err(e),
    }
}

/// The buckets due for a pass (enabled, of enabled integrations, not listed within `every`).
pub async fn due(ops: &Services, every: Duration) -> OpsResult<Vec<PushBucket>> {
    let now = now_ms();
    let every_ms = i64::try_from(every.as_millis()).unwrap_or(i64::MAX);
    let enabled: HashSet<IntegrationId> = ops
        .store
        .list_integrations()
        .await?
        .into_iter()
        .filter(|i| i.enabled)
        .map(|i| i.id)
        .collect();
    Ok(ops
        .store
        .list_buckets(None)
        .await?
        .into_iter()
        .filter(|b| {
            b.enabled
                && enabled.contains(&b.integration_id)
                && b.last_listed_at_ms
                    .is_none_or(|t| t.saturating_add(every_ms) <= now)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> BucketInput {
        BucketInput {
            endpoint: "https://acct.r2.cloudflarestorage.com".into(),
            bucket: "ai-logs".into(),
            prefix: "/logs/gw/".into(),
            region: None,
            access_key_id: "AKIA123".into(),
            secret_access_key: "s3cr3t".into(),
        }
    }

    #[test]
    fn bucket_settings_are_checked() {
        let (_, prefix, region) = check_input(&input()).expect("valid");
        assert_eq!((prefix.as_str(), region.as_str()), ("logs/gw", "auto"));
        for (broken, code) in [
            (
                BucketInput {
                    endpoint: "ftp://x".into(),
                    ..input()
                },
                "invalid_endpoint",
            ),
            (
                BucketInput {
                    bucket: "No_Caps".into(),
                    ..input()
                },
                "invalid_bucket",
            ),
            (
                BucketInput {
                    prefix: "a//b".into(),
                    ..input()
                },
                "invalid_prefix",
            ),
            (
                BucketInput {
                    secret_access_key: "has space".into(),
                    ..input()
                },
                "invalid_credentials",
            ),
        ] {
            assert_eq!(check_input(&broken).err().map(|e| e.code()), Some(code));
        }
    }
}
