//! Policies with their versions, the policy worker's progress, and violations.

use async_trait::async_trait;
use langguard_store::*;

use crate::{governance, SqliteStore};

#[async_trait]
impl GovernanceStore for SqliteStore {
    async fn create_policy(&self, new: NewPolicy) -> StoreResult<Policy> {
        self.write(move |conn| governance::create_policy(conn, &new))
            .await
    }

    async fn list_policies(&self) -> StoreResult<Vec<Policy>> {
        self.read(governance::list_policies).await
    }

    async fn get_policy(&self, id: PolicyId) -> StoreResult<Policy> {
        self.read(move |conn| governance::get_policy(conn, id))
            .await
    }

    async fn quarantine_policy(
        &self,
        id: PolicyId,
        version: i64,
        reason: &str,
        event: OutgoingEvent,
    ) -> StoreResult<Option<Policy>> {
        let reason = reason.to_owned();
        self.write(move |conn| governance::quarantine_policy(conn, id, version, &reason, &event))
            .await
    }

    async fn update_policy(&self, id: PolicyId, patch: PolicyPatch) -> StoreResult<Policy> {
        self.write(move |conn| governance::update_policy(conn, id, &patch))
            .await
    }

    async fn delete_policy(&self, id: PolicyId) -> StoreResult<()> {
        self.write(move |conn| governance::delete_policy(conn, id))
            .await
    }

    async fn policy_versions(&self, id: PolicyId) -> StoreResult<Vec<PolicyVersion>> {
        self.read(move |conn| governance::policy_versions(conn, id))
            .await
    }

    async fn install_builtins(&self, builtins: Vec<NewPolicy>) -> StoreResult<Vec<Policy>> {
        self.write(move |conn| governance::install_builtins(conn, &builtins))
            .await
    }

    async fn record_evaluations(
        &self,
        violations: Vec<NewViolation>,
        cursor: Option<i64>,
    ) -> StoreResult<Vec<i64>> {
        self.write(move |conn| governance::record_evaluations(conn, &violations, cursor))
            .await
    }

    async fn policy_progress(&self) -> StoreResult<PolicyProgress> {
        self.read(governance::policy_progress).await
    }

    async fn violations(&self, query: &ViolationQuery) -> StoreResult<ViolationPage> {
        let query = query.clone();
        self.read(move |conn| governance::violations(conn, &query))
            .await
    }

    async fn get_violation(&self, id: i64) -> StoreResult<Violation> {
        self.read(move |conn| governance::get_violation(conn, id))
            .await
    }

    async fn update_violations(
        &self,
        ids: Vec<i64>,
        status: ViolationStatus,
        notes: Option<String>,
    ) -> StoreResult<Vec<Violation>> {
        self.write(move |conn| governance::update_violations(conn, &ids, status, notes.as_deref()))
            .await
    }

    async fn violations_after(&self, after_id: i64, limit: u32) -> StoreResult<Vec<Violation>> {
        self.read(move |conn| governance::violations_after(conn, after_id, limit))
            .await
    }

    async fn violation_counts(
        &self,
        scope: &Scope,
    ) -> StoreResult<Vec<(Severity, ViolationStatus, u64)>> {
        let scope = scope.clone();
        self.read(move |conn| governance::violation_counts(conn, &scope))
            .await
    }
}
