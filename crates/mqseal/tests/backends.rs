//! One test suite, run against every crypto backend (as rustls runs its API
//! tests once per provider).

mod common;

#[cfg(feature = "ring")]
mod with_ring {
    static PROVIDER: &mqseal::crypto::CryptoProvider = &mqseal::crypto::ring::PROVIDER;
    include!("common/suite.rs");
}

#[cfg(feature = "rustcrypto")]
mod with_rustcrypto {
    static PROVIDER: &mqseal::crypto::CryptoProvider = &mqseal::crypto::rustcrypto::PROVIDER;
    include!("common/suite.rs");
}

mod with_default {
    static PROVIDER: &mqseal::crypto::CryptoProvider = mqseal::crypto::default_provider();
    include!("common/suite.rs");
}
