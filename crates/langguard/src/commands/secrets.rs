//! `langguard secrets rotate-key`: seals every stored API token under a new encryption key.
//!
//! Order matters, so an interruption never strands a token: the new key is written to
//! `encryption.key.next` first, then every token is re-sealed in one database transaction, then
//! the next key replaces `encryption.key`. [`finish_interrupted_rotation`] completes or undoes
//! a rotation that stopped half-way, at the next start.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context};
use langguard_secrets::{write_key_file, Sealer, KEY_FILE_NAME, NEXT_KEY_FILE_NAME};
use langguard_store::Store;

use crate::app::{try_lock_data_dir, App};

pub async fn rotate_key(app: &App, data_dir: &Path) -> anyhow::Result<ExitCode> {
    let Some(_lock) = try_lock_data_dir(data_dir)? else {
        bail!(
            "a LangGuard server (or another rotation) is using {}; stop it first, then rotate",
            data_dir.display()
        );
    };
    let from_env = std::env::var("LANGGUARD_ENCRYPTION_KEY").is_ok_and(|k| !k.trim().is_empty());
    let integrations = app.store.list_integrations().await?;
    let (next, next_base64) = Sealer::generate();
    let mut resealed = Vec::with_capacity(integrations.len());
    for integration in &integrations {
        let token = app
            .sealer
            .open(&integration.sealed_api_token)
            .with_context(|| {
                format!(
                    "cannot open the token of {:?} with the current key; nothing was changed",
                    integration.name
                )
            })?;
        resealed.push((integration.id, next.seal(&token)));
    }
    // The next key is on disk before any token depends on it.
    let next_path = data_dir.join(NEXT_KEY_FILE_NAME);
    write_key_file(&next_path, &next_base64)
        .with_context(|| format!("cannot write {}", next_path.display()))?;
    let mut resealed_secrets = Vec::new();
    for webhook in app.store.list_webhooks().await? {
        let secret = app.sealer.open(&webhook.sealed_secret).with_context(|| {
            format!(
                "cannot open the secret of webhook {} with the current key; nothing was changed",
                webhook.id
            )
        })?;
        resealed_secrets.push((webhook.id, next.seal(&secret)));
    }
    app.store
        .replace_sealed_tokens(resealed, resealed_secrets)
        .await?;
    if from_env {
        println!(
            "Re-sealed {} API tokens. Set LANGGUARD_ENCRYPTION_KEY to this new key (a copy is in {} until you delete it):",
            integrations.len(),
            next_path.display()
        );
        println!("{next_base64}");
        return Ok(ExitCode::SUCCESS);
    }
    std::fs::rename(&next_path, data_dir.join(KEY_FILE_NAME))
        .context("cannot move the new key into place")?;
    println!(
        "Rotated the encryption key and re-sealed {} API tokens.",
        integrations.len()
    );
    Ok(ExitCode::SUCCESS)
}

/// After a rotation stopped half-way: if the tokens are already sealed under the next key, it
/// becomes the key; otherwise the next key is dropped. Returns the sealer to use.
pub async fn finish_interrupted_rotation(
    store: &dyn Store,
    current: Sealer,
    data_dir: &Path,
) -> anyhow::Result<Sealer> {
    let next_path = data_dir.join(NEXT_KEY_FILE_NAME);
    let Ok(text) = std::fs::read_to_string(&next_path) else {
        return Ok(current);
    };
    if std::env::var("LANGGUARD_ENCRYPTION_KEY").is_ok_and(|k| !k.trim().is_empty()) {
        // With the key in the environment the file is only the operator's copy.
        return Ok(current);
    }
    // A rotation (or a server) holding the lock is still at work: leave its key alone.
    let Some(_lock) = try_lock_data_dir(data_dir)? else {
        return Ok(current);
    };
    let next = Sealer::from_base64(&text).context("the half-rotated key file is damaged")?;
    // Tokens and webhook secrets are re-sealed in one transaction: all are under one key.
    let mut sealed: Vec<Vec<u8>> = store
        .list_integrations()
        .await?
        .into_iter()
        .map(|i| i.sealed_api_token)
        .collect();
    sealed.extend(
        store
            .list_webhooks()
            .await?
            .into_iter()
            .map(|w| w.sealed_secret),
    );
    let under_next = sealed.iter().filter(|s| next.open(s).is_ok()).count();
    if under_next > 0 {
        if under_next != sealed.len() {
            bail!("stored tokens are sealed under two different keys; restore the database from a backup");
        }
        std::fs::rename(&next_path, data_dir.join(KEY_FILE_NAME))
            .context("cannot finish the key rotation")?;
        tracing::warn!("finished an interrupted encryption key rotation");
        return Ok(next);
    }
    std::fs::remove_file(&next_path).context("cannot drop the unused next key")?;
    tracing::warn!(
        "dropped the key of an encryption key rotation that did not get to re-seal tokens"
    );
    Ok(current)
}
