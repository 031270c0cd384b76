//! The full open path: arbitrary topic and bytes against fixed keys, trust
//! store and policy (those of `docs/vectors/`, one policy per suite).
//!
//! Input: `suite selector (1 B) || topic length (1 B) || topic || envelope`.
//! `Endpoint::open` on ring and `Endpoint::open_in_place` on the default
//! provider must never panic and must agree; an accepted envelope opened a
//! second time is a replay.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mqseal::internal::fixture;
use mqseal::{Error, Rejection, Suite, crypto};

fn outcome(e: &Error) -> String {
    e.rejection()
        .map_or_else(|| e.to_string(), |r| format!("{r:?}"))
}

fuzz_target!(|data: &[u8]| {
    let [sel, n, rest @ ..] = data else { return };
    let suite = Suite::ALL[usize::from(*sel) % Suite::ALL.len()];
    let (topic, envelope) = rest.split_at(usize::from(*n).min(rest.len()));
    let topic = String::from_utf8_lossy(topic);

    let mut a = fixture::receiver(suite, &crypto::ring::PROVIDER, false);
    let mut b = fixture::receiver(suite, crypto::default_provider(), false);
    let first = a.open(&topic, envelope);
    let mut copy = envelope.to_vec();
    let second = b.open_in_place(&topic, &mut copy);
    match (&first, &second) {
        (Ok((payload, meta)), Ok(opened)) => {
            assert_eq!(payload.as_slice(), opened.payload);
            assert_eq!(*meta, opened.envelope);
            if let Some(m) = meta {
                assert_eq!(m.suite, suite);
                let again = a.open(&topic, envelope).map(|_| ());
                assert_eq!(again.unwrap_err().rejection(), Some(&Rejection::Replayed));
            }
        }
        (Err(x), Err(y)) => assert_eq!(outcome(x), outcome(y)),
        _ => panic!("ring open: {first:?}, default open_in_place: {second:?}"),
    }
    assert!(a.tracked_senders() <= 1 && b.tracked_senders() <= 1);
});
