//! Policies with their versions, the policy worker's progress, and violations.

use async_trait::async_trait;
use langguard_store::*;

use crate::{governance, PgStore};

#[async_trait]
impl GovernanceStore for PgStore {
    async fn create_policy(&self, new: NewPolicy) -> StoreResult<Policy> {
        governance::create_policy(&mut self.client().await?, &new).await
    }

    async fn list_policies(&self) -> StoreResult<Vec<Policy>> {
        governance::list_policies(&mut self.client().await?).await
    }

    async fn get_policy(&self, id: PolicyId) -> StoreResult<Policy> {
        governance::get_policy(&mut self.client().await?, id).await
    }

    async fn quarantine_policy(
        &self,
        id: PolicyId,
        version: i64,
        reason: &str,
        event: OutgoingEvent,
    ) -> StoreResult<Option<Policy>> {
        governance::quarantine_policy(&mut self.client().await?, id, version, reason, &event).await
    }

    async fn update_policy(&self, id: PolicyId, patch: PolicyPatch) -> StoreResult<Policy> {
        governance::update_policy(&mut self.client().await?, id, &patch).await
    }

    async fn delete_policy(&self, id: PolicyId) -> StoreResult<()> {
        governance::delete_policy(&mut self.client().await?, id).await
    }

    async fn policy_versions(&self, id: PolicyId) -> StoreResult<Vec<PolicyVersion>> {
        governance::policy_versions(&mut self.client().await?, id).await
    }

    async fn install_builtins(&self, builtins: Vec<NewPolicy>) -> StoreResult<Vec<Policy>> {
        governance::install_builtins(&mut self.client().await?, &builtins).await
    }

    async fn record_evaluations(
        &self,
        violations: Vec<NewViolation>,
        cursor: Option<i64>,
    ) -> StoreResult<Vec<i64>> {
        governance::record_evaluations(&mut self.client().await?, &violations, cursor).await
    }

    async fn policy_progress(&self) -> StoreResult<PolicyProgress> {
        governance::policy_progress(&mut self.client().await?).await
    }

    async fn violations(&self, query: &ViolationQuery) -> StoreResult<ViolationPage> {
        governance::violations(&mut self.client().await?, query).await
    }

    async fn get_violation(&self, id: i64) -> StoreResult<Violation> {
        governance::get_violation(&mut self.client().await?, id).await
    }

    async fn update_violations(
        &self,
        ids: Vec<i64>,
        status: ViolationStatus,
        notes: Option<String>,
    ) -> StoreResult<Vec<Violation>> {
        governance::update_violations(&mut self.client().await?, &ids, status, notes.as_deref())
            .await
    }

    async fn violations_after(&self, after_id: i64, limit: u32) -> StoreResult<Vec<Violation>> {
        governance::violations_after(&mut self.client().await?, after_id, limit).await
    }

    async fn violation_counts(
        &self,
        scope: &Scope,
    ) -> StoreResult<Vec<(Severity, ViolationStatus, u64)>> {
        governance::violation_counts(&mut self.client().await?, scope).await
    }
}
