//! Completeness against Cloudflare's own counts: every sync asks the GraphQL Analytics API how
//! many requests each gateway had per hour (one query per account covers the whole look-back),
//! compares that with what LangGuard holds for the hour from any source, and reads again, from
//! the Logs API, the hours of pulled gateways that are short — however old, so a log that
//! became visible later than the trailing window is still found.
//!
//! Analytics are sampled and lag, and that is modelled rather than ignored: an hour is judged
//! only [`SETTLE_MS`] after it ends (ingestion lag has been seen past 14 minutes), and a busy
//! hour's count, sample-corrected, is trusted to within [`tolerance`]. An hour still short
//! after [`MAX_REREADS`] re-reads is marked degraded: Cloudflare counted requests whose logs
//! its Logs API does not have (`cf-aig-collect-log: false`, a full gateway, logs over 10 MB)
//! or that push never delivered.

use std::collections::{BTreeMap, HashMap};

use langguard_cloudflare::{CloudflareClient, CloudflareError};
use langguard_store::{
    Bucket, CoverageHour, GatewayState, GroupBy, IngestSource, Integration, OutgoingEvent, Scope,
    WebhookEvent,
};

use langguard_store::SyncCounts;

use crate::{ProgressFn, RunError, SyncEngine};

pub const HOUR_MS: i64 = 3_600_000;
/// An hour is judged this long after it ends.
pub const SETTLE_MS: i64 = 30 * 60_000;
/// Re-reads of a short hour before it is marked degraded.
pub const MAX_REREADS: i64 = 3;
/// How far back coverage is checked (within the dataset's 32-day query limit).
pub const MAX_CHECK_DAYS: i64 = 30;

/// How far Cloudflare's count of an hour may be from the truth: exact for hours of up to a
/// thousand requests, where sampling is not seen; 2 % above.
pub fn tolerance(cloudflare: i64) -> i64 {
    if cloudflare <= 1_000 {
        0
    } else {
        cloudflare / 50
    }
}

/// Whether an hour holds fewer requests than Cloudflare counted, beyond the tolerance.
pub fn is_short(cloudflare: i64, stored: i64) -> bool {
    stored < cloudflare - tolerance(cloudflare)
}

/// Why coverage cannot be checked with this token, in words for the integration page.
fn unknown_because(error: &CloudflareError) -> String {
    match error {
        CloudflareError::PermissionDenied { .. } | CloudflareError::AuthFailed { .. } => {
            "the API token lacks Account Analytics: Read, so LangGuard cannot compare its \
             imports with Cloudflare's counts (imports are not affected); add that permission \
             to the token to see coverage"
                .to_owned()
        }
        other => format!("Cloudflare's analytics could not be read: {other}"),
    }
}

/// Gateways pulled from the Logs API for which Cloudflare counted traffic but of which nothing
/// is held: their account keeps logs in the new log system, which the Logs API does not serve.
/// Says so in plain words, pointing to push setup, instead of "Connected, 0 logs".
fn new_log_system_gateways(
    states: &[GatewayState],
    hours: &[CoverageHour],
    days: i64,
) -> Vec<String> {
    let mut totals: BTreeMap<&str, (i64, i64)> = BTreeMap::new();
    for hour in hours {
        let (counted, held) = totals.entry(hour.gateway.as_str()).or_default();
        *counted += hour.cloudflare;
        *held += hour.stored;
    }
    totals
        .into_iter()
        .filter(|(gateway, (counted, held))| {
            *counted > 0
                && *held == 0
                && states.iter().any(|s| {
                    s.gateway_id == *gateway
                        && s.source == IngestSource::LogsApi
                        && s.cursor_ms.is_none()
                })
        })
        .map(|(gateway, (counted, _))| {
            format!(
                "Cloudflare counted {counted} requests on gateway {gateway} in the last {days} \
                 days, but its Logs API lists none: this account keeps its logs in Cloudflare's \
                 new log system (Workers Observability), which the Logs API does not serve. Use \
                 Set up push on this integration's page so they arrive by OpenTelemetry or \
                 Logpush."
            )
        })
        .collect()
}

/// `coverage.degraded`: an hour stays short of Cloudflare's count after what the sync could do.
fn degraded_event(
    integration: &Integration,
    gateway: &str,
    hour: i64,
    cloudflare: i64,
    stored: i64,
    rereads: i64,
) -> OutgoingEvent {
    let why = if rereads > 0 {
        format!(
            "{} requests Cloudflare counted are not in LangGuard after {rereads} re-reads from \
             the Logs API: they were probably never logged (cf-aig-collect-log: false, a full \
             gateway, logs over 10 MB)",
            cloudflare - stored
        )
    } else {
        format!(
            "{} requests Cloudflare counted never arrived by push; check the gateway's \
             OpenTelemetry or Logpush setup",
            cloudflare - stored
        )
    };
    OutgoingEvent::new(
        WebhookEvent::CoverageDegraded,
        serde_json::json!({
            "integrationId": integration.id,
            "integrationName": integration.name,
            "gateway": gateway,
            "hour": langguard_clock::format_ms(hour),
            "cloudflare": cloudflare,
            "stored": stored,
            "rereads": rereads,
            "message": why,
        }),
        None,
    )
}

impl SyncEngine {
    /// Compares the look-back's hours with Cloudflare's counts, reads short hours of pulled
    /// gateways again, and saves the result. Never fails the sync for coverage's own sake:
    /// analytics that cannot be read make coverage unknown, with the reason saved.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn check_coverage(
        &self,
        client: &CloudflareClient,
        integration: &Integration,
        states: &[GatewayState],
        sync_started_ms: i64,
        counts: &mut SyncCounts,
        rejected: &mut u64,
        progress: Option<ProgressFn<'_>>,
    ) -> Result<Vec<String>, RunError> {
        let now = sync_started_ms;
        let days = integration
            .lookback_days
            .unwrap_or(MAX_CHECK_DAYS)
            .clamp(1, MAX_CHECK_DAYS);
        let from = {
            let from = now - days * 86_400_000;
            from - from.rem_euclid(HOUR_MS)
        };
        let counted = match client.hourly_request_counts(from, now).await {
            Ok(counted) => counted,
            Err(error) => {
                tracing::warn!(integration = %integration.name, %error, "coverage unknown");
                self.store
                    .save_coverage(
                        integration.id,
                        Vec::new(),
                        now,
                        Some(unknown_because(&error)),
                        Vec::new(),
                    )
                    .await?;
                return Ok(Vec::new());
            }
        };
        let mut cloudflare: BTreeMap<(String, i64), i64> = BTreeMap::new();
        for row in counted {
            *cloudflare.entry((row.gateway, row.hour_ms)).or_default() += row.count as i64;
        }
        let stored = self.stored_per_hour(integration.id, from, now).await?;
        let previous: HashMap<(String, i64), CoverageHour> = self
            .store
            .coverage_hours(integration.id, from, now)
            .await?
            .into_iter()
            .map(|h| ((h.gateway.clone(), h.hour_ms), h))
            .collect();

        let mut keys: Vec<(String, i64)> = cloudflare.keys().cloned().collect();
        keys.extend(stored.keys().cloned());
        keys.sort();
        keys.dedup();
        let mut hours = Vec::with_capacity(keys.len());
        let mut events = Vec::new();
        for (gateway, hour) in keys {
            let cf = cloudflare
                .get(&(gateway.clone(), hour))
                .copied()
                .unwrap_or(0);
            let mut held = stored.get(&(gateway.clone(), hour)).copied().unwrap_or(0);
            let before = previous.get(&(gateway.clone(), hour));
            let mut rereads = before.map_or(0, |h| h.rereads);
            let mut degraded_at = before.and_then(|h| h.degraded_at_ms);
            let settled = hour + HOUR_MS + SETTLE_MS <= now;
            if settled && is_short(cf, held) && degraded_at.is_none() {
                let pulled = states.iter().find(|s| {
                    s.gateway_id == gateway && s.counts(IngestSource::LogsApi, hour + HOUR_MS - 1)
                });
                if let (Some(state), true) = (pulled, rereads < MAX_REREADS) {
                    rereads += 1;
                    tracing::info!(
                        gateway,
                        hour = %langguard_clock::format_ms(hour),
                        cloudflare = cf,
                        stored = held,
                        "an hour holds fewer logs than Cloudflare counted; reading it again"
                    );
                    self.gateway_import(
                        client,
                        integration,
                        state,
                        now,
                        &mut *counts,
                        &mut *rejected,
                        progress,
                    )
                    .reread_hour(hour, rereads)
                    .await?;
                    held = self
                        .store
                        .count_gateway_interactions(
                            integration.id,
                            &gateway,
                            hour - 1,
                            hour + HOUR_MS - 1,
                        )
                        .await? as i64;
                }
                if is_short(cf, held) && (pulled.is_none() || rereads >= MAX_REREADS) {
                    degraded_at = Some(now);
                    events.push(degraded_event(
                        integration,
                        &gateway,
                        hour,
                        cf,
                        held,
                        rereads,
                    ));
                }
            }
            hours.push(CoverageHour {
                gateway,
                hour_ms: hour,
                cloudflare: cf,
                stored: held,
                rereads,
                checked_at_ms: now,
                degraded_at_ms: degraded_at,
            });
        }
        crate::telemetry::record_coverage(&integration.name, &hours, now);
        let notices = new_log_system_gateways(states, &hours, days);
        self.store
            .save_coverage(integration.id, hours, now, None, events)
            .await?;
        Ok(notices)
    }

    /// Interactions held per gateway and hour, from the rollups.
    async fn stored_per_hour(
        &self,
        integration_id: i64,
        from: i64,
        to: i64,
    ) -> Result<BTreeMap<(String, i64), i64>, RunError> {
        let series = self
            .store
            .metrics_series(
                &Scope {
                    from_ms: Some(from),
                    to_ms: Some(to),
                    integration_id: Some(integration_id),
                    ..Scope::default()
                },
                Bucket::Hour,
                Some(GroupBy::Gateway),
            )
            .await?;
        let mut stored = BTreeMap::new();
        for line in series {
            let gateway = line.group.unwrap_or_default();
            for point in line.points {
                stored.insert((gateway.clone(), point.t_ms), point.metrics.requests);
            }
        }
        Ok(stored)
    }
}
