//! Issuing leaf certificates from the CA: what each is for ([`Role`]), the
//! certificate and its key ([`Issued`], whose key is never shown), and serials.

use std::fmt;

use rcgen::{
    CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, KeyPair,
    KeyUsagePurpose, SanType, SerialNumber,
};
use time::OffsetDateTime;

use super::{Ca, PkiError, San};

/// What a leaf certificate is for; etcd's peer certificate is both server and
/// client, since peers dial each other with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// A member's client-facing certificate.
    Server,
    /// A member's peer certificate (serverAuth and clientAuth).
    Peer,
    /// A client: etcdplan itself, an operator, an application.
    Client,
}

impl Role {
    fn usages(self) -> Vec<ExtendedKeyUsagePurpose> {
        match self {
            Self::Server => vec![ExtendedKeyUsagePurpose::ServerAuth],
            Self::Peer => vec![
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ],
            Self::Client => vec![ExtendedKeyUsagePurpose::ClientAuth],
        }
    }
}

/// A certificate and its key as PEM; the key is never shown.
#[derive(Clone)]
pub struct Issued {
    /// The certificate.
    pub cert_pem: String,
    /// The private key (PKCS#8).
    pub key_pem: String,
}

impl fmt::Debug for Issued {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Issued")
            .field("cert_pem", &self.cert_pem)
            .field("key_pem", &"<redacted>")
            .finish()
    }
}

impl Ca {
    /// Issues a leaf certificate with a fresh ECDSA P-256 key and a random
    /// serial, valid from five minutes ago for `days` days (never beyond the CA).
    ///
    /// # Errors
    /// When rcgen refuses a name.
    pub fn issue(
        &self,
        role: Role,
        common_name: &str,
        sans: &[San],
        days: i64,
    ) -> Result<Issued, PkiError> {
        let key = KeyPair::generate()?;
        let mut p = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, common_name);
        p.distinguished_name = dn;
        for s in sans {
            p.subject_alt_names.push(match s {
                San::Dns(n) => SanType::DnsName(n.clone().try_into()?),
                San::Ip(a) => SanType::IpAddress(*a),
            });
        }
        p.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        p.extended_key_usages = role.usages();
        let now = OffsetDateTime::now_utc();
        p.not_before = now - time::Duration::minutes(5);
        let ca_end =
            OffsetDateTime::from_unix_timestamp(self.info.not_after).unwrap_or(p.not_before);
        p.not_after = (now + time::Duration::days(days)).min(ca_end);
        p.serial_number = Some(serial()?);
        p.use_authority_key_identifier_extension = true;
        let cert = p.signed_by(&key, &self.issuer)?;
        Ok(Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

/// A random 16-byte serial, positive.
pub(super) fn serial() -> Result<SerialNumber, PkiError> {
    let mut bytes = [0u8; 16];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
        .map_err(|_| rcgen::Error::RingUnspecified)?;
    bytes[0] &= 0x7f;
    Ok(SerialNumber::from_slice(&bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::{CA_DAYS, inspect, signed_by};

    use crate::pki::ca::test_ca as ca;

    #[test]
    fn a_peer_certificate_serves_and_dials_and_names_the_member() {
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let c = ca(tmp.path());
        let sans = vec![
            San::Dns("etcd-1".into()),
            San::Ip("10.0.0.1".parse().unwrap_or_else(|e| panic!("{e}"))),
        ];
        let issued = c
            .issue(Role::Peer, "etcd-1", &sans, 365)
            .unwrap_or_else(|e| panic!("{e}"));
        let info = inspect(&issued.cert_pem).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(info.sans, sans);
        assert_eq!(info.issuer, "etcdplan CA for demo");
        assert!(!info.is_ca);
        assert!(signed_by(&issued.cert_pem, c.cert_pem()));
        assert!(!format!("{issued:?}").contains("PRIVATE KEY"));
        // Two issues never share a serial or a key.
        let again = c
            .issue(Role::Peer, "etcd-1", &sans, 365)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_ne!(again.key_pem, issued.key_pem);
        assert_ne!(
            inspect(&again.cert_pem).map(|i| i.fingerprint),
            Ok(info.fingerprint)
        );
        // Another CA did not sign it.
        let other = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        assert!(!signed_by(&issued.cert_pem, ca(other.path()).cert_pem()));
    }

    #[test]
    fn a_leaf_never_outlives_its_ca() {
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let c = ca(tmp.path());
        let issued = c
            .issue(Role::Client, "root", &[], CA_DAYS * 2)
            .unwrap_or_else(|e| panic!("{e}"));
        let info = inspect(&issued.cert_pem).unwrap_or_else(|e| panic!("{e}"));
        assert!(info.not_after <= c.info().not_after);
    }
}
