//! Import coverage, as the API, the integration page and Monitoring show it: per gateway and
//! hour, the requests Cloudflare's analytics counted against the interactions LangGuard holds
//! (from any source), with what the sync did about hours that were short.

use langguard_clock::format_ms;
use langguard_store::{CoverageHour, Integration, IntegrationId};
use langguard_sync::coverage::{is_short, HOUR_MS, MAX_REREADS, SETTLE_MS};
use serde::Serialize;

use crate::{OpsResult, Services};

/// How Cloudflare's counts are read, in the words the UI shows next to them.
pub const HOW_COUNTS_ARE_READ: &str = "Cloudflare's analytics lag minutes behind and sample \
busy hours: an hour is judged 30 minutes after it ends, exactly up to 1,000 requests and \
within 2 % above.";

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CoverageView {
    pub integration_id: IntegrationId,
    /// `ok` (compared), `unknown` (Cloudflare's counts could not be read: see `reason`) or
    /// `not_checked` (no sync has compared yet).
    pub status: &'static str,
    pub reason: Option<String>,
    pub checked_at: Option<String>,
    pub from: String,
    pub to: String,
    /// Held over counted across the settled hours of the range (each hour's holding capped at
    /// its count); `null` when Cloudflare counted nothing there.
    pub ratio: Option<f64>,
    pub settle_minutes: i64,
    pub note: &'static str,
    pub gateways: Vec<GatewayCoverageView>,
    pub hours: Vec<CoverageHourView>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct GatewayCoverageView {
    pub gateway: String,
    pub cloudflare: i64,
    pub stored: i64,
    pub ratio: Option<f64>,
    /// Settled hours still short after their re-reads.
    pub degraded_hours: i64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CoverageHourView {
    pub gateway: String,
    pub hour: String,
    pub cloudflare: i64,
    pub stored: i64,
    pub ratio: Option<f64>,
    /// `settling` (too recent to judge), `complete`, `short` (being read again) or `degraded`
    /// (still short after its re-reads).
    pub state: &'static str,
    pub rereads: i64,
}

fn ratio(held: i64, counted: i64) -> Option<f64> {
    (counted > 0).then(|| held.min(counted) as f64 / counted as f64)
}

fn state(hour: &CoverageHour) -> &'static str {
    if hour.hour_ms + HOUR_MS + SETTLE_MS > hour.checked_at_ms {
        "settling"
    } else if hour.degraded_at_ms.is_some() {
        "degraded"
    } else if is_short(hour.cloudflare, hour.stored) {
        "short"
    } else {
        "complete"
    }
}

/// An integration's coverage in one figure, as Monitoring's integration health shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CoverageSummary {
    /// As [`CoverageView::status`].
    pub status: &'static str,
    pub ratio: Option<f64>,
    /// `99.8 %`, `unknown`, `not checked` or `—` (nothing counted in the range).
    pub label: String,
}

impl From<&CoverageView> for CoverageSummary {
    fn from(view: &CoverageView) -> Self {
        let label = match (view.status, view.ratio) {
            ("unknown", _) => "unknown".to_owned(),
            ("not_checked", _) => "not checked".to_owned(),
            (_, Some(ratio)) => format!("{:.1} %", ratio * 100.0),
            (_, None) => "—".to_owned(),
        };
        Self {
            status: view.status,
            ratio: view.ratio,
            label,
        }
    }
}

/// The coverage summary of each of `integrations` over `[from_ms, to_ms)`, in their order.
pub async fn summaries(
    ops: &Services,
    integrations: &[Integration],
    from_ms: i64,
    to_ms: i64,
) -> OpsResult<Vec<CoverageSummary>> {
    let mut summaries = Vec::with_capacity(integrations.len());
    for integration in integrations {
        let view = view_of(ops, integration, from_ms, to_ms).await?;
        summaries.push(CoverageSummary::from(&view));
    }
    Ok(summaries)
}

/// The integration's coverage over `[from_ms, to_ms)`.
pub async fn view(
    ops: &Services,
    id: IntegrationId,
    from_ms: i64,
    to_ms: i64,
) -> OpsResult<CoverageView> {
    let integration = ops.store.get_integration(id).await?;
    view_of(ops, &integration, from_ms, to_ms).await
}

async fn view_of(
    ops: &Services,
    integration: &Integration,
    from_ms: i64,
    to_ms: i64,
) -> OpsResult<CoverageView> {
    let id = integration.id;
    let from_hour = from_ms - from_ms.rem_euclid(HOUR_MS);
    let rows = ops.store.coverage_hours(id, from_hour, to_ms).await?;
    let mut gateways: std::collections::BTreeMap<String, GatewayCoverageView> = Default::default();
    let (mut held, mut counted) = (0, 0);
    let hours =
        rows.iter()
            .map(|hour| {
                let state = state(hour);
                if state != "settling" {
                    let line = gateways.entry(hour.gateway.clone()).or_insert_with(|| {
                        GatewayCoverageView {
                            gateway: hour.gateway.clone(),
                            cloudflare: 0,
                            stored: 0,
                            ratio: None,
                            degraded_hours: 0,
                        }
                    });
                    line.cloudflare += hour.cloudflare;
                    line.stored += hour.stored.min(hour.cloudflare);
                    line.degraded_hours += i64::from(state == "degraded");
                    held += hour.stored.min(hour.cloudflare);
                    counted += hour.cloudflare;
                }
                CoverageHourView {
                    gateway: hour.gateway.clone(),
                    hour: format_ms(hour.hour_ms),
                    cloudflare: hour.cloudflare,
                    stored: hour.stored,
                    ratio: ratio(hour.stored, hour.cloudflare),
                    state,
                    rereads: hour.rereads.min(MAX_REREADS),
                }
            })
            .collect();
    let gateways = gateways
        .into_values()
        .map(|mut line| {
            line.ratio = ratio(line.stored, line.cloudflare);
            line
        })
        .collect();
    let status = match (
        &integration.coverage_error,
        integration.coverage_checked_at_ms,
    ) {
        (Some(_), _) => "unknown",
        (None, Some(_)) => "ok",
        (None, None) => "not_checked",
    };
    Ok(CoverageView {
        integration_id: id,
        status,
        reason: integration.coverage_error.clone(),
        checked_at: integration.coverage_checked_at_ms.map(format_ms),
        from: format_ms(from_ms),
        to: format_ms(to_ms),
        ratio: ratio(held, counted),
        settle_minutes: SETTLE_MS / 60_000,
        note: HOW_COUNTS_ARE_READ,
        gateways,
        hours,
    })
}
