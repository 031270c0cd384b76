//! Entry points for fuzzing and benchmarks. Not part of the stable API.

use crate::crypto::CryptoProvider;
use crate::envelope::{self, Envelope, Suite};
use crate::error::{Malformed, Rejection};
use crate::keys::{GroupSecret, SenderId};
use crate::replay::{Authenticated, ReplayWindow};

/// Parses an envelope (the fuzz target's entry point).
pub fn parse_envelope(bytes: &[u8]) -> Result<Envelope<'_>, Malformed> {
    envelope::parse(bytes)
}

/// Derives a sender's raw key and IV from a group secret, without any cache:
/// extract and expand, as on a cache miss.
pub fn derive_sender_key(
    provider: &CryptoProvider,
    secret: &GroupSecret,
    suite: Suite,
    epoch: u32,
    sender: &SenderId,
) -> ([u8; 32], [u8; 12]) {
    let prk = crate::kdf::epoch_prk(provider, secret);
    let (k, iv) = crate::kdf::derive_raw(provider, &prk, suite, epoch, sender);
    (*k, *iv)
}

/// Checks and, if accepted, commits a counter in a replay window, as if the
/// message had been authenticated. For fuzzing the window only.
pub fn replay_accept_for_testing_only(
    window: &mut ReplayWindow,
    counter: u64,
) -> Result<(), Rejection> {
    window.check(counter)?;
    window.commit(counter, &Authenticated::new())
}
