//! Credentials: password hashing (Argon2id, a few at a time), the password rules, and the
//! random tokens LangGuard hands out (API keys), stored only as hashes.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::{OpsError, OpsResult};

/// Argon2 takes ~19 MiB and real CPU per check: a few at a time, however many sign-ins arrive.
fn argon2_permits() -> &'static tokio::sync::Semaphore {
    static PERMITS: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    PERMITS.get_or_init(|| tokio::sync::Semaphore::new(4))
}

/// Hashes a password with Argon2id (the crate's default), on the blocking pool: it is slow by
/// design.
pub async fn hash_password(password: String) -> anyhow::Result<String> {
    let _permit = argon2_permits().acquire().await?;
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| anyhow::anyhow!("cannot hash the password: {e}"))
    })
    .await?
}

pub async fn verify_password(password: String, hash: String) -> bool {
    let Ok(_permit) = argon2_permits().acquire().await else {
        return false;
    };
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&hash)
            .map(|parsed| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok()
            })
            .unwrap_or(false)
    })
    .await
    .unwrap_or(false)
}

/// A hash to check unknown accounts against, so a sign-in takes as long whether or not the
/// email exists.
pub async fn dummy_hash() -> String {
    static DUMMY: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();
    DUMMY
        .get_or_init(|| async {
            hash_password("not a real password, only for timing".into())
                .await
                .unwrap_or_default()
        })
        .await
        .clone()
}

/// A password people may choose: long enough to mean something.
pub fn check_password_rules(password: &str) -> OpsResult<()> {
    if password.chars().count() < 12 {
        return Err(OpsError::invalid(
            "weak_password",
            "a password needs at least 12 characters",
        ));
    }
    Ok(())
}

/// The SHA-256 of a token: what is stored of sessions and API keys.
pub fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

pub const API_KEY_PREFIX: &str = "lgr_";

/// A new API key (shown once) and the hash that is stored for it.
pub fn new_api_key() -> (String, Vec<u8>) {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    let key = format!("{API_KEY_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes));
    let hash = token_hash(&key);
    (key, hash)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn passwords_hash_and_verify() {
        let hash = hash_password("correct horse battery".into())
            .await
            .expect("hash");
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery".into(), hash.clone()).await);
        assert!(!verify_password("wrong".into(), hash).await);
        assert!(!verify_password("x".into(), "not a hash".into()).await);
    }
}
