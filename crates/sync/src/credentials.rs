//! An integration's Cloudflare client, from its sealed token: the one place that opens a
//! stored token (syncs, body fetches and connection tests of saved integrations all come here).

use langguard_cloudflare::{ClientConfig, CloudflareClient, CloudflareError};
use langguard_secrets::{Binding, Sealer};
use langguard_store::Integration;

/// Why an integration's client could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ClientForError {
    #[error("the stored API token cannot be decrypted: {0}")]
    Credentials(String),
    #[error(transparent)]
    Cloudflare(#[from] CloudflareError),
}

/// The integration's API token, opened.
pub fn integration_token(
    sealer: &Sealer,
    integration: &Integration,
) -> Result<String, ClientForError> {
    sealer
        .open(
            &integration.sealed_api_token,
            Binding::IntegrationToken(integration.id),
        )
        .map_err(|e| ClientForError::Credentials(e.to_string()))
}

/// A client for the integration's account, with its own token (and so its rate budget).
pub fn client_for(
    sealer: &Sealer,
    config: &ClientConfig,
    integration: &Integration,
) -> Result<CloudflareClient, ClientForError> {
    let token = integration_token(sealer, integration)?;
    Ok(CloudflareClient::new(
        config,
        &integration.account_id,
        &token,
    )?)
}
