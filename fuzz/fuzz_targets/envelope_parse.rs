//! The envelope parser: never panics, and what it accepts is consistent.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mqseal::envelope::MAX_HEADER_LEN;
use mqseal::internal::{encode_header, parse_envelope};

fuzz_target!(|data: &[u8]| {
    let Ok(env) = parse_envelope(data) else {
        return;
    };
    let h = env.header;
    let (hlen, trailer) = (env.header_len(), h.suite.trailer_len());
    assert!(hlen <= MAX_HEADER_LEN && hlen + trailer <= data.len());
    assert_eq!(hlen, h.encoded_len());
    // The regions partition the input.
    let sig = env.signature().map_or(0, <[u8]>::len);
    assert_eq!(hlen + env.body().len() + env.tag().len() + sig, data.len());
    assert_eq!(env.signed_bytes().len(), data.len() - sig);
    assert_eq!(env.header_bytes(), &data[..hlen]);
    // Only canonical encodings parse: re-encoding gives the same bytes.
    let mut buf = [0u8; MAX_HEADER_LEN];
    let n = encode_header(&h, &mut buf);
    assert_eq!(&buf[..n], env.header_bytes());
    // Parsing is a function of the bytes.
    assert_eq!(parse_envelope(data).map(|e| e.header), Ok(h));
});
