use std::fmt;

use serde::{Deserialize, Serialize};

/// A tenant's identifier: 1 to 63 characters of lowercase ASCII letters, digits and `-`,
/// starting with a letter or digit.
///
/// The alphabet excludes `:`, `*`, `{`, `}`, `.` and quotes, so a `TenantId` can be placed in a
/// Redis key, a broker routing key or a `SET LOCAL` statement without escaping.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct TenantId(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TenantIdError {
    #[error("tenant id is empty")]
    Empty,
    #[error("tenant id is {0} characters long; the maximum is 63")]
    TooLong(usize),
    #[error(
        "tenant id {0:?} is invalid: use lowercase letters, digits and '-', starting with a letter or digit"
    )]
    InvalidCharacters(String),
}

impl TenantId {
    pub const MAX_LEN: usize = 63;

    pub fn parse(raw: &str) -> Result<TenantId, TenantIdError> {
        if raw.is_empty() {
            return Err(TenantIdError::Empty);
        }
        if raw.len() > Self::MAX_LEN {
            return Err(TenantIdError::TooLong(raw.len()));
        }
        let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-';
        if !raw.chars().all(allowed) || raw.starts_with('-') {
            return Err(TenantIdError::InvalidCharacters(raw.to_owned()));
        }
        Ok(TenantId(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for TenantId {
    type Err = TenantIdError;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        TenantId::parse(raw)
    }
}

impl<'de> Deserialize<'de> for TenantId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        TenantId::parse(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_slugs() {
        for raw in ["acme", "a", "0", "acme-eu-1", &"a".repeat(63)] {
            assert!(TenantId::parse(raw).is_ok(), "{raw:?} should parse");
        }
    }

    #[test]
    fn rejects_unsafe_characters() {
        for raw in [
            "Acme", "-acme", "acme:1", "acme*", "{acme}", "acme.eu", "ac me", "acme'", "ac\"me",
            "acmé", "acme_1",
        ] {
            assert!(
                matches!(
                    TenantId::parse(raw),
                    Err(TenantIdError::InvalidCharacters(_))
                ),
                "{raw:?} should be rejected"
            );
        }
    }

    #[test]
    fn rejects_empty_and_long() {
        assert_eq!(TenantId::parse(""), Err(TenantIdError::Empty));
        assert_eq!(
            TenantId::parse(&"a".repeat(64)),
            Err(TenantIdError::TooLong(64))
        );
    }
}
