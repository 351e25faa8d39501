# Personal data in prompts, responses or metadata. Each finding has a confidence; those below
# `min_confidence` (default 0.3) are ignored. Values are redacted in the evidence.
package langguard.pii_detection

import rego.v1

min_confidence := object.get(input.config, "min_confidence", 0.3)

as_text(v) := v if is_string(v)

as_text(v) := json.marshal(v) if not is_string(v)

texts contains {"location": "input", "text": as_text(input.trace.input)} if input.trace.input != null

texts contains {"location": "output", "text": as_text(input.trace.output)} if input.trace.output != null

texts contains {"location": concat(".", ["metadata", key]), "text": as_text(value)} if {
	some key, value in input.trace.metadata
	is_string(value)
}

# Cheap checks on all the text at once decide which detectors run: an email needs an `@`,
# every other kind a run of digits.
all_text := concat("\n", [t.text | some t in texts])

maybe_email if contains(all_text, "@")

maybe_numbers if regex.match(`[0-9][0-9 ().+-]{5,}[0-9]`, all_text)

redact(s) := concat("", [substring(s, 0, 2), "…", substring(s, count(s) - 2, 2)]) if count(s) > 6

redact(s) := "…" if count(s) <= 6

# A payment card number passes the Luhn check.
digits_of(s) := [to_number(c) | some c in split(regex.replace(s, `[^0-9]`, ""), "")]

luhn_term(d, pos) := d if pos % 2 == 0

luhn_term(d, pos) := d * 2 if {
	pos % 2 == 1
	d * 2 <= 9
}

luhn_term(d, pos) := (d * 2) - 9 if {
	pos % 2 == 1
	d * 2 > 9
}

luhn_valid(s) if {
	ds := digits_of(s)
	n := count(ds)
	n >= 13
	n <= 19
	sum([luhn_term(d, (n - 1) - i) | some i, d in ds]) % 10 == 0
}

findings contains {"kind": "email", "value": v, "confidence": 0.9, "location": t.location} if {
	maybe_email
	some t in texts
	contains(t.text, "@")
	some v in regex.find_n(`[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}`, t.text, 10)
}

findings contains {"kind": "payment_card", "value": v, "confidence": 0.95, "location": t.location} if {
	maybe_numbers
	some t in texts
	some v in regex.find_n(`(?-u:\b)[0-9](?:[ -]?[0-9]){12,18}(?-u:\b)`, t.text, 10)
	luhn_valid(v)
}

findings contains {"kind": "phone", "value": v, "confidence": 0.5, "location": t.location} if {
	maybe_numbers
	some t in texts
	some v in regex.find_n(`(?:\+[0-9]{1,3}[ .-]?)?\(?[0-9]{3}\)?[ .-][0-9]{3}[ .-][0-9]{4}(?-u:\b)`, t.text, 10)
}

findings contains {"kind": "iban", "value": v, "confidence": 0.7, "location": t.location} if {
	maybe_numbers
	some t in texts
	some v in regex.find_n(`(?-u:\b)[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]{4}){3,7}(?: ?[A-Z0-9]{1,3})?(?-u:\b)`, t.text, 10)
}

findings contains {"kind": "us_ssn", "value": v, "confidence": 0.6, "location": t.location} if {
	maybe_numbers
	some t in texts
	some v in regex.find_n(`(?-u:\b)[0-9]{3}-[0-9]{2}-[0-9]{4}(?-u:\b)`, t.text, 10)
}

findings contains {"kind": "ip_address", "value": v, "confidence": 0.25, "location": t.location} if {
	maybe_numbers
	some t in texts
	some v in regex.find_n(`(?-u:\b)(?:(?:25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])\.){3}(?:25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])(?-u:\b)`, t.text, 10)
}

violation contains result if {
	some f in findings
	f.confidence >= min_confidence
	result := {
		"type": "pii_detected",
		"message": sprintf("Possible %s in the %s", [f.kind, f.location]),
		"pii_type": f.kind,
		"confidence": f.confidence,
		"location": f.location,
		"evidence": {"pattern": f.kind, "value": redact(f.value), "location": f.location},
	}
}
