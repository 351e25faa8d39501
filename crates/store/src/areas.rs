//! The store's operations by area. Each area is a trait; [`Store`] is every area at once,
//! implemented for any type that implements them all, so a backend is laid out by the same
//! areas and a caller holding `Arc<dyn Store>` reaches every method.

use async_trait::async_trait;

use crate::*;

/// Object-store buckets Logpush files are imported from, and which files were.
#[async_trait]
pub trait BucketStore: Send + Sync {
    async fn create_bucket(&self, new: NewPushBucket) -> StoreResult<PushBucket>;
    /// Every bucket, or those of one integration.
    async fn list_buckets(
        &self,
        integration: Option<IntegrationId>,
    ) -> StoreResult<Vec<PushBucket>>;
    async fn get_bucket(&self, id: BucketId) -> StoreResult<PushBucket>;
    /// Deletes the bucket and its list of imported files (not what was imported).
    async fn delete_bucket(&self, id: BucketId) -> StoreResult<()>;
    /// Keys of the bucket's objects already imported or given up on.
    async fn imported_object_keys(&self, id: BucketId) -> StoreResult<Vec<String>>;
    /// The most recent imported objects, newest first.
    async fn recent_imported_objects(
        &self,
        id: BucketId,
        limit: u32,
    ) -> StoreResult<Vec<ImportedObject>>;
    /// Records that an object's records are all stored (or that it was given up on, `error`);
    /// `false` when it was already recorded (another instance imported it too: its records
    /// were deduplicated, and it is counted once).
    async fn record_imported_object(
        &self,
        id: BucketId,
        object: ImportedObject,
    ) -> StoreResult<bool>;
    /// When the bucket was listed and what went wrong then (`None`: nothing).
    async fn set_bucket_listed(
        &self,
        id: BucketId,
        at_ms: i64,
        error: Option<String>,
    ) -> StoreResult<()>;
}

/// Integrations, their gateways and cursors, and sync runs (created by `claim_sync`, never without a lease).
#[async_trait]
pub trait IntegrationStore: Send + Sync {
    async fn create_integration(&self, new: NewIntegration) -> StoreResult<Integration>;
    async fn list_integrations(&self) -> StoreResult<Vec<Integration>>;
    async fn get_integration(&self, id: IntegrationId) -> StoreResult<Integration>;
    async fn find_integration_by_name(&self, name: &str) -> StoreResult<Option<Integration>>;
    /// Deletes the integration with everything imported through it (interactions, rollups,
    /// gateways, cursors, sync runs).
    async fn delete_integration(&self, id: IntegrationId) -> StoreResult<()>;
    async fn update_integration(
        &self,
        id: IntegrationId,
        patch: IntegrationPatch,
    ) -> StoreResult<Integration>;
    /// Replaces the sealed tokens of these integrations and the sealed secrets of these
    /// webhooks in one transaction — each only if it still holds the value it was read with
    /// (`(id, old, new)`), so a token changed meanwhile, by another instance say, is never
    /// overwritten with the old one. All or none: if one changed or is gone, nothing is
    /// written and the answer is `Invalid` (key rotation and re-sealing run again).
    async fn replace_sealed_tokens(&self, swaps: SealedSwaps) -> StoreResult<()>;
    /// Gives the integration its Logpush key pair unless it has one; returns the integration
    /// with the pair it has (so two callers racing keep one pair).
    async fn set_push_key(
        &self,
        id: IntegrationId,
        public_pem: &str,
        private_key: SealFor,
    ) -> StoreResult<Integration>;
    async fn set_integration_status(
        &self,
        id: IntegrationId,
        status: IntegrationStatus,
        message: Option<&str>,
    ) -> StoreResult<()>;
    /// Records gateways seen on the account; known ones keep their cursor.
    async fn upsert_gateways(&self, id: IntegrationId, gateway_ids: &[String]) -> StoreResult<()>;
    async fn list_gateways(&self, id: IntegrationId) -> StoreResult<Vec<GatewayState>>;
    /// Saves a coverage check: the hours' rows (replacing earlier ones of the same hours), on
    /// the integration when it ran and why it could not (`error`), and deliveries of `events`
    /// (`coverage.degraded`) — in one transaction, so an hour is announced once.
    async fn save_coverage(
        &self,
        id: IntegrationId,
        hours: Vec<CoverageHour>,
        checked_at_ms: i64,
        error: Option<String>,
        events: Vec<OutgoingEvent>,
    ) -> StoreResult<()>;
    /// The integration's coverage rows with `from_ms <= hour < to_ms`, by hour then gateway.
    async fn coverage_hours(
        &self,
        id: IntegrationId,
        from_ms: i64,
        to_ms: i64,
    ) -> StoreResult<Vec<CoverageHour>>;
    /// Widens the gateway's trailing window to `window_ms` (never narrows it): logs were seen
    /// that late.
    async fn widen_late_window(
        &self,
        id: IntegrationId,
        gateway: &str,
        window_ms: i64,
    ) -> StoreResult<()>;
    /// Saves progress of a running run, so a crash still leaves honest figures behind.
    async fn update_sync_run_counts(&self, run: SyncRunId, counts: &SyncCounts) -> StoreResult<()>;
    async fn finish_sync_run(&self, run: SyncRunId, outcome: &SyncRunOutcome) -> StoreResult<()>;
    async fn get_sync_run(&self, run: SyncRunId) -> StoreResult<SyncRun>;
    async fn list_sync_runs(&self, id: IntegrationId, limit: u32) -> StoreResult<Vec<SyncRun>>;
    /// The newest runs of every integration, newest first.
    async fn recent_sync_runs(&self, limit: u32) -> StoreResult<Vec<SyncRun>>;
    /// Marks runs left `running` or `queued` that no live lease covers (their instance stopped
    /// or died) as failed.
    async fn fail_abandoned_sync_runs(&self, reason: &str) -> StoreResult<u64>;
    /// Claims the sync of an integration for `holder`: takes its lease ([`sync_lease_name`])
    /// for `ttl_ms`, fails a run left behind by a holder whose lease expired, and creates the
    /// new run — in one transaction, so of several instances pressing Sync Now at once exactly
    /// one gets it.
    async fn claim_sync(
        &self,
        id: IntegrationId,
        trigger: SyncTrigger,
        holder: &str,
        ttl_ms: i64,
    ) -> StoreResult<SyncClaim>;
}

/// What comes in and what goes: imported logs with their rollups and cursor, fetched bodies, retention.
#[async_trait]
pub trait IngestStore: Send + Sync {
    /// Stores a batch of one gateway's logs, skipping ones already stored, adds the new rows to
    /// the per-minute rollups and advances the gateway's cursor to `cursor_ms` (never backwards) —
    /// all in one transaction, so a crash leaves either all of it or none of it.
    async fn ingest_batch(
        &self,
        id: IntegrationId,
        gateway: &str,
        batch: Vec<NewInteraction>,
        cursor_ms: Option<i64>,
    ) -> StoreResult<IngestOutcome>;
    /// Stores pushed logs of one gateway from `source`, each with the bodies it carried: rows,
    /// bodies and rollups in one transaction, skipping ones already stored. A gateway not seen
    /// before is created with `source` as its counted source; one still counting the Logs API
    /// hands over to `source` (see [`GatewayState::switched_to`]). Logs the gateway counts from
    /// another source at their time are left out (`other_source`). No cursor: push has none.
    async fn ingest_pushed(
        &self,
        id: IntegrationId,
        gateway: &str,
        source: IngestSource,
        batch: Vec<PushedInteraction>,
    ) -> StoreResult<IngestOutcome>;
    /// Replaces the details of logs already stored where they differ (Cloudflare sets feedback
    /// and score after the call); logs not stored are left alone. Returns how many changed.
    async fn refresh_details(
        &self,
        id: IntegrationId,
        gateway: &str,
        updates: Vec<(String, LogDetails)>,
    ) -> StoreResult<u64>;
    /// Adds one push's outcome to its integration's push history (per minute and source), and
    /// forgets minutes older than [`PUSH_HISTORY_DAYS`].
    async fn record_push(&self, id: IntegrationId, push: PushMinute) -> StoreResult<()>;
    /// The integration's push history, newest minute first.
    async fn push_history(&self, id: IntegrationId, limit: u32) -> StoreResult<Vec<PushMinute>>;
    /// Makes `source` the gateway's counted source from now on (creating the gateway if
    /// new), with the `handover` an admin's choice implies; returns the gateway as it now is.
    async fn set_gateway_source(
        &self,
        id: IntegrationId,
        gateway: &str,
        source: IngestSource,
        handover: Handover,
    ) -> StoreResult<GatewayState>;
    /// How many logs of a gateway are stored with `after_ms < created_at <= until_ms`.
    async fn count_gateway_interactions(
        &self,
        id: IntegrationId,
        gateway: &str,
        after_ms: i64,
        until_ms: i64,
    ) -> StoreResult<u64>;
    /// Stores fetched bodies (`(interaction, integration, bodies)`); a body already stored is
    /// replaced.
    async fn store_bodies(&self, bodies: Vec<(i64, IntegrationId, Bodies)>) -> StoreResult<()>;
    /// Deletes bodies older than their integration's retention; returns how many went.
    async fn prune_bodies(&self, now_ms: i64) -> StoreResult<u64>;
    /// Data retention: deletes up to `batch` of the oldest interactions created before
    /// `before_ms`, with their violations and bodies, in one transaction; returns how many went.
    /// Rollups are kept, so dashboards still cover the time the rows did.
    async fn delete_interactions_before(&self, before_ms: i64, batch: u32) -> StoreResult<u64>;
}

/// Reading interactions: one, a page, an export, the policy worker's feed, their bodies.
#[async_trait]
pub trait TraceStore: Send + Sync {
    async fn get_interaction(&self, id: i64) -> StoreResult<Interaction>;
    async fn traces(&self, query: &TraceQuery) -> StoreResult<TracePage>;
    /// Every interaction the filter covers, in the sort's order, as batches of up to
    /// [`EXPORT_BATCH`] rows. The batches are produced as the receiver takes them (a bounded
    /// channel), so an export of any size holds a few batches in memory; dropping the receiver
    /// stops the query. A failure arrives as the last item.
    fn export_traces(
        &self,
        filter: TraceFilter,
        sort: TraceSort,
        order: SortOrder,
    ) -> tokio::sync::mpsc::Receiver<StoreResult<Vec<Interaction>>>;
    async fn count_interactions(&self, scope: &Scope) -> StoreResult<u64>;
    /// Stored request/response bodies of these interactions (those fetched).
    async fn bodies(
        &self,
        interaction_ids: Vec<i64>,
    ) -> StoreResult<std::collections::HashMap<i64, Bodies>>;
    /// Stored interactions with `id > after_id`, by id, at most `limit` (the policy worker's feed).
    async fn interactions_after(&self, after_id: i64, limit: u32) -> StoreResult<Vec<Interaction>>;
}

/// Figures from the per-minute rollups, per-minute spend, and the admin's model prices.
#[async_trait]
pub trait MetricsStore: Send + Sync {
    /// Figures over the scope, from the per-minute rollups (never from raw rows).
    async fn metrics(&self, scope: &Scope) -> StoreResult<Metrics>;
    async fn metrics_by(&self, scope: &Scope, group_by: GroupBy) -> StoreResult<Vec<GroupMetrics>>;
    /// Figures per time bucket, optionally one series per group; buckets without traffic are
    /// left out.
    async fn metrics_series(
        &self,
        scope: &Scope,
        bucket: Bucket,
        group_by: Option<GroupBy>,
    ) -> StoreResult<Vec<Series>>;
    /// Per-minute spend of one integration with `from_ms <= minute < to_ms`, by minute.
    async fn minute_spend(
        &self,
        integration_id: IntegrationId,
        from_ms: i64,
        to_ms: i64,
    ) -> StoreResult<Vec<MinuteSpend>>;
    async fn list_model_prices(&self) -> StoreResult<Vec<ModelPrice>>;
    /// Adds or replaces the price of `model`.
    async fn set_model_price(
        &self,
        model: &str,
        input_per_1k: f64,
        output_per_1k: f64,
    ) -> StoreResult<ModelPrice>;
    async fn delete_model_price(&self, model: &str) -> StoreResult<()>;
    /// The folded rollup totals per `(group, bucket start)` (the group `""` when not grouped):
    /// what backtests slide their windows over, merging latency sketches exactly.
    async fn rollup_cells(
        &self,
        scope: &Scope,
        group_by: Option<GroupBy>,
        bucket: Bucket,
    ) -> StoreResult<crate::fold::Cells>;
}

/// Policies with their versions, the policy worker's progress, and violations.
#[async_trait]
pub trait GovernanceStore: Send + Sync {
    async fn create_policy(&self, new: NewPolicy) -> StoreResult<Policy>;
    async fn list_policies(&self) -> StoreResult<Vec<Policy>>;
    async fn get_policy(&self, id: PolicyId) -> StoreResult<Policy>;
    /// Disables a policy that keeps crossing its limits, records why, and queues `event` to the
    /// webhooks subscribed to it, in one transaction. `None` when it was already disabled, is
    /// no longer at `version` (someone saved a fix meanwhile) or is gone: nothing changed and
    /// nothing was queued.
    async fn quarantine_policy(
        &self,
        id: PolicyId,
        version: i64,
        reason: &str,
        event: OutgoingEvent,
    ) -> StoreResult<Option<Policy>>;
    /// A change to the Rego text or config is a new version (kept in the history).
    async fn update_policy(&self, id: PolicyId, patch: PolicyPatch) -> StoreResult<Policy>;
    /// Deletes the policy with its versions and violations.
    async fn delete_policy(&self, id: PolicyId) -> StoreResult<()>;
    async fn policy_versions(&self, id: PolicyId) -> StoreResult<Vec<PolicyVersion>>;
    /// Creates the built-ins never installed before (by `builtin_id`); one deleted later is not
    /// brought back. Returns those created.
    async fn install_builtins(&self, builtins: Vec<NewPolicy>) -> StoreResult<Vec<Policy>>;
    /// Stores violations (a finding already stored is skipped) and, when given, moves the
    /// policy worker's cursor forward to `cursor` — in one transaction. Returns the new violations' ids.
    async fn record_evaluations(
        &self,
        violations: Vec<NewViolation>,
        cursor: Option<i64>,
    ) -> StoreResult<Vec<i64>>;
    async fn policy_progress(&self) -> StoreResult<PolicyProgress>;
    async fn violations(&self, query: &ViolationQuery) -> StoreResult<ViolationPage>;
    async fn get_violation(&self, id: i64) -> StoreResult<Violation>;
    /// Sets the status (and notes, when given) of these violations; all or none.
    async fn update_violations(
        &self,
        ids: Vec<i64>,
        status: ViolationStatus,
        notes: Option<String>,
    ) -> StoreResult<Vec<Violation>>;
    /// Violations with `id > after_id`, by id (webhook event detection).
    async fn violations_after(&self, after_id: i64, limit: u32) -> StoreResult<Vec<Violation>>;
    /// Violations of interactions in the scope's time range, by severity and status.
    async fn violation_counts(
        &self,
        scope: &Scope,
    ) -> StoreResult<Vec<(Severity, ViolationStatus, u64)>>;
}

/// People and credentials: users, sessions, sign-in attempts, API keys, the audit log.
#[async_trait]
pub trait AccessStore: Send + Sync {
    async fn create_user(&self, new: NewUser) -> StoreResult<User>;
    async fn list_users(&self) -> StoreResult<Vec<User>>;
    async fn get_user(&self, id: UserId) -> StoreResult<User>;
    async fn find_user_by_email(&self, email: &str) -> StoreResult<Option<User>>;
    async fn update_user(&self, id: UserId, patch: UserPatch) -> StoreResult<User>;
    /// Deletes the user and their sessions.
    async fn delete_user(&self, id: UserId) -> StoreResult<()>;
    async fn count_users(&self) -> StoreResult<u64>;
    async fn create_session(
        &self,
        token_hash: &[u8],
        user: UserId,
        expires_at_ms: i64,
    ) -> StoreResult<()>;
    /// The user of an unexpired session (and marks them active).
    async fn session_user(&self, token_hash: &[u8], now_ms: i64) -> StoreResult<Option<User>>;
    async fn delete_session(&self, token_hash: &[u8]) -> StoreResult<()>;
    /// Counts a sign-in attempt against each key (an account, an address) — atomically, and
    /// in the database so every instance counts the same attempts. `Err(ms)` when a key has
    /// had `max` failures within `window_ms` (nothing is counted then): how long to wait.
    async fn count_login_attempt(
        &self,
        keys: &[String],
        max: i64,
        window_ms: i64,
        now_ms: i64,
    ) -> StoreResult<Result<(), i64>>;
    /// Forgets the attempts of these keys (a successful sign-in).
    async fn clear_login_attempts(&self, keys: &[String]) -> StoreResult<()>;
    async fn record_audit(&self, entry: NewAuditEntry) -> StoreResult<()>;
    /// Newest first; continue with `before_id` = the last id of a page.
    async fn list_audit(&self, limit: u32, before_id: Option<i64>) -> StoreResult<Vec<AuditEntry>>;
    async fn create_api_key(&self, new: NewApiKey) -> StoreResult<ApiKey>;
    async fn list_api_keys(&self) -> StoreResult<Vec<ApiKey>>;
    async fn revoke_api_key(&self, id: i64) -> StoreResult<ApiKey>;
    /// The key (unrevoked, unexpired) and its owner; marks it used.
    async fn api_key_user(
        &self,
        token_hash: &[u8],
        now_ms: i64,
    ) -> StoreResult<Option<(ApiKey, User)>>;
}

/// Webhooks, event detection progress, and the delivery queue.
#[async_trait]
pub trait WebhookStore: Send + Sync {
    async fn create_webhook(&self, new: NewWebhook) -> StoreResult<Webhook>;
    async fn list_webhooks(&self) -> StoreResult<Vec<Webhook>>;
    async fn get_webhook(&self, id: WebhookId) -> StoreResult<Webhook>;
    async fn update_webhook(&self, id: WebhookId, patch: WebhookPatch) -> StoreResult<Webhook>;
    /// Deletes the webhook with its delivery log.
    async fn delete_webhook(&self, id: WebhookId) -> StoreResult<()>;
    async fn event_progress(&self) -> StoreResult<EventProgress>;
    /// Finished sync runs after `(finished_at_ms, id)`, in that order.
    async fn sync_runs_finished_after(
        &self,
        after: (i64, i64),
        limit: u32,
    ) -> StoreResult<Vec<SyncRun>>;
    /// Queues a delivery of each event to every enabled webhook subscribed to it, and saves the
    /// detection progress — in one transaction. Returns how many deliveries were queued.
    ///
    /// Only while the stored progress is still `from` (what the detection started from):
    /// when another instance's detection saved its progress meanwhile, nothing is queued and
    /// 0 is returned — that detection already queued these events.
    async fn enqueue_events(
        &self,
        events: Vec<OutgoingEvent>,
        from: EventProgress,
        progress: EventProgress,
    ) -> StoreResult<u64>;
    /// Claims up to `limit` pending deliveries due at `now_ms` (oldest first), with their
    /// webhooks: their next attempt moves to `claim_until_ms`, so no other instance sends them
    /// meanwhile (and one that dies mid-send leaves them due again then); `record_delivery`
    /// sets the real outcome. Deliveries another instance is claiming are skipped.
    async fn due_deliveries(
        &self,
        now_ms: i64,
        limit: u32,
        claim_until_ms: i64,
    ) -> StoreResult<Vec<(Delivery, Webhook)>>;
    /// Queues one delivery of `event` to this webhook alone, whatever it subscribes to (Send
    /// test); returns the delivery's id.
    async fn queue_delivery(&self, id: WebhookId, event: OutgoingEvent) -> StoreResult<i64>;
    /// Records an attempt; `disable_after` failed deliveries in a row disable the webhook.
    async fn record_delivery(
        &self,
        id: i64,
        attempt: DeliveryAttempt,
        disable_after: i64,
    ) -> StoreResult<()>;
    /// A webhook's deliveries, newest first.
    async fn list_deliveries(
        &self,
        webhook_id: WebhookId,
        limit: u32,
    ) -> StoreResult<Vec<Delivery>>;
}

/// Alert rules, the alerts they raise, and silences.
#[async_trait]
pub trait AlertStore: Send + Sync {
    /// `Conflict` when a rule has the name already.
    async fn create_alert_rule(&self, new: NewAlertRule) -> StoreResult<AlertRule>;
    /// By id.
    async fn list_alert_rules(&self) -> StoreResult<Vec<AlertRule>>;
    async fn get_alert_rule(&self, id: AlertRuleId) -> StoreResult<AlertRule>;
    /// Replaces what the rule says (its creator and creation time stay); its alerts stay and
    /// are judged by the new rule at the next evaluation.
    async fn replace_alert_rule(
        &self,
        id: AlertRuleId,
        rule: NewAlertRule,
    ) -> StoreResult<AlertRule>;
    /// Deletes the rule with its alerts and silences.
    async fn delete_alert_rule(&self, id: AlertRuleId) -> StoreResult<()>;
    /// Newest first.
    async fn list_alerts(&self, query: &AlertQuery) -> StoreResult<Vec<Alert>>;
    /// Alerts pending or firing, by id.
    async fn open_alerts(&self) -> StoreResult<Vec<Alert>>;
    /// Applies one evaluation's changes and queues its notifications (`alert.firing`,
    /// `alert.resolved`) in one transaction, so a notification is queued exactly when the
    /// state it announces is saved. Changes to alerts of a rule deleted meanwhile are skipped.
    async fn save_alert_changes(
        &self,
        changes: Vec<AlertChange>,
        events: Vec<OutgoingEvent>,
    ) -> StoreResult<()>;
    async fn create_alert_silence(&self, new: NewAlertSilence) -> StoreResult<AlertSilence>;
    /// Silences not ended at `at_ms` (those still to start included), or the newest 200 of
    /// all when `None`; newest first.
    async fn list_alert_silences(&self, at_ms: Option<i64>) -> StoreResult<Vec<AlertSilence>>;
    /// Ends the silence at `at_ms` (one that ended earlier is left as it was).
    async fn end_alert_silence(&self, id: i64, at_ms: i64) -> StoreResult<AlertSilence>;
}

/// Budgets and the evaluator's record of each budget's groups.
#[async_trait]
pub trait BudgetStore: Send + Sync {
    /// `Conflict` when a budget has the name already.
    async fn create_budget(&self, new: NewBudget) -> StoreResult<Budget>;
    /// By id.
    async fn list_budgets(&self) -> StoreResult<Vec<Budget>>;
    async fn get_budget(&self, id: BudgetId) -> StoreResult<Budget>;
    /// Replaces what the budget says (its creator and creation time stay).
    async fn replace_budget(&self, id: BudgetId, budget: NewBudget) -> StoreResult<Budget>;
    /// Deletes the budget with its groups.
    async fn delete_budget(&self, id: BudgetId) -> StoreResult<()>;
    /// Every budget's groups as last evaluated.
    async fn budget_groups(&self) -> StoreResult<Vec<BudgetGroup>>;
    /// Saves one evaluation's groups (replacing each `(budget, group)`'s row) and queues its
    /// notifications in one transaction, so a threshold is announced exactly when it is
    /// recorded as announced. Groups of a budget deleted meanwhile are skipped.
    async fn save_budget_groups(
        &self,
        groups: Vec<BudgetGroup>,
        events: Vec<OutgoingEvent>,
    ) -> StoreResult<()>;
}

/// Saved Trace Explorer views.
#[async_trait]
pub trait SavedViewStore: Send + Sync {
    /// `Conflict` when the owner has a view of that name already.
    async fn create_saved_view(&self, new: NewSavedView) -> StoreResult<SavedView>;
    /// The views `user_id` owns and those shared by others, by name.
    async fn list_saved_views(&self, user_id: i64) -> StoreResult<Vec<SavedView>>;
    async fn get_saved_view(&self, id: SavedViewId) -> StoreResult<SavedView>;
    /// Replaces name, query and sharing (the owner stays).
    async fn replace_saved_view(
        &self,
        id: SavedViewId,
        view: NewSavedView,
    ) -> StoreResult<SavedView>;
    async fn delete_saved_view(&self, id: SavedViewId) -> StoreResult<()>;
}

/// People and teams: the metadata keys naming them and the per-identity rollups kept at
/// ingest (see `people_model`).
#[async_trait]
pub trait PeopleStore: Send + Sync {
    /// The keys named, by kind, with their backfill progress.
    async fn identity_keys(&self) -> StoreResult<Vec<IdentityKey>>;
    /// Names the key of `kind` (`None` forgets it). A new key drops the kind's rollups: logs
    /// stored from now on are counted at ingest, those stored before by
    /// [`PeopleStore::backfill_identities`]. Naming the key it already has changes nothing.
    /// `session_key` (users only) names the sessions of the spend anomaly detection; a new
    /// session key counts the users again, as a new key does.
    async fn set_identity_key(
        &self,
        kind: IdentityKind,
        meta_key: Option<String>,
        session_key: Option<String>,
    ) -> StoreResult<Vec<IdentityKey>>;
    /// Counts up to `limit` stored logs (newest first) that a key's backfill has not; returns
    /// how many it read, 0 when every key's backfill is done.
    async fn backfill_identities(&self, limit: u32) -> StoreResult<u64>;
    /// Folds the oldest `limit` rows of what ingest appended into the per-identity tables and
    /// the summary (the reads below see logs once folded); returns the rows folded, 0 when
    /// nothing is pending.
    async fn fold_identities(&self, limit: u32) -> StoreResult<u64>;
    /// Moves the rolling summary's window to the one ending on `now_ms`'s day, subtracting
    /// the days it leaves; false when it was there already.
    async fn advance_people_window(&self, now_ms: i64) -> StoreResult<bool>;
    /// The first day the summary holds.
    async fn people_window_start(&self) -> StoreResult<i64>;
    /// A page of the rolling summary (identities with traffic in the window only).
    async fn people(&self, query: &PeopleQuery) -> StoreResult<PeoplePage>;
    /// One identity's summary, `None` when it has never been seen.
    async fn person(&self, kind: IdentityKind, identity: &str) -> StoreResult<Option<Person>>;
    /// An identity's days from `from_day_ms` on, oldest first.
    async fn identity_days(
        &self,
        kind: IdentityKind,
        identity: &str,
        from_day_ms: i64,
    ) -> StoreResult<Vec<IdentityDayTotals>>;
    /// The models an identity used from `from_day_ms` on, by spend then requests.
    async fn identity_models(
        &self,
        kind: IdentityKind,
        identity: &str,
        from_day_ms: i64,
    ) -> StoreResult<Vec<IdentityModelTotals>>;
}

/// Spend anomalies: the per-user sessions kept beside the people rollups (folded with them)
/// and their judgements (see `anomaly_model`).
#[async_trait]
pub trait AnomalyStore: Send + Sync {
    /// Up to `limit` user sessions started from `since_ms` on with traffic not judged yet, by
    /// user and then oldest first (see `anomaly_model`).
    async fn sessions_to_check(&self, since_ms: i64, limit: u32) -> StoreResult<Vec<UserSession>>;
    /// The start and spend of each of `user`'s sessions that started in
    /// `[from_ms, before_ms)`, by start.
    async fn session_costs(
        &self,
        user: &str,
        from_ms: i64,
        before_ms: i64,
    ) -> StoreResult<Vec<(i64, f64)>>;
    /// The `p`th percentile (nearest rank) of every user's sessions' spend, `None` without
    /// sessions.
    async fn session_cost_percentile(&self, p: f64) -> StoreResult<Option<f64>>;
    /// Saves judgements: each session is checked up to its judged requests, and flagged when
    /// anomalous (the first flag stays).
    async fn save_session_checks(&self, checks: Vec<SessionCheck>) -> StoreResult<()>;
    /// Flagged sessions, newest flag first.
    async fn spend_anomalies(&self, query: &AnomalyQuery) -> StoreResult<Vec<UserSession>>;
    /// Flagged sessions with traffic in `[from_ms, to_ms)` (an anomalous session counts while
    /// it goes on; one flagged in an old history imported now does not).
    async fn count_spend_anomalies(&self, from_ms: i64, to_ms: i64) -> StoreResult<u64>;
    /// The sessions named (missing ones are left out).
    async fn user_sessions(&self, keys: Vec<SessionOf>) -> StoreResult<Vec<UserSession>>;
}

/// Leases: which instance does a piece of background work when several share the database.
#[async_trait]
pub trait LeaseStore: Send + Sync {
    /// Takes the lease `name` for `holder` until `ttl_ms` from now when it is free, expired or
    /// already `holder`'s (which renews it). Returns whether `holder` has it now. Expiry is
    /// judged by the database's clock where it has one, so instances' clocks needn't agree.
    async fn acquire_lease(&self, name: &str, holder: &str, ttl_ms: i64) -> StoreResult<bool>;
    /// Extends the lease `holder` has; false when it has it no more (expired and taken, or
    /// released). Never takes a lease, so a late renewal can't bring a released one back.
    async fn renew_lease(&self, name: &str, holder: &str, ttl_ms: i64) -> StoreResult<bool>;
    /// Gives the lease up if `holder` has it.
    async fn release_lease(&self, name: &str, holder: &str) -> StoreResult<()>;
    /// Who holds (or last held) the lease `name`, if anyone: to tell a dead process of this
    /// machine, whose lease need not be waited out.
    async fn lease_holder(&self, name: &str) -> StoreResult<Option<String>>;
}

/// Every area of the store: what the sync engine, the policy worker, the operations and the
/// server hold (`Arc<dyn Store>`).
pub trait Store:
    IntegrationStore
    + BucketStore
    + IngestStore
    + TraceStore
    + MetricsStore
    + GovernanceStore
    + AccessStore
    + WebhookStore
    + AlertStore
    + BudgetStore
    + SavedViewStore
    + PeopleStore
    + AnomalyStore
    + LeaseStore
    + 'static
{
}

impl<T> Store for T where
    T: IntegrationStore
        + BucketStore
        + IngestStore
        + TraceStore
        + MetricsStore
        + GovernanceStore
        + AccessStore
        + WebhookStore
        + AlertStore
        + BudgetStore
        + SavedViewStore
        + PeopleStore
        + AnomalyStore
        + LeaseStore
        + 'static
{
}
