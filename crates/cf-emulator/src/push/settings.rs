//! What an account configures for pushes, as Cloudflare's API takes it: a gateway's `otel`
//! exporters and Logpush public key (`PUT …/ai-gateway/gateways/{id}`, API-NOTES §3 and §6), and
//! the account's Logpush jobs (`…/logpush/jobs`, dataset `ai_gateway_events`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::envelope::ApiError;

/// One entry of a gateway's `otel` list: `{url, headers, authorization?, content_type?}`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub(crate) struct OtelExporter {
    pub url: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// A Secrets Store reference on Cloudflare; the emulator has no secrets store, so it is
    /// kept and shown but not sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization: Option<String>,
    /// `json` or `protobuf` (Cloudflare's default when absent: JSON).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
}

impl OtelExporter {
    pub(crate) fn protobuf(&self) -> bool {
        self.content_type.as_deref() == Some("protobuf")
    }
}

/// The settings `PUT …/gateways/{id}` replaces. The first five are required by Cloudflare's
/// update schema; a PUT without them is refused, as Cloudflare does.
#[derive(Clone, Debug, Deserialize)]
pub(crate) struct GatewayUpdate {
    pub cache_invalidate_on_update: bool,
    pub cache_ttl: Option<u32>,
    pub collect_logs: bool,
    pub rate_limiting_interval: Option<u32>,
    pub rate_limiting_limit: Option<u32>,
    #[serde(default)]
    pub rate_limiting_technique: Option<String>,
    #[serde(default)]
    pub authentication: Option<bool>,
    #[serde(default)]
    pub logpush: Option<bool>,
    #[serde(default)]
    pub logpush_public_key: Option<String>,
    #[serde(default)]
    pub otel: Option<Vec<OtelExporter>>,
}

impl GatewayUpdate {
    /// Parses and checks a PUT body: 400 / 7001 with the offending field's path otherwise.
    pub(crate) fn parse(body: &[u8]) -> Result<Self, ApiError> {
        let value: Value =
            serde_json::from_slice(body).map_err(|_| ApiError::validation(&["body"]))?;
        for required in [
            "cache_invalidate_on_update",
            "cache_ttl",
            "collect_logs",
            "rate_limiting_interval",
            "rate_limiting_limit",
        ] {
            if value.get(required).is_none() {
                return Err(ApiError::validation(&["body", required]));
            }
        }
        let update: Self =
            serde_json::from_value(value).map_err(|_| ApiError::validation(&["body"]))?;
        if let Some(key) = &update.logpush_public_key {
            // Cloudflare's schema: 16–1024 characters.
            if !(16..=1024).contains(&key.len()) {
                return Err(ApiError::validation(&["body", "logpush_public_key"]));
            }
        }
        if update.logpush == Some(true) && update.logpush_public_key.is_none() {
            return Err(ApiError::validation(&["body", "logpush_public_key"]));
        }
        for exporter in update.otel.iter().flatten() {
            let url_ok = url::Url::parse(&exporter.url)
                .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.has_host());
            let type_ok = exporter
                .content_type
                .as_deref()
                .is_none_or(|t| matches!(t, "json" | "protobuf"));
            if !url_ok || !type_ok {
                return Err(ApiError::validation(&["body", "otel"]));
            }
        }
        Ok(update)
    }
}

/// The only dataset the emulator serves Logpush jobs for.
pub(crate) const AI_GATEWAY_DATASET: &str = "ai_gateway_events";
/// Cloudflare allows four Logpush jobs per account for this dataset.
pub(crate) const MAX_JOBS: usize = 4;

/// The job's `output_options` the emulator honours.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
pub(crate) struct OutputOptions {
    /// `unixnano` (default), `unix` or `rfc3339`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp_format: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_type: Option<String>,
}

/// `POST …/logpush/jobs` body.
#[derive(Clone, Debug, Deserialize)]
pub(crate) struct NewJob {
    pub dataset: Option<String>,
    pub destination_conf: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub enabled: Option<bool>,
    #[serde(default)]
    pub output_options: Option<OutputOptions>,
    #[serde(default)]
    pub max_upload_records: Option<u32>,
}

/// `PUT …/logpush/jobs/{id}` body: every field optional.
#[derive(Clone, Debug, Deserialize)]
pub(crate) struct JobUpdate {
    #[serde(default)]
    pub destination_conf: Option<String>,
    #[serde(default)]
    pub enabled: Option<bool>,
    #[serde(default)]
    pub output_options: Option<OutputOptions>,
    #[serde(default)]
    pub max_upload_records: Option<u32>,
}

/// A Logpush job as the API shows it.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub(crate) struct LogpushJob {
    pub id: u64,
    pub dataset: String,
    pub destination_conf: String,
    pub enabled: bool,
    pub name: Option<String>,
    pub output_options: OutputOptions,
    pub max_upload_records: u32,
    pub kind: &'static str,
    pub frequency: &'static str,
    pub last_complete: Option<String>,
    pub last_error: Option<String>,
    pub error_message: Option<String>,
}

/// Where a job's files go, parsed from `destination_conf`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Destination {
    /// An HTTP(S) endpoint; `header_<Name>=<value>` parameters become request headers and are
    /// not part of the URL the emulator posts to.
    Http {
        url: url::Url,
        headers: Vec<(String, String)>,
    },
    /// `r2://bucket/prefix?account-id=…&access-key-id=…&secret-access-key=…` — written to the
    /// emulator's R2 endpoint.
    R2 {
        bucket: String,
        prefix: String,
        access_key_id: String,
        secret_access_key: String,
    },
}

impl Destination {
    /// Parses `destination_conf`; `allow_http` lets a test use plain-HTTP loopback endpoints
    /// (Cloudflare itself only pushes over HTTPS).
    pub(crate) fn parse(conf: &str, allow_http: bool) -> Result<Self, ApiError> {
        let invalid = || ApiError::validation(&["body", "destination_conf"]);
        let url = url::Url::parse(conf).map_err(|_| invalid())?;
        match url.scheme() {
            "https" | "http" => {
                if url.scheme() == "http" && !allow_http {
                    return Err(invalid());
                }
                let mut headers = Vec::new();
                let mut kept = Vec::new();
                for (name, value) in url.query_pairs() {
                    match name.strip_prefix("header_") {
                        Some(header) if !header.is_empty() => {
                            headers.push((header.to_owned(), value.into_owned()));
                        }
                        _ => kept.push((name.into_owned(), value.into_owned())),
                    }
                }
                let mut target = url.clone();
                target.set_query(None);
                if !kept.is_empty() {
                    target.query_pairs_mut().extend_pairs(kept);
                }
                Ok(Self::Http {
                    url: target,
                    headers,
                })
            }
            "r2" => {
                let bucket = url
                    .host_str()
                    .filter(|b| !b.is_empty())
                    .ok_or_else(invalid)?;
                let param = |key: &str| {
                    url.query_pairs()
                        .find(|(k, _)| k == key)
                        .map(|(_, v)| v.into_owned())
                        .filter(|v| !v.is_empty())
                };
                Ok(Self::R2 {
                    bucket: bucket.to_owned(),
                    prefix: percent_encoding::percent_decode_str(url.path().trim_matches('/'))
                        .decode_utf8()
                        .map_err(|_| invalid())?
                        .into_owned(),
                    access_key_id: param("access-key-id").ok_or_else(invalid)?,
                    secret_access_key: param("secret-access-key").ok_or_else(invalid)?,
                })
            }
            _ => Err(invalid()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_update_needs_cloudflares_required_fields_and_valid_push_settings() {
        let base = r#""cache_invalidate_on_update":false,"cache_ttl":300,"collect_logs":true,"rate_limiting_interval":60,"rate_limiting_limit":600"#;
        assert!(GatewayUpdate::parse(format!("{{{base}}}").as_bytes()).is_ok());
        let missing = GatewayUpdate::parse(br#"{"collect_logs":true}"#).map_err(|e| e.code());
        assert_eq!(missing.err(), Some(7001));
        let short_key = format!(r#"{{{base},"logpush":true,"logpush_public_key":"short"}}"#);
        assert!(GatewayUpdate::parse(short_key.as_bytes()).is_err());
        let no_key = format!(r#"{{{base},"logpush":true}}"#);
        assert!(GatewayUpdate::parse(no_key.as_bytes()).is_err());
        let bad_type = format!(
            r#"{{{base},"otel":[{{"url":"https://x.example/v1/traces","headers":{{}},"content_type":"xml"}}]}}"#
        );
        assert!(GatewayUpdate::parse(bad_type.as_bytes()).is_err());
        let good = format!(
            r#"{{{base},"otel":[{{"url":"https://x.example/v1/traces","headers":{{"Authorization":"Bearer k"}},"content_type":"protobuf"}}]}}"#
        );
        let update = GatewayUpdate::parse(good.as_bytes()).expect("valid");
        assert!(update.otel.expect("otel")[0].protobuf());
    }

    #[test]
    fn destinations_take_headers_out_of_the_url() {
        let http = Destination::parse(
            "https://lg.example/api/v1/ingest/logpush?header_Authorization=Bearer%20k&x=1",
            false,
        )
        .expect("http");
        let Destination::Http { url, headers } = http else {
            panic!("not http");
        };
        assert_eq!(url.as_str(), "https://lg.example/api/v1/ingest/logpush?x=1");
        assert_eq!(
            headers,
            [("Authorization".to_owned(), "Bearer k".to_owned())]
        );
        assert!(Destination::parse("http://127.0.0.1:1/x", false).is_err());
        assert!(Destination::parse("http://127.0.0.1:1/x", true).is_ok());
        let r2 = Destination::parse(
            "r2://logs/ai/{DATE}?account-id=a&access-key-id=k&secret-access-key=s",
            false,
        )
        .expect("r2");
        assert!(
            matches!(r2, Destination::R2 { ref bucket, ref prefix, .. } if bucket == "logs" && prefix == "ai/{DATE}")
        );
        assert!(Destination::parse("r2://logs/ai?account-id=a", false).is_err());
        assert!(Destination::parse("ftp://x/y", true).is_err());
    }
}
