# Spend anomalies (Cloudflare's AI Spend rule): a call in a user session that costs far more
# than the user's own habit — at least twice their p95 session over the last 30 days (with 10
# sessions or more to know it) — and more than the organisation's p99 session. `input.spend_anomaly`
# is the call's session as LangGuard last judged it (people keys: a user key, optionally a
# session key; without a session key each hour of a user's traffic is a session).
package langguard.spend_anomaly

import rego.v1

# Flag only sessions that also spent at least this much (USD), to leave small change alone.
min_session_usd := object.get(input.config, "min_session_usd", 0)

violation contains result if {
	session := input.spend_anomaly
	session.anomalous
	session.session_spend_usd >= min_session_usd
	result := {
		"type": "spend_anomaly",
		"message": sprintf("%s's %s spent $%.2f: %.1f× their usual $%.2f (p95 of %v sessions) and above the organisation's p99 of $%.2f", [
			session.user,
			session_name(session),
			session.session_spend_usd,
			session.session_spend_usd / max([session.user_p95_usd, 0.000001]),
			session.user_p95_usd,
			session.baseline_sessions,
			session.org_p99_usd,
		]),
		"evidence": {
			"user": session.user,
			"session": session.session,
			"hour": session.hour,
			"session_spend_usd": session.session_spend_usd,
			"user_p95_usd": session.user_p95_usd,
			"baseline_sessions": session.baseline_sessions,
			"org_p99_usd": session.org_p99_usd,
		},
	}
}

session_name(session) := sprintf("session %s", [session.session]) if is_string(session.session)

session_name(session) := sprintf("hour from %s", [session.hour]) if not is_string(session.session)
