# Credentials in prompts, responses or metadata: provider API keys, cloud keys, tokens.
# Evidence carries a redacted prefix of the match, never the secret itself.
package langguard.credential_surface_discovery

import rego.v1

patterns := [
	{"kind": "openai_api_key", "regex": `sk-(proj-|svcacct-)?[A-Za-z0-9_-]{20,}`},
	{"kind": "anthropic_api_key", "regex": `sk-ant-[A-Za-z0-9_-]{20,}`},
	{"kind": "aws_access_key_id", "regex": `(?-u:\b)(AKIA|ASIA)[0-9A-Z]{16}(?-u:\b)`},
	{"kind": "gcp_api_key", "regex": `(?-u:\b)AIza[0-9A-Za-z_-]{35}(?-u:\b)`},
	{"kind": "gcp_service_account_key", "regex": `"type"[ \t\r\n]*:[ \t\r\n]*"service_account"`},
	{"kind": "azure_connection_string", "regex": `AccountKey=[A-Za-z0-9+/=]{20,}`},
	{"kind": "azure_sas_token", "regex": `[?&]sig=[A-Za-z0-9%+/=]{20,}`},
	{"kind": "github_token", "regex": `(?-u:\b)(ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36}(?-u:\b)`},
	{"kind": "github_token", "regex": `(?-u:\b)github_pat_[A-Za-z0-9_]{22,}(?-u:\b)`},
	{"kind": "super_user_grant", "regex": `(?i-u:"(role|scope|permissions?)"[ \t\r\n]*:[ \t\r\n]*"(admin|root|full_access|all_permissions)")`},
]

as_text(v) := v if is_string(v)

as_text(v) := json.marshal(v) if not is_string(v)

# Every text a policy can see, with where it came from.
texts contains {"location": "input", "text": as_text(input.trace.input)} if input.trace.input != null

texts contains {"location": "output", "text": as_text(input.trace.output)} if input.trace.output != null

texts contains {"location": concat(".", ["metadata", key]), "text": as_text(value)} if {
	some key, value in input.trace.metadata
}

redact(s) := concat("", [substring(s, 0, 6), "…"]) if count(s) > 6

redact(s) := "…" if count(s) <= 6

violation contains result if {
	some t in texts
	some p in patterns
	some found in regex.find_n(p.regex, t.text, 5)
	result := {
		"type": "credential_exposed",
		"message": sprintf("A %s appears in the %s", [p.kind, t.location]),
		"credential_type": p.kind,
		"location": t.location,
		"evidence": {"pattern": p.kind, "value": redact(found), "location": t.location},
	}
}
