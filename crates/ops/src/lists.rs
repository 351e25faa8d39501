//! The API's list and page documents: `{items: […]}` and its paged forms, one named type each
//! so the OpenAPI document describes exactly what comes back.

use serde::Serialize;

use crate::alerts::{AlertRuleView, SilenceView};
use crate::audit::AuditEntryView;
use crate::budgets::BudgetView;
use crate::keys::ApiKeyView;
use crate::policies::PolicyVersionView;
use crate::prices::PriceView;
use crate::saved_views::SavedViewView;
use crate::views::{IntegrationView, PolicyView, SyncRunView, TraceItem, UserView, ViolationView};
use crate::webhooks::{DeliveryView, WebhookView};

macro_rules! list_of {
    ($(#[$doc:meta])* $name:ident, $item:ty) => {
        $(#[$doc])*
        #[derive(Debug, Serialize, utoipa::ToSchema)]
        pub struct $name {
            pub items: Vec<$item>,
        }

        impl From<Vec<$item>> for $name {
            fn from(items: Vec<$item>) -> Self {
                Self { items }
            }
        }
    };
}

list_of!(
    /// Integrations, in name order.
    IntegrationList,
    IntegrationView
);
list_of!(
    /// Sync runs, newest first.
    SyncRunList,
    SyncRunView
);
list_of!(PolicyList, PolicyView);
list_of!(
    /// A policy's versions, newest first.
    PolicyVersionList,
    PolicyVersionView
);
list_of!(UserList, UserView);
list_of!(
    /// Alert rules, by id.
    AlertRuleList,
    AlertRuleView
);
list_of!(
    /// Budgets with where they stand now, by id.
    BudgetList,
    BudgetView
);
list_of!(
    /// Saved views: the caller's own and those shared, by name.
    SavedViewList,
    SavedViewView
);
list_of!(
    /// Silences, newest first.
    SilenceList,
    SilenceView
);
list_of!(
    /// API keys, never their secrets.
    ApiKeyList,
    ApiKeyView
);
list_of!(
    /// Webhooks, never their secrets.
    WebhookList,
    WebhookView
);
list_of!(
    /// Delivery attempts, newest first (the last 200).
    DeliveryList,
    DeliveryView
);
list_of!(
    /// The violations a change touched.
    ViolationList,
    ViolationView
);

/// A page of the Trace Explorer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TracePage {
    pub items: Vec<TraceItem>,
    /// Pass as `cursor` for the next page; null on the last.
    pub next_cursor: Option<String>,
}

/// A page of violations.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ViolationPage {
    pub items: Vec<ViolationView>,
    /// Matches of the query without pagination.
    pub total: u64,
    /// Pass as `cursor` for the next page; null on the last.
    pub next_cursor: Option<String>,
}

/// The admin's prices and the bundled table they override.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PriceList {
    pub items: Vec<PriceView>,
    /// The bundled table's name and version.
    pub table: &'static str,
}

/// A page of the audit log, newest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AuditPage {
    pub items: Vec<AuditEntryView>,
    /// Pass as `before` for the next page; null on the last.
    pub next_before: Option<i64>,
}
