//! Mac: HMAC-SHA256 over `header || u16be(len(topic)) || topic || payload`.
//!
//! The payload stays readable (for sensor data that is not confidential) and
//! the 32-byte tag follows it. Tags are compared in constant time.

use subtle::ConstantTimeEq;

use crate::crypto::MacKey;
use crate::envelope::topic_len_bytes;
use crate::error::Rejection;

/// The tag over header, topic and payload.
pub(crate) fn tag(key: &dyn MacKey, header: &[u8], topic: &str, payload: &[u8]) -> [u8; 32] {
    key.sign(&[header, &topic_len_bytes(topic), topic.as_bytes(), payload])
}

/// Verifies `tag` in constant time.
pub(crate) fn verify(
    key: &dyn MacKey,
    header: &[u8],
    topic: &str,
    payload: &[u8],
    tag_bytes: &[u8],
) -> Result<(), Rejection> {
    let expected = tag(key, header, topic, payload);
    if bool::from(expected.ct_eq(tag_bytes)) {
        Ok(())
    } else {
        Err(Rejection::Unauthenticated)
    }
}
