//! The private CA and the certificates it issues, made with rcgen.
//!
//! Every key is ECDSA P-256. The CA may sign end-entity certificates only
//! (path length 0); the server certificate is for TLS servers, client
//! certificates for TLS clients, each with its name as common name.

use std::net::IpAddr;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType, SerialNumber,
};
use ring::rand::{SecureRandom, SystemRandom};

use crate::civil;

/// Validity of the CA certificate, in days.
pub const CA_DAYS: u32 = 3650;

/// A certificate and its private key, both PEM.
pub struct Issued {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// The private key, PKCS#8 PEM.
    pub key_pem: String,
}

/// A CA able to sign certificates.
pub struct Ca {
    issuer: Issuer<'static, KeyPair>,
}

fn err(what: &str, e: rcgen::Error) -> String {
    format!("{what}: {e}")
}

/// Validity from yesterday (tolerating clocks a little behind) for `days` days.
fn params(days: u32, rng: &SystemRandom) -> Result<CertificateParams, String> {
    let mut p = CertificateParams::default();
    let today = civil::today();
    let (y, m, d) = civil::civil_from_days(today - 1);
    p.not_before = rcgen::date_time_ymd(y as i32, m as u8, d as u8);
    let (y, m, d) = civil::civil_from_days(today + i64::from(days));
    p.not_after = rcgen::date_time_ymd(y as i32, m as u8, d as u8);
    let mut serial = [0u8; 16];
    rng.fill(&mut serial)
        .map_err(|_| "the system random number generator failed".to_string())?;
    serial[0] = (serial[0] & 0x7f) | 0x40; // positive, 16 bytes
    p.serial_number = Some(SerialNumber::from_slice(&serial));
    p.distinguished_name = rcgen::DistinguishedName::new();
    Ok(p)
}

impl Ca {
    /// Creates a self-signed CA named `common_name`.
    pub fn generate(common_name: &str, rng: &SystemRandom) -> Result<(Ca, Issued), String> {
        let mut p = params(CA_DAYS, rng)?;
        p.distinguished_name
            .push(DnType::OrganizationName, "mqseal");
        p.distinguished_name.push(DnType::CommonName, common_name);
        p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        p.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().map_err(|e| err("cannot generate the CA key", e))?;
        let cert = p
            .self_signed(&key)
            .map_err(|e| err("cannot sign the CA certificate", e))?;
        let issued = Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        };
        Ok((
            Ca {
                issuer: Issuer::new(p, key),
            },
            issued,
        ))
    }

    /// Loads a CA from its certificate and private key (PEM).
    pub fn load(cert_pem: &str, key_pem: &str) -> Result<Ca, String> {
        let key = KeyPair::from_pem(key_pem).map_err(|e| err("not a private key", e))?;
        let issuer =
            Issuer::from_ca_cert_pem(cert_pem, key).map_err(|e| err("not a certificate", e))?;
        Ok(Ca { issuer })
    }

    /// Issues the broker's certificate: DNS name `name`, and the addresses `ips`.
    pub fn server(
        &self,
        name: &str,
        ips: &[IpAddr],
        days: u32,
        rng: &SystemRandom,
    ) -> Result<Issued, String> {
        let mut p = params(days, rng)?;
        p.distinguished_name.push(DnType::CommonName, name);
        p.subject_alt_names.push(SanType::DnsName(
            name.try_into().map_err(|e| err("invalid server name", e))?,
        ));
        p.subject_alt_names
            .extend(ips.iter().map(|ip| SanType::IpAddress(*ip)));
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.sign(p, "the server certificate")
    }

    /// Issues a client certificate with common name `name`.
    pub fn client(&self, name: &str, days: u32, rng: &SystemRandom) -> Result<Issued, String> {
        let mut p = params(days, rng)?;
        p.distinguished_name.push(DnType::CommonName, name);
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.sign(p, &format!("the certificate of client {name}"))
    }

    fn sign(&self, mut p: CertificateParams, what: &str) -> Result<Issued, String> {
        p.is_ca = IsCa::ExplicitNoCa;
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        p.use_authority_key_identifier_extension = true;
        let key = KeyPair::generate()
            .map_err(|e| err(&format!("cannot generate a key for {what}"), e))?;
        let cert = p
            .signed_by(&key, &self.issuer)
            .map_err(|e| err(&format!("cannot sign {what}"), e))?;
        Ok(Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}
