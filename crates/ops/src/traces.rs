//! Traces: one interaction with everything known about it (its violations, its bodies).
//! Listing and export go straight to the store with a validated [`TraceFilter`].

use langguard_store::{Bodies, Interaction, TraceFilter, Violation, ViolationQuery};
use serde::Serialize;
use tracing::instrument;

use crate::views::{TraceItem, ViolationView};
use crate::{defaults, OpsError, OpsResult, Services};

/// A validated filter, or the API's `invalid_*` error saying what is wrong with it.
pub fn checked(filter: TraceFilter) -> OpsResult<TraceFilter> {
    filter
        .validate()
        .map_err(|e| OpsError::invalid(e.code, e.message))?;
    Ok(filter)
}

/// An interaction, its violations (newest first, up to [`defaults::TRACE_VIOLATIONS`]) and its
/// request and response bodies when the integration fetches them.
#[derive(Debug)]
pub struct TraceDetail {
    pub interaction: Interaction,
    pub violations: Vec<Violation>,
    pub bodies: Bodies,
}

#[instrument(skip_all, fields(trace_id = id))]
pub async fn detail(ops: &Services, id: i64) -> OpsResult<TraceDetail> {
    let interaction = ops.store.get_interaction(id).await?;
    let of_trace = ViolationQuery {
        interaction_id: Some(id),
        limit: defaults::TRACE_VIOLATIONS,
        ..ViolationQuery::default()
    };
    let (mut bodies, violations) =
        tokio::try_join!(ops.store.bodies(vec![id]), ops.store.violations(&of_trace))?;
    Ok(TraceDetail {
        interaction,
        violations: violations.items,
        bodies: bodies.remove(&id).unwrap_or_default(),
    })
}

/// A trace as the API returns it: the listing's fields, its violations and bodies.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TraceDetailView {
    #[serde(flatten)]
    pub trace: TraceItem,
    pub violations: Vec<ViolationView>,
    /// The request body as stored (text), when the integration fetches bodies.
    pub input: Option<String>,
    /// The response body as stored (text).
    pub output: Option<String>,
}

impl From<&TraceDetail> for TraceDetailView {
    fn from(d: &TraceDetail) -> Self {
        Self {
            trace: TraceItem::from(&d.interaction),
            violations: d.violations.iter().map(ViolationView::from).collect(),
            input: d.bodies.request.clone(),
            output: d.bodies.response.clone(),
        }
    }
}
