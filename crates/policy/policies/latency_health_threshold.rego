# Slow calls, failed calls and oversized contexts.
package langguard.latency_health_threshold

import rego.v1

max_latency_ms := object.get(input.config, "max_latency_ms", 5000)

error_statuses := {"error", "failed", "timeout", "exception"}

violation contains result if {
	some obs in input.trace.observations
	latency := obs.metadata.latency_ms
	latency > max_latency_ms
	result := {
		"type": "high_latency",
		"message": sprintf("%v took %v ms (threshold %v ms)", [obs.model, latency, max_latency_ms]),
		"model": obs.model,
		"latency_ms": latency,
		"evidence": {"latency_ms": latency, "threshold_ms": max_latency_ms},
	}
}

violation contains result if {
	some obs in input.trace.observations
	error_statuses[lower(obs.metadata.status)]
	result := {
		"type": "error_status",
		"message": sprintf("%v returned an error (HTTP %v)", [obs.model, object.get(obs.metadata, "status_code", "unknown")]),
		"model": obs.model,
		"evidence": {"status": obs.metadata.status, "status_code": object.get(obs.metadata, "status_code", null)},
	}
}

violation contains result if {
	max_context := input.config.max_context_tokens
	is_number(max_context)
	some obs in input.trace.observations
	obs.usage.input > max_context
	result := {
		"type": "context_too_large",
		"message": sprintf("%v was sent %v input tokens (limit %v)", [obs.model, obs.usage.input, max_context]),
		"model": obs.model,
		"evidence": {"input_tokens": obs.usage.input, "limit": max_context},
	}
}
