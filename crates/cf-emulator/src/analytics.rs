//! `POST /client/v4/graphql`: the GraphQL Analytics API's `aiGatewayRequestsAdaptiveGroups`
//! (API-NOTES §6) as an importer checking its counts uses it — request counts per gateway and
//! hour of one account, filtered by `datetimeHour_geq` / `datetimeHour_leq`.
//!
//! Not a GraphQL engine: the query must name that dataset with the `gateway` and
//! `datetimeHour` dimensions and `count`, and take its account, range and limit from the
//! `accountTag`, `start`, `end` and `limit` variables; anything else is refused as a parsing
//! issue. What it models faithfully is what an importer must cope with: errors in Cloudflare's
//! GraphQL shape (`data: null`, `errors[].message`, with the HTTP statuses of the errors page),
//! the token's *Account Analytics: Read* permission, the 62-day and 32-day limits, counts that
//! lag behind the requests (`analytics_lag`) and sample-corrected counts of busy hours that
//! are off by a little (`analytics_sampling_error`). Deleting logs takes nothing from the
//! counts, and requests that left no log are counted.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::auth::credentials;
use crate::emulator::{read, Emulator};
use crate::log_record::{format_millis, now_millis, UnixMillis};
use crate::stats::Endpoint;

const HOUR_MS: i64 = 3_600_000;
/// `notOlderThan` of the dataset: 62 days.
const NOT_OLDER_THAN_S: i64 = 5_356_800;
/// `maxDuration` of one query: 32 days.
const MAX_DURATION_S: i64 = 2_764_800;
const MAX_LIMIT: u64 = 10_000;

#[derive(Deserialize)]
struct Request {
    query: String,
    #[serde(default)]
    variables: Variables,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Variables {
    account_tag: Option<String>,
    start: Option<String>,
    end: Option<String>,
    limit: Option<u64>,
}

fn failure(status: StatusCode, message: &str) -> Response {
    let body = json!({
        "data": null,
        "errors": [{
            "message": message,
            "path": ["viewer", "accounts", "0", "aiGatewayRequestsAdaptiveGroups"],
            "extensions": {"timestamp": format_millis(now_millis())},
        }],
    });
    (status, Json(body)).into_response()
}

fn parse_time(raw: Option<&str>) -> Option<UnixMillis> {
    let at = OffsetDateTime::parse(raw?, &Rfc3339).ok()?;
    Some((at.unix_timestamp_nanos() / 1_000_000) as i64)
}

pub(crate) async fn graphql(
    State(emulator): State<Emulator>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let shared = &emulator.shared;
    shared.stats.record_request(Endpoint::Graphql);
    let Ok(token) = credentials(&headers) else {
        return failure(StatusCode::UNAUTHORIZED, "Unauthorized");
    };
    let Ok(request) = serde_json::from_slice::<Request>(&body) else {
        return failure(
            StatusCode::BAD_REQUEST,
            "query contains error, please review it and retry",
        );
    };
    let query = &request.query;
    for needed in [
        "aiGatewayRequestsAdaptiveGroups",
        "datetimeHour_geq",
        "datetimeHour_leq",
        "count",
        "gateway",
        "datetimeHour",
    ] {
        if !query.contains(needed) {
            return failure(
                StatusCode::BAD_REQUEST,
                &format!("unknown field {needed:?}"),
            );
        }
    }
    let vars = &request.variables;
    let Some(account) = vars.account_tag.as_deref() else {
        return failure(StatusCode::BAD_REQUEST, "error parsing args: accountTag");
    };
    if let Err(status) = read(&shared.tokens).analytics(&token, account) {
        return match status {
            401 => failure(StatusCode::UNAUTHORIZED, "Unauthorized"),
            _ => failure(StatusCode::FORBIDDEN, "not authorized for that account"),
        };
    }
    let (Some(start), Some(end)) = (
        parse_time(vars.start.as_deref()),
        parse_time(vars.end.as_deref()),
    ) else {
        return failure(
            StatusCode::BAD_REQUEST,
            "error parsing args: start and end must be RFC 3339 times",
        );
    };
    let limit = vars.limit.unwrap_or(MAX_LIMIT);
    if limit == 0 || limit > MAX_LIMIT {
        return failure(
            StatusCode::BAD_REQUEST,
            &format!("limit must be positive number and not greater than {MAX_LIMIT}"),
        );
    }
    let now = now_millis();
    if now - start > NOT_OLDER_THAN_S * 1_000 {
        return failure(
            StatusCode::BAD_REQUEST,
            &format!("cannot request data older than {NOT_OLDER_THAN_S}s"),
        );
    }
    if end - start > MAX_DURATION_S * 1_000 {
        return failure(
            StatusCode::BAD_REQUEST,
            &format!("query time range is too large, max duration is {MAX_DURATION_S}s"),
        );
    }
    let config = &shared.config;
    // Hours whose start is within [start, end]; minutes counted only once they have settled.
    let first_hour = start + (HOUR_MS - start.rem_euclid(HOUR_MS)) % HOUR_MS;
    let counted_until = now - i64::try_from(config.analytics_lag.as_millis()).unwrap_or(0);
    let mut rows: Vec<(UnixMillis, String, u64)> = Vec::new();
    {
        let store = read(&shared.store);
        for gateway in store.gateways(account).unwrap_or_default() {
            let mut hours: std::collections::BTreeMap<UnixMillis, u64> = Default::default();
            let until = (end - end.rem_euclid(HOUR_MS) + HOUR_MS).min(counted_until);
            for (minute, n) in gateway.logs.requests_per_minute(first_hour, until) {
                *hours
                    .entry(minute - minute.rem_euclid(HOUR_MS))
                    .or_default() += n;
            }
            for (hour, count) in hours {
                let count = sampled(config, &gateway.id, hour, count);
                rows.push((hour, gateway.id.clone(), count));
            }
        }
    }
    rows.sort();
    let groups: Vec<Value> = rows
        .into_iter()
        .take(usize::try_from(limit).unwrap_or(usize::MAX))
        .map(|(hour, gateway, count)| {
            json!({
                "count": count,
                "dimensions": {"gateway": gateway, "datetimeHour": format_hour(hour)},
            })
        })
        .collect();
    let body = json!({
        "data": {"viewer": {"accounts": [{"aiGatewayRequestsAdaptiveGroups": groups}]}},
        "errors": null,
    });
    (StatusCode::OK, Json(body)).into_response()
}

/// `2026-11-30T10:00:00Z`: GraphQL's `Time` renders whole seconds.
fn format_hour(hour: UnixMillis) -> String {
    OffsetDateTime::from_unix_timestamp(hour / 1_000)
        .ok()
        .and_then(|at| at.format(&Rfc3339).ok())
        .unwrap_or_default()
}

/// A busy hour's count as an adaptive dataset reports it: the true count off by a
/// deterministic fraction within the configured error.
fn sampled(config: &crate::EmulatorConfig, gateway: &str, hour: UnixMillis, count: u64) -> u64 {
    if count <= config.analytics_sampled_above || config.analytics_sampling_error <= 0.0 {
        return count;
    }
    let hash = crate::synthetic::stable_hash(&[gateway, &hour.to_string()]);
    let unit = (hash % 20_001) as f64 / 10_000.0 - 1.0;
    let factor = 1.0 + unit * config.analytics_sampling_error;
    (count as f64 * factor).round().max(0.0) as u64
}
