//! `etcdplan pki …`: a CA rotation started or ended, and client certificates
//! written for operators and applications, with what to do next.

use std::io::Write;

use super::edges::ca_or_create;
use super::errors::pki_error;
use super::{Cli, CliError, Outcome, PkiCommand, load};

/// Runs one `pki` subcommand, writing what it did to `out`.
pub(super) fn run(cli: &Cli, what: &PkiCommand, out: &mut impl Write) -> Result<Outcome, CliError> {
    match what {
        PkiCommand::ImportCa { dir, force } => {
            let loaded = load(cli)?;
            let d = &loaded.desired;
            if d.tls.external().is_some() {
                return Err(pki_error(crate::pki::PkiError::ExternalIssuer {
                    command: "import-ca",
                }));
            }
            let done = crate::pki::import_ca(dir, &d.tls.ca_dir, *force, crate::pki::now())
                .map_err(pki_error)?;
            let info = &done.info;
            if let Some(aside) = &done.replaced {
                writeln!(out, "Moved the CA ca_dir held to {}.", aside.display())?;
            }
            writeln!(
                out,
                "Imported the CA {cn:?} (sha256 {fp}, valid until {until}) from {cert} and {key} ({fmt} key) into {dir}: the key as PKCS#8, 0600.
etcdplan issues the members' certificates from it from now on: `etcdplan plan` shows which members get new ones.",
                cn = info.subject,
                fp = info.short_fingerprint(),
                until = crate::pki::date(info.not_after),
                cert = done.cert.display(),
                key = done.key.display(),
                fmt = done.key_format,
                dir = d.tls.ca_dir.display(),
            )?;
            Ok(Outcome::Ok)
        }
        PkiCommand::RotateCa => {
            let loaded = load(cli)?;
            let d = &loaded.desired;
            if d.tls.external().is_some() {
                return Err(pki_error(crate::pki::PkiError::ExternalIssuer {
                    command: "rotate-ca",
                }));
            }
            let new = crate::pki::Ca::rotate(&d.tls.ca_dir, d.cluster.as_str(), crate::pki::now())
                .map_err(pki_error)?;
            let info = new.info();
            writeln!(
                out,
                "Created a new CA in {dir}: {cn:?}, sha256 {fp}, valid until {until}.\n\
The previous CA is kept in {dir}/{prev} until you retire it.\n\
Next:\n  \
1. `etcdplan apply`: every member trusts both CAs (a rolling restart), then gets certificates from the new one (in place).\n  \
2. Give applications the new CA to trust, and client certificates from it: `etcdplan pki client NAME` writes both.\n  \
3. `etcdplan pki retire-ca`, then `etcdplan apply`: members stop trusting the previous CA (a rolling restart).",
                dir = d.tls.ca_dir.display(),
                cn = info.subject,
                fp = info.short_fingerprint(),
                until = crate::pki::date(info.not_after),
                prev = crate::pki::PREVIOUS_DIR,
            )?;
            Ok(Outcome::Ok)
        }
        PkiCommand::RetireCa => {
            let loaded = load(cli)?;
            let d = &loaded.desired;
            if d.tls.external().is_some() {
                return Err(pki_error(crate::pki::PkiError::ExternalIssuer {
                    command: "retire-ca",
                }));
            }
            let to = crate::pki::retire_previous(&d.tls.ca_dir).map_err(pki_error)?;
            writeln!(
                out,
                "Retired the previous CA to {}.\nThe next `etcdplan apply` drops it from every member's trust (a rolling restart); clients with certificates from it are refused from then on.",
                to.display()
            )?;
            Ok(Outcome::Ok)
        }
        PkiCommand::Client {
            name,
            days,
            out: dir,
        } => {
            let loaded = load(cli)?;
            if let Some(declared) = &loaded.desired.auth {
                client_is_declared(declared, name).map_err(pki_error)?;
            }
            let auth = ca_or_create(&loaded.desired)?;
            let ca = &auth.current;
            let issued = ca
                .issue(crate::pki::Role::Client, name, &[], (*days).max(1))
                .map_err(pki_error)?;
            // A folder that does not exist yet is made private: it will hold a key.
            if !dir.exists() {
                use std::os::unix::fs::DirBuilderExt as _;
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(dir)?;
            }
            let crt = dir.join(format!("{name}.crt"));
            let key = dir.join(format!("{name}.key"));
            let ca_copy = dir.join(crate::pki::CA_CERT);
            crate::pki::write_new(&key, issued.key_pem.as_bytes(), 0o600).map_err(pki_error)?;
            crate::pki::write_new(&crt, issued.cert_pem.as_bytes(), 0o644).map_err(pki_error)?;
            // During a rotation members serve certificates from either CA.
            let trust = auth.trust_bundle();
            if std::fs::read_to_string(&ca_copy).ok() != Some(trust.clone()) {
                std::fs::write(&ca_copy, trust)?;
            }
            let info = crate::pki::inspect(&issued.cert_pem).unwrap_or_else(|_| ca.info().clone());
            writeln!(
                out,
                "Issued a client certificate for {name:?}, valid until {}:\n  {}\n  {} (private key, 0600)\n  {}\nUse it with:\n  etcdctl --cacert {} --cert {} --key {} --endpoints {} get --prefix ''",
                crate::pki::date(info.not_after),
                crt.display(),
                key.display(),
                ca_copy.display(),
                ca_copy.display(),
                crt.display(),
                key.display(),
                loaded
                    .desired
                    .client_urls()
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(","),
            )?;
            Ok(Outcome::Ok)
        }
    }
}

/// While `[auth]` is managed, a client certificate is only for `root` or a
/// declared user (a certificate user logs in by it, a password user may also
/// present it): etcd reads the CN as the user name.
fn client_is_declared(auth: &crate::config::Auth, name: &str) -> Result<(), crate::pki::PkiError> {
    let known = name == crate::config::ROOT || auth.users.iter().any(|u| u.name.as_str() == name);
    if known {
        return Ok(());
    }
    let declared = std::iter::once(crate::config::ROOT.to_owned())
        .chain(auth.users.iter().map(|u| u.name.to_string()))
        .collect();
    Err(crate::pki::PkiError::UndeclaredUser {
        name: name.to_owned(),
        declared,
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::client_is_declared;
    use crate::config::{Auth, AuthName, DesiredUser, Login, SecretSource, TokenKind};

    fn auth() -> Auth {
        let user = |n: &str, login| DesiredUser {
            name: AuthName::parse(n).unwrap_or_else(|e| panic!("{e}")),
            login,
            roles: Vec::new(),
        };
        Auth {
            enabled: true,
            root: Login::Certificate,
            token: TokenKind::Simple,
            token_ttl: Duration::from_secs(300),
            prune: false,
            roles: Vec::new(),
            users: vec![
                user("app", Login::Certificate),
                user("web", Login::Password(SecretSource::Env("WEB_PW".into()))),
            ],
        }
    }

    #[test]
    fn declared_users_and_root_get_certificates_others_are_refused_with_the_list() {
        for ok in ["root", "app", "web"] {
            assert!(client_is_declared(&auth(), ok).is_ok(), "{ok}");
        }
        let Err(e) = client_is_declared(&auth(), "apps") else {
            panic!("accepted an undeclared user");
        };
        assert_eq!(
            e.to_string(),
            "\"apps\" is not a user [auth] declares (the users are root, app, web)"
        );
    }
}
