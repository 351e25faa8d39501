//! The store's test suite, written once against the [`Store`] trait and run by every backend
//! (`tests/suite.rs` in each backend crate calls [`store_suite!`]), so both backends are held
//! to the same answers.

#![allow(clippy::unwrap_used)] // test code: a failed expectation is a failed test

pub mod access;
pub mod alerts;
pub mod budgets;
pub mod governance;
pub mod people;
pub mod push;
pub mod store;
pub mod traces;
pub mod webhooks;

use langguard_store::*;

pub async fn integration(store: &dyn Store, name: &str) -> Integration {
    store
        .create_integration(NewIntegration {
            name: name.into(),
            account_id: "acct".into(),
            api_token: SealFor::new(|_| vec![1, 2, 3]),
            enabled: true,
            sync_interval_minutes: 15,
            lookback_days: Some(7),
            trailing_window_minutes: langguard_store::DEFAULT_TRAILING_WINDOW_MINUTES,
        })
        .await
        .expect("create")
}

/// One `#[tokio::test]` per suite function, each on a fresh store from `$fresh`: an async
/// function returning `Option<(guard, Arc<dyn Store>)>` — `None` skips (a backend whose
/// database isn't configured), and the guard lives as long as the test (a temporary
/// directory or database).
#[macro_export]
macro_rules! store_suite {
    ($fresh:path) => {
        $crate::store_suite!(@each $fresh; store:
            duplicates_are_skipped_and_never_counted_twice,
            log_details_are_kept_and_refreshed_when_cloudflare_changes_them,
            the_cursor_moves_with_the_rows_and_never_backwards,
            trailing_windows_are_set_per_integration_and_widen_per_gateway,
            rollup_metrics_match_the_raw_rows_exactly,
            integrations_sync_runs_and_deletion,
            hourly_and_minute_rollups_combine_to_the_exact_figures,
            bodies_are_kept_for_their_retention,
            retention_deletes_old_rows_in_batches_and_keeps_the_rollups,
            sign_in_attempts_are_counted_per_key_and_forgiven,
            re_sealing_never_overwrites_a_credential_changed_meanwhile
        );
        $crate::store_suite!(@each $fresh; traces:
            filters_and_searches_match_exactly_the_rows_they_describe,
            every_sort_pages_through_in_order,
            a_cursor_only_continues_its_own_sort,
            pages_neither_skip_nor_repeat_while_rows_arrive,
            the_export_is_the_listing_in_full
        );
        $crate::store_suite!(@each $fresh; push:
            pushed_logs_are_stored_once_with_their_bodies,
            a_gateway_counts_one_source_and_hands_over_without_gap_or_overlap,
            a_gateway_of_an_account_that_never_pulled_counts_every_push,
            a_handover_during_a_sync_counts_nothing_twice,
            bucket_files_are_recorded_once_and_secrets_re_sealed_safely
        );
        $crate::store_suite!(@each $fresh; access:
            users_sessions_and_their_lifetimes,
            api_keys_work_until_revoked_or_expired,
            the_audit_log_pages_newest_first,
            saved_views_are_their_owners_or_shared_and_go_with_them
        );
        $crate::store_suite!(@each $fresh; governance:
            policies_keep_their_versions_and_builtins_install_once,
            violations_move_through_their_life,
            prices_override_and_spend_is_summed_per_minute,
            sync_runs_are_listed_newest_first_with_their_counts,
            a_quarantine_applies_once_to_the_version_evaluated
        );
        $crate::store_suite!(@each $fresh; alerts:
            alert_rules_keep_what_they_say_and_alerts_their_history,
            silences_cover_their_time_and_end_early
        );
        $crate::store_suite!(@each $fresh; budgets:
            budgets_keep_what_they_say_and_their_groups
        );
        $crate::store_suite!(@each $fresh; people:
            people_rollups_match_the_raw_logs_through_backfill_ingest_and_rollover,
            a_backfill_never_counts_a_log_stored_after_its_key,
            user_sessions_add_up_and_keep_their_first_flag
        );
        $crate::store_suite!(@each $fresh; webhooks:
            webhooks_queue_deliveries_and_disable_after_failures,
            webhooks_are_changed_and_deleted_with_their_deliveries
        );
    };
    (@each $fresh:path; $module:ident: $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let Some((_guard, store)) = $fresh().await else {
                    return;
                };
                $crate::$module::$name(store).await;
            }
        )*
    };
}
