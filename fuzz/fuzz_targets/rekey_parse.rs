//! The rekey-message parser (`mqseal::rekey::parse`): never panics, and what
//! it accepts is laid out as the signature expects.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(m) = mqseal::rekey::parse(data) else {
        return;
    };
    // signed = everything before the 64-byte signature, which ends the input;
    // the wrapping AAD is a prefix of the signed bytes.
    assert_eq!(m.signature.len(), 64);
    assert_eq!(m.signed.len() + 64, data.len());
    assert_eq!(m.signed, &data[..m.signed.len()]);
    assert!(m.aad.len() <= m.signed.len() && m.aad == &data[..m.aad.len()]);
    assert!(!m.recipients.is_empty());
    assert!(m.recipients.iter().all(|(_, w)| w.len() == 48));
});
