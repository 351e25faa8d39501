# Required custom metadata (`required_metadata`), required tags, user attribution, and the
# extra keys confidential data needs.
package langguard.metadata_tagging

import rego.v1

md := input.trace.metadata

required := object.get(input.config, "required_metadata", ["ai_app_id", "department"])

required_tags := object.get(input.config, "required_tags", [])

missing := [key | some key in required; not has_value(key)]

has_value(key) if {
	v := md[key]
	v != ""
	v != null
}

violation contains result if {
	count(missing) > 0
	result := {
		"type": "missing_metadata",
		"message": sprintf("Missing required metadata: %v", [concat(", ", missing)]),
		"evidence": {"missing": missing},
	}
}

violation contains result if {
	missing_tags := [tag | some tag in required_tags; not tag in object.get(input.trace, "tags", [])]
	count(missing_tags) > 0
	result := {
		"type": "missing_tags",
		"message": sprintf("Missing required tags: %v", [concat(", ", missing_tags)]),
		"evidence": {"missing": missing_tags},
	}
}

violation contains result if {
	object.get(input.config, "require_user_attribution", true)
	not has_value("user_id")
	not has_value("actor_id")
	not has_value("userType")
	result := {
		"type": "missing_user_attribution",
		"message": "No user attribution (metadata user_id, actor_id or userType)",
		"evidence": {"metadata_keys": object.keys(md)},
	}
}

violation contains result if {
	lower(object.get(md, "data_classification", "")) in {"confidential", "restricted"}
	needed := [key | some key in ["security_classification", "data_owner"]; not has_value(key)]
	count(needed) > 0
	result := {
		"type": "missing_classification_metadata",
		"message": sprintf("Confidential data needs: %v", [concat(", ", needed)]),
		"evidence": {"missing": needed},
	}
}
