//! Request and response bodies from Cloudflare for the policy worker, through each
//! integration's own client — so body fetches share the integration's rate budget with its
//! syncs (the limiter is per token, process-wide).

use langguard_cloudflare::{ClientConfig, CloudflareError};
use langguard_policy::BodySource;
use langguard_secrets::Sealer;
use langguard_store::{Bodies, IngestSource, Integration, Interaction};

use crate::client_for;

/// Longest body kept, in bytes; a longer one is cut at a character boundary.
const MAX_BODY_BYTES: usize = 256 * 1024;

pub struct CloudflareBodies {
    sealer: Sealer,
    config: ClientConfig,
}

impl CloudflareBodies {
    pub fn new(sealer: Sealer, config: ClientConfig) -> Self {
        Self { sealer, config }
    }
}

fn text(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    if text.len() <= MAX_BODY_BYTES {
        return text.into_owned();
    }
    let mut end = MAX_BODY_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

/// Errors that no other log of the integration will get past this pass.
fn stops_the_integration(e: &CloudflareError) -> bool {
    matches!(
        e,
        CloudflareError::AuthFailed { .. }
            | CloudflareError::PermissionDenied { .. }
            | CloudflareError::RateLimited { .. }
            | CloudflareError::Network(_)
    )
}

#[async_trait::async_trait]
impl BodySource for CloudflareBodies {
    async fn fetch(
        &self,
        integration: &Integration,
        interactions: &[Interaction],
    ) -> Vec<(i64, Bodies)> {
        let client = match client_for(&self.sealer, &self.config, integration) {
            Ok(client) => client,
            Err(e) => {
                tracing::warn!(integration = %integration.name, error = %e, "cannot fetch bodies");
                return Vec::new();
            }
        };
        let mut out = Vec::with_capacity(interactions.len());
        // Pushed logs brought their bodies along (or had none to bring): Cloudflare's Logs API
        // does not know their ids.
        let pulled = interactions
            .iter()
            .filter(|i| IngestSource::of_log_id(&i.log.log_id) == IngestSource::LogsApi);
        for i in pulled {
            let request = client.get_log_request(&i.gateway, &i.log.log_id).await;
            let response = match &request {
                Ok(_) => client.get_log_response(&i.gateway, &i.log.log_id).await,
                Err(_) => Ok(None),
            };
            match (request, response) {
                (Ok(request), Ok(response)) => out.push((
                    i.id,
                    Bodies {
                        request: request.map(|b| text(&b.bytes)),
                        response: response.map(|b| text(&b.bytes)),
                    },
                )),
                (Err(e), _) | (_, Err(e)) => {
                    tracing::warn!(
                        integration = %integration.name,
                        log_id = %i.log.log_id,
                        error = %e,
                        "could not fetch a log's bodies; it is evaluated without them"
                    );
                    if stops_the_integration(&e) {
                        break;
                    }
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn long_bodies_are_cut_on_a_character_boundary() {
        let body = "é".repeat(super::MAX_BODY_BYTES);
        let cut = super::text(body.as_bytes());
        assert!(cut.len() <= super::MAX_BODY_BYTES);
        assert!(cut.chars().all(|c| c == 'é'));
    }
}
