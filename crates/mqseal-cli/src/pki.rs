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
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;

use crate::civil;

/// Validity of the CA certificate, in days.
pub const CA_DAYS: u32 = 3650;

/// A certificate and its private key, both PEM.
pub struct Issued {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// The private key, PKCS#8 PEM.
    pub key_pem: String,
    /// The certificate's notAfter, `YYYY-MM-DD` (00:00 UTC).
    pub not_after: String,
}

/// The names of a server certificate: its common name, its DNS names and
/// its IP addresses (the subject alternative names).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Names {
    /// The subject's common name, if any.
    pub common_name: Option<String>,
    /// The DNS names, in their order in the certificate.
    pub dns: Vec<String>,
    /// The IP addresses, in their order in the certificate.
    pub ips: Vec<IpAddr>,
}

impl Names {
    /// The DNS names, then the addresses, joined by `, `.
    pub fn describe(&self) -> String {
        let mut all: Vec<String> = self.dns.clone();
        all.extend(self.ips.iter().map(ToString::to_string));
        if all.is_empty() {
            all.extend(self.common_name.clone());
        }
        all.join(", ")
    }
}

/// What [`Ca::read_issued`] reads of a certificate the CA issued.
#[derive(Clone, Debug)]
pub struct Leaf {
    /// Its names.
    pub names: Names,
    /// Its notAfter, `YYYY-MM-DD`.
    pub not_after: String,
}

/// A CA able to sign certificates.
pub struct Ca {
    issuer: Issuer<'static, KeyPair>,
    /// The CA certificate, DER: what the certificates it signed verify with.
    cert_der: Vec<u8>,
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
            not_after: ymd(civil::today() + i64::from(CA_DAYS)),
        };
        Ok((
            Ca {
                issuer: Issuer::new(p, key),
                cert_der: cert.der().to_vec(),
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
            cert_der: info.der,
            not_after_day: info.not_after_day,
        })
    }

    /// The last day the CA certificate is valid on, `YYYY-MM-DD`.
    pub fn not_after(&self) -> String {
        ymd(self.not_after_day)
    }

    /// Reads a certificate that this CA signed (the first of `pem`): its
    /// names and expiry. A certificate that another CA signed is refused, and
    /// so is a subject alternative name other than a DNS name or an IP
    /// address (the names renewal would not carry over).
    ///
    /// It must be a leaf certificate for a server (`server`) or a client: the
    /// CA's own certificate, or one of the other kind, is refused.
    pub fn read_issued(&self, pem: &str, server: bool) -> Result<Leaf, String> {
        let pem = parse_pem(pem)?;
        let cert = parse_cert(&pem)?;
        let (_, ca) = x509_parser::parse_x509_certificate(&self.cert_der)
            .map_err(|e| format!("the CA certificate does not parse: {e}"))?;
        cert.verify_signature(Some(ca.public_key())).map_err(|_| {
            "it was not signed by this deployment's CA (ca.crt): only a certificate of this \
             CA is renewed with it"
                .to_string()
        })?;
        if cert.is_ca() {
            return Err("it is a CA certificate, not a server's or a client's".into());
        }
        let purpose = if server { "server" } else { "client" };
        let eku = cert
            .extended_key_usage()
            .map_err(|e| format!("its extended key usage does not parse: {e}"))?;
        let fits = eku.is_some_and(|e| {
            if server {
                e.value.server_auth
            } else {
                e.value.client_auth
            }
        });
        if !fits {
            return Err(format!(
                "it is not a {purpose} certificate (no {purpose} authentication in its extended \
                 key usage)"
            ));
        }
        let common_name = match cert.subject().iter_common_name().next() {
            None => None,
            Some(cn) => Some(
                cn.as_str()
                    .map_err(|e| format!("its common name is not text: {e}"))?
                    .to_string(),
            ),
        };
        let mut names = Names {
            common_name,
            dns: Vec::new(),
            ips: Vec::new(),
        };
        let san = cert
            .subject_alternative_name()
            .map_err(|e| format!("its subject alternative names do not parse: {e}"))?;
        for name in san.iter().flat_map(|s| &s.value.general_names) {
            match name {
                GeneralName::DNSName(dns) => names.dns.push((*dns).to_string()),
                GeneralName::IPAddress(bytes) => {
                    let ip = match bytes.len() {
                        4 => <[u8; 4]>::try_from(*bytes).map(IpAddr::from).ok(),
                        16 => <[u8; 16]>::try_from(*bytes).map(IpAddr::from).ok(),
                        _ => None,
                    };
                    names.ips.push(ip.ok_or_else(|| {
                        format!("it holds an IP address of {} bytes", bytes.len())
                    })?);
                }
                other => {
                    return Err(format!(
                        "it holds the subject alternative name {other}, which mqseal does not \
                         issue: renew it by other means"
                    ));
                }
            }
        }
        Ok(Leaf {
            names,
            not_after: ymd(not_after_day(&cert)),
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

    /// Issues the broker's certificate: common name and DNS name `name`, and
    /// the addresses `ips`.
    pub fn server(
        &self,
        name: &str,
        ips: &[IpAddr],
        days: u32,
        rng: &SystemRandom,
    ) -> Result<Issued, String> {
        let names = Names {
            common_name: Some(name.to_string()),
            dns: vec![name.to_string()],
            ips: ips.to_vec(),
        };
        self.server_for(&names, days, rng)
    }

    /// Issues a server certificate for `names` (those of the certificate it
    /// renews).
    pub fn server_for(
        &self,
        names: &Names,
        days: u32,
        rng: &SystemRandom,
    ) -> Result<Issued, String> {
        let mut p = params(days, rng)?;
        if let Some(cn) = &names.common_name {
            p.distinguished_name.push(DnType::CommonName, cn.as_str());
        }
        for dns in &names.dns {
            p.subject_alt_names.push(SanType::DnsName(
                dns.as_str()
                    .try_into()
                    .map_err(|e| err("invalid server name", e))?,
            ));
        }
        p.subject_alt_names
            .extend(names.ips.iter().map(|ip| SanType::IpAddress(*ip)));
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
        let t = p.not_after;
        Ok(Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            not_after: ymd(t.unix_timestamp().div_euclid(86_400)),
        })
    }
}

/// What [`Ca::load`] checks in the CA certificate.
struct CertInfo {
    /// The certificate, DER.
    der: Vec<u8>,
    /// The subject public key (the BIT STRING's bits).
    public_key: Vec<u8>,
    /// The day (since 1970-01-01) of notAfter.
    not_after_day: i64,
}

/// The subject public key and notAfter of the first certificate in `pem`.
fn cert_info(pem: &str) -> Result<CertInfo, String> {
    let pem = parse_pem(pem)?;
    let cert = parse_cert(&pem)?;
    Ok(CertInfo {
        der: pem.contents.clone(),
        public_key: cert.public_key().subject_public_key.data.to_vec(),
        not_after_day: not_after_day(&cert),
    })
}

/// The first PEM block of `pem`.
fn parse_pem(pem: &str) -> Result<x509_parser::pem::Pem, String> {
    x509_parser::pem::parse_x509_pem(pem.as_bytes())
        .map(|(_, pem)| pem)
        .map_err(|e| format!("not a PEM certificate: {e}"))
}

/// The certificate in a PEM block.
fn parse_cert(pem: &x509_parser::pem::Pem) -> Result<X509Certificate<'_>, String> {
    pem.parse_x509()
        .map_err(|e| format!("not an X.509 certificate: {e}"))
}

/// The day (since 1970-01-01) of a certificate's notAfter.
fn not_after_day(cert: &X509Certificate<'_>) -> i64 {
    cert.validity().not_after.timestamp().div_euclid(86_400)
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
    fn a_renewed_server_certificate_keeps_the_names() {
        let rng = SystemRandom::new();
        let (ca, _) = Ca::generate("a", &rng).unwrap();
        let ips: Vec<IpAddr> = vec!["10.0.0.5".parse().unwrap(), "::1".parse().unwrap()];
        let old = ca.server("broker.example.com", &ips, 10, &rng).unwrap();
        let leaf = ca.read_issued(&old.cert_pem, true).unwrap();
        // Not as a client's, and the CA's own certificate is no leaf.
        let e = ca.read_issued(&old.cert_pem, false).unwrap_err();
        assert!(e.contains("not a client certificate"), "{e}");
        let (_, ca_files) = Ca::generate("c", &rng).unwrap();
        let own = Ca::load(&ca_files.cert_pem, &ca_files.key_pem).unwrap();
        let e = own.read_issued(&ca_files.cert_pem, true).unwrap_err();
        assert!(e.contains("is a CA certificate"), "{e}");
        let names = Names {
            common_name: Some("broker.example.com".into()),
            dns: vec!["broker.example.com".into()],
            ips,
        };
        assert_eq!(leaf.names, names);
        assert_eq!(leaf.not_after, old.not_after);
        assert_eq!(leaf.not_after, ymd(civil::today() + 10));
        let new = ca.server_for(&leaf.names, 20, &rng).unwrap();
        assert_ne!(new.cert_pem, old.cert_pem);
        assert_eq!(ca.read_issued(&new.cert_pem, true).unwrap().names, names);
        assert_eq!(
            names.describe(),
            "broker.example.com, 10.0.0.5, ::1".to_string()
        );
        // Another CA's certificate, even under the same CA name, is refused.
        let (other, _) = Ca::generate("a", &rng).unwrap();
        let foreign = other.client("dev1", 10, &rng).unwrap();
        let e = ca.read_issued(&foreign.cert_pem, false).unwrap_err();
        assert!(e.contains("not signed by this deployment's CA"), "{e}");
        assert!(ca.read_issued("not a certificate", true).is_err());
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
