//! The key pair etcd signs its JWT auth tokens with (`[auth] token = "jwt"`):
//! ECDSA P-256 (etcd's `sign-method=ES256`), made on this machine in
//! `key_dir` when it is not there, like the CA.
//!
//! The private key is PKCS#8 PEM (rcgen's form; etcd's golang-jwt
//! `ParseECPrivateKeyFromPEM` falls back to PKCS#8, checked on etcd 3.4.23),
//! written 0600 in a 0700 folder and never printed: [`JwtKeys`] hides it in
//! `Debug`. The public key is PKIX PEM.

use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use super::PkiError;
use super::files::{make_private_dir, write_new};
use crate::config::{Desired, TokenKind};
use crate::observe::LocalAuthFiles;

/// The private key's file name in `key_dir`.
pub const JWT_KEY: &str = "jwt.key";
/// The public key's file name in `key_dir`.
pub const JWT_PUB: &str = "jwt.pub";

/// The JWT signing key pair, as PEM.
#[derive(Clone)]
pub struct JwtKeys {
    /// The public key (PKIX `PUBLIC KEY` PEM).
    pub public_pem: String,
    private_pem: String,
}

impl std::fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtKeys")
            .field("public_pem", &self.public_pem)
            .field("private_pem", &"<hidden>")
            .finish()
    }
}

impl JwtKeys {
    /// The private key (PKCS#8 PEM): only for writing it to a member, 0600.
    #[must_use]
    pub fn private_pem(&self) -> &str {
        &self.private_pem
    }

    /// Reads the pair from `dir`: None when neither file is there.
    ///
    /// # Errors
    /// When one file is there without the other, a file cannot be read, or
    /// the public key is not the private key's.
    pub fn load(dir: &Path) -> Result<Option<Self>, PkiError> {
        let (key, public) = (dir.join(JWT_KEY), dir.join(JWT_PUB));
        match (key.exists(), public.exists()) {
            (false, false) => return Ok(None),
            (true, false) => return Err(incomplete(dir, JWT_KEY, JWT_PUB)),
            (false, true) => return Err(incomplete(dir, JWT_PUB, JWT_KEY)),
            (true, true) => {}
        }
        let private_pem = read(&key)?;
        let public_pem = read(&public)?;
        let pair = rcgen::KeyPair::from_pem(&private_pem).map_err(|e| PkiError::Unreadable {
            path: key.clone(),
            message: format!("not a PEM private key: {e}"),
        })?;
        if pair.public_key_pem().trim() != public_pem.trim() {
            return Err(PkiError::KeyMismatch { cert: public, key });
        }
        Ok(Some(Self {
            public_pem,
            private_pem,
        }))
    }

    /// Makes a new pair in `dir` (0700, made if missing; the key 0600).
    ///
    /// # Errors
    /// When a file exists already or cannot be written.
    pub fn create(dir: &Path) -> Result<Self, PkiError> {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let keys = Self {
            public_pem: pair.public_key_pem(),
            private_pem: pair.serialize_pem(),
        };
        make_private_dir(dir)?;
        write_new(&dir.join(JWT_KEY), keys.private_pem.as_bytes(), 0o600)?;
        write_new(&dir.join(JWT_PUB), keys.public_pem.as_bytes(), 0o644)?;
        Ok(keys)
    }

    /// The pair in `dir`, made there first when it has none; `true` when it
    /// was made now.
    ///
    /// # Errors
    /// As [`Self::load`] and [`Self::create`].
    pub fn load_or_create(dir: &Path) -> Result<(Self, bool), PkiError> {
        match Self::load(dir)? {
            Some(keys) => Ok((keys, false)),
            None => Self::create(dir).map(|k| (k, true)),
        }
    }
}

fn incomplete(dir: &Path, present: &'static str, missing: &'static str) -> PkiError {
    PkiError::Incomplete {
        dir: dir.to_owned(),
        present,
        missing,
    }
}

fn read(path: &Path) -> Result<String, PkiError> {
    std::fs::read_to_string(path).map_err(|e| PkiError::Unreadable {
        path: path.to_owned(),
        message: e.to_string(),
    })
}

/// The hex sha256 of some bytes, as the hosts' probe prints it.
#[must_use]
pub fn sha256_hex(bytes: &[u8]) -> String {
    crate::model::hex(&Sha256::digest(bytes))
}

/// The `key_dir` the etcdfile gives, when it asks for JWT tokens.
#[must_use]
pub fn jwt_key_dir(d: &Desired) -> Option<&Path> {
    match d.auth.as_ref().map(|a| &a.token) {
        Some(TokenKind::Jwt { key_dir }) => Some(key_dir),
        _ => None,
    }
}

/// The CRL file the etcdfile gives, when client TLS carries it.
#[must_use]
pub fn crl_file(d: &Desired) -> Option<&PathBuf> {
    d.tls.crl_file.as_ref().filter(|_| d.tls.client)
}

/// The digests of this machine's JWT key pair and CRL: what `diff` compares
/// the members' placed files with. A file that is not there (or cannot be
/// read) has none.
#[must_use]
pub fn local_auth_files(d: &Desired) -> LocalAuthFiles {
    let digest = |p: &Path| std::fs::read(p).ok().map(|b| sha256_hex(&b));
    let (jwt_pub, jwt_key) = match jwt_key_dir(d) {
        Some(dir) => (digest(&dir.join(JWT_PUB)), digest(&dir.join(JWT_KEY))),
        None => (None, None),
    };
    LocalAuthFiles {
        jwt_pub,
        jwt_key,
        crl: crl_file(d).and_then(|p| digest(p)),
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p)
            .unwrap_or_else(|e| panic!("{e}"))
            .permissions()
            .mode()
            & 0o777
    }

    #[test]
    fn a_new_pair_is_p256_pkcs8_and_private() {
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let dir = tmp.path().join("jwt");
        let (keys, made) = JwtKeys::load_or_create(&dir).unwrap_or_else(|e| panic!("{e}"));
        assert!(made);
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join(JWT_KEY)), 0o600);
        assert_eq!(mode(&dir.join(JWT_PUB)), 0o644);
        // PKCS#8, not SEC1 ("EC PRIVATE KEY"); PKIX public key.
        assert!(
            keys.private_pem()
                .starts_with("-----BEGIN PRIVATE KEY-----\n")
        );
        assert!(keys.public_pem.starts_with("-----BEGIN PUBLIC KEY-----\n"));
        let pair = rcgen::KeyPair::from_pem(keys.private_pem()).unwrap_or_else(|e| panic!("{e}"));
        assert!(pair.is_compatible(&rcgen::PKCS_ECDSA_P256_SHA256));
        // The private key never shows in Debug.
        let shown = format!("{keys:?}");
        assert!(!shown.contains("BEGIN PRIVATE KEY"), "{shown}");
        // Loaded again: the same pair, not made anew.
        let (again, made) = JwtKeys::load_or_create(&dir).unwrap_or_else(|e| panic!("{e}"));
        assert!(!made);
        assert_eq!(again.private_pem(), keys.private_pem());
    }

    #[test]
    fn half_a_pair_or_a_foreign_public_key_is_refused() {
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let dir = tmp.path().join("jwt");
        JwtKeys::create(&dir).unwrap_or_else(|e| panic!("{e}"));
        let other = tmp.path().join("other");
        let theirs = JwtKeys::create(&other).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(dir.join(JWT_PUB), &theirs.public_pem).unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(
            JwtKeys::load(&dir),
            Err(PkiError::KeyMismatch { .. })
        ));
        std::fs::remove_file(dir.join(JWT_PUB)).unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(
            JwtKeys::load(&dir),
            Err(PkiError::Incomplete {
                missing: JWT_PUB,
                ..
            })
        ));
    }
}
