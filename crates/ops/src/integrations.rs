//! The integration lifecycle: test a connection, add, change, delete with its data, Sync Now.
//! Each checks its input, seals the token before it is stored, and writes the audit entry.

use langguard_cloudflare::{CloudflareError, TokenKind};
use langguard_secrets::Binding;
use langguard_store::{
    BodyMode, BodySettings, Integration, IntegrationId, IntegrationPatch, NewIntegration, SealFor,
    SyncRun, SyncRunId, SyncTrigger,
};
use langguard_sync::{integration_token, test_connection, ConnectionCheck, SyncError};
use serde::Serialize;
use serde_json::json;
use tracing::instrument;

use crate::{defaults, Actor, OpsError, OpsResult, Services};

pub fn check_account_id(account_id: &str) -> OpsResult<String> {
    let account_id = account_id.trim();
    if account_id.is_empty()
        || account_id.len() > 64
        || !account_id.chars().all(|c| c.is_ascii_alphanumeric())
    {
        return Err(OpsError::invalid(
            "invalid_account_id",
            "account_id must be the Cloudflare Account ID: up to 64 letters and digits (dashboard → Account home → Account ID)",
        ));
    }
    Ok(account_id.to_owned())
}

pub fn check_name(name: &str) -> OpsResult<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(OpsError::invalid(
            "invalid_name",
            "name must be 1 to 100 characters",
        ));
    }
    Ok(name.to_owned())
}

pub fn check_token(token: &str) -> OpsResult<String> {
    let token = token.trim();
    if token.is_empty() || token.len() > 512 {
        return Err(OpsError::invalid(
            "invalid_api_token",
            "api_token must be a Cloudflare API token",
        ));
    }
    Ok(token.to_owned())
}

pub fn check_interval(minutes: i64) -> OpsResult<i64> {
    if !(1..=1440).contains(&minutes) {
        return Err(OpsError::invalid(
            "invalid_sync_interval",
            "sync_interval_minutes must be between 1 and 1440",
        ));
    }
    Ok(minutes)
}

/// The trailing window is read again every sync: past a day it would cost more calls than the
/// late logs it finds are worth (the hourly coverage check re-reads older hours that differ).
pub fn check_trailing_window(minutes: i64) -> OpsResult<i64> {
    if (1..=1_440).contains(&minutes) {
        Ok(minutes)
    } else {
        Err(OpsError::invalid(
            "invalid_body",
            "trailing_window_minutes must be between 1 and 1440",
        ))
    }
}

pub fn check_lookback(days: Option<i64>) -> OpsResult<Option<i64>> {
    if days.is_some_and(|d| !(1..=3650).contains(&d)) {
        return Err(OpsError::invalid(
            "invalid_lookback",
            "lookback_days must be between 1 and 3650, or null for all history",
        ));
    }
    Ok(days)
}

/// What a connection test found: the token works and these gateways exist, or why not.
pub type ConnectionTest = Result<ConnectionCheck, CloudflareError>;

/// Why a connection test failed, in the product's troubleshooting words.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ConnectionErrorView {
    /// `auth_failed`, `permission_denied`, `account_not_found`, `rate_limited`,
    /// `unreachable`, `upstream_error`, `invalid_response` or `invalid_request`.
    pub code: &'static str,
    pub message: String,
    /// What to do about it.
    pub hint: &'static str,
}

/// A connection test's answer: `{ok: true, token_kind, gateways}` or `{ok: false, error}`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ConnectionTestView {
    pub ok: bool,
    /// `user` or `account`: which kind of token it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub token_kind: Option<TokenKind>,
    /// The account's gateways.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gateways: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ConnectionErrorView>,
}

impl From<&ConnectionTest> for ConnectionTestView {
    fn from(test: &ConnectionTest) -> Self {
        match test {
            Ok(check) => Self {
                ok: true,
                token_kind: Some(check.token_kind),
                gateways: Some(check.gateways.clone()),
                error: None,
            },
            Err(e) => Self {
                ok: false,
                token_kind: None,
                gateways: None,
                error: Some(ConnectionErrorView {
                    code: e.kind(),
                    message: e.to_string(),
                    hint: e.hint(),
                }),
            },
        }
    }
}

/// Tests an account ID and token against Cloudflare without saving anything. A Cloudflare
/// refusal is an answer (`Ok(Err(..))`), not a failure of the operation.
#[instrument(skip_all, fields(account_id = %account_id))]
pub async fn test(ops: &Services, account_id: &str, api_token: &str) -> OpsResult<ConnectionTest> {
    let account_id = check_account_id(account_id)?;
    let token = check_token(api_token)?;
    Ok(test_connection(&ops.client_config, &account_id, &token).await)
}

/// Tests a saved integration's connection with its stored token.
#[instrument(skip_all, fields(integration_id = integration.id))]
pub async fn test_saved(ops: &Services, integration: &Integration) -> OpsResult<ConnectionTest> {
    let token =
        integration_token(&ops.sealer, integration).map_err(|e| OpsError::Internal(e.into()))?;
    Ok(test_connection(&ops.client_config, &integration.account_id, &token).await)
}

/// A new Cloudflare integration, as the API, the web UI and the CLI take it.
/// Not `Debug`: it holds the token.
#[derive(Clone)]
pub struct IntegrationInput {
    pub name: String,
    pub account_id: String,
    pub api_token: String,
    pub enabled: bool,
    pub sync_interval_minutes: i64,
    /// Days of history the first sync imports; `None` for all of it.
    pub lookback_days: Option<i64>,
    /// How far behind its cursor each sync looks again for logs that became visible late.
    pub trailing_window_minutes: i64,
}

impl IntegrationInput {
    /// An enabled integration with the default interval and look-back.
    pub fn new(name: &str, account_id: &str, api_token: &str) -> Self {
        Self {
            name: name.to_owned(),
            account_id: account_id.to_owned(),
            api_token: api_token.to_owned(),
            enabled: true,
            sync_interval_minutes: defaults::SYNC_INTERVAL_MINUTES,
            lookback_days: Some(defaults::LOOKBACK_DAYS),
            trailing_window_minutes: langguard_store::DEFAULT_TRAILING_WINDOW_MINUTES,
        }
    }
}

/// Checks, seals the token, saves and audits a new integration.
#[instrument(skip_all, fields(name = %input.name))]
pub async fn add(
    ops: &Services,
    actor: Actor<'_>,
    input: IntegrationInput,
) -> OpsResult<Integration> {
    let integration = ops
        .store
        .create_integration(NewIntegration {
            name: check_name(&input.name)?,
            account_id: check_account_id(&input.account_id)?,
            api_token: SealFor::new(
                ops.sealer
                    .sealing(check_token(&input.api_token)?, Binding::IntegrationToken),
            ),
            enabled: input.enabled,
            sync_interval_minutes: check_interval(input.sync_interval_minutes)?,
            lookback_days: check_lookback(input.lookback_days)?,
            trailing_window_minutes: check_trailing_window(input.trailing_window_minutes)?,
        })
        .await?;
    ops.audit(
        actor,
        "integration.created",
        Some(format!("integration:{}", integration.id)),
        json!({"name": integration.name, "account_id": integration.account_id}),
        None,
    )
    .await;
    Ok(integration)
}

/// A change to an integration; `None` leaves a field as it is.
/// Not `Debug`: it may hold a token.
#[derive(Clone, Default)]
pub struct IntegrationChange {
    pub name: Option<String>,
    pub account_id: Option<String>,
    pub api_token: Option<String>,
    pub enabled: Option<bool>,
    pub sync_interval_minutes: Option<i64>,
    /// `Some(None)`: import all history on the first sync.
    pub lookback_days: Option<Option<i64>>,
    pub trailing_window_minutes: Option<i64>,
    pub bodies: Option<BodyMode>,
    pub bodies_sample_percent: Option<i64>,
    pub bodies_retention_days: Option<i64>,
}

impl IntegrationChange {
    /// The names of the fields it sets (what the audit log records — never their values: one
    /// may be the token).
    fn fields(&self) -> Vec<&'static str> {
        [
            ("name", self.name.is_some()),
            ("account_id", self.account_id.is_some()),
            ("api_token", self.api_token.is_some()),
            ("enabled", self.enabled.is_some()),
            (
                "sync_interval_minutes",
                self.sync_interval_minutes.is_some(),
            ),
            ("lookback_days", self.lookback_days.is_some()),
            (
                "trailing_window_minutes",
                self.trailing_window_minutes.is_some(),
            ),
            ("bodies", self.bodies.is_some()),
            (
                "bodies_sample_percent",
                self.bodies_sample_percent.is_some(),
            ),
            (
                "bodies_retention_days",
                self.bodies_retention_days.is_some(),
            ),
        ]
        .into_iter()
        .filter_map(|(field, set)| set.then_some(field))
        .collect()
    }
}

/// The integration's body settings with the change applied, checked.
fn body_settings(
    current: BodySettings,
    change: &IntegrationChange,
) -> OpsResult<Option<BodySettings>> {
    if change.bodies.is_none()
        && change.bodies_sample_percent.is_none()
        && change.bodies_retention_days.is_none()
    {
        return Ok(None);
    }
    let settings = BodySettings {
        mode: change.bodies.unwrap_or(current.mode),
        sample_percent: change
            .bodies_sample_percent
            .unwrap_or(current.sample_percent),
        retention_days: change
            .bodies_retention_days
            .unwrap_or(current.retention_days),
    };
    if !(1..=100).contains(&settings.sample_percent) {
        return Err(OpsError::invalid(
            "invalid_body",
            "bodies_sample_percent must be between 1 and 100",
        ));
    }
    if !(1..=3_650).contains(&settings.retention_days) {
        return Err(OpsError::invalid(
            "invalid_body",
            "bodies_retention_days must be between 1 and 3650",
        ));
    }
    Ok(Some(settings))
}

/// Checks a change, seals a new token, saves it and audits which fields changed.
#[instrument(skip_all, fields(integration_id = id))]
pub async fn change(
    ops: &Services,
    actor: Actor<'_>,
    id: IntegrationId,
    change: IntegrationChange,
) -> OpsResult<Integration> {
    let current = ops.store.get_integration(id).await?;
    let patch = IntegrationPatch {
        bodies: body_settings(current.bodies, &change)?,
        name: change.name.as_deref().map(check_name).transpose()?,
        account_id: change
            .account_id
            .as_deref()
            .map(check_account_id)
            .transpose()?,
        sealed_api_token: change
            .api_token
            .as_deref()
            .map(|t| check_token(t).map(|t| ops.sealer.seal(&t, Binding::IntegrationToken(id))))
            .transpose()?,
        enabled: change.enabled,
        sync_interval_minutes: change
            .sync_interval_minutes
            .map(check_interval)
            .transpose()?,
        lookback_days: change.lookback_days.map(check_lookback).transpose()?,
        trailing_window_minutes: change
            .trailing_window_minutes
            .map(check_trailing_window)
            .transpose()?,
    };
    let integration = ops.store.update_integration(id, patch).await?;
    ops.audit(
        actor,
        "integration.updated",
        Some(format!("integration:{id}")),
        json!({"changed": change.fields()}),
        None,
    )
    .await;
    Ok(integration)
}

/// Deletes an integration with everything imported through it, unless a sync of it is running.
#[instrument(skip_all, fields(integration_id = id))]
pub async fn remove(ops: &Services, actor: Actor<'_>, id: IntegrationId) -> OpsResult<Integration> {
    // A run that is finishing gets a moment; one in full swing is not cut off.
    if !ops
        .engine
        .wait_for(id, std::time::Duration::from_secs(5))
        .await
    {
        return Err(OpsError::Conflict(
            "a sync of this integration is running; delete it when the sync has finished".into(),
        ));
    }
    let removed = ops.store.get_integration(id).await?;
    ops.store.delete_integration(id).await?;
    ops.audit(
        actor,
        "integration.deleted",
        Some(format!("integration:{id}")),
        json!({"name": removed.name, "interactions_deleted": removed.interactions_synced}),
        None,
    )
    .await;
    Ok(removed)
}

/// What Sync Now answers.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SyncStartView {
    /// The run started, or the one already running (null when it can't be told).
    pub run_id: Option<SyncRunId>,
    pub status: &'static str,
    /// True when a sync was already running, so none was started.
    pub already_running: bool,
}

impl From<&SyncStart> for SyncStartView {
    fn from(start: &SyncStart) -> Self {
        match start {
            SyncStart::Started(run) => Self {
                run_id: Some(run.id),
                status: run.status.as_str(),
                already_running: false,
            },
            SyncStart::AlreadyRunning(run_id) => Self {
                run_id: *run_id,
                status: "running",
                already_running: true,
            },
        }
    }
}

/// What Sync Now did.
#[derive(Debug)]
pub enum SyncStart {
    Started(SyncRun),
    /// Pressing it again while a sync runs shows that sync instead of starting another.
    AlreadyRunning(Option<SyncRunId>),
}

/// Starts a sync of the integration now, in the background.
#[instrument(skip_all, fields(integration_id = id))]
pub async fn start_sync(
    ops: &Services,
    actor: Actor<'_>,
    id: IntegrationId,
) -> OpsResult<SyncStart> {
    match ops.engine.start(id, SyncTrigger::Manual).await {
        Ok(run) => {
            ops.audit(
                actor,
                "integration.synced",
                Some(format!("integration:{id}")),
                json!({"run_id": run.id}),
                None,
            )
            .await;
            Ok(SyncStart::Started(run))
        }
        Err(SyncError::AlreadyRunning { run_id }) => Ok(SyncStart::AlreadyRunning(run_id)),
        Err(e) => Err(e.into()),
    }
}
