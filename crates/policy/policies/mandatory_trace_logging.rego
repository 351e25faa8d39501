# Every call says which agent made it and for which user. Cloudflare carries these in the
# request's custom metadata (cf-aig-metadata).
package langguard.mandatory_trace_logging

import rego.v1

md := input.trace.metadata

agent_names := [
	object.get(md, ["attributes", "gen_ai.agent.name"], ""),
	object.get(md, ["mappedGenAI", "agentName"], ""),
	object.get(md, "agent_name", ""),
	object.get(md, "agent", ""),
]

user_ids := [
	object.get(md, ["attributes", "gen_ai.agent.user.id"], ""),
	object.get(md, ["mappedGenAI", "userId"], ""),
	object.get(md, "user_id", ""),
	object.get(md, "user", ""),
]

present(values) if {
	some v in values
	v != ""
	v != null
}

violation contains result if {
	not present(agent_names)
	result := {
		"type": "missing_agent_name",
		"message": "The call does not name its agent (metadata agent_name, agent, or gen_ai.agent.name)",
		"evidence": {"metadata_keys": object.keys(md)},
	}
}

violation contains result if {
	not present(user_ids)
	result := {
		"type": "missing_user",
		"message": "The call does not name its user (metadata user_id, user, or gen_ai.agent.user.id)",
		"evidence": {"metadata_keys": object.keys(md)},
	}
}
