//! The `X-Bridge-Signature` header: `t=<unix seconds>,v1=<hex HMAC-SHA256>` over `"<t>." + body`.

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The header a webhook sender signs its request with.
pub const SIGNATURE_HEADER: &str = "x-bridge-signature";

/// How far the signed timestamp may lie from the server's clock, in seconds, either way. A
/// captured request stops being accepted once it is older than this.
pub const MAX_TIMESTAMP_SKEW_SECS: i64 = 300;

/// A parsed signature header: the signed timestamp and every `v1` signature it carries. Several
/// `v1` values let a sender sign with an old and a new secret while a secret is rotated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureHeader {
    pub timestamp: i64,
    pub signatures: Vec<Vec<u8>>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error(
        "missing X-Bridge-Signature header; sign the request as t=<unix seconds>,v1=<hex HMAC-SHA256>"
    )]
    Missing,
    #[error("invalid X-Bridge-Signature header: {0}")]
    Malformed(String),
    #[error(
        "the X-Bridge-Signature timestamp {timestamp} is {skew} s away from the server's clock; the maximum is {max} s, so sign each request when sending it",
        max = MAX_TIMESTAMP_SKEW_SECS
    )]
    OutsideWindow { timestamp: i64, skew: i64 },
    #[error("the X-Bridge-Signature does not match any active webhook secret of this tenant")]
    Mismatch,
}

/// Parses the header value. Keys other than `t` and `v1` are ignored, so a sender may add newer
/// signature schemes next to `v1`.
pub fn parse_signature_header(value: &str) -> Result<SignatureHeader, SignatureError> {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in value.split(',') {
        let Some((key, raw)) = part.trim().split_once('=') else {
            return Err(SignatureError::Malformed(format!(
                "element {:?} is not key=value",
                part.trim()
            )));
        };
        match key.trim() {
            "t" => {
                if timestamp.is_some() {
                    return Err(SignatureError::Malformed("more than one t= element".into()));
                }
                let parsed = raw.trim().parse::<i64>().map_err(|_| {
                    SignatureError::Malformed(format!("t={raw:?} is not a Unix time in seconds"))
                })?;
                timestamp = Some(parsed);
            }
            "v1" => signatures.push(decode_hex(raw.trim()).ok_or_else(|| {
                SignatureError::Malformed(
                    "a v1= value is not 64 hexadecimal digits (HMAC-SHA256)".into(),
                )
            })?),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or_else(|| SignatureError::Malformed("no t= element".into()))?;
    if signatures.is_empty() {
        return Err(SignatureError::Malformed("no v1= element".into()));
    }
    Ok(SignatureHeader {
        timestamp,
        signatures,
    })
}

/// Checks that the signed timestamp lies within `MAX_TIMESTAMP_SKEW_SECS` of `now` (Unix seconds).
pub fn check_timestamp(header: &SignatureHeader, now: i64) -> Result<(), SignatureError> {
    let skew = now.saturating_sub(header.timestamp).saturating_abs();
    if skew > MAX_TIMESTAMP_SKEW_SECS {
        return Err(SignatureError::OutsideWindow {
            timestamp: header.timestamp,
            skew,
        });
    }
    Ok(())
}

/// Checks the timestamp against `now` (Unix seconds), then every `v1` signature against every
/// secret. Each comparison runs in constant time (`Mac::verify_slice`).
pub fn verify_signature<S: AsRef<[u8]>>(
    header: &SignatureHeader,
    now: i64,
    body: &[u8],
    secrets: &[S],
) -> Result<(), SignatureError> {
    check_timestamp(header, now)?;
    for secret in secrets {
        let Ok(mut mac) = HmacSha256::new_from_slice(secret.as_ref()) else {
            continue;
        };
        mac.update(header.timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        for signature in &header.signatures {
            if mac.clone().verify_slice(signature).is_ok() {
                return Ok(());
            }
        }
    }
    Err(SignatureError::Mismatch)
}

/// Returns the header value a sender puts in `X-Bridge-Signature` for `body` signed with
/// `secret` at `timestamp`.
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let Ok(mut mac) = HmacSha256::new_from_slice(secret) else {
        // HMAC accepts keys of any length, so this branch is unreachable.
        return format!("t={timestamp}");
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().map(|byte| format!("{byte:02x}")).collect();
    format!("t={timestamp},v1={hex}")
}

fn decode_hex(raw: &str) -> Option<Vec<u8>> {
    if raw.len() != 64 || !raw.is_ascii() {
        return None;
    }
    (0..raw.len())
        .step_by(2)
        .map(|index| u8::from_str_radix(&raw[index..index + 2], 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000;

    fn header_for(secret: &str, timestamp: i64, body: &[u8]) -> SignatureHeader {
        parse_signature_header(&sign(secret.as_bytes(), timestamp, body)).unwrap()
    }

    #[test]
    fn signed_body_verifies() {
        let header = header_for("first", NOW, b"{}");
        assert_eq!(verify_signature(&header, NOW, b"{}", &["first"]), Ok(()));
    }

    #[test]
    fn changed_body_is_rejected() {
        let header = header_for("first", NOW, b"{}");
        assert_eq!(
            verify_signature(&header, NOW, b"{ }", &["first"]),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn any_active_secret_matches() {
        let header = header_for("second", NOW, b"{}");
        assert_eq!(
            verify_signature(&header, NOW, b"{}", &["first", "second"]),
            Ok(())
        );
        assert_eq!(
            verify_signature(&header, NOW, b"{}", &["first"]),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn several_v1_values_are_accepted() {
        let old = sign(b"old", NOW, b"{}");
        let new = sign(b"new", NOW, b"{}");
        let new_signature = new.split_once(",v1=").unwrap().1;
        let combined = format!("{old},v1={new_signature}");
        let header = parse_signature_header(&combined).unwrap();
        assert_eq!(header.signatures.len(), 2);
        assert_eq!(verify_signature(&header, NOW, b"{}", &["new"]), Ok(()));
    }

    #[test]
    fn timestamp_window_is_enforced() {
        let header = header_for("first", NOW, b"{}");
        assert_eq!(
            verify_signature(&header, NOW + 300, b"{}", &["first"]),
            Ok(())
        );
        assert!(matches!(
            verify_signature(&header, NOW + 301, b"{}", &["first"]),
            Err(SignatureError::OutsideWindow { .. })
        ));
        assert!(matches!(
            verify_signature(&header, NOW - 301, b"{}", &["first"]),
            Err(SignatureError::OutsideWindow { .. })
        ));
    }

    #[test]
    fn malformed_headers_are_rejected() {
        for value in [
            "",
            "t=abc,v1=00",
            "v1=aa",
            &format!("t={NOW}"),
            &format!("t={NOW},v1=zz"),
            &format!("t={NOW},t={NOW},v1={}", "a".repeat(64)),
            "garbage",
        ] {
            assert!(
                matches!(
                    parse_signature_header(value),
                    Err(SignatureError::Malformed(_))
                ),
                "{value:?} should be rejected"
            );
        }
    }

    #[test]
    fn unknown_elements_are_ignored() {
        let signed = sign(b"first", NOW, b"{}");
        let header = parse_signature_header(&format!("{signed},v0=legacy")).unwrap();
        assert_eq!(verify_signature(&header, NOW, b"{}", &["first"]), Ok(()));
    }
}
