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
    /// The last day (days since 1970-01-01) the CA certificate is valid on.
    not_after_day: i64,
}

fn err(what: &str, e: rcgen::Error) -> String {
    format!("{what}: {e}")
}

/// The date of `day` (days since 1970-01-01) for [`rcgen::date_time_ymd`],
/// refusing the years a certificate cannot express (rcgen would panic).
fn date(day: i64) -> Result<(i32, u8, u8), String> {
    let (y, m, d) = civil::civil_from_days(day);
    match i32::try_from(y) {
        Ok(y) if (1950..=9999).contains(&y) => Ok((y, m as u8, d as u8)),
        _ => Err(format!(
            "the date {y:04}-{m:02}-{d:02} is beyond what a certificate can hold"
        )),
    }
}

/// `YYYY-MM-DD` of `day`.
fn ymd(day: i64) -> String {
    let (y, m, d) = civil::civil_from_days(day);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Validity from yesterday (tolerating clocks a little behind) for `days` days.
fn params(days: u32, rng: &SystemRandom) -> Result<CertificateParams, String> {
    let mut p = CertificateParams::default();
    let today = civil::today();
    let (y, m, d) = date(today - 1)?;
    p.not_before = rcgen::date_time_ymd(y, m, d);
    let (y, m, d) = date(today + i64::from(days))?;
    p.not_after = rcgen::date_time_ymd(y, m, d);
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
                not_after_day: civil::today() + i64::from(CA_DAYS),
            },
            issued,
        ))
    }

    /// Loads a CA from its certificate and private key (PEM), refusing a key
    /// that is not the certificate's: what it signed would not verify.
    pub fn load(cert_pem: &str, key_pem: &str) -> Result<Ca, String> {
        let key = KeyPair::from_pem(key_pem).map_err(|e| err("not a private key", e))?;
        let info = cert_info(cert_pem)?;
        if info.public_key != key.public_key_raw() {
            return Err(
                "the private key does not belong to the certificate (another CA's \
                        key?): certificates it signed would not verify. Put back the CA key \
                        that was made with this certificate"
                    .into(),
            );
        }
        let issuer =
            Issuer::from_ca_cert_pem(cert_pem, key).map_err(|e| err("not a certificate", e))?;
        Ok(Ca {
            issuer,
            not_after_day: info.not_after_day,
        })
    }

    /// Refuses a validity of `days` from today that would outlive the CA.
    pub fn check_days(&self, days: u32) -> Result<(), String> {
        let left = self.not_after_day - civil::today();
        if left < 1 {
            return Err(format!(
                "the CA certificate expired on {}: no certificate it signs would be valid; \
                 make a new deployment",
                ymd(self.not_after_day)
            ));
        }
        if i64::from(days) > left {
            return Err(format!(
                "--days {days} would outlive the CA, valid until {}: give --days {left} or less",
                ymd(self.not_after_day)
            ));
        }
        Ok(())
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
        let (y, m, d) = date(self.not_after_day)?;
        if p.not_after > rcgen::date_time_ymd(y, m, d) {
            return Err(format!(
                "{what} would outlive the CA, valid until {}",
                ymd(self.not_after_day)
            ));
        }
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

/// What [`Ca::load`] checks in the CA certificate.
struct CertInfo {
    /// The subject public key (the BIT STRING's bits).
    public_key: Vec<u8>,
    /// The day (since 1970-01-01) of notAfter.
    not_after_day: i64,
}

/// The subject public key and notAfter of the first certificate in `pem`.
fn cert_info(pem: &str) -> Result<CertInfo, String> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(pem.as_bytes())
        .map_err(|e| format!("not a PEM certificate: {e}"))?;
    let cert = pem
        .parse_x509()
        .map_err(|e| format!("not an X.509 certificate: {e}"))?;
    Ok(CertInfo {
        public_key: cert.public_key().subject_public_key.data.to_vec(),
        not_after_day: cert.validity().not_after.timestamp().div_euclid(86_400),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_loads_with_its_own_key_only() {
        let rng = SystemRandom::new();
        let (_, a) = Ca::generate("a", &rng).unwrap();
        let (_, b) = Ca::generate("b", &rng).unwrap();
        let ca = Ca::load(&a.cert_pem, &a.key_pem).unwrap();
        assert_eq!(ca.not_after_day, civil::today() + i64::from(CA_DAYS));
        let e = Ca::load(&a.cert_pem, &b.key_pem).err().unwrap();
        assert!(e.contains("does not belong to the certificate"), "{e}");
    }

    #[test]
    fn leaf_validity_stays_within_the_ca() {
        let rng = SystemRandom::new();
        let (ca, _) = Ca::generate("a", &rng).unwrap();
        assert!(ca.check_days(CA_DAYS).is_ok());
        let e = ca.check_days(CA_DAYS + 1).unwrap_err();
        assert!(e.contains(&format!("give --days {CA_DAYS} or less")), "{e}");
        // Even unchecked, signing refuses instead of issuing it (or panicking).
        assert!(ca.client("x", CA_DAYS + 1, &rng).is_err());
        assert!(ca.client("x", 3_000_000, &rng).is_err());
        assert!(ca.client("x", 1, &rng).is_ok());
    }
}
