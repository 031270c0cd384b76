//! Mosquitto 2.0 password file lines, written natively.
//!
//! `mosquitto_passwd` (2.0) writes one line per user:
//!
//! ```text
//! user:$7$<iterations>$<base64 salt>$<base64 hash>
//! ```
//!
//! where `7` names PBKDF2-HMAC-SHA512, the salt is 12 random bytes, the hash is
//! the 64-byte PBKDF2 output over the password's bytes, and both are standard
//! base64 with padding. Mosquitto 2.0 writes 101 iterations; the broker reads
//! the count from each line.

use std::num::NonZeroU32;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ring::pbkdf2;
use ring::rand::{SecureRandom, SystemRandom};

/// The iteration count `mosquitto_passwd` 2.0 writes (`PW_DEFAULT_ITERATIONS`).
pub const DEFAULT_ITERATIONS: u32 = 101;
/// The salt length `mosquitto_passwd` 2.0 writes (`SALT_LEN`).
pub const SALT_LEN: usize = 12;
/// The PBKDF2-HMAC-SHA512 output length.
pub const HASH_LEN: usize = 64;

/// The password file line for `user` (without the newline), with a given salt.
///
/// # Panics
/// If `iterations` is 0.
pub fn line_with_salt(user: &str, password: &str, salt: &[u8], iterations: u32) -> String {
    let rounds = NonZeroU32::new(iterations).expect("at least one PBKDF2 iteration");
    let mut hash = [0u8; HASH_LEN];
    pbkdf2::derive(
        pbkdf2::PBKDF2_HMAC_SHA512,
        rounds,
        salt,
        password.as_bytes(),
        &mut hash,
    );
    format!(
        "{user}:$7${iterations}${}${}",
        STANDARD.encode(salt),
        STANDARD.encode(hash)
    )
}

/// The password file line for `user`, with a fresh random salt and
/// [`DEFAULT_ITERATIONS`].
pub fn line(user: &str, password: &str, rng: &SystemRandom) -> Result<String, String> {
    let mut salt = [0u8; SALT_LEN];
    rng.fill(&mut salt)
        .map_err(|_| "the system random number generator failed".to_string())?;
    Ok(line_with_salt(user, password, &salt, DEFAULT_ITERATIONS))
}

/// A random password: 24 bytes from the system CSPRNG (192 bits) as 32
/// characters of URL-safe base64, safe to pass on a command line unquoted.
/// It never starts with `-`, so no tool takes it for an option.
pub fn random_password(rng: &SystemRandom) -> Result<String, String> {
    loop {
        let mut bytes = [0u8; 24];
        rng.fill(&mut bytes)
            .map_err(|_| "the system random number generator failed".to_string())?;
        let password = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        if !password.starts_with('-') {
            return Ok(password);
        }
    }
}

/// The users named in a password file's text.
pub fn users(text: &str) -> impl Iterator<Item = &str> {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once(':').map(|(u, _)| u))
}

/// Checks `password` against a `$7$` line; `None` when the line is not one.
pub fn verify(line: &str, password: &str) -> Option<bool> {
    let (user, rest) = line.trim_end().split_once(':')?;
    let mut parts = rest.strip_prefix("$7$")?.split('$');
    let iterations: u32 = parts.next()?.parse().ok()?;
    let salt = STANDARD.decode(parts.next()?).ok()?;
    let _hash = parts.next()?;
    if iterations == 0 || parts.next().is_some() {
        return None;
    }
    Some(line_with_salt(user, password, &salt, iterations) == line.trim_end())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_shape() {
        let l = line_with_salt("alice", "secret", &[7u8; SALT_LEN], DEFAULT_ITERATIONS);
        let parts: Vec<&str> = l.split('$').collect();
        assert_eq!(parts[0], "alice:");
        assert_eq!(parts[1], "7");
        assert_eq!(parts[2], "101");
        assert_eq!(parts[3].len(), 16); // 12 bytes
        assert_eq!(parts[4].len(), 88); // 64 bytes, padded
        assert!(parts[4].ends_with("=="));
        assert_eq!(verify(&l, "secret"), Some(true));
        assert_eq!(verify(&l, "Secret"), Some(false));
        assert_eq!(verify("bob:$6$abc$def", "x"), None);
    }

    #[test]
    fn random_passwords_differ() {
        let rng = SystemRandom::new();
        let a = random_password(&rng).unwrap();
        assert_eq!(a.len(), 32);
        assert_ne!(a, random_password(&rng).unwrap());
        assert!(
            a.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
    }
}
