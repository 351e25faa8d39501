//! Logpush's encrypted fields. Each log's `Metadata`, `RequestBody` and `ResponseBody` is
//! `{type: "encrypted", key, iv, data}` (base64): an AES-256-GCM key wrapped with the gateway's
//! RSA public key (RSA-OAEP, SHA-256), and the field's JSON encrypted with it (the 16-byte tag
//! at the end of `data`, as WebCrypto writes it). LangGuard makes each integration's key pair;
//! the public key goes to the gateway (`logpush_public_key`).
//!
//! The RSA unwrap is the cost (milliseconds; the AES part is microseconds), so unwrapped keys
//! are remembered by the wrapped key's hash: the fields of one log sharing a key, and the
//! duplicate files at-least-once delivery brings, unwrap once.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use aes_gcm::aead::consts::U16;
use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, AesGcm, Nonce};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs8::{
    DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, LineEnding,
};
use rsa::sha2::Sha256;
use rsa::{PrivateKey, PublicKey};
use serde_json::Value;
use sha2::Digest;

/// Modulus size of the key pairs LangGuard makes: what Cloudflare's own instructions generate
/// (`openssl genrsa 2048`), and a third of a 3,072-bit key's unwrap time.
pub const KEY_BITS: usize = 2048;

/// Unwrapped keys remembered per integration (about 100 bytes each); half go when it is full.
const KEY_CACHE: usize = 65_536;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    #[error("the private key is not a PEM RSA key (PKCS#8 `BEGIN PRIVATE KEY` or PKCS#1 `BEGIN RSA PRIVATE KEY`)")]
    BadPrivateKey,
    #[error("the public key is not a PEM RSA public key (`BEGIN PUBLIC KEY`)")]
    BadPublicKey,
    #[error("could not generate an RSA key pair: {0}")]
    KeyGeneration(String),
    #[error("the encrypted field is malformed: {0}")]
    Malformed(&'static str),
    #[error("the field's key was not wrapped with this integration's public key (was the gateway's logpush_public_key changed?)")]
    WrongKey,
    #[error("the field's data does not decrypt with its key (damaged or altered)")]
    Damaged,
}

/// An integration's Logpush key pair, as PEM: the public key (SPKI, `BEGIN PUBLIC KEY`) for
/// the gateway, the private key (PKCS#8) to seal and keep. Not `Debug`: it holds the key.
pub struct KeyPair {
    pub public_pem: String,
    pub private_pem: String,
}

/// A new [`KEY_BITS`]-bit key pair.
pub fn generate_key_pair() -> Result<KeyPair, CryptoError> {
    let mut rng = rsa::rand_core::UnwrapErr(getrandom::SysRng);
    let key = PrivateKey::new(&mut rng, KEY_BITS)
        .map_err(|e| CryptoError::KeyGeneration(e.to_string()))?;
    let public_pem = key
        .to_public_key()
        .to_public_key_pem(LineEnding::LF)
        .map_err(|e| CryptoError::KeyGeneration(e.to_string()))?;
    let private_pem = key
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| CryptoError::KeyGeneration(e.to_string()))?
        .to_string();
    Ok(KeyPair {
        public_pem,
        private_pem,
    })
}

/// Whether a field holds an encrypted object (`{"type": "encrypted", …}`).
pub fn is_encrypted(value: &Value) -> bool {
    value.get("type").and_then(Value::as_str) == Some("encrypted")
}

/// Opens encrypted fields with one integration's private key; shared by every thread that
/// decodes that integration's files (the unwrap itself runs outside any lock).
pub struct FieldDecryptor {
    key: PrivateKey,
    /// By the SHA-256 of the wrapped key: the AES key, or `None` for one that did not unwrap
    /// (a pusher sending the same bad key again costs nothing the second time).
    unwrapped: Mutex<HashMap<[u8; 32], Option<[u8; 32]>>>,
    unwraps: AtomicU64,
    cache_hits: AtomicU64,
}

impl FieldDecryptor {
    /// From a PEM private key: PKCS#8 (what LangGuard, Node and `openssl genpkey` write) or
    /// PKCS#1 (`openssl genrsa` before OpenSSL 3).
    pub fn from_pem(pem: &str) -> Result<Self, CryptoError> {
        let key = PrivateKey::from_pkcs8_pem(pem.trim())
            .or_else(|_| PrivateKey::from_pkcs1_pem(pem.trim()))
            .map_err(|_| CryptoError::BadPrivateKey)?;
        Ok(Self {
            key,
            unwrapped: Mutex::new(HashMap::new()),
            unwraps: AtomicU64::new(0),
            cache_hits: AtomicU64::new(0),
        })
    }

    /// RSA unwraps done, and unwraps spared by the cache, so far.
    pub fn counts(&self) -> (u64, u64) {
        (
            self.unwraps.load(Ordering::Relaxed),
            self.cache_hits.load(Ordering::Relaxed),
        )
    }

    /// The plaintext of an encrypted field.
    pub fn open(&self, field: &Value) -> Result<Vec<u8>, CryptoError> {
        let part = |name: &'static str| -> Result<Vec<u8>, CryptoError> {
            let text = field
                .get(name)
                .and_then(Value::as_str)
                .ok_or(CryptoError::Malformed(match name {
                    "key" => "no base64 `key`",
                    "iv" => "no base64 `iv`",
                    _ => "no base64 `data`",
                }))?;
            STANDARD
                .decode(text.trim())
                .map_err(|_| CryptoError::Malformed("a part is not base64"))
        };
        let wrapped = part("key")?;
        let iv = part("iv")?;
        let data = part("data")?;
        let aes_key = self.unwrap_key(&wrapped)?;
        match iv.len() {
            12 => Aes256Gcm::new(&aes_key.into())
                .decrypt(Nonce::from_slice(&iv), data.as_slice())
                .map_err(|_| CryptoError::Damaged),
            16 => AesGcm::<aes_gcm::aes::Aes256, U16>::new(&aes_key.into())
                .decrypt(aes_gcm::Nonce::<U16>::from_slice(&iv), data.as_slice())
                .map_err(|_| CryptoError::Damaged),
            _ => Err(CryptoError::Malformed("the iv is neither 12 nor 16 bytes")),
        }
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Option<[u8; 32]>>> {
        self.unwrapped.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn unwrap_key(&self, wrapped: &[u8]) -> Result<[u8; 32], CryptoError> {
        let id: [u8; 32] = sha2::Sha256::digest(wrapped).into();
        if let Some(known) = self.cache().get(&id).copied() {
            self.cache_hits.fetch_add(1, Ordering::Relaxed);
            return known.ok_or(CryptoError::WrongKey);
        }
        self.unwraps.fetch_add(1, Ordering::Relaxed);
        let unwrapped = self.unwrap_uncached(wrapped);
        let mut cache = self.cache();
        if cache.len() >= KEY_CACHE {
            // An arbitrary half: what repeats (a duplicate file) repeats soon after.
            let drop: Vec<[u8; 32]> = cache.keys().take(KEY_CACHE / 2).copied().collect();
            for k in drop {
                cache.remove(&k);
            }
        }
        cache.insert(id, unwrapped.as_ref().ok().copied());
        unwrapped
    }

    fn unwrap_uncached(&self, wrapped: &[u8]) -> Result<[u8; 32], CryptoError> {
        let key = self
            .key
            .oaep_decrypt::<Sha256>(wrapped)
            .map_err(|_| CryptoError::WrongKey)?;
        key.try_into().map_err(|_| CryptoError::WrongKey)
    }
}

/// Encrypts fields as AI Gateway does, for one log: one AES key wrapped once, each field with
/// its own IV. What the emulator and tests push.
pub struct FieldSealer {
    wrapped: String,
    cipher: Aes256Gcm,
}

impl FieldSealer {
    /// A new log's sealer for the gateway's public key (PEM, SPKI).
    pub fn new(public_pem: &str) -> Result<Self, CryptoError> {
        let public = PublicKey::from_public_key_pem(public_pem.trim())
            .map_err(|_| CryptoError::BadPublicKey)?;
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).map_err(|e| CryptoError::KeyGeneration(e.to_string()))?;
        let wrapped = public
            .oaep_encrypt::<Sha256>(&key)
            .map_err(|_| CryptoError::BadPublicKey)?;
        Ok(Self {
            wrapped: STANDARD.encode(wrapped),
            cipher: Aes256Gcm::new(&key.into()),
        })
    }

    /// `plaintext` as an encrypted field.
    pub fn seal(&self, plaintext: &[u8]) -> Value {
        let mut iv = [0u8; 12];
        // The OS RNG does not fail on the platforms LangGuard runs on; a zero IV would only
        // weaken test data, never a stored secret.
        let _ = getrandom::fill(&mut iv);
        let data = self
            .cipher
            .encrypt(Nonce::from_slice(&iv), plaintext)
            .unwrap_or_default();
        serde_json::json!({
            "type": "encrypted",
            "key": self.wrapped,
            "iv": STANDARD.encode(iv),
            "data": STANDARD.encode(data),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_sealed_for_a_generated_key_open_with_it_and_only_with_it() {
        let pair = generate_key_pair().expect("key pair");
        assert!(pair.public_pem.starts_with("-----BEGIN PUBLIC KEY-----"));
        assert!(pair.private_pem.starts_with("-----BEGIN PRIVATE KEY-----"));
        let sealer = FieldSealer::new(&pair.public_pem).expect("sealer");
        let metadata = sealer.seal(br#"{"team":"search"}"#);
        let body = sealer.seal(br#"{"usage":{"prompt_tokens":3}}"#);
        assert!(is_encrypted(&metadata));
        let open = FieldDecryptor::from_pem(&pair.private_pem).expect("key");
        assert_eq!(
            open.open(&metadata).expect("opens"),
            br#"{"team":"search"}"#
        );
        assert_eq!(
            open.open(&body).expect("opens"),
            br#"{"usage":{"prompt_tokens":3}}"#
        );
        assert_eq!(open.counts(), (1, 1), "one unwrap per log");

        let other = generate_key_pair().expect("key pair");
        let wrong = FieldDecryptor::from_pem(&other.private_pem).expect("key");
        assert_eq!(wrong.open(&metadata), Err(CryptoError::WrongKey));
        // A bad key sent again is refused from the cache, without another RSA operation.
        assert_eq!(wrong.open(&body), Err(CryptoError::WrongKey));
        assert_eq!(wrong.counts(), (1, 1));

        let mut tampered = metadata.clone();
        tampered["data"] = Value::String(STANDARD.encode(b"0123456789abcdef0123"));
        assert_eq!(open.open(&tampered), Err(CryptoError::Damaged));
        assert!(matches!(
            open.open(&serde_json::json!({"type": "encrypted", "data": "x"})),
            Err(CryptoError::Malformed(_))
        ));
        assert!(FieldDecryptor::from_pem("not a key").is_err());
    }
}
