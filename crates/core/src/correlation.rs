//! The token that finds the result of a lost create. Neither Model Studio API has an
//! idempotency token, so the controller puts one in the display name (which the API echoes back),
//! derived from the resource's UID: after a crash or a lost answer, listing the remote objects and
//! matching on it tells whether the create took effect. Both kinds use it. Pure functions.

/// The API's limit on display names, in characters.
pub const DISPLAY_NAME_LIMIT: usize = 50;
/// Length of the token derived from the UID.
pub const TOKEN_LEN: usize = 8;

/// A stable, lowercase alphanumeric token of `TOKEN_LEN` characters for a UID (FNV-1a, base 36).
pub fn token(uid: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in uid.as_bytes() {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    (0..TOKEN_LEN)
        .map(|_| {
            let d = DIGITS[(hash % 36) as usize] as char;
            hash /= 36;
            d
        })
        .collect()
}

/// The display name sent on create: `name` cut to fit, a dash, and the UID's token.
pub fn display_name(name: &str, uid: &str) -> String {
    let room = DISPLAY_NAME_LIMIT - TOKEN_LEN - 1;
    let base: String = name.trim().chars().take(room).collect();
    let base = base.trim_end_matches(['-', ' ']);
    if base.is_empty() {
        token(uid)
    } else {
        format!("{base}-{}", token(uid))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_is_stable_short_and_differs_by_uid() {
        let a = token("6b8a4c1e-0000-4000-8000-000000000001");
        assert_eq!(a, token("6b8a4c1e-0000-4000-8000-000000000001"));
        assert_eq!(a.len(), TOKEN_LEN);
        assert!(a
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()));
        assert_ne!(a, token("6b8a4c1e-0000-4000-8000-000000000002"));
    }

    #[test]
    fn display_name_fits_the_limit() {
        let uid = "u-1";
        let d = display_name("my-lora", uid);
        assert_eq!(d, format!("my-lora-{}", token(uid)));
        let long = "x".repeat(80);
        assert_eq!(display_name(&long, uid).chars().count(), DISPLAY_NAME_LIMIT);
        let wide = "模型".repeat(30);
        assert_eq!(display_name(&wide, uid).chars().count(), DISPLAY_NAME_LIMIT);
        assert_eq!(display_name("  ", uid), token(uid));
        assert_eq!(
            display_name(&format!("{}-", "a".repeat(40)), uid),
            format!("{}-{}", "a".repeat(40), token(uid))
        );
    }
}
