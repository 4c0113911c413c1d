//! Domain names as the checks compare them. A leaf module: the resolver seam
//! ([`crate::dns`]), the records a fix proposes ([`crate::record`]) and the checks use it, and it
//! uses nothing of theirs.

/// Normalises a DNS name for lookup and comparison: trims, lower-cases, drops one trailing dot.
pub fn normalize_name(name: &str) -> String {
    let n = name.trim();
    let n = n.strip_suffix('.').unwrap_or(n);
    n.to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_lower_cased_and_lose_one_trailing_dot() {
        assert_eq!(normalize_name(" Example.COM. "), "example.com");
        assert_eq!(normalize_name("a.example.."), "a.example.");
        assert_eq!(normalize_name(""), "");
    }
}
