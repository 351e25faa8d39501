//! The audit log as people read it.

use langguard_clock::format_ms;
use langguard_store::AuditEntry;
use serde::Serialize;

use crate::lists::AuditPage;
use crate::{OpsResult, Services};

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AuditEntryView {
    pub id: i64,
    pub timestamp: String,
    pub user_id: Option<i64>,
    /// The user's email at the time.
    pub user: Option<String>,
    /// `area.verb`, e.g. `integration.created`.
    pub action: String,
    /// `kind:id`, e.g. `integration:3`.
    pub resource: Option<String>,
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
    pub address: Option<String>,
}

impl From<&AuditEntry> for AuditEntryView {
    fn from(e: &AuditEntry) -> Self {
        Self {
            id: e.id,
            timestamp: format_ms(e.at_ms),
            user_id: e.user_id,
            user: e.user_email.clone(),
            action: e.action.clone(),
            resource: e.resource.clone(),
            details: e.details.clone(),
            address: e.address.clone(),
        }
    }
}

/// Up to `limit` entries (1 to 1,000; default 100) older than entry `before`.
pub async fn page(ops: &Services, limit: Option<u32>, before: Option<i64>) -> OpsResult<AuditPage> {
    let limit = limit.unwrap_or(100).clamp(1, 1_000);
    let entries = ops.store.list_audit(limit, before).await?;
    let next_before = (entries.len() == limit as usize)
        .then(|| entries.last().map(|e| e.id))
        .flatten();
    Ok(AuditPage {
        items: entries.iter().map(AuditEntryView::from).collect(),
        next_before,
    })
}
