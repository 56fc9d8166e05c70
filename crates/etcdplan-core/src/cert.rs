//! What a certificate says: read, never issued, here. Pure: the CA on disk
//! and issuing live on the edge (`pki`); the planner and the renderers judge
//! certificates by what they say (issuer, names, expiry), never by their bytes.

use std::fmt;

use sha2::{Digest as _, Sha256};
use time::OffsetDateTime;

/// The CA certificate's file name in `ca_dir` (and on hosts).
pub const CA_CERT: &str = "ca.crt";
/// The folder in `ca_dir` that keeps the CA a rotation replaces, until the
/// operator retires it: while it is there, members trust it next to the new one.
pub const PREVIOUS_DIR: &str = "previous";

/// A name a certificate is valid for.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub enum San {
    /// A DNS name.
    Dns(String),
    /// An IP address.
    Ip(std::net::IpAddr),
}

impl fmt::Display for San {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Dns(n) => write!(f, "DNS:{n}"),
            Self::Ip(a) => write!(f, "IP:{a}"),
        }
    }
}

/// What a certificate says, read with x509-parser.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CertInfo {
    /// sha256 of the DER, hex.
    pub fingerprint: String,
    /// Subject common name.
    pub subject: String,
    /// Issuer common name.
    pub issuer: String,
    /// Names it is valid for.
    pub sans: Vec<San>,
    /// Start of validity, unix seconds.
    pub not_before: i64,
    /// End of validity, unix seconds.
    pub not_after: i64,
    /// Whether it is a CA.
    pub is_ca: bool,
    /// The raw subject public key, to match keys.
    #[serde(skip)]
    pub public_key: Vec<u8>,
}

impl CertInfo {
    /// Whole days until it expires (negative once expired).
    #[must_use]
    pub fn days_left(&self, now: i64) -> i64 {
        (self.not_after - now).div_euclid(86_400)
    }

    /// The fingerprint as `AB:CD:…`, shortened to its first 8 bytes.
    #[must_use]
    pub fn short_fingerprint(&self) -> String {
        self.fingerprint
            .as_bytes()
            .chunks(2)
            .take(8)
            .map(|c| String::from_utf8_lossy(c).to_uppercase())
            .collect::<Vec<_>>()
            .join(":")
    }
}

/// Reads the first certificate of a PEM text.
///
/// # Errors
/// When the text holds no parsable certificate.
pub fn inspect(pem_text: &str) -> Result<CertInfo, String> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(pem_text.as_bytes())
        .map_err(|e| format!("not a PEM certificate: {e}"))?;
    let cert = pem
        .parse_x509()
        .map_err(|e| format!("not an X.509 certificate: {e}"))?;
    let cn = |name: &x509_parser::x509::X509Name<'_>| {
        name.iter_common_name()
            .next()
            .and_then(|c| c.as_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let mut sans = Vec::new();
    if let Ok(Some(ext)) = cert.subject_alternative_name() {
        for n in &ext.value.general_names {
            match n {
                x509_parser::extensions::GeneralName::DNSName(d) => {
                    sans.push(San::Dns((*d).to_owned()));
                }
                x509_parser::extensions::GeneralName::IPAddress(b) => {
                    if let Ok(a) = <[u8; 4]>::try_from(*b) {
                        sans.push(San::Ip(std::net::IpAddr::from(a)));
                    } else if let Ok(a) = <[u8; 16]>::try_from(*b) {
                        sans.push(San::Ip(std::net::IpAddr::from(a)));
                    }
                }
                _ => {}
            }
        }
    }
    sans.sort();
    Ok(CertInfo {
        fingerprint: crate::model::hex(&Sha256::digest(&pem.contents)),
        subject: cn(cert.subject()),
        issuer: cn(cert.issuer()),
        sans,
        not_before: cert.validity().not_before.timestamp(),
        not_after: cert.validity().not_after.timestamp(),
        is_ca: cert.is_ca(),
        public_key: cert.public_key().subject_public_key.data.to_vec(),
    })
}

/// Whether `cert_pem` was signed by the CA whose certificate is `ca_pem`.
#[must_use]
pub fn signed_by(cert_pem: &str, ca_pem: &str) -> bool {
    let parse = |t: &str| {
        x509_parser::pem::parse_x509_pem(t.as_bytes())
            .ok()
            .map(|(_, p)| p)
    };
    let (Some(leaf), Some(ca)) = (parse(cert_pem), parse(ca_pem)) else {
        return false;
    };
    let (Ok(leaf), Ok(ca)) = (leaf.parse_x509(), ca.parse_x509()) else {
        return false;
    };
    leaf.verify_signature(Some(ca.public_key())).is_ok()
}

/// Whether the first certificate of `cert_file` chains up to a CA in
/// `ca_bundle`: signed by one of them directly, or through intermediate CA
/// certificates that follow it in the same file (as `cat leaf.crt
/// intermediate.crt` writes it). Signatures are verified, not just names.
#[must_use]
pub fn chains_to(cert_file: &str, ca_bundle: &str) -> bool {
    let roots = split_bundle(ca_bundle);
    let chain = split_bundle(cert_file);
    let Some(mut current) = chain.first().cloned() else {
        return false;
    };
    let mut intermediates: Vec<String> = chain
        .iter()
        .skip(1)
        .filter(|c| inspect(c).is_ok_and(|i| i.is_ca))
        .cloned()
        .collect();
    // Each step uses up one intermediate, so this ends.
    loop {
        if roots.iter().any(|r| signed_by(&current, r)) {
            return true;
        }
        let Some(i) = intermediates.iter().position(|c| signed_by(&current, c)) else {
            return false;
        };
        current = intermediates.remove(i);
    }
}

/// Whether `san` (one the member needs) is covered by `have`: the same name
/// or address, or a DNS wildcard (`*.example.com`) over one label.
#[must_use]
pub fn covers(have: &[San], san: &San) -> bool {
    have.iter().any(|h| match (h, san) {
        (San::Ip(a), San::Ip(b)) => a == b,
        (San::Dns(pattern), San::Dns(name)) => {
            let (pattern, name) = (pattern.to_ascii_lowercase(), name.to_ascii_lowercase());
            pattern == name
                || pattern.strip_prefix("*.").is_some_and(|suffix| {
                    name.split_once('.')
                        .is_some_and(|(label, rest)| !label.is_empty() && rest == suffix)
                })
        }
        _ => false,
    })
}

/// The certificates of a PEM bundle, each as its own PEM text, in file order.
#[must_use]
pub fn split_bundle(text: &str) -> Vec<String> {
    const END: &str = "-----END CERTIFICATE-----";
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN CERTIFICATE-----") {
        let Some(end) = rest[start..].find(END) else {
            break;
        };
        let stop = start + end + END.len();
        out.push(format!("{}\n", &rest[start..stop]));
        rest = &rest[stop..];
    }
    out
}

/// What each readable certificate of a PEM bundle says, in file order.
#[must_use]
pub fn inspect_bundle(text: &str) -> Vec<CertInfo> {
    split_bundle(text)
        .iter()
        .filter_map(|c| inspect(c).ok())
        .collect()
}

/// The sha256 fingerprints of a bundle's certificates: what a member trusts,
/// as a set (order and formatting do not matter to etcd).
#[must_use]
pub fn bundle_fingerprints(text: &str) -> std::collections::BTreeSet<String> {
    inspect_bundle(text)
        .into_iter()
        .map(|i| i.fingerprint)
        .collect()
}

/// The time now, unix seconds: validity is judged against it.
#[must_use]
pub fn now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

/// A date for messages (UTC).
#[must_use]
pub fn date(unix: i64) -> String {
    OffsetDateTime::from_unix_timestamp(unix).map_or_else(
        |_| unix.to_string(),
        |t| format!("{}-{:02}-{:02}", t.year(), u8::from(t.month()), t.day()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_san_is_covered_by_itself_or_a_one_label_wildcard() {
        let have = vec![
            San::Dns("*.etcd.example.com".into()),
            San::Dns("Etcd-1".into()),
            San::Ip("10.0.0.1".parse().unwrap_or_else(|e| panic!("{e}"))),
        ];
        assert!(covers(&have, &San::Dns("etcd-1".into())));
        assert!(covers(&have, &San::Dns("a.etcd.example.com".into())));
        assert!(!covers(&have, &San::Dns("a.b.etcd.example.com".into())));
        assert!(!covers(&have, &San::Dns("etcd.example.com".into())));
        assert!(covers(
            &have,
            &San::Ip("10.0.0.1".parse().unwrap_or_else(|e| panic!("{e}")))
        ));
        assert!(!covers(
            &have,
            &San::Ip("10.0.0.2".parse().unwrap_or_else(|e| panic!("{e}")))
        ));
        // A DNS name is no IP SAN, even when it reads like one.
        assert!(!covers(&[San::Dns("10.0.0.1".into())], &have[2]));
    }

    #[test]
    fn text_that_holds_no_certificate_chains_to_nothing() {
        assert!(!chains_to("", "-----BEGIN CERTIFICATE-----\n"));
        assert!(!chains_to("not pem", ""));
    }
}
