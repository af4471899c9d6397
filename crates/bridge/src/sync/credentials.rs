//! Encryption at rest of tenants' MindTickle secrets (AES-256-GCM).
//!
//! A stored value is `v1:` followed by base64 of a 12-byte random nonce and the ciphertext. The
//! tenant id and the column name are the associated data, so a value copied into another
//! tenant's row, or into another column, fails to decrypt instead of being used.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};

use crate::tenancy::TenantId;

const PREFIX: &str = "v1:";

#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error(
        "mindtickle.credentials_key is not set; set BRIDGE_MINDTICKLE_CREDENTIALS_KEY to 32 random bytes in base64 (openssl rand -base64 32)"
    )]
    NoKey,
    #[error("mindtickle.credentials_key is invalid: expected 32 bytes in base64")]
    InvalidKey,
    #[error("the stored {column} of tenant {tenant} cannot be decrypted with the configured key")]
    Undecryptable {
        tenant: TenantId,
        column: &'static str,
    },
}

/// The key that encrypts tenants' MindTickle secrets.
#[derive(Clone)]
pub struct CredentialsKey {
    cipher: Aes256Gcm,
}

impl CredentialsKey {
    pub fn from_base64(encoded: &SecretString) -> Result<CredentialsKey, CredentialsError> {
        let bytes = STANDARD
            .decode(encoded.expose_secret().trim())
            .map_err(|_| CredentialsError::InvalidKey)?;
        let cipher = Aes256Gcm::new_from_slice(&bytes).map_err(|_| CredentialsError::InvalidKey)?;
        Ok(CredentialsKey { cipher })
    }

    /// A fresh random key, base64-encoded.
    pub fn generate() -> SecretString {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        SecretString::from(STANDARD.encode(bytes))
    }

    pub fn encrypt(&self, tenant: &TenantId, column: &'static str, plaintext: &str) -> String {
        let mut nonce = [0u8; 12];
        rand::rng().fill_bytes(&mut nonce);
        let aad = format!("{tenant}/{column}");
        // aes-gcm fails only for messages longer than the GCM limit of about 64 GiB, far above
        // any credential, so the empty fallback is never used.
        let ciphertext = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext.as_bytes(),
                    aad: aad.as_bytes(),
                },
            )
            .unwrap_or_default();
        let mut sealed = nonce.to_vec();
        sealed.extend_from_slice(&ciphertext);
        format!("{PREFIX}{}", STANDARD.encode(sealed))
    }

    pub fn decrypt(
        &self,
        tenant: &TenantId,
        column: &'static str,
        stored: &str,
    ) -> Result<SecretString, CredentialsError> {
        let undecryptable = || CredentialsError::Undecryptable {
            tenant: tenant.clone(),
            column,
        };
        let encoded = stored.strip_prefix(PREFIX).ok_or_else(undecryptable)?;
        let sealed = STANDARD.decode(encoded).map_err(|_| undecryptable())?;
        if sealed.len() < 12 {
            return Err(undecryptable());
        }
        let (nonce, ciphertext) = sealed.split_at(12);
        let aad = format!("{tenant}/{column}");
        let plaintext = self
            .cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|_| undecryptable())?;
        String::from_utf8(plaintext)
            .map(SecretString::from)
            .map_err(|_| undecryptable())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> CredentialsKey {
        CredentialsKey::from_base64(&CredentialsKey::generate()).unwrap()
    }

    fn tenant(raw: &str) -> TenantId {
        TenantId::parse(raw).unwrap()
    }

    #[test]
    fn round_trip() {
        let key = key();
        let sealed = key.encrypt(&tenant("acme"), "secret_key", "s3cret");
        assert!(sealed.starts_with("v1:"));
        assert!(!sealed.contains("s3cret"));
        let opened = key.decrypt(&tenant("acme"), "secret_key", &sealed).unwrap();
        assert_eq!(opened.expose_secret(), "s3cret");
    }

    #[test]
    fn other_tenant_or_column_cannot_decrypt() {
        let key = key();
        let sealed = key.encrypt(&tenant("acme"), "secret_key", "s3cret");
        assert!(
            key.decrypt(&tenant("globex"), "secret_key", &sealed)
                .is_err()
        );
        assert!(
            key.decrypt(&tenant("acme"), "reporting_password", &sealed)
                .is_err()
        );
    }

    #[test]
    fn other_key_or_plaintext_is_rejected() {
        let sealed = key().encrypt(&tenant("acme"), "secret_key", "s3cret");
        assert!(
            key()
                .decrypt(&tenant("acme"), "secret_key", &sealed)
                .is_err()
        );
        assert!(
            key()
                .decrypt(&tenant("acme"), "secret_key", "s3cret")
                .is_err()
        );
    }

    #[test]
    fn key_must_be_32_bytes() {
        assert!(CredentialsKey::from_base64(&SecretString::from("c2hvcnQ=")).is_err());
        assert!(CredentialsKey::from_base64(&SecretString::from("not base64!")).is_err());
    }
}
