//! The protections, one module each: [`encrypt`], [`mac`] and [`sign`].
//!
//! They are applied in one fixed order that cannot be changed:
//!
//! - sealing: write the header (with the timestamp when freshness is on), then
//!   encrypt *or* MAC the payload with the topic and header as associated data,
//!   then sign the whole envelope so far (encrypt-then-sign);
//! - opening: parse, check the suite against the policy, check the counter
//!   against the replay window without changing it, verify the signature, then
//!   the AEAD tag or MAC (decrypting only after the tag is checked), then the
//!   timestamp, and only then record the counter in the replay window.
//!
//! Encrypting and MACing the same message, MAC-then-encrypt and sign-then-encrypt
//! are not expressible: a [`Protection`](crate::Protection) has at most one
//! symmetric algorithm, and the signature always comes last.

pub mod encrypt;
pub mod mac;
pub mod sign;
