//! Credentials at rest: AES-256-GCM under a 32-byte key that comes from
//! `LANGGUARD_ENCRYPTION_KEY` (base64) or, when that is unset, from a key file created once with
//! mode 0600 in the data dir. Sealed values are `version ‖ nonce ‖ ciphertext+tag`; the database
//! only ever holds those. Each value is bound (AES-GCM's associated data) to what it is and
//! whose it is — an integration's API token, a webhook's secret, by row id — so a sealed value
//! copied to another row or used for another purpose does not open.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;

/// Values sealed with their [`Binding`].
const VERSION: u8 = 2;
/// Values sealed before bindings, under one fixed associated data; they still open (so the
/// start-up migration can re-seal them) until re-sealed.
const LEGACY_VERSION: u8 = 1;
const LEGACY_AAD: &[u8] = b"langguard:credential:v1";
const NONCE_LEN: usize = 12;

/// What a sealed value is and whose: sealed into it, and needed to open it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Binding {
    /// The Cloudflare API token of integration `id`.
    IntegrationToken(i64),
    /// The signing secret of webhook `id`.
    WebhookSecret(i64),
    /// The Logpush private key (PEM) of integration `id`.
    PushPrivateKey(i64),
    /// The secret access key of push bucket `id`.
    BucketSecret(i64),
    /// A browser's device cookie (it names its account inside).
    DeviceCookie,
}

impl Binding {
    fn aad(self) -> Vec<u8> {
        match self {
            Binding::IntegrationToken(id) => format!("langguard:v2:integration-token:{id}"),
            Binding::WebhookSecret(id) => format!("langguard:v2:webhook-secret:{id}"),
            Binding::PushPrivateKey(id) => format!("langguard:v2:push-private-key:{id}"),
            Binding::BucketSecret(id) => format!("langguard:v2:bucket-secret:{id}"),
            Binding::DeviceCookie => "langguard:v2:device-cookie".to_owned(),
        }
        .into_bytes()
    }
}
pub const KEY_FILE_NAME: &str = "encryption.key";
/// Holds the next key while a rotation is under way (see `langguard secrets rotate-key`).
pub const NEXT_KEY_FILE_NAME: &str = "encryption.key.next";

/// Writes a key file with mode 0600 and syncs it to disk.
pub fn write_key_file(path: &Path, base64_key: &str) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(base64_key.as_bytes())?;
    file.sync_all()
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("LANGGUARD_ENCRYPTION_KEY must be 32 bytes encoded as base64 (e.g. `openssl rand -base64 32`)")]
    BadKey,
    #[error("the key file {path} is unreadable or corrupt: {reason}")]
    BadKeyFile { path: PathBuf, reason: String },
    #[error(
        "a stored credential could not be decrypted: the encryption key differs from the one it was saved with, or the data is damaged"
    )]
    Undecryptable,
    #[error(
        "the key file {path} can be read by other users (mode {mode:o}); make it private with \
         `chmod 600 {path}` (and check who copied it) before starting LangGuard"
    )]
    KeyFileExposed { path: PathBuf, mode: u32 },
}

/// Refuses a key file that others than its owner may read or write.
fn check_key_file_mode(path: &Path) -> Result<(), SecretError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path) {
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(SecretError::KeyFileExposed {
                    path: path.to_path_buf(),
                    mode,
                });
            }
        }
    }
    Ok(())
}

/// Seals and opens credentials. Its `Debug` never shows the key.
#[derive(Clone)]
pub struct Sealer {
    cipher: Aes256Gcm,
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Sealer(<key redacted>)")
    }
}

impl Sealer {
    pub fn from_key(key: &[u8; 32]) -> Self {
        Self {
            cipher: Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(key)),
        }
    }

    pub fn from_base64(key: &str) -> Result<Self, SecretError> {
        let bytes = BASE64.decode(key.trim()).map_err(|_| SecretError::BadKey)?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| SecretError::BadKey)?;
        Ok(Self::from_key(&key))
    }

    /// The key from `env_key` if given, else from `<data_dir>/encryption.key`, created with
    /// mode 0600 on first use.
    pub fn load_or_create(env_key: Option<&str>, data_dir: &Path) -> Result<Self, SecretError> {
        if let Some(key) = env_key.filter(|k| !k.trim().is_empty()) {
            return Self::from_base64(key);
        }
        let path = data_dir.join(KEY_FILE_NAME);
        let bad = |reason: String| SecretError::BadKeyFile {
            path: path.clone(),
            reason,
        };
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                check_key_file_mode(&path)?;
                Self::from_base64(&text).map_err(|e| bad(e.to_string()))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(data_dir).map_err(|e| bad(e.to_string()))?;
                let key = Aes256Gcm::generate_key(OsRng);
                // Written whole to a private temporary file, then linked into place: a crash
                // can't leave a half-written key, and of two processes starting at once the
                // second finds the first one's key rather than replacing it.
                let tmp = data_dir.join(format!(".{KEY_FILE_NAME}.{}.tmp", std::process::id()));
                let mut options = std::fs::OpenOptions::new();
                options.write(true).create(true).truncate(true);
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
                let written = options.open(&tmp).and_then(|mut file| {
                    file.write_all(BASE64.encode(key).as_bytes())?;
                    file.sync_all()
                });
                let linked = written.and_then(|_| std::fs::hard_link(&tmp, &path));
                let _ = std::fs::remove_file(&tmp);
                match linked {
                    Ok(()) => Ok(Self {
                        cipher: Aes256Gcm::new(&key),
                    }),
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        Self::load_or_create(None, data_dir)
                    }
                    Err(e) => Err(bad(e.to_string())),
                }
            }
            Err(e) => Err(bad(e.to_string())),
        }
    }

    /// A new random key, and its base64 form (what the key file and the env variable hold).
    pub fn generate() -> (Self, String) {
        let key = Aes256Gcm::generate_key(OsRng);
        (
            Self {
                cipher: Aes256Gcm::new(&key),
            },
            BASE64.encode(key),
        )
    }

    /// Seals `plaintext` as what `binding` says it is.
    pub fn seal(&self, plaintext: &str, binding: Binding) -> Vec<u8> {
        self.seal_with(VERSION, &binding.aad(), plaintext)
    }

    /// `version ‖ nonce ‖ ciphertext+tag` of `plaintext` under `aad`.
    fn seal_with(&self, version: u8, aad: &[u8], plaintext: &str) -> Vec<u8> {
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let ciphertext = self
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext.as_bytes(),
                    aad,
                },
            )
            // AES-GCM encryption only fails for messages of gigabytes; a token is tiny.
            .expect("AES-GCM encryption of a short credential cannot fail");
        let mut out = Vec::with_capacity(1 + NONCE_LEN + ciphertext.len());
        out.push(version);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ciphertext);
        out
    }

    /// Opens a value sealed as `binding` (or sealed before bindings existed).
    pub fn open(&self, sealed: &[u8], binding: Binding) -> Result<String, SecretError> {
        if sealed.len() < 1 + NONCE_LEN {
            return Err(SecretError::Undecryptable);
        }
        let aad = match sealed[0] {
            VERSION => binding.aad(),
            // Only credentials were sealed before bindings, and only until re-sealed at start.
            LEGACY_VERSION if binding != Binding::DeviceCookie => LEGACY_AAD.to_vec(),
            _ => return Err(SecretError::Undecryptable),
        };
        let nonce = Nonce::from_slice(&sealed[1..1 + NONCE_LEN]);
        let plaintext = self
            .cipher
            .decrypt(
                nonce,
                Payload {
                    msg: &sealed[1 + NONCE_LEN..],
                    aad: &aad,
                },
            )
            .map_err(|_| SecretError::Undecryptable)?;
        String::from_utf8(plaintext).map_err(|_| SecretError::Undecryptable)
    }

    /// Seals `plaintext` once the row it belongs to has an id: what a store's insert calls
    /// (e.g. `sealer.sealing(token, Binding::IntegrationToken)`).
    pub fn sealing(
        &self,
        plaintext: String,
        binding: fn(i64) -> Binding,
    ) -> impl Fn(i64) -> Vec<u8> + Send + Sync + 'static {
        let sealer = self.clone();
        move |id| sealer.seal(&plaintext, binding(id))
    }

    /// Seals as a LangGuard before bindings did: only for tests of the migration that
    /// re-seals such values.
    #[doc(hidden)]
    pub fn seal_legacy(&self, plaintext: &str) -> Vec<u8> {
        self.seal_with(LEGACY_VERSION, LEGACY_AAD, plaintext)
    }

    /// Whether a value was sealed before bindings (the start-up migration re-seals those).
    pub fn is_legacy(sealed: &[u8]) -> bool {
        sealed.first() == Some(&LEGACY_VERSION)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_and_opens_without_the_plaintext_showing() {
        let sealer = Sealer::from_key(&[7; 32]);
        let token = Binding::IntegrationToken(1);
        let sealed = sealer.seal("cf-secret-token", token);
        assert!(!sealed.windows(9).any(|w| w == b"cf-secret"));
        assert_eq!(
            sealer.open(&sealed, token).expect("opens"),
            "cf-secret-token"
        );
        // Fresh nonce each time.
        assert_ne!(sealer.seal("cf-secret-token", token), sealed);
        assert!(!format!("{sealer:?}").contains('7'));
    }

    #[test]
    fn a_wrong_key_or_damaged_data_is_refused() {
        let token = Binding::IntegrationToken(1);
        let sealed = Sealer::from_key(&[7; 32]).seal("token", token);
        assert!(Sealer::from_key(&[8; 32]).open(&sealed, token).is_err());
        let mut damaged = sealed.clone();
        let last = damaged.len() - 1;
        damaged[last] ^= 1;
        assert!(Sealer::from_key(&[7; 32]).open(&damaged, token).is_err());
        assert!(Sealer::from_key(&[7; 32]).open(&[], token).is_err());
    }

    #[test]
    fn a_value_opens_only_as_what_and_whose_it_was_sealed() {
        let sealer = Sealer::from_key(&[7; 32]);
        let sealed = sealer.seal("secret", Binding::IntegrationToken(3));
        assert!(sealer.open(&sealed, Binding::IntegrationToken(4)).is_err());
        assert!(sealer.open(&sealed, Binding::WebhookSecret(3)).is_err());
        assert!(sealer.open(&sealed, Binding::DeviceCookie).is_err());
        assert_eq!(
            sealer
                .open(&sealed, Binding::IntegrationToken(3))
                .expect("its own"),
            "secret"
        );
        assert!(!Sealer::is_legacy(&sealed));
    }

    #[test]
    fn values_sealed_before_bindings_still_open_until_re_sealed() {
        let sealer = Sealer::from_key(&[7; 32]);
        let legacy = sealer.seal_legacy("old-token");
        assert!(Sealer::is_legacy(&legacy));
        assert_eq!(
            sealer
                .open(&legacy, Binding::IntegrationToken(9))
                .expect("legacy"),
            "old-token"
        );
    }

    #[test]
    fn key_file_is_created_once_with_owner_only_mode() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = Sealer::load_or_create(None, dir.path()).expect("create");
        let b = Sealer::load_or_create(None, dir.path()).expect("load");
        let binding = Binding::WebhookSecret(1);
        assert_eq!(
            b.open(&a.seal("x", binding), binding).expect("same key"),
            "x"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(KEY_FILE_NAME))
                .expect("meta")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn env_key_must_be_32_bytes_of_base64() {
        assert!(Sealer::from_base64("not base64!").is_err());
        assert!(Sealer::from_base64(&BASE64.encode([1u8; 16])).is_err());
        assert!(Sealer::from_base64(&BASE64.encode([1u8; 32])).is_ok());
    }
}
