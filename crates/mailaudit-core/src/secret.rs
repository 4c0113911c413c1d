//! Comparing secrets (session and CSRF tokens, OAuth `state`, OpenID Connect nonces, TOTP
//! codes) without telling, by how long the comparison takes, how much of a guess was right.

/// Whether `a` and `b` are the same secret. Every byte is looked at whatever the first
/// difference (only a difference of length ends it early: the length of a token is no secret).
pub fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_bytes_only() {
        assert!(same_secret(b"abc", b"abc"));
        assert!(same_secret(b"", b""));
        assert!(!same_secret(b"abc", b"abd"));
        assert!(!same_secret(b"abc", b"abcd"));
        assert!(!same_secret(b"abc", b""));
    }
}
