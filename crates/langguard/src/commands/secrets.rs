//! `langguard secrets rotate-key`: seals every stored API token under a new encryption key.
//!
//! Order matters, so an interruption never strands a token: the new key is written to
//! `encryption.key.next` first, then every token is re-sealed in one database transaction, then
//! the next key replaces `encryption.key`. [`finish_interrupted_rotation`] completes or undoes
//! a rotation that stopped half-way, at the next start.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context};
use langguard_secrets::{write_key_file, Binding, Sealer, KEY_FILE_NAME, NEXT_KEY_FILE_NAME};
use langguard_store::{SealedSwap, SealedSwaps, Store};

use crate::app::{try_lock_data_dir, App};

pub async fn rotate_key(app: &App, data_dir: &Path) -> anyhow::Result<ExitCode> {
    let Some(_lock) = try_lock_data_dir(data_dir)? else {
        bail!(
            "a LangGuard server (or another rotation) is using {}; stop it first, then rotate",
            data_dir.display()
        );
    };
    let from_env = std::env::var("LANGGUARD_ENCRYPTION_KEY").is_ok_and(|k| !k.trim().is_empty());
    let (next, next_base64) = Sealer::generate();
    let mut swaps = SealedSwaps::default();
    for (old, binding) in sealed_values(&*app.store).await? {
        let plaintext = app.sealer.open(&old, binding).with_context(|| {
            format!(
                "cannot open {} with the current key; nothing was changed",
                describe(binding)
            )
        })?;
        let new = next.seal(&plaintext, binding);
        swaps_for(&mut swaps, binding).push(SealedSwap {
            id: binding_id(binding),
            old,
            new,
        });
    }
    // The next key is on disk before any credential depends on it.
    let next_path = data_dir.join(NEXT_KEY_FILE_NAME);
    write_key_file(&next_path, &next_base64)
        .with_context(|| format!("cannot write {}", next_path.display()))?;
    let count = swaps.len();
    app.store.replace_sealed_tokens(swaps).await?;
    if from_env {
        println!(
            "Re-sealed {} credentials. Set LANGGUARD_ENCRYPTION_KEY to this new key (a copy is in {} until you delete it):",
            count,
            next_path.display()
        );
        println!("{next_base64}");
        return Ok(ExitCode::SUCCESS);
    }
    std::fs::rename(&next_path, data_dir.join(KEY_FILE_NAME))
        .context("cannot move the new key into place")?;
    println!(
        "Rotated the encryption key and re-sealed {} credentials.",
        count
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
    let sealed = sealed_values(store).await?;
    let under_next = sealed
        .iter()
        .filter(|(s, binding)| next.open(s, *binding).is_ok())
        .count();
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

/// The list of `swaps` a value bound as `binding` goes in.
fn swaps_for(swaps: &mut SealedSwaps, binding: Binding) -> &mut Vec<SealedSwap> {
    match binding {
        Binding::IntegrationToken(_) | Binding::DeviceCookie => &mut swaps.integration_tokens,
        Binding::WebhookSecret(_) => &mut swaps.webhook_secrets,
        Binding::PushPrivateKey(_) => &mut swaps.push_keys,
        Binding::BucketSecret(_) => &mut swaps.bucket_secrets,
    }
}

/// The row a stored value belongs to (device cookies are never stored).
fn binding_id(binding: Binding) -> i64 {
    match binding {
        Binding::IntegrationToken(id)
        | Binding::WebhookSecret(id)
        | Binding::PushPrivateKey(id)
        | Binding::BucketSecret(id) => id,
        Binding::DeviceCookie => 0,
    }
}

/// What a stored value is, for a person.
fn describe(binding: Binding) -> String {
    match binding {
        Binding::IntegrationToken(id) => format!("the API token of integration {id}"),
        Binding::WebhookSecret(id) => format!("the secret of webhook {id}"),
        Binding::PushPrivateKey(id) => format!("the Logpush key of integration {id}"),
        Binding::BucketSecret(id) => format!("the secret access key of bucket {id}"),
        Binding::DeviceCookie => "a device cookie".to_owned(),
    }
}

/// Every stored sealed value with what it is bound to.
async fn sealed_values(store: &dyn Store) -> anyhow::Result<Vec<(Vec<u8>, Binding)>> {
    let integrations = store.list_integrations().await?;
    let mut sealed: Vec<(Vec<u8>, Binding)> = integrations
        .iter()
        .map(|i| (i.sealed_api_token.clone(), Binding::IntegrationToken(i.id)))
        .collect();
    sealed.extend(integrations.iter().filter_map(|i| {
        Some((
            i.sealed_push_private_key.clone()?,
            Binding::PushPrivateKey(i.id),
        ))
    }));
    sealed.extend(
        store
            .list_webhooks()
            .await?
            .into_iter()
            // An email channel without a password has nothing sealed.
            .filter(|w| !w.sealed_secret.is_empty())
            .map(|w| (w.sealed_secret, Binding::WebhookSecret(w.id))),
    );
    sealed.extend(
        store
            .list_buckets(None)
            .await?
            .into_iter()
            .map(|b| (b.sealed_secret, Binding::BucketSecret(b.id))),
    );
    Ok(sealed)
}

/// Re-seals values sealed before each was bound to its purpose and row (a LangGuard before
/// this one sealed them all under one associated data). Runs at every start; once everything
/// is re-sealed it only reads. A value that doesn't open is left as it is (its integration or
/// webhook reports it when used).
pub async fn reseal_legacy(store: &dyn Store, sealer: &Sealer) -> anyhow::Result<usize> {
    let mut swaps = SealedSwaps::default();
    for (old, binding) in sealed_values(store).await? {
        if !Sealer::is_legacy(&old) {
            continue;
        }
        let Ok(plaintext) = sealer.open(&old, binding) else {
            continue;
        };
        let new = sealer.seal(&plaintext, binding);
        swaps_for(&mut swaps, binding).push(SealedSwap {
            id: binding_id(binding),
            old,
            new,
        });
    }
    let count = swaps.len();
    if count == 0 {
        return Ok(0);
    }
    // Legacy values keep opening, so a failure here (a row deleted meanwhile by another
    // instance) costs nothing but a retry at the next start.
    if let Err(e) = store.replace_sealed_tokens(swaps).await {
        tracing::warn!(error = %e, "could not re-seal stored credentials yet; will retry at the next start");
        return Ok(0);
    }
    tracing::info!(
        count,
        "re-sealed stored credentials, each bound to its purpose and row"
    );
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;
    use langguard_store::prelude::*;
    use langguard_store::{NewIntegration, NewWebhook, SealFor, Severity, WebhookEvent};

    #[tokio::test]
    async fn legacy_credentials_are_re_sealed_bound_to_their_row_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = langguard_store_sqlite::SqliteStore::open(
            dir.path().join("t.db").to_str().expect("utf-8"),
        )
        .await
        .expect("store");
        let sealer = Sealer::from_key(&[5; 32]);
        let legacy = sealer.seal_legacy("cf-token");
        let integration = store
            .create_integration(NewIntegration {
                name: "old".into(),
                account_id: "acct".into(),
                api_token: SealFor::new(move |_| legacy.clone()),
                enabled: true,
                sync_interval_minutes: 15,
                lookback_days: None,
                trailing_window_minutes: langguard_store::DEFAULT_TRAILING_WINDOW_MINUTES,
            })
            .await
            .expect("integration");
        let legacy_secret = sealer.seal_legacy("hook-secret");
        let webhook = store
            .create_webhook(NewWebhook {
                url: "https://hooks.example.com/x".into(),
                secret: SealFor::new(move |_| legacy_secret.clone()),
                kind: langguard_store::ChannelKind::Webhook,
                name: String::new(),
                settings: "{}".into(),
                events: vec![WebhookEvent::SyncFailed],
                min_severity: Severity::Low,
                enabled: true,
            })
            .await
            .expect("webhook");
        assert_eq!(reseal_legacy(&store, &sealer).await.expect("reseal"), 2);
        let integration = store.get_integration(integration.id).await.expect("read");
        assert!(!Sealer::is_legacy(&integration.sealed_api_token));
        let binding = Binding::IntegrationToken(integration.id);
        assert_eq!(
            sealer
                .open(&integration.sealed_api_token, binding)
                .expect("opens"),
            "cf-token"
        );
        // Bound to its row: it doesn't open as another integration's token or as a secret.
        let elsewhere = Binding::IntegrationToken(integration.id + 1);
        assert!(sealer
            .open(&integration.sealed_api_token, elsewhere)
            .is_err());
        let as_secret = Binding::WebhookSecret(integration.id);
        assert!(sealer
            .open(&integration.sealed_api_token, as_secret)
            .is_err());
        let webhook = store.get_webhook(webhook.id).await.expect("read");
        let binding = Binding::WebhookSecret(webhook.id);
        assert_eq!(
            sealer.open(&webhook.sealed_secret, binding).expect("opens"),
            "hook-secret"
        );
        // Once re-sealed, a start re-seals nothing.
        assert_eq!(reseal_legacy(&store, &sealer).await.expect("reseal"), 0);
    }
}
