//! The ring and RustCrypto backends produce byte-identical envelopes for the
//! same inputs and open each other's.

#![cfg(all(feature = "ring", feature = "rustcrypto"))]

mod common;

use common::*;
use mqseal::crypto::{ring, rustcrypto};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, .. ProptestConfig::default() })]

    #[test]
    fn backends_agree(
        payload in prop::collection::vec(any::<u8>(), 0..4096),
        topic_idx in 0usize..TOPICS.len(),
        suffix in "[a-z0-9/]{0,20}",
        messages in 1usize..4,
    ) {
        let topic = format!("{}{}", TOPICS[topic_idx], suffix);
        let c = clock();
        let mut ring_tx = sealer(&ring::PROVIDER, &c);
        let mut rc_tx = sealer(&rustcrypto::PROVIDER, &c);
        let mut ring_rx = opener(&ring::PROVIDER, &c);
        let mut rc_rx = opener(&rustcrypto::PROVIDER, &c);
        for _ in 0..messages {
            let a = ring_tx.seal(&topic, &payload).unwrap();
            let b = rc_tx.seal(&topic, &payload).unwrap();
            prop_assert_eq!(&a, &b);
            prop_assert_eq!(rc_rx.open(&topic, &a).unwrap().0, payload.clone());
            prop_assert_eq!(ring_rx.open(&topic, &b).unwrap().0, payload.clone());
        }
    }
}
