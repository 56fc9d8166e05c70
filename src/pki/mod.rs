//! The operator's certificate authority and the certificates issued from it.
//!
//! This runs on the operator's machine only. The CA key is read here to sign
//! and is never sent anywhere; leaf keys are made here, written to hosts 0600,
//! and never printed (the [`Issued`] type redacts its key in `Debug`).
//! Certificates on hosts are judged by what they say (issuer, names, expiry),
//! never by their bytes, which differ at every issue.

mod ca;
mod files;
mod import;
mod issue;
mod jwt;
mod trust;

use std::path::PathBuf;

pub use ca::{Authority, Ca, Found, retire_previous};
pub use etcdplan_core::cert::{
    CA_CERT, CertInfo, PREVIOUS_DIR, San, bundle_fingerprints, date, inspect, inspect_bundle, now,
    signed_by, split_bundle,
};
pub use files::write_new;
pub use import::{Imported, LAYOUTS, import_ca};
pub use issue::{Issued, Role};
pub use jwt::{JWT_KEY, JWT_PUB, JwtKeys, crl_file, jwt_key_dir, local_auth_files, sha256_hex};
pub use trust::local_cas;

/// The CA key's file name in `ca_dir`; it stays there.
pub const CA_KEY: &str = "ca.key";
/// How long a new CA is valid.
pub const CA_DAYS: i64 = 3650;

/// Why the CA or a certificate cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// One of the two CA files is there without the other.
    #[error("{} holds {present} but not {missing}", dir.display())]
    Incomplete {
        /// The CA folder.
        dir: PathBuf,
        /// The file found.
        present: &'static str,
        /// The file missing.
        missing: &'static str,
    },
    /// The CA key does not belong to the CA certificate.
    #[error("{} does not match {}: the key is not the certificate's", key.display(), cert.display())]
    KeyMismatch {
        /// The certificate.
        cert: PathBuf,
        /// The key.
        key: PathBuf,
    },
    /// The CA has expired (or is not valid yet).
    #[error("the CA in {} is not valid now (valid {not_before} to {not_after})", path.display())]
    Expired {
        /// The certificate.
        path: PathBuf,
        /// Start of validity.
        not_before: String,
        /// End of validity.
        not_after: String,
    },
    /// The certificate is not a CA.
    #[error("{} is not a CA certificate (no CA basic constraint)", path.display())]
    NotACa {
        /// The certificate.
        path: PathBuf,
    },
    /// A file could not be read or parsed.
    #[error("{}: {message}", path.display())]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// A file could not be written.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A rotation cannot start or end from what `ca_dir` holds.
    #[error("{message}")]
    Rotation {
        /// What stops it.
        message: String,
    },
    /// A command for etcdplan's own CA, with the operator's CA issuing.
    #[error(
        "`etcdplan pki {command}` works on etcdplan's own CA, but [tls] issuer = \"external\": your CA issues the certificates"
    )]
    ExternalIssuer {
        /// The subcommand.
        command: &'static str,
    },
    /// A client certificate without its key, or a key without its certificate.
    #[error("{given} is given without {missing}")]
    HalfIdentity {
        /// What was given (`--cert`, `ETCDCTL_KEY`, …).
        given: &'static str,
        /// What is missing.
        missing: &'static str,
    },
    /// `ca_dir` holds a CA already, and an import would replace it.
    #[error("{} holds a CA already (sha256 {fingerprint})", dir.display())]
    Exists {
        /// The CA folder.
        dir: PathBuf,
        /// The CA there, short fingerprint.
        fingerprint: String,
    },
    /// An imported CA may not sign certificates.
    #[error("{} cannot sign certificates: {why}", path.display())]
    CannotSign {
        /// The certificate.
        path: PathBuf,
        /// Which part says so.
        why: String,
    },
    /// `pki client NAME` while `[auth]` is managed, for a name that is not a
    /// declared user: etcd would take the certificate's CN for a user that
    /// does not exist, and refuse it.
    #[error("{name:?} is not a user [auth] declares (the users are {})", declared.join(", "))]
    UndeclaredUser {
        /// The name asked for.
        name: String,
        /// `root` and the declared users, in file order.
        declared: Vec<String>,
    },
    /// rcgen refused to make a key or certificate.
    #[error("cannot issue a certificate: {0}")]
    Issue(#[from] rcgen::Error),
}

impl PkiError {
    /// What the operator can do about it; nothing was changed in any case.
    #[must_use]
    pub fn advice(&self) -> &'static str {
        match self {
            Self::Incomplete { .. } => {
                "put the missing file back, or move both away to have etcdplan create a new CA (every member's certificates are then reissued); nothing was changed"
            }
            Self::KeyMismatch { .. } => {
                "restore the key that belongs to this CA certificate; nothing was changed"
            }
            Self::Expired { .. } => {
                "an expired CA cannot sign, and members whose certificates it signed have stopped trusting each other: restore a valid CA, or move ca.crt and ca.key away and build the cluster's certificates anew; nothing was changed"
            }
            Self::NotACa { .. } => {
                "ca_dir must hold a CA certificate and its key; nothing was changed"
            }
            Self::Unreadable { .. } | Self::Write { .. } => {
                "check the file's permissions and content; nothing was changed"
            }
            Self::Rotation { .. } => {
                "`etcdplan status` shows which CA each member trusts; nothing was changed"
            }
            Self::Issue(_) => "this is a bug in etcdplan or its libraries; nothing was changed",
            Self::ExternalIssuer { .. } => {
                "issue and place certificates with your own CA (etcdplan reads them and never writes them), or set issuer = \"etcdplan\" and hand it your CA with `etcdplan pki import-ca DIR`; nothing was changed"
            }
            Self::HalfIdentity { .. } => {
                "give a client certificate with its key (--cert and --key, ETCDCTL_CERT and ETCDCTL_KEY, or [client] cert and key); nothing was changed"
            }
            Self::Exists { .. } => {
                "pass --force to replace it (every member's certificates are then issued again by the imported CA, and the members trust it only after a rolling restart), or move ca_dir's files away; nothing was changed"
            }
            Self::UndeclaredUser { .. } => {
                "issue the certificate for a declared user, or declare it with [[auth.user]] name = \"NAME\" (without a password it logs in by this certificate's CN with client_cert_auth) and apply; nothing was changed"
            }
            Self::CannotSign { .. } => {
                "import the CA certificate itself (basicConstraints CA:TRUE, keyUsage keyCertSign), not a certificate it issued; nothing was changed"
            }
        }
    }
}
