//! The etcdfile on disk: read it, look at the etcd releases its `binary_source`
//! names on this machine, then validate with the core's pure parser
//! ([`etcdplan_core::config`], re-exported here whole).

use std::path::{Path, PathBuf};

pub use etcdplan_core::config::*;

/// Reads and validates an etcdfile from disk. Loading runs programs on this
/// machine only for `binary_source` (each release's `--version`, with a
/// deadline), and reads the password sources `[auth]` names and
/// `[tls] crl_file` (whether they can be read; the passwords are dropped),
/// before anything touches a host.
pub fn load(path: &Path) -> Result<Loaded, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
    let mut ctx = Context {
        base_dir: abs.parent().map(Path::to_owned).unwrap_or_default(),
        home: std::env::var_os("HOME").map(PathBuf::from),
        file_hash: hash(&text),
        ..Default::default()
    };
    let name = path.display().to_string();
    // The first parse looks at nothing outside the file; only a file that
    // names such facts is parsed again with what was found.
    let first = parse(&name, text.clone(), &ctx)?;
    if !look_outside(&first.desired, &mut ctx) {
        return Ok(first);
    }
    parse(&name, text, &ctx)
}

/// Fills `ctx` with the facts on this machine the etcdfile names: the
/// releases at `binary_source`, whether each password source and the CRL
/// can be read. Returns whether it named any.
fn look_outside(d: &Desired, ctx: &mut Context) -> bool {
    let mut looked = false;
    if let Some(source) = &d.etcd.binary_source {
        let found = crate::io::release::find(&source.path).map_err(|e| e.to_string());
        ctx.releases.insert(source.path.clone(), found);
        looked = true;
    }
    if let Some(auth) = &d.auth {
        let logins = std::iter::once(&auth.root).chain(auth.users.iter().map(|u| &u.login));
        for login in logins {
            if let Login::Password(source) = login {
                // Only whether it can be read is kept; the value is dropped here.
                let readable = read_secret(source).map(drop);
                ctx.secret_sources.insert(source.clone(), readable);
                looked = true;
            }
        }
    }
    if let Some(crl) = &d.tls.crl_file {
        ctx.local_files.insert(crl.clone(), check_crl(crl));
        looked = true;
    }
    looked
}

/// Whether `path` can be read and holds a PEM certificate revocation list
/// (what etcd's `client-crl-file` takes).
fn check_crl(path: &Path) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read it: {e}"))?;
    if !text.contains("-----BEGIN X509 CRL-----") {
        return Err("it holds no PEM revocation list (-----BEGIN X509 CRL-----)".to_owned());
    }
    Ok(())
}

/// A password read on this machine. It is never printed (`Debug` hides it),
/// never serialized and never written to a host; only the etcd client sends it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a password.
    pub fn new(s: String) -> Self {
        Self(s)
    }

    /// The password itself, for the one call that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<hidden>)")
    }
}

/// The passwords `[auth]` names, read once from their sources on this machine.
#[derive(Debug, Clone, Default)]
pub struct Secrets {
    by_source: std::collections::BTreeMap<SecretSource, Secret>,
}

impl Secrets {
    /// Reads every password source `[auth]` names; one that cannot be read is
    /// left out (loading the etcdfile refuses it at its line).
    pub fn read(d: &Desired) -> Self {
        let mut by_source = std::collections::BTreeMap::new();
        let Some(auth) = &d.auth else {
            return Self { by_source };
        };
        let logins = std::iter::once(&auth.root).chain(auth.users.iter().map(|u| &u.login));
        for login in logins {
            if let Login::Password(source) = login
                && let Ok(s) = read_secret(source)
            {
                by_source.insert(source.clone(), s);
            }
        }
        Self { by_source }
    }

    /// The password from this source, when it was read.
    pub fn get(&self, source: &SecretSource) -> Option<&Secret> {
        self.by_source.get(source)
    }

    /// The declared password of `user` (`root` included), when it has one.
    pub fn of_user(&self, auth: &Auth, user: &AuthName) -> Option<&Secret> {
        let login = if user.is_root() {
            &auth.root
        } else {
            &auth.user(user)?.login
        };
        match login {
            Login::Password(source) => self.get(source),
            Login::Certificate => None,
        }
    }
}

/// Reads one password: the variable's value, or the file's first line without
/// its line end. Empty is refused (etcd would store a user no one can log in as).
pub fn read_secret(source: &SecretSource) -> Result<Secret, String> {
    let value = match source {
        SecretSource::Env(var) => {
            std::env::var(var).map_err(|_| format!("the environment variable {var} is not set"))?
        }
        SecretSource::File(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            text.lines().next().unwrap_or_default().to_owned()
        }
    };
    if value.is_empty() {
        return Err(format!("{source} is empty"));
    }
    Ok(Secret(value))
}
