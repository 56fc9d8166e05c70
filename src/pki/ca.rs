//! The CA's life cycle on this machine: load and check the CA in `ca_dir`,
//! create one, rotate it (the old one kept in `previous/` and still trusted)
//! and retire the previous one. Issuing from it is in `issue.rs`.

use std::fmt;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use time::OffsetDateTime;

use super::files::{make_private_dir, write_new};
use super::issue::{Issued, Role, serial};
use super::{CA_CERT, CA_DAYS, CA_KEY, CertInfo, PREVIOUS_DIR, PkiError, date, inspect, now};

/// The operator's CA, loaded from `ca_dir`.
pub struct Ca {
    dir: PathBuf,
    cert_pem: String,
    /// What the certificate says; `issue.rs` caps a leaf's validity by it.
    pub(super) info: CertInfo,
    /// The signer, for `issue.rs`.
    pub(super) issuer: Issuer<'static, KeyPair>,
}

impl fmt::Debug for Ca {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ca")
            .field("dir", &self.dir)
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

/// What `ca_dir` holds.
#[derive(Debug)]
pub enum Found {
    /// A usable CA.
    Ca(Box<Ca>),
    /// Neither file: apply creates a CA.
    Nothing,
}

impl Ca {
    /// Loads the CA from `dir`, checking that its key matches and that it is
    /// valid now.
    ///
    /// # Errors
    /// One file without the other, a key that does not match, an expired CA,
    /// or files that cannot be read.
    pub fn load(dir: &Path, now: i64) -> Result<Found, PkiError> {
        let (cert_path, key_path) = (dir.join(CA_CERT), dir.join(CA_KEY));
        let (has_cert, has_key) = (cert_path.exists(), key_path.exists());
        match (has_cert, has_key) {
            (false, false) => return Ok(Found::Nothing),
            (true, false) => {
                return Err(PkiError::Incomplete {
                    dir: dir.to_owned(),
                    present: CA_CERT,
                    missing: CA_KEY,
                });
            }
            (false, true) => {
                return Err(PkiError::Incomplete {
                    dir: dir.to_owned(),
                    present: CA_KEY,
                    missing: CA_CERT,
                });
            }
            (true, true) => {}
        }
        let read = |p: &Path| {
            std::fs::read_to_string(p).map_err(|e| PkiError::Unreadable {
                path: p.to_owned(),
                message: e.to_string(),
            })
        };
        let cert_pem = read(&cert_path)?;
        let key_pem = read(&key_path)?;
        let info = inspect(&cert_pem).map_err(|message| PkiError::Unreadable {
            path: cert_path.clone(),
            message,
        })?;
        if !info.is_ca {
            return Err(PkiError::NotACa { path: cert_path });
        }
        let key = KeyPair::from_pem(&key_pem).map_err(|e| PkiError::Unreadable {
            path: key_path.clone(),
            message: format!("not a private key etcdplan can use: {e}"),
        })?;
        if key.public_key_raw() != info.public_key.as_slice() {
            return Err(PkiError::KeyMismatch {
                cert: cert_path,
                key: key_path,
            });
        }
        if now < info.not_before || now >= info.not_after {
            return Err(PkiError::Expired {
                path: cert_path,
                not_before: date(info.not_before),
                not_after: date(info.not_after),
            });
        }
        let issuer =
            Issuer::from_ca_cert_pem(&cert_pem, key).map_err(|e| PkiError::Unreadable {
                path: cert_path.clone(),
                message: format!("cannot sign with this CA: {e}"),
            })?;
        Ok(Found::Ca(Box::new(Self {
            dir: dir.to_owned(),
            cert_pem,
            info,
            issuer,
        })))
    }

    /// Creates a CA in `dir` (made 0700 if new): an ECDSA P-256 key written
    /// 0600 and a self-signed certificate valid for [`CA_DAYS`].
    ///
    /// # Errors
    /// When either file already exists or cannot be written.
    pub fn create(dir: &Path, cluster: &str) -> Result<Self, PkiError> {
        Self::create_named(dir, &format!("etcdplan CA for {cluster}"))
    }

    /// Moves the CA in `dir` to `dir/previous` and creates a new one in its
    /// place, named with the date so the two can be told apart. Members trust
    /// both until the previous one is retired ([`retire_previous`]).
    ///
    /// # Errors
    /// When `dir` holds no CA or one [`Ca::load`] refuses, a previous CA is
    /// still there (a rotation not finished), or the files cannot be moved or
    /// written.
    pub fn rotate(dir: &Path, cluster: &str, now: i64) -> Result<Self, PkiError> {
        let previous = dir.join(PREVIOUS_DIR);
        if previous.exists() {
            return Err(PkiError::Rotation {
                message: format!(
                    "{} still holds the CA of an earlier rotation; apply that rotation, then retire it (`etcdplan pki retire-ca`) before starting another",
                    previous.display()
                ),
            });
        }
        if let Found::Nothing = Self::load(dir, now)? {
            return Err(PkiError::Rotation {
                message: format!(
                    "{} holds no CA: there is nothing to rotate (apply creates one)",
                    dir.display()
                ),
            });
        }
        make_private_dir(&previous)?;
        for f in [CA_KEY, CA_CERT] {
            std::fs::rename(dir.join(f), previous.join(f)).map_err(|source| PkiError::Write {
                path: previous.join(f),
                source,
            })?;
        }
        let stamp = OffsetDateTime::now_utc();
        Self::create_named(
            dir,
            &format!(
                "etcdplan CA for {cluster}, {} {:02}:{:02}:{:02}",
                date(stamp.unix_timestamp()),
                stamp.hour(),
                stamp.minute(),
                stamp.second()
            ),
        )
    }

    /// Creates a CA with this common name; see [`Ca::create`].
    ///
    /// # Errors
    /// When either file already exists or cannot be written.
    pub fn create_named(dir: &Path, common_name: &str) -> Result<Self, PkiError> {
        let key = KeyPair::generate()?;
        let mut p = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, common_name);
        p.distinguished_name = dn;
        p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        p.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let now = OffsetDateTime::now_utc();
        p.not_before = now - time::Duration::minutes(5);
        p.not_after = now + time::Duration::days(CA_DAYS);
        p.serial_number = Some(serial()?);
        let cert = p.self_signed(&key)?;
        make_private_dir(dir)?;
        write_new(&dir.join(CA_KEY), key.serialize_pem().as_bytes(), 0o600)?;
        write_new(&dir.join(CA_CERT), cert.pem().as_bytes(), 0o644)?;
        let cert_pem = cert.pem();
        let info = inspect(&cert_pem).map_err(|message| PkiError::Unreadable {
            path: dir.join(CA_CERT),
            message,
        })?;
        Ok(Self {
            dir: dir.to_owned(),
            cert_pem,
            info,
            issuer: Issuer::new(p, key),
        })
    }

    /// The CA certificate, PEM (public; every host gets it).
    #[must_use]
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// What the CA certificate says.
    #[must_use]
    pub fn info(&self) -> &CertInfo {
        &self.info
    }

    /// The folder it lives in.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// The operator's CAs: the one in `ca_dir` and, during a rotation, the one it
/// replaces, kept in `ca_dir/previous` until retired.
#[derive(Debug)]
pub struct Authority {
    /// The CA that issues certificates.
    pub current: Ca,
    /// The CA being rotated out; members still trust it.
    pub previous: Option<Ca>,
}

impl Authority {
    /// Loads both; `None` when `dir` holds no CA yet.
    ///
    /// # Errors
    /// As [`Ca::load`], for either CA; a `previous` folder must hold a whole CA.
    pub fn load(dir: &Path, now: i64) -> Result<Option<Self>, PkiError> {
        let Found::Ca(current) = Ca::load(dir, now)? else {
            return Ok(None);
        };
        let previous_dir = dir.join(PREVIOUS_DIR);
        let previous = if previous_dir.exists() {
            match Ca::load(&previous_dir, now)? {
                Found::Ca(ca) => Some(*ca),
                Found::Nothing => {
                    return Err(PkiError::Rotation {
                        message: format!(
                            "{} holds no CA; remove the empty folder",
                            previous_dir.display()
                        ),
                    });
                }
            }
        } else {
            None
        };
        Ok(Some(Self {
            current: *current,
            previous,
        }))
    }

    /// The CAs to trust, PEM: the previous one while it is kept, and the current.
    #[must_use]
    pub fn trust_bundle(&self) -> String {
        self.previous
            .iter()
            .chain(std::iter::once(&self.current))
            .map(|c| c.cert_pem().to_owned())
            .collect()
    }

    /// Client certificates named `common_name`, from the current CA and then,
    /// during a rotation, from the previous one: members that do not trust the
    /// new CA yet accept only the second.
    ///
    /// # Errors
    /// When rcgen refuses the name.
    pub fn client_certificates(
        &self,
        common_name: &str,
        days: i64,
    ) -> Result<Vec<Issued>, PkiError> {
        std::iter::once(&self.current)
            .chain(self.previous.iter())
            .map(|ca| ca.issue(Role::Client, common_name, &[], days))
            .collect()
    }
}

/// Ends a rotation on this machine: the previous CA moves from
/// `dir/previous` to `dir/retired-<time>`, so the next plan drops it from the
/// members' trust. Returns where it went.
///
/// # Errors
/// When there is no previous CA, or it cannot be moved.
pub fn retire_previous(dir: &Path) -> Result<PathBuf, PkiError> {
    let previous = dir.join(PREVIOUS_DIR);
    if !previous.join(CA_CERT).is_file() {
        return Err(PkiError::Rotation {
            message: format!(
                "{} holds no CA: no rotation is under way",
                previous.display()
            ),
        });
    }
    let to = dir.join(format!("retired-{}", now()));
    std::fs::rename(&previous, &to).map_err(|source| PkiError::Write {
        path: to.clone(),
        source,
    })?;
    Ok(to)
}

/// A new CA named "demo" in `dir`, for the unit tests of this module and
/// `issue`.
#[cfg(test)]
pub(super) fn test_ca(dir: &Path) -> Ca {
    match Ca::create(dir, "demo") {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::{bundle_fingerprints, signed_by, split_bundle};
    use std::os::unix::fs::PermissionsExt as _;

    use super::test_ca as ca;

    #[test]
    fn a_new_ca_is_private_and_loads_back() {
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let dir = tmp.path().join("pki");
        let created = ca(&dir);
        let mode = |p: &Path| {
            std::fs::metadata(p)
                .map(|m| m.permissions().mode() & 0o777)
                .unwrap_or(0)
        };
        assert_eq!(mode(&dir.join(CA_KEY)), 0o600);
        assert_eq!(mode(&dir), 0o700);
        assert!(created.info().is_ca);
        assert!(created.info().days_left(now()) >= CA_DAYS - 1);
        match Ca::load(&dir, now()) {
            Ok(Found::Ca(c)) => assert_eq!(c.info(), created.info()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_cert_without_its_key_a_foreign_key_and_an_expired_ca_are_refused() {
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
        ca(&a);
        ca(&b);
        std::fs::rename(a.join(CA_KEY), tmp.path().join("moved.key"))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(
            Ca::load(&a, now()),
            Err(PkiError::Incomplete {
                missing: CA_KEY,
                ..
            })
        ));
        std::fs::copy(b.join(CA_KEY), a.join(CA_KEY)).unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(
            Ca::load(&a, now()),
            Err(PkiError::KeyMismatch { .. })
        ));
        let later = now() + (CA_DAYS + 1) * 86_400;
        assert!(matches!(Ca::load(&b, later), Err(PkiError::Expired { .. })));
    }

    #[test]
    fn a_rotation_keeps_the_previous_ca_until_it_is_retired() {
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let dir = tmp.path().join("pki");
        let old = ca(&dir);
        // Nothing to rotate in an empty folder.
        let empty = tmp.path().join("empty");
        assert!(matches!(
            Ca::rotate(&empty, "demo", now()),
            Err(PkiError::Rotation { .. })
        ));
        let new = Ca::rotate(&dir, "demo", now()).unwrap_or_else(|e| panic!("{e}"));
        assert_ne!(new.info().fingerprint, old.info().fingerprint);
        assert_ne!(new.info().subject, old.info().subject);
        let auth = match Authority::load(&dir, now()) {
            Ok(Some(a)) => a,
            other => panic!("{other:?}"),
        };
        assert_eq!(auth.current.info(), new.info());
        assert_eq!(
            auth.previous.as_ref().map(Ca::info),
            Some(old.info()),
            "the old CA moved to previous/"
        );
        let mode = |p: &Path| {
            std::fs::metadata(p)
                .map(|m| m.permissions().mode() & 0o777)
                .unwrap_or(0)
        };
        assert_eq!(mode(&dir.join(PREVIOUS_DIR).join(CA_KEY)), 0o600);
        assert_eq!(mode(&dir.join(PREVIOUS_DIR)), 0o700);
        // The bundle holds both; the client certificates come from each.
        let bundle = auth.trust_bundle();
        assert_eq!(split_bundle(&bundle).len(), 2);
        assert_eq!(
            bundle_fingerprints(&bundle),
            [
                old.info().fingerprint.clone(),
                new.info().fingerprint.clone()
            ]
            .into_iter()
            .collect()
        );
        let ids = auth
            .client_certificates("app", 1)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(ids.len(), 2);
        assert!(signed_by(&ids[0].cert_pem, new.cert_pem()));
        assert!(signed_by(&ids[1].cert_pem, old.cert_pem()));
        // A second rotation before the first is retired is refused, changing nothing.
        assert!(matches!(
            Ca::rotate(&dir, "demo", now()),
            Err(PkiError::Rotation { .. })
        ));
        assert!(dir.join(CA_KEY).exists());
        // Retired: only the new CA is left, and the old one is kept aside.
        let to = retire_previous(&dir).unwrap_or_else(|e| panic!("{e}"));
        assert!(to.join(CA_KEY).exists());
        match Authority::load(&dir, now()) {
            Ok(Some(a)) => assert!(a.previous.is_none()),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            retire_previous(&dir),
            Err(PkiError::Rotation { .. })
        ));
    }

    #[test]
    fn a_previous_ca_without_its_key_is_refused() {
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let dir = tmp.path().join("pki");
        ca(&dir);
        Ca::rotate(&dir, "demo", now()).unwrap_or_else(|e| panic!("{e}"));
        std::fs::remove_file(dir.join(PREVIOUS_DIR).join(CA_KEY)).unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(
            Authority::load(&dir, now()),
            Err(PkiError::Incomplete { .. })
        ));
    }
}
