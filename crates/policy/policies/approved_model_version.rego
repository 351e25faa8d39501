# Models outside the approved list (`approved_models`: exact names, or prefixes ending in `*`).
# An empty list approves nothing and flags nothing: the policy is off until it is configured.
package langguard.approved_model_version

import rego.v1

approved := object.get(input.config, "approved_models", [])

is_approved(model) if {
	some entry in approved
	entry == model
}

is_approved(model) if {
	some entry in approved
	endswith(entry, "*")
	startswith(model, trim_suffix(entry, "*"))
}

violation contains result if {
	count(approved) > 0
	some obs in input.trace.observations
	not is_approved(obs.model)
	result := {
		"type": "unapproved_model",
		"message": sprintf("%v is not an approved model", [obs.model]),
		"model": obs.model,
		"evidence": {"model": obs.model, "provider": object.get(input.trace.metadata, "provider", null)},
	}
}
