//! What the policy worker tells Prometheus (through the `metrics` facade; the server installs
//! the exporter).

/// Gives every metric the policy worker records its HELP text (call once the exporter is
/// installed).
pub fn describe_metrics() {
    metrics::describe_gauge!(
        "langguard_policy_lag_interactions",
        "Stored interactions the policy worker has not evaluated yet"
    );
    metrics::describe_counter!(
        "langguard_policy_evaluations_total",
        "Policy evaluations run by the policy worker (one policy on one interaction)"
    );
    metrics::describe_counter!(
        "langguard_policy_evaluation_errors_total",
        "Policy evaluations that failed (recorded as evaluation_error violations)"
    );
    metrics::describe_counter!(
        "langguard_violations_recorded_total",
        "Policy violations recorded by the policy worker"
    );
    metrics::describe_counter!(
        "langguard_policies_quarantined_total",
        "Policies turned off after crossing their limits again and again"
    );
}
