//! The record's signing key (DESIGN section 5): Ed25519 (`ring`), kept outside the data
//! directory so that whoever can rewrite a record cannot also re-sign it.
//!
//! Where the key lives, first match wins:
//! 1. `KEYFIRE_SIGNING_KEY_FILE` (a 0600 file; tests and machines that want a fixed place);
//! 2. the OS keyring (service `keyfire-record-signing`), when a persistent one is reachable;
//! 3. `record-signing.key` (0600) in the config directory.
//!
//! The key is created on first use. Its public half is also appended to a `.pub` list beside
//! it (`record-signing.pub` in the config directory, or `FILE.pub`): `record verify` on this
//! machine trusts the keys in that list, so a record re-signed with a stranger's key is caught
//! without any private key. `--public-key FILE` names the trusted key elsewhere.
//!
//! The private key (PKCS#8) is held in a `Zeroizing` buffer and never printed.

use std::path::{Path, PathBuf};

use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use zeroize::Zeroizing;

use super::files;
use crate::keyring::Keyring;
use crate::secret::Secret;

pub const KEY_FILE_ENV: &str = "KEYFIRE_SIGNING_KEY_FILE";
const KEYRING_SERVICE: &str = "keyfire-record-signing";
const KEYRING_NAME: &str = "record-signing-key";
const KEY_FILE: &str = "record-signing.key";
const PUB_FILE: &str = "record-signing.pub";
/// Domain separation: a head signature can never be mistaken for a signature over anything
/// else this key might sign later.
const HEAD_CONTEXT: &str = "keyfire.record.head/1";

#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    #[error("cannot use the record signing key {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the record signing key {path} is unusable: {reason}")]
    Invalid { path: String, reason: String },
    #[error(
        "the record signing key {0} lies inside the data directory: whoever can rewrite a record could re-sign it. Keep it elsewhere (KEYFIRE_SIGNING_KEY_FILE)"
    )]
    InsideDataDir(PathBuf),
}

/// An Ed25519 public key, written `ed25519:<64 hex digits>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey([u8; 32]);

impl PublicKey {
    pub fn to_text(&self) -> String {
        format!("ed25519:{}", hex::encode(self.0))
    }

    pub fn parse(text: &str) -> Option<Self> {
        let hex_part = text.trim().strip_prefix("ed25519:")?;
        let bytes = hex::decode(hex_part).ok()?;
        Some(Self(bytes.try_into().ok()?))
    }

    /// Whether `sig` (hex) is this key's signature over `message`.
    pub fn verifies(&self, message: &[u8], sig_hex: &str) -> bool {
        let Ok(sig) = hex::decode(sig_hex) else {
            return false;
        };
        UnparsedPublicKey::new(&ED25519, &self.0)
            .verify(message, &sig)
            .is_ok()
    }
}

/// The bytes a head signature covers.
/// A head rebuilt after a crash: the line it was rebuilt at and what the head was.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Rebuilt {
    pub seq: u64,
    pub was: String,
}

pub fn head_message(seq: u64, hash: &str, rebuilt: &[Rebuilt]) -> Vec<u8> {
    let rebuilt = serde_json::to_value(rebuilt).unwrap_or(serde_json::Value::Null);
    let body = serde_json::json!({ "seq": seq, "hash": hash, "rebuilt": rebuilt });
    format!("{HEAD_CONTEXT}\n{}", super::canonical_json(&body)).into_bytes()
}

pub struct Signer {
    pair: Ed25519KeyPair,
    public: PublicKey,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("public", &self.public.to_text())
            .finish()
    }
}

impl Signer {
    pub fn public(&self) -> &PublicKey {
        &self.public
    }

    pub fn sign_hex(&self, message: &[u8]) -> String {
        hex::encode(self.pair.sign(message).as_ref())
    }

    fn from_pkcs8(pkcs8: &[u8], origin: &str) -> Result<Self, SigningError> {
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8).map_err(|e| SigningError::Invalid {
            path: origin.to_string(),
            reason: format!("not an Ed25519 PKCS#8 key ({e})"),
        })?;
        let public = PublicKey(pair.public_key().as_ref().try_into().map_err(|_| {
            SigningError::Invalid {
                path: origin.to_string(),
                reason: "public key is not 32 bytes".into(),
            }
        })?);
        Ok(Self { pair, public })
    }

    /// A fresh key (tests and first use).
    pub fn generate() -> Result<(Self, Zeroizing<String>), SigningError> {
        let rng = ring::rand::SystemRandom::new();
        let doc = Ed25519KeyPair::generate_pkcs8(&rng).map_err(|e| SigningError::Invalid {
            path: "(new key)".into(),
            reason: e.to_string(),
        })?;
        let text = Zeroizing::new(hex::encode(doc.as_ref()));
        Ok((Self::from_pkcs8(doc.as_ref(), "(new key)")?, text))
    }

    /// The signing key, created on first use where the module docs say. `data_dir` is where
    /// records live: the key must not be under it.
    pub fn load_or_create(data_dir: &Path) -> Result<Self, SigningError> {
        match home() {
            Home::File(path) => {
                refuse_inside(&path, data_dir)?;
                load_or_create_file(&path)
            }
            Home::Keyring(kr) => match load_or_create_keyring(&kr) {
                Ok(s) => Ok(s),
                // A keyring that answered `has` but then failed: fall back to the file.
                Err(_) => {
                    let path = crate::paths::config_dir().join(KEY_FILE);
                    refuse_inside(&path, data_dir)?;
                    load_or_create_file(&path)
                }
            },
        }
    }
}

enum Home {
    File(PathBuf),
    Keyring(Keyring),
}

fn home() -> Home {
    if let Some(p) = std::env::var_os(KEY_FILE_ENV).filter(|p| !p.is_empty()) {
        return Home::File(PathBuf::from(p));
    }
    let kr = Keyring::system();
    // The mock keyring forgets everything when the process ends: useless for a key that must
    // outlive it.
    if !kr.backend().starts_with("mock") && kr.has(KEYRING_SERVICE, KEYRING_NAME).is_ok() {
        return Home::Keyring(kr);
    }
    Home::File(crate::paths::config_dir().join(KEY_FILE))
}

/// Where this machine's trusted public keys are listed.
pub fn trusted_list_path() -> PathBuf {
    match std::env::var_os(KEY_FILE_ENV).filter(|p| !p.is_empty()) {
        Some(p) => {
            let mut s = p;
            s.push(".pub");
            PathBuf::from(s)
        }
        None => crate::paths::config_dir().join(PUB_FILE),
    }
}

/// The public keys this machine has signed with (empty when it never signed).
pub fn trusted_keys() -> Vec<PublicKey> {
    read_public_keys(&trusted_list_path()).unwrap_or_default()
}

/// Public keys in a file, one `ed25519:<hex>` a line (`#` comments allowed).
pub fn read_public_keys(path: &Path) -> Result<Vec<PublicKey>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        out.push(PublicKey::parse(line).ok_or_else(|| {
            format!(
                "{}:{}: not a public key (expected `ed25519:` and 64 hex digits)",
                path.display(),
                i + 1
            )
        })?);
    }
    Ok(out)
}

fn refuse_inside(key: &Path, data_dir: &Path) -> Result<(), SigningError> {
    let canon = |p: &Path| {
        p.canonicalize().unwrap_or_else(|_| {
            // The key may not exist yet: canonicalize its directory.
            match (p.parent(), p.file_name()) {
                (Some(d), Some(n)) => d
                    .canonicalize()
                    .map(|d| d.join(n))
                    .unwrap_or_else(|_| p.to_path_buf()),
                _ => p.to_path_buf(),
            }
        })
    };
    let key_c = canon(key);
    let data_c = canon(data_dir);
    if key_c.starts_with(&data_c) || key.starts_with(data_dir) {
        return Err(SigningError::InsideDataDir(key.to_path_buf()));
    }
    Ok(())
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SigningError + '_ {
    move |source| SigningError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn load_or_create_file(path: &Path) -> Result<Signer, SigningError> {
    match files::read(path) {
        Ok(bytes) => {
            check_private_mode(path)?;
            let text = Zeroizing::new(String::from_utf8_lossy(&bytes).trim().to_string());
            let pkcs8 =
                Zeroizing::new(
                    hex::decode(text.as_str()).map_err(|_| SigningError::Invalid {
                        path: path.display().to_string(),
                        reason: "not hex".into(),
                    })?,
                );
            let signer = Signer::from_pkcs8(&pkcs8, &path.display().to_string())?;
            remember_public(signer.public())?;
            Ok(signer)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let (signer, text) = Signer::generate()?;
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                files::private_dir(dir).map_err(io(dir))?;
            }
            // Written whole to a private temporary file, then published without replacing
            // anything: two first uses at once keep the first key, and the loser reads it
            // back complete (an exclusive create of the final name let it read an empty file).
            let dir = path
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            let mut tmp = tempfile::Builder::new()
                .prefix(".record-signing")
                .tempfile_in(dir)
                .map_err(io(dir))?;
            {
                use std::io::Write;
                tmp.write_all(text.as_bytes()).map_err(io(path))?;
                tmp.as_file().sync_all().map_err(io(path))?;
            }
            match tmp.persist_noclobber(path) {
                Ok(_) => {
                    files::sync_dir(dir).map_err(io(dir))?;
                    remember_public(signer.public())?;
                    Ok(signer)
                }
                Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => {
                    load_or_create_file(path)
                }
                Err(e) => Err(io(path)(e.error)),
            }
        }
        Err(e) => Err(io(path)(e)),
    }
}

#[cfg(unix)]
fn check_private_mode(path: &Path) -> Result<(), SigningError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .map_err(io(path))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(SigningError::Invalid {
            path: path.display().to_string(),
            reason: format!(
                "it is readable by others (mode {:o}); run `chmod 600` on it",
                mode & 0o777
            ),
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private_mode(_: &Path) -> Result<(), SigningError> {
    Ok(())
}

fn load_or_create_keyring(kr: &Keyring) -> Result<Signer, SigningError> {
    let origin = format!("{} entry {KEYRING_SERVICE}/{KEYRING_NAME}", kr.backend());
    let fail = |e: crate::keyring::KeyringError| SigningError::Invalid {
        path: origin.clone(),
        reason: e.to_string(),
    };
    if kr.has(KEYRING_SERVICE, KEYRING_NAME).map_err(fail)? {
        let secret = kr.get(KEYRING_SERVICE, KEYRING_NAME).map_err(fail)?;
        let pkcs8 = Zeroizing::new(hex::decode(secret.expose().trim()).map_err(|_| {
            SigningError::Invalid {
                path: origin.clone(),
                reason: "not hex".into(),
            }
        })?);
        let signer = Signer::from_pkcs8(&pkcs8, &origin)?;
        remember_public(signer.public())?;
        return Ok(signer);
    }
    let (signer, text) = Signer::generate()?;
    kr.set(KEYRING_SERVICE, KEYRING_NAME, &Secret::new(text.as_str()))
        .map_err(fail)?;
    remember_public(signer.public())?;
    Ok(signer)
}

/// Add a public key to the trusted list (once).
fn remember_public(key: &PublicKey) -> Result<(), SigningError> {
    let path = trusted_list_path();
    let mut keys = read_public_keys(&path).unwrap_or_default();
    if keys.contains(key) {
        return Ok(());
    }
    keys.push(key.clone());
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        files::private_dir(dir).map_err(io(dir))?;
    }
    let mut text = String::from(
        "# Public keys that signed keyfire incident records on this machine (record verify trusts these)\n",
    );
    for k in &keys {
        text.push_str(&k.to_text());
        text.push('\n');
    }
    files::write_atomic(&path, text.as_bytes()).map_err(io(&path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_only_with_its_key_and_message() {
        let (a, _) = Signer::generate().unwrap();
        let (b, _) = Signer::generate().unwrap();
        let msg = head_message(3, "ab", &[]);
        let sig = a.sign_hex(&msg);
        assert!(a.public().verifies(&msg, &sig));
        assert!(!b.public().verifies(&msg, &sig));
        assert!(!a.public().verifies(&head_message(4, "ab", &[]), &sig));
        assert_eq!(
            PublicKey::parse(&a.public().to_text()),
            Some(a.public().clone())
        );
    }

    #[test]
    fn a_key_file_inside_the_data_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let err = refuse_inside(&dir.path().join("data/key"), &dir.path().join("data"));
        assert!(matches!(err, Err(SigningError::InsideDataDir(_))));
        assert!(refuse_inside(&dir.path().join("config/key"), &dir.path().join("data")).is_ok());
    }
}
