//! `etcdplan pki import-ca`: an existing CA handed to etcdplan to issue from.
//!
//! It comes as openssl leaves it (`ca.crt` + `ca.key`) or as cfssl does
//! (`ca.pem` + `ca-key.pem`), its key RSA or ECDSA in PKCS#1, PKCS#8 or SEC1.
//! rcgen signs (on ring) only with PKCS#8 keys, so the key is rewrapped as
//! PKCS#8 here (the same key: the certificate is kept as it is) and stored
//! the way etcdplan stores its own CA. Key material is never printed.

use std::path::{Path, PathBuf};

use pkcs8::der::zeroize::Zeroizing;
use pkcs8::der::{Decode as _, pem::LineEnding};
use rcgen::{CertificateParams, DistinguishedName, DnType, Issuer, KeyPair};

use super::files::{make_private_dir, write_new};
use super::{CA_CERT, CA_KEY, CertInfo, PREVIOUS_DIR, PkiError, date, inspect};

/// The file pairs a CA folder may hold: openssl's names, then cfssl's.
pub const LAYOUTS: [(&str, &str); 2] = [("ca.crt", "ca.key"), ("ca.pem", "ca-key.pem")];

/// What was imported.
#[derive(Debug, Clone)]
pub struct Imported {
    /// What the CA certificate says.
    pub info: CertInfo,
    /// The certificate file read.
    pub cert: PathBuf,
    /// The key file read.
    pub key: PathBuf,
    /// The key's algorithm and format as found ("RSA, PKCS#1").
    pub key_format: String,
    /// Where an earlier CA in `ca_dir` was moved (with `force`).
    pub replaced: Option<PathBuf>,
}

/// The key formats an operator's CA key comes in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyFormat {
    /// `BEGIN RSA PRIVATE KEY` (openssl genrsa -traditional).
    Pkcs1,
    /// `BEGIN PRIVATE KEY` (openssl genpkey, cfssl's RSA keys read back).
    Pkcs8,
    /// `BEGIN EC PRIVATE KEY` (openssl ecparam -genkey, cfssl).
    Sec1,
}

/// Imports the CA in `src` into `ca_dir`, checking first that its key
/// belongs to its certificate, that it is a CA allowed to sign certificates,
/// that it is valid `now`, and that rcgen can sign with it. A CA already in
/// `ca_dir` is kept unless `force`, and then moved aside, never deleted.
///
/// # Errors
/// Neither layout in `src`, a key or certificate that cannot be read or used,
/// a mismatch, a certificate that is not a signing CA, an expired CA, a CA
/// already there (without `force`), a rotation under way, or a write failure.
pub fn import_ca(src: &Path, ca_dir: &Path, force: bool, now: i64) -> Result<Imported, PkiError> {
    let Some((cert_path, key_path)) = LAYOUTS
        .iter()
        .map(|(c, k)| (src.join(c), src.join(k)))
        .find(|(c, k)| c.is_file() && k.is_file())
    else {
        return Err(PkiError::Unreadable {
            path: src.to_owned(),
            message: "holds neither ca.crt and ca.key (openssl) nor ca.pem and ca-key.pem (cfssl)"
                .into(),
        });
    };
    let unreadable = |p: &Path, message: String| PkiError::Unreadable {
        path: p.to_owned(),
        message,
    };
    let cert_text =
        std::fs::read_to_string(&cert_path).map_err(|e| unreadable(&cert_path, e.to_string()))?;
    let key_text = Zeroizing::new(
        std::fs::read_to_string(&key_path).map_err(|e| unreadable(&key_path, e.to_string()))?,
    );
    // The first certificate is the CA's (a file may carry its chain after it).
    let cert_pem = super::split_bundle(&cert_text)
        .into_iter()
        .next()
        .ok_or_else(|| unreadable(&cert_path, "holds no PEM certificate".into()))?;
    let info = inspect(&cert_pem).map_err(|m| unreadable(&cert_path, m))?;
    if !info.is_ca {
        return Err(PkiError::NotACa { path: cert_path });
    }
    if let Some(why) = cannot_sign(&cert_pem) {
        return Err(PkiError::CannotSign {
            path: cert_path,
            why,
        });
    }
    if now < info.not_before || now >= info.not_after {
        return Err(PkiError::Expired {
            path: cert_path,
            not_before: date(info.not_before),
            not_after: date(info.not_after),
        });
    }
    let (format, pkcs8_pem) = to_pkcs8(&key_text).map_err(|m| unreadable(&key_path, m))?;
    let key = KeyPair::from_pem(&pkcs8_pem).map_err(|e| {
        unreadable(
            &key_path,
            format!("not a key etcdplan can sign with (RSA 2048 to 8192 bits, ECDSA P-256 or P-384): {e}"),
        )
    })?;
    if key.public_key_raw() != info.public_key.as_slice() {
        return Err(PkiError::KeyMismatch {
            cert: cert_path,
            key: key_path,
        });
    }
    let algorithm = key_algorithm(&pkcs8_pem);
    trial_sign(&cert_pem, key).map_err(|e| unreadable(&cert_path, e))?;

    if ca_dir.join(PREVIOUS_DIR).exists() {
        return Err(PkiError::Rotation {
            message: format!(
                "{} holds the CA of a rotation not retired yet; finish it (`etcdplan apply`, then `etcdplan pki retire-ca`) before importing a CA",
                ca_dir.join(PREVIOUS_DIR).display()
            ),
        });
    }
    let present: Vec<PathBuf> = [CA_CERT, CA_KEY]
        .iter()
        .map(|f| ca_dir.join(f))
        .filter(|p| p.exists())
        .collect();
    let mut replaced = None;
    if !present.is_empty() {
        if !force {
            let fingerprint = std::fs::read_to_string(ca_dir.join(CA_CERT))
                .ok()
                .and_then(|t| inspect(&t).ok())
                .map_or_else(|| "unreadable".to_owned(), |i| i.short_fingerprint());
            return Err(PkiError::Exists {
                dir: ca_dir.to_owned(),
                fingerprint,
            });
        }
        let aside = ca_dir.join(format!("replaced-{}", super::now()));
        make_private_dir(&aside)?;
        for p in present {
            let to = aside.join(p.file_name().unwrap_or_default());
            std::fs::rename(&p, &to).map_err(|source| PkiError::Write { path: to, source })?;
        }
        replaced = Some(aside);
    }
    make_private_dir(ca_dir)?;
    write_new(&ca_dir.join(CA_KEY), pkcs8_pem.as_bytes(), 0o600)?;
    write_new(&ca_dir.join(CA_CERT), cert_pem.as_bytes(), 0o644)?;
    Ok(Imported {
        info,
        cert: cert_path,
        key: key_path,
        key_format: format!(
            "{algorithm}, {}",
            match format {
                KeyFormat::Pkcs1 => "PKCS#1",
                KeyFormat::Pkcs8 => "PKCS#8",
                KeyFormat::Sec1 => "SEC1",
            }
        ),
        replaced,
    })
}

/// Why a CA certificate may not sign certificates, by its key usage (a
/// certificate without that extension may sign anything).
fn cannot_sign(cert_pem: &str) -> Option<String> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(cert_pem.as_bytes()).ok()?;
    let cert = pem.parse_x509().ok()?;
    match cert.key_usage() {
        Ok(Some(ku)) if !ku.value.key_cert_sign() => {
            Some("its keyUsage does not include keyCertSign".into())
        }
        Err(e) => Some(format!("its keyUsage cannot be read: {e}")),
        _ => None,
    }
}

/// The key's first private-key PEM block (openssl's `ecparam -genkey` writes
/// an `EC PARAMETERS` block before it) as PKCS#8 PEM, and the format it was in.
fn to_pkcs8(text: &str) -> Result<(KeyFormat, Zeroizing<String>), String> {
    let block = text
        .match_indices("-----BEGIN ")
        .map(|(i, _)| &text[i..])
        .find(|b| {
            b.lines()
                .next()
                .is_some_and(|l| l.trim_end().ends_with("PRIVATE KEY-----"))
        })
        .ok_or("holds no PEM private key")?;
    let (label, doc) = pkcs8::SecretDocument::from_pem(block)
        .map_err(|e| format!("not a readable PEM private key: {e}"))?;
    let der = doc.as_bytes();
    let (format, wrapped) = match label {
        "PRIVATE KEY" => {
            pkcs8::PrivateKeyInfo::from_der(der).map_err(|e| format!("not a PKCS#8 key: {e}"))?;
            return Ok((KeyFormat::Pkcs8, block_text(&doc)?));
        }
        "RSA PRIVATE KEY" => {
            pkcs1::RsaPrivateKey::from_der(der)
                .map_err(|e| format!("not a PKCS#1 RSA key: {e}"))?;
            let info = pkcs8::PrivateKeyInfo::new(pkcs1::ALGORITHM_ID, der);
            (KeyFormat::Pkcs1, pkcs8::SecretDocument::try_from(info))
        }
        "EC PRIVATE KEY" => {
            let ec =
                sec1::EcPrivateKey::from_der(der).map_err(|e| format!("not a SEC1 EC key: {e}"))?;
            let curve = ec
                .parameters
                .and_then(sec1::EcParameters::named_curve)
                .ok_or("the EC key names no curve")?;
            let info = pkcs8::PrivateKeyInfo::new(
                pkcs8::AlgorithmIdentifierRef {
                    oid: sec1::ALGORITHM_OID,
                    parameters: Some((&curve).into()),
                },
                der,
            );
            (KeyFormat::Sec1, pkcs8::SecretDocument::try_from(info))
        }
        "ENCRYPTED PRIVATE KEY" => {
            return Err(
                "the key is encrypted; write it decrypted to a private folder first (openssl pkey -in KEY -out ca.key)"
                    .into(),
            );
        }
        other => return Err(format!("a {other:?} PEM block is not a key etcdplan reads")),
    };
    let doc = wrapped.map_err(|e| format!("cannot rewrap the key as PKCS#8: {e}"))?;
    Ok((format, block_text(&doc)?))
}

/// A PKCS#8 document as PEM.
fn block_text(doc: &pkcs8::SecretDocument) -> Result<Zeroizing<String>, String> {
    doc.to_pem("PRIVATE KEY", LineEnding::LF)
        .map_err(|e| format!("cannot write the key as PEM: {e}"))
}

/// "RSA" or "ECDSA", from a PKCS#8 key's algorithm identifier.
fn key_algorithm(pkcs8_pem: &str) -> &'static str {
    let oid = pkcs8::SecretDocument::from_pem(pkcs8_pem)
        .ok()
        .and_then(|(_, d)| {
            pkcs8::PrivateKeyInfo::from_der(d.as_bytes())
                .map(|i| i.algorithm.oid)
                .ok()
        });
    match oid {
        Some(o) if o == pkcs1::ALGORITHM_OID => "RSA",
        Some(o) if o == sec1::ALGORITHM_OID => "ECDSA",
        _ => "key",
    }
}

/// Signs a throwaway certificate with the CA, so an import never installs a
/// CA etcdplan cannot issue from.
fn trial_sign(cert_pem: &str, key: KeyPair) -> Result<(), String> {
    let issuer = Issuer::from_ca_cert_pem(cert_pem, key)
        .map_err(|e| format!("cannot sign with this CA: {e}"))?;
    let leaf_key = KeyPair::generate().map_err(|e| e.to_string())?;
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "etcdplan import check");
    p.distinguished_name = dn;
    p.signed_by(&leaf_key, &issuer)
        .map(|_| ())
        .map_err(|e| format!("cannot sign with this CA: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::{Ca, Found, Role, San, now};
    use std::os::unix::fs::PermissionsExt as _;
    use std::process::Command;

    /// Runs openssl in `dir`; false when there is no openssl to run.
    fn openssl(dir: &Path, args: &[&str]) -> bool {
        match Command::new("openssl").current_dir(dir).args(args).output() {
            Err(_) => false,
            Ok(o) => {
                assert!(
                    o.status.success(),
                    "openssl {args:?}: {}",
                    String::from_utf8_lossy(&o.stderr)
                );
                true
            }
        }
    }

    /// A self-signed CA certificate for the key in `key` (openssl's own way).
    fn self_sign(dir: &Path, key: &str, cert: &str, extra: &[&str]) -> bool {
        let mut args = vec![
            "req",
            "-x509",
            "-new",
            "-key",
            key,
            "-out",
            cert,
            "-days",
            "365",
            "-subj",
            "/CN=Operator CA",
        ];
        args.extend_from_slice(extra);
        openssl(dir, &args)
    }

    const CA_EXT: [&str; 4] = [
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ];

    /// Imports `src`, issues a server certificate from the imported CA, and
    /// has openssl verify it against the CA certificate.
    fn import_and_issue(src: &Path, expect_format: &str) {
        let ca_dir = src.join("imported");
        let done = import_ca(src, &ca_dir, false, now()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(done.key_format, expect_format);
        let key_text = std::fs::read_to_string(ca_dir.join(CA_KEY)).unwrap_or_default();
        assert!(
            key_text.starts_with("-----BEGIN PRIVATE KEY-----"),
            "stored as PKCS#8"
        );
        let mode = std::fs::metadata(ca_dir.join(CA_KEY))
            .map(|m| m.permissions().mode() & 0o777)
            .unwrap_or(0);
        assert_eq!(mode, 0o600);
        let Ok(Found::Ca(ca)) = Ca::load(&ca_dir, now()) else {
            panic!("the imported CA does not load");
        };
        let sans = [San::Ip(std::net::IpAddr::from([10, 0, 0, 1]))];
        let leaf = ca
            .issue(Role::Server, "etcd-1", &sans, 30)
            .unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(src.join("leaf.crt"), &leaf.cert_pem).unwrap_or_else(|e| panic!("{e}"));
        let out = Command::new("openssl")
            .current_dir(src)
            .args(["verify", "-CAfile", "imported/ca.crt", "leaf.crt"])
            .output()
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(
            out.status.success() && String::from_utf8_lossy(&out.stdout).contains("leaf.crt: OK"),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    #[test]
    fn openssl_keys_in_every_format_are_imported_and_issue_certificates_openssl_verifies() {
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        // RSA, PKCS#1 (openssl's ca.crt + ca.key).
        let d = tmp.path().join("rsa-pkcs1");
        std::fs::create_dir(&d).unwrap_or_else(|e| panic!("{e}"));
        if !openssl(&d, &["genrsa", "-traditional", "-out", "ca.key", "2048"]) {
            eprintln!("skipped: no openssl");
            return;
        }
        assert!(
            std::fs::read_to_string(d.join("ca.key"))
                .unwrap_or_default()
                .starts_with("-----BEGIN RSA PRIVATE KEY-----")
        );
        assert!(self_sign(&d, "ca.key", "ca.crt", &CA_EXT));
        import_and_issue(&d, "RSA, PKCS#1");
        // RSA, PKCS#8, with cfssl's names (ca.pem + ca-key.pem).
        let d = tmp.path().join("rsa-pkcs8");
        std::fs::create_dir(&d).unwrap_or_else(|e| panic!("{e}"));
        assert!(openssl(
            &d,
            &[
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
                "-out",
                "ca-key.pem"
            ]
        ));
        assert!(self_sign(&d, "ca-key.pem", "ca.pem", &CA_EXT));
        import_and_issue(&d, "RSA, PKCS#8");
        // ECDSA P-256, PKCS#8.
        let d = tmp.path().join("ec-pkcs8");
        std::fs::create_dir(&d).unwrap_or_else(|e| panic!("{e}"));
        assert!(openssl(
            &d,
            &[
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-out",
                "ca.key"
            ]
        ));
        assert!(self_sign(&d, "ca.key", "ca.crt", &CA_EXT));
        import_and_issue(&d, "ECDSA, PKCS#8");
        // ECDSA P-384, SEC1, with the EC PARAMETERS block openssl writes first;
        // a CA certificate without keyUsage may sign.
        let d = tmp.path().join("ec-sec1");
        std::fs::create_dir(&d).unwrap_or_else(|e| panic!("{e}"));
        assert!(openssl(
            &d,
            &["ecparam", "-genkey", "-name", "secp384r1", "-out", "ca.key"]
        ));
        let key = std::fs::read_to_string(d.join("ca.key")).unwrap_or_default();
        assert!(
            key.starts_with("-----BEGIN EC PARAMETERS-----"),
            "{key:.40}"
        );
        assert!(key.contains("-----BEGIN EC PRIVATE KEY-----"));
        assert!(self_sign(&d, "ca.key", "ca.crt", &CA_EXT[..2]));
        import_and_issue(&d, "ECDSA, SEC1");
    }

    #[test]
    fn a_mismatched_key_a_leaf_a_ca_that_may_not_sign_and_an_existing_ca_are_refused() {
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let d = tmp.path();
        if !openssl(
            d,
            &[
                "ecparam",
                "-genkey",
                "-name",
                "prime256v1",
                "-out",
                "ca.key",
            ],
        ) {
            eprintln!("skipped: no openssl");
            return;
        }
        assert!(openssl(
            d,
            &[
                "ecparam",
                "-genkey",
                "-name",
                "prime256v1",
                "-out",
                "other.key"
            ]
        ));
        let ca_dir = d.join("ca_dir");
        // Nothing to import.
        assert!(matches!(
            import_ca(d, &ca_dir, false, now()),
            Err(PkiError::Unreadable { .. })
        ));
        // A certificate for another key.
        assert!(self_sign(d, "other.key", "ca.crt", &CA_EXT));
        assert!(matches!(
            import_ca(d, &ca_dir, false, now()),
            Err(PkiError::KeyMismatch { .. })
        ));
        // Not a CA.
        assert!(self_sign(
            d,
            "ca.key",
            "ca.crt",
            &["-addext", "basicConstraints=critical,CA:FALSE"]
        ));
        assert!(matches!(
            import_ca(d, &ca_dir, false, now()),
            Err(PkiError::NotACa { .. })
        ));
        // A CA whose key usage does not allow signing certificates.
        assert!(self_sign(
            d,
            "ca.key",
            "ca.crt",
            &[
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,digitalSignature"
            ]
        ));
        assert!(matches!(
            import_ca(d, &ca_dir, false, now()),
            Err(PkiError::CannotSign { .. })
        ));
        assert!(!ca_dir.exists(), "nothing was written");
        // ca_dir holds a CA: kept without --force, moved aside with it.
        assert!(self_sign(d, "ca.key", "ca.crt", &CA_EXT));
        let before = crate::pki::ca::test_ca(&ca_dir);
        assert!(matches!(
            import_ca(d, &ca_dir, false, now()),
            Err(PkiError::Exists { .. })
        ));
        let done = import_ca(d, &ca_dir, true, now()).unwrap_or_else(|e| panic!("{e}"));
        let aside = done
            .replaced
            .clone()
            .unwrap_or_else(|| panic!("not moved aside"));
        let kept = std::fs::read_to_string(aside.join(CA_CERT)).unwrap_or_default();
        assert_eq!(kept, before.cert_pem());
        let Ok(Found::Ca(now_there)) = Ca::load(&ca_dir, now()) else {
            panic!("the imported CA does not load");
        };
        assert_eq!(now_there.info().subject, "Operator CA");
        // No key material in what is reported.
        assert!(!format!("{done:?}").contains("PRIVATE KEY"));
    }
}
