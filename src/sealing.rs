//! Secrets at rest: XChaCha20-Poly1305 under a master key kept apart from the
//! database, in `master.key` (created 0600 on first start) or in
//! `QCGATE_MASTER_KEY` (base64 of 32 bytes). Each sealed value is bound to the
//! record it belongs to by associated data, so ciphertexts cannot be swapped
//! between rows.

use std::io::Write;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{KeyInit, XChaCha20Poly1305, XNonce};
use rand::Rng;

use crate::secret::Secret;

pub const KEY_FILE: &str = "master.key";
pub const KEY_ENV: &str = "QCGATE_MASTER_KEY";
const PREFIX: &str = "v1.";

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("master key: {0}")]
    Key(String),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error("a sealed value could not be opened (wrong master key, or tampered data)")]
    Open,
}

pub struct MasterKey(XChaCha20Poly1305);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(******)")
    }
}

impl MasterKey {
    /// The key from the environment, else from `data_dir/master.key`, which is
    /// created (mode 0600) if missing.
    pub fn load_or_create(data_dir: &Path) -> Result<MasterKey, SealError> {
        if let Ok(text) = std::env::var(KEY_ENV) {
            return Self::from_base64(text.trim());
        }
        let path = data_dir.join(KEY_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => Self::from_base64(text.trim()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(data_dir)?;
                let mut bytes = [0u8; 32];
                rand::rng().fill_bytes(&mut bytes);
                let mut opts = std::fs::OpenOptions::new();
                opts.write(true).create_new(true);
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
                match opts.open(&path) {
                    Ok(mut f) => {
                        f.write_all(B64.encode(bytes).as_bytes())?;
                        f.sync_all()?;
                        Self::from_bytes(&bytes)
                    }
                    // Another process created it first: use theirs.
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        Self::from_base64(std::fs::read_to_string(&path)?.trim())
                    }
                    Err(e) => Err(e.into()),
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The key a shared store needs, never made here (every gateway must use
    /// the same one): from the environment, else from `file`.
    pub fn load_given(file: Option<&Path>) -> Result<MasterKey, SealError> {
        if let Ok(text) = std::env::var(KEY_ENV) {
            return Self::from_base64(text.trim());
        }
        let Some(path) = file else {
            return Err(SealError::Key(format!(
                "a shared store needs the master key given, the same on every gateway: \
                 set {KEY_ENV} or master_key_file (--master-key-file)"
            )));
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| SealError::Key(format!("the master key file {}: {e}", path.display())))?;
        Self::from_base64(text.trim())
    }

    pub fn from_base64(text: &str) -> Result<MasterKey, SealError> {
        let bytes = B64
            .decode(text)
            .map_err(|_| SealError::Key("not base64".into()))?;
        Self::from_bytes(&bytes)
    }

    fn from_bytes(bytes: &[u8]) -> Result<MasterKey, SealError> {
        XChaCha20Poly1305::new_from_slice(bytes)
            .map(MasterKey)
            .map_err(|_| SealError::Key("must be 32 bytes".into()))
    }

    /// `v1.` + base64(nonce ‖ ciphertext ‖ tag).
    pub fn seal(&self, plaintext: &[u8], aad: &str) -> String {
        let mut nonce = [0u8; 24];
        rand::rng().fill_bytes(&mut nonce);
        let n = XNonce::from(nonce);
        // Encryption with a valid key and nonce does not fail.
        let ct = self
            .0
            .encrypt(
                &n,
                Payload {
                    msg: plaintext,
                    aad: aad.as_bytes(),
                },
            )
            .unwrap_or_default();
        let mut out = Vec::with_capacity(24 + ct.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        format!("{PREFIX}{}", B64.encode(out))
    }

    pub fn open(&self, sealed: &str, aad: &str) -> Result<Secret, SealError> {
        let raw = sealed
            .strip_prefix(PREFIX)
            .and_then(|b| B64.decode(b).ok())
            .filter(|r| r.len() > 24)
            .ok_or(SealError::Open)?;
        let nonce = XNonce::try_from(&raw[..24]).map_err(|_| SealError::Open)?;
        let pt = self
            .0
            .decrypt(
                &nonce,
                Payload {
                    msg: &raw[24..],
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|_| SealError::Open)?;
        String::from_utf8(pt)
            .map(Secret::new)
            .map_err(|_| SealError::Open)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip_bound_to_its_record() {
        let dir = tempfile::tempdir().expect("tmp");
        let k = MasterKey::load_or_create(dir.path()).expect("key");
        let s = k.seal(b"Passwd@123", "key:AK1");
        assert!(!s.contains("Passwd"));
        assert_eq!(k.open(&s, "key:AK1").expect("open").expose(), "Passwd@123");
        assert!(k.open(&s, "key:AK2").is_err(), "another record's AAD");
        assert_ne!(s, k.seal(b"Passwd@123", "key:AK1"), "fresh nonce each time");
        let mut tampered = s.clone();
        tampered.pop();
        tampered.push(if s.ends_with('A') { 'B' } else { 'A' });
        assert!(k.open(&tampered, "key:AK1").is_err());
        // The same file gives the same key; another key cannot open.
        let again = MasterKey::load_or_create(dir.path()).expect("key");
        assert!(again.open(&s, "key:AK1").is_ok());
        let other =
            MasterKey::load_or_create(tempfile::tempdir().expect("tmp").path()).expect("key");
        assert!(other.open(&s, "key:AK1").is_err());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(KEY_FILE))
                .expect("meta")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert_eq!(format!("{k:?}"), "MasterKey(******)");
    }
}
