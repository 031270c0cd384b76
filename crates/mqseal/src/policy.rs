//! Policy: which protection each topic gets.
//!
//! A [`Policy`] maps MQTT topic filters (with `+` and `#`) to a
//! [`Protection`]. The first rule whose filter matches a topic applies; a rule
//! that an earlier rule completely covers is refused when the policy is built,
//! so more specific rules must come first. A topic with no rule is refused on
//! send and its messages are rejected on receipt, unless a rule explicitly
//! says [`Protection::insecure_plaintext`].
//!
//! ```
//! use std::time::Duration;
//! use mqseal::{Aead, Freshness, Policy, Protection};
//!
//! let policy = Policy::builder()
//!     .rule("control/#", Protection::encrypt(Aead::Aes256Gcm)
//!         .sign()
//!         .freshness(Freshness::max_age(Duration::from_secs(5))))?
//!     .rule("sensors/#", Protection::mac())?
//!     .build();
//! assert!(policy.lookup("sensors/t1/temp").is_some());
//! assert!(policy.lookup("other").is_none());
//! # Ok::<(), mqseal::Error>(())
//! ```

use crate::envelope::{Suite, Symmetric};
use crate::error::ConfigError;
use crate::freshness::Freshness;

/// The AEAD algorithm for [`Protection::encrypt`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Aead {
    /// AES-256-GCM, the default.
    #[default]
    Aes256Gcm,
    /// ChaCha20-Poly1305, for devices without AES hardware.
    ChaCha20Poly1305,
}

/// The protection of one topic filter.
///
/// Built from [`Protection::encrypt`], [`Protection::mac`] or
/// [`Protection::sign`]: every protection authenticates, so replay protection
/// and freshness always sit on top of authentication. Replay protection is on
/// by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Protection {
    pub(crate) suite: Option<Suite>,
    pub(crate) replay: bool,
    pub(crate) freshness: Option<Freshness>,
}

/// A protection being built; see [`Protection`]. Converts into one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub struct ProtectionBuilder {
    symmetric: Option<Symmetric>,
    signed: bool,
    replay: bool,
    freshness: Option<Freshness>,
}

impl Protection {
    /// Encrypt with a group key: only members read the payload. Add
    /// [`ProtectionBuilder::sign`] for origin.
    pub fn encrypt(aead: Aead) -> ProtectionBuilder {
        ProtectionBuilder::new(Some(match aead {
            Aead::Aes256Gcm => Symmetric::Aes256Gcm,
            Aead::ChaCha20Poly1305 => Symmetric::ChaCha20Poly1305,
        }))
    }

    /// HMAC-SHA256 with a group key: members check integrity; the payload stays
    /// readable.
    pub fn mac() -> ProtectionBuilder {
        ProtectionBuilder::new(Some(Symmetric::HmacSha256))
    }

    /// An Ed25519 signature only: receivers holding the sender's public key
    /// check origin and integrity; the payload stays readable.
    pub fn sign() -> ProtectionBuilder {
        ProtectionBuilder {
            signed: true,
            ..ProtectionBuilder::new(None)
        }
    }

    /// No protection at all: messages pass as they are, and anyone can read,
    /// forge and replay them. For topics that carry public data by design.
    pub fn insecure_plaintext() -> Protection {
        Protection {
            suite: None,
            replay: false,
            freshness: None,
        }
    }

    /// The suite, or `None` for plaintext.
    pub fn suite(&self) -> Option<Suite> {
        self.suite
    }

    /// Whether replay protection is on.
    pub fn replay(&self) -> bool {
        self.replay
    }

    /// The freshness requirement, if any.
    pub fn freshness(&self) -> Option<Freshness> {
        self.freshness
    }

    /// Whether this is [`Protection::insecure_plaintext`].
    pub fn is_plaintext(&self) -> bool {
        self.suite.is_none()
    }
}

impl ProtectionBuilder {
    fn new(symmetric: Option<Symmetric>) -> Self {
        ProtectionBuilder {
            symmetric,
            signed: false,
            replay: true,
            freshness: None,
        }
    }

    /// Adds an Ed25519 signature over the sealed envelope (encrypt-then-sign).
    pub fn sign(mut self) -> Self {
        self.signed = true;
        self
    }

    /// Puts a timestamp in the header and rejects messages outside `freshness`.
    pub fn freshness(mut self, freshness: Freshness) -> Self {
        self.freshness = Some(freshness);
        self
    }

    /// Turns replay protection off: a captured message can be delivered again.
    pub fn danger_disable_replay_protection(mut self) -> Self {
        self.replay = false;
        self
    }

    /// The finished protection.
    pub fn build(self) -> Protection {
        Protection {
            suite: Suite::from_parts(self.symmetric, self.signed),
            replay: self.replay,
            freshness: self.freshness,
        }
    }
}

impl From<ProtectionBuilder> for Protection {
    fn from(b: ProtectionBuilder) -> Self {
        b.build()
    }
}

/// Topic filters and their protections. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    rules: Vec<(String, Protection)>,
}

/// Builds a [`Policy`].
#[derive(Debug, Default)]
#[must_use]
pub struct PolicyBuilder {
    rules: Vec<(String, Protection)>,
}

impl Policy {
    /// An empty policy builder.
    pub fn builder() -> PolicyBuilder {
        PolicyBuilder::default()
    }

    /// The protection of `topic`: the first rule that matches.
    pub fn lookup(&self, topic: &str) -> Option<&Protection> {
        self.rules
            .iter()
            .find(|(f, _)| filter_matches(f, topic))
            .map(|(_, p)| p)
    }

    /// The rules, in order.
    pub fn rules(&self) -> impl Iterator<Item = (&str, &Protection)> {
        self.rules.iter().map(|(f, p)| (f.as_str(), p))
    }
}

impl PolicyBuilder {
    /// Adds a rule. Refused if the filter is invalid or an earlier rule
    /// covers every topic it matches.
    pub fn rule(
        mut self,
        filter: &str,
        protection: impl Into<Protection>,
    ) -> Result<Self, ConfigError> {
        validate_filter(filter)?;
        if let Some((earlier, _)) = self.rules.iter().find(|(e, _)| filter_covers(e, filter)) {
            return Err(ConfigError::ShadowedRule {
                filter: filter.to_owned(),
                earlier: earlier.clone(),
            });
        }
        self.rules.push((filter.to_owned(), protection.into()));
        Ok(self)
    }

    /// The policy.
    pub fn build(self) -> Policy {
        Policy { rules: self.rules }
    }
}

/// Checks that `filter` is a valid MQTT topic filter.
pub fn validate_filter(filter: &str) -> Result<(), ConfigError> {
    let bad = |reason| {
        Err(ConfigError::InvalidFilter {
            filter: filter.to_owned(),
            reason,
        })
    };
    if filter.is_empty() {
        return bad("empty");
    }
    if filter.len() > usize::from(u16::MAX) {
        return bad("longer than 65535 bytes");
    }
    if filter.contains('\0') {
        return bad("contains a NUL character");
    }
    let levels: Vec<&str> = filter.split('/').collect();
    for (i, level) in levels.iter().enumerate() {
        if level.contains('#') && (*level != "#" || i != levels.len() - 1) {
            return bad("'#' must be a whole level and the last one");
        }
        if level.contains('+') && *level != "+" {
            return bad("'+' must be a whole level");
        }
    }
    Ok(())
}

/// Checks that `topic` is a valid topic name to publish on.
pub fn validate_topic(topic: &str) -> Result<(), ConfigError> {
    let bad = |reason| {
        Err(ConfigError::InvalidTopic {
            topic: topic.to_owned(),
            reason,
        })
    };
    if topic.is_empty() {
        return bad("empty");
    }
    if topic.len() > usize::from(u16::MAX) {
        return bad("longer than 65535 bytes");
    }
    if topic.bytes().any(|b| matches!(b, b'+' | b'#' | 0)) {
        return bad("contains a wildcard or NUL character");
    }
    Ok(())
}

/// Whether the MQTT topic filter `filter` matches `topic`.
///
/// `+` matches one level, `#` any number of levels including none (so `a/#`
/// matches `a`), and a filter starting with a wildcard does not match topics
/// starting with `$`.
pub fn filter_matches(filter: &str, topic: &str) -> bool {
    // Byte-wise, filter and topic in lockstep, in one pass: this runs for
    // each rule on every message sealed or opened (see docs/performance.md).
    // `tests::filter_matches_reference` is the plain `split('/')` version.
    let (f, t) = (filter.as_bytes(), topic.as_bytes());
    if t.first() == Some(&b'$') && matches!(f.first(), Some(b'+' | b'#')) {
        return false;
    }
    let whole_level =
        |i: usize, c: u8| f.get(i) == Some(&c) && matches!(f.get(i + 1), None | Some(b'/'));
    // `i` starts a filter level; `j` starts a topic level, or is past the
    // end once the topic has no level left.
    let (mut i, mut j) = (0, 0);
    loop {
        if whole_level(i, b'#') {
            return true;
        }
        if j > t.len() {
            return false;
        }
        if whole_level(i, b'+') {
            i += 1;
            while j < t.len() && t[j] != b'/' {
                j += 1;
            }
        } else {
            while i < f.len() && f[i] != b'/' {
                if t.get(j) != Some(&f[i]) {
                    return false;
                }
                i += 1;
                j += 1;
            }
            if j < t.len() && t[j] != b'/' {
                return false;
            }
        }
        match (i == f.len(), j == t.len()) {
            (true, true) => return true,
            (true, false) => return false,
            (false, true) => (i, j) = (i + 1, t.len() + 1),
            (false, false) => (i, j) = (i + 1, j + 1),
        }
    }
}

/// Whether every topic that `inner` matches is matched by `outer`.
fn filter_covers(outer: &str, inner: &str) -> bool {
    if outer.starts_with(['+', '#']) && !inner.starts_with(['+', '#']) && inner.starts_with('$') {
        return false;
    }
    let mut o = outer.split('/');
    let mut i = inner.split('/');
    loop {
        match (o.next(), i.next()) {
            (Some("#"), _) => return true,
            (Some("+"), Some(l)) if l != "#" => {}
            (Some(a), Some(b)) if a == b && a != "+" => {}
            (Some("+"), Some("+")) => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The specification of [`filter_matches`], level by level.
    fn filter_matches_reference(filter: &str, topic: &str) -> bool {
        if topic.starts_with('$') && (filter.starts_with('+') || filter.starts_with('#')) {
            return false;
        }
        let mut f = filter.split('/');
        let mut t = topic.split('/');
        loop {
            match (f.next(), t.next()) {
                (Some("#"), _) => return true,
                (Some("+"), Some(_)) => {}
                (Some(a), Some(b)) if a == b => {}
                (None, None) => return true,
                _ => return false,
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]
        #[test]
        fn filter_matches_agrees_with_reference(
            filter in "[ab+#/$]{0,8}",
            topic in "[ab+#/$]{0,8}",
        ) {
            prop_assert_eq!(
                filter_matches(&filter, &topic),
                filter_matches_reference(&filter, &topic),
                "filter {:?} topic {:?}", filter, topic
            );
        }
    }

    #[test]
    fn matching_follows_mqtt() {
        assert!(filter_matches("a/#", "a"));
        assert!(filter_matches("a/#", "a/b/c"));
        assert!(filter_matches("a/+/c", "a/b/c"));
        assert!(filter_matches("a/+", "a/"));
        assert!(!filter_matches("a/+", "a/b/c"));
        assert!(!filter_matches("a/b", "a/b/c"));
        assert!(filter_matches("#", "x/y"));
        assert!(!filter_matches("#", "$SYS/x"));
        assert!(!filter_matches("+/x", "$SYS/x"));
        assert!(filter_matches("$SYS/#", "$SYS/x"));
    }

    #[test]
    fn invalid_filters_are_refused() {
        for f in ["", "a/#/b", "a#", "a/b+", "x\0"] {
            assert!(validate_filter(f).is_err(), "{f:?}");
        }
        for f in ["#", "+", "a/+/b/#", "/"] {
            assert!(validate_filter(f).is_ok(), "{f:?}");
        }
    }

    #[test]
    fn shadowed_rules_are_refused() {
        let err = Policy::builder()
            .rule("a/#", Protection::mac())
            .unwrap()
            .rule("a/b", Protection::mac())
            .unwrap_err();
        assert!(matches!(err, ConfigError::ShadowedRule { .. }));
        assert!(
            Policy::builder()
                .rule("a/+", Protection::mac())
                .unwrap()
                .rule("a/#", Protection::sign())
                .is_ok()
        );
        assert!(
            Policy::builder()
                .rule("a/b", Protection::mac())
                .unwrap()
                .rule("a/b", Protection::sign())
                .is_err()
        );
    }

    #[test]
    fn first_match_wins() {
        let p = Policy::builder()
            .rule("control/robot/#", Protection::sign())
            .unwrap()
            .rule("control/#", Protection::mac())
            .unwrap()
            .build();
        assert_eq!(
            p.lookup("control/robot/1").unwrap().suite(),
            Some(Suite::Ed25519)
        );
        assert_eq!(
            p.lookup("control/x").unwrap().suite(),
            Some(Suite::HmacSha256)
        );
    }

    #[test]
    fn replay_is_on_by_default() {
        let p: Protection = Protection::encrypt(Aead::default()).into();
        assert!(p.replay());
        assert_eq!(p.suite(), Some(Suite::Aes256Gcm));
        let p = Protection::encrypt(Aead::ChaCha20Poly1305).sign().build();
        assert_eq!(p.suite(), Some(Suite::ChaCha20Poly1305Ed25519));
    }
}
