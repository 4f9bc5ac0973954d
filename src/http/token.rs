//! Agent tokens: 32 random bytes, shown once as `ewa_` and 64 hex digits; the store keeps
//! only their SHA-256, so a leaked database gives no working token.

use std::fmt::Write;

use rand::RngCore;
use sha2::{Digest, Sha256};

/// What every token starts with, so one found lying around says what it is.
pub const PREFIX: &str = "ewa_";

/// A new token.
pub fn generate() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{PREFIX}{}", hex(&bytes))
}

/// The SHA-256 (hex) of a token as presented: what the store keeps and looks up.
pub fn hash(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_hashed() {
        let (a, b) = (generate(), generate());
        assert_ne!(a, b);
        assert!(a.starts_with(PREFIX) && a.len() == PREFIX.len() + 64, "{a}");
        assert_eq!(hash("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert_eq!(hash(&a).len(), 64);
    }
}
