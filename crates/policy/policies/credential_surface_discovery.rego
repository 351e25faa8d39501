# Credentials in prompts, responses or metadata: provider API keys, cloud keys, tokens.
# Evidence carries a redacted prefix of the match, never the secret itself.
package langguard.credential_surface_discovery

import rego.v1

# Each pattern has lowercase anchors: a text without any of them can't match, and checking
# for them is far cheaper than running the regex, so most texts never reach one.
patterns := [
	{"kind": "openai_api_key", "anchors": ["sk-"], "regex": `sk-(proj-|svcacct-)?[A-Za-z0-9_-]{20,}`},
	{"kind": "anthropic_api_key", "anchors": ["sk-ant-"], "regex": `sk-ant-[A-Za-z0-9_-]{20,}`},
	{"kind": "aws_access_key_id", "anchors": ["akia", "asia"], "regex": `(?-u:\b)(AKIA|ASIA)[0-9A-Z]{16}(?-u:\b)`},
	{"kind": "gcp_api_key", "anchors": ["aiza"], "regex": `(?-u:\b)AIza[0-9A-Za-z_-]{35}(?-u:\b)`},
	{"kind": "gcp_service_account_key", "anchors": ["service_account"], "regex": `"type"[ \t\r\n]*:[ \t\r\n]*"service_account"`},
	{"kind": "azure_connection_string", "anchors": ["accountkey="], "regex": `AccountKey=[A-Za-z0-9+/=]{20,}`},
	{"kind": "azure_sas_token", "anchors": ["sig="], "regex": `[?&]sig=[A-Za-z0-9%+/=]{20,}`},
	{"kind": "github_token", "anchors": ["ghp_", "gho_", "ghu_", "ghs_", "ghr_"], "regex": `(?-u:\b)(ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36}(?-u:\b)`},
	{"kind": "github_token", "anchors": ["github_pat_"], "regex": `(?-u:\b)github_pat_[A-Za-z0-9_]{22,}(?-u:\b)`},
	{"kind": "super_user_grant", "anchors": ["admin", "root", "full_access", "all_permissions"], "regex": `(?i-u:"(role|scope|permissions?)"[ \t\r\n]*:[ \t\r\n]*"(admin|root|full_access|all_permissions)")`},
]

as_text(v) := v if is_string(v)

as_text(v) := json.marshal(v) if not is_string(v)

# Every text a policy can see, with where it came from.
texts contains {"location": "input", "text": as_text(input.trace.input)} if input.trace.input != null

texts contains {"location": "output", "text": as_text(input.trace.output)} if input.trace.output != null

texts contains {"location": concat(".", ["metadata", key]), "text": value} if {
	some key, value in input.trace.metadata
	is_string(value)
}

# Everything, lowercased once, for the anchor check.
all_text := lower(concat("\n", [t.text | some t in texts]))

candidates contains p if {
	some p in patterns
	some anchor in p.anchors
	contains(all_text, anchor)
}

redact(s) := concat("", [substring(s, 0, 6), "…"]) if count(s) > 6

redact(s) := "…" if count(s) <= 6

violation contains result if {
	some p in candidates
	some t in texts
	some anchor in p.anchors
	contains(lower(t.text), anchor)
	some found in regex.find_n(p.regex, t.text, 5)
	result := {
		"type": "credential_exposed",
		"message": sprintf("A %s appears in the %s", [p.kind, t.location]),
		"credential_type": p.kind,
		"location": t.location,
		"evidence": {"pattern": p.kind, "value": redact(found), "location": t.location},
	}
}
