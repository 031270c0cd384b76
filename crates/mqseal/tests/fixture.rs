//! The fuzzing and benchmark fixture (`mqseal::internal::fixture`) opens every
//! positive known-answer vector of its suite, so the `open` fuzz target's seed
//! corpus (made from `docs/vectors/` by `fuzz/make_corpus.py`) starts past
//! authentication, and its sender seals what the vectors say.

mod common;

use std::path::PathBuf;

use mqseal::counter::{CounterScope, CounterStore, Role};
use mqseal::internal::fixture;
use mqseal::{Suite, crypto};
use serde_json::Value;

fn vectors() -> Vec<(Suite, Value)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/vectors");
    Suite::ALL
        .iter()
        .map(|s| {
            let text = std::fs::read_to_string(dir.join(format!("{}.json", s.name()))).unwrap();
            (*s, serde_json::from_str(&text).unwrap())
        })
        .collect()
}

#[test]
fn fixture_receiver_opens_every_vector_case() {
    for (suite, v) in vectors() {
        for provider in common::providers() {
            let mut rx = fixture::receiver(suite, provider, false);
            for case in v["cases"].as_array().unwrap() {
                let topic = case["topic"].as_str().unwrap();
                let env = hex::decode(case["envelope"].as_str().unwrap()).unwrap();
                let (payload, meta) = rx
                    .open(topic, &env)
                    .unwrap_or_else(|e| panic!("{suite} {}: {e}", case["name"]));
                assert_eq!(hex::encode(payload), case["payload"].as_str().unwrap());
                assert_eq!(meta.unwrap().sender, fixture::sender_id());
            }
        }
    }
}

#[test]
fn fixture_sender_seals_the_vectors() {
    for (suite, v) in vectors() {
        let case = &v["cases"][1]; // the 64-byte payload at counter 1
        assert_eq!(case["counter"], 1);
        let store = mqseal::MemoryCounterStore::new();
        let scope = CounterScope {
            role: Role::Send,
            epoch: fixture::EPOCH,
            sender: fixture::sender_id(),
        };
        store.clone().store(&scope, 1).unwrap();
        let mut tx = fixture::sender_with_store(suite, crypto::default_provider(), 1024, store);
        let env = tx
            .seal(
                case["topic"].as_str().unwrap(),
                &hex::decode(case["payload"].as_str().unwrap()).unwrap(),
            )
            .unwrap();
        assert_eq!(
            hex::encode(env),
            case["envelope"].as_str().unwrap(),
            "{suite}"
        );
    }
}
