# Spend: per-call cost and token caps, the budgets the call counts against (`input.budgets`:
# Budgets in LangGuard, per team, model or gateway, by day, week or month), a rolling 24-hour
# budget (`budget_usd`, warned at `budget_threshold_percent`), and calls far above an expected
# average cost.
package langguard.budget_overrun

import rego.v1

max_cost := object.get(input.config, "max_cost_per_trace", 1.0)

threshold_percent := object.get(input.config, "budget_threshold_percent", 80)

trace_cost := sum([c | some obs in input.trace.observations; c := object.get(obs, ["costDetails", "total"], 0)])

trace_tokens := sum([t | some obs in input.trace.observations; t := object.get(obs, ["usage", "total"], 0)])

violation contains result if {
	trace_cost > max_cost
	result := {
		"type": "trace_cost_exceeded",
		"message": sprintf("This call cost $%.4f (limit $%.2f)", [trace_cost, max_cost]),
		"evidence": {"cost_usd": trace_cost, "limit_usd": max_cost},
	}
}

violation contains result if {
	max_tokens := input.config.max_tokens_per_trace
	is_number(max_tokens)
	trace_tokens > max_tokens
	result := {
		"type": "trace_tokens_exceeded",
		"message": sprintf("This call used %v tokens (limit %v)", [trace_tokens, max_tokens]),
		"evidence": {"tokens": trace_tokens, "limit": max_tokens},
	}
}

violation contains result if {
	budget := input.config.budget_usd
	is_number(budget)
	spent := input.traces.windows["1440"].cost_usd
	spent >= (budget * threshold_percent) / 100
	result := {
		"type": "budget_threshold_reached",
		"message": sprintf("$%.2f spent in the last 24 hours: %v%% of the $%.2f budget", [spent, round((spent * 100) / budget), budget]),
		"evidence": {"spent_usd_24h": spent, "budget_usd": budget, "threshold_percent": threshold_percent},
	}
}

# A call whose budget — its team's, its model's — is spent: one finding per budget it is over.
violation contains result if {
	some budget in object.get(input, "budgets", [])
	budget.over
	result := {
		"type": "budget_exceeded",
		"message": sprintf("Budget %q%s is spent: $%.2f of $%.2f this %s", [budget.name, group_note(budget), budget.spent_usd, budget.amount_usd, budget.period]),
		"evidence": {
			"budget_id": budget.id,
			"budget": budget.name,
			"group": budget.group,
			"spent_usd": budget.spent_usd,
			"amount_usd": budget.amount_usd,
			"period": budget.period,
		},
	}
}

group_note(budget) := "" if budget.group == ""

group_note(budget) := sprintf(" for %s %s", [object.get(budget, "group_by", "group"), budget.group]) if budget.group != ""

violation contains result if {
	average := input.config.avg_cost_per_trace
	is_number(average)
	trace_cost > 5 * average
	result := {
		"type": "cost_outlier",
		"message": sprintf("This call cost $%.4f, over 5× the expected $%.4f", [trace_cost, average]),
		"evidence": {"cost_usd": trace_cost, "expected_usd": average},
	}
}
