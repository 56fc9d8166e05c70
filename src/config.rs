//! The etcdfile on disk: read it, look at the etcd releases its `binary_source`
//! names on this machine, then validate with the core's pure parser
//! ([`etcdplan_core::config`], re-exported here whole).

use std::path::{Path, PathBuf};

pub use etcdplan_core::config::*;

/// Reads and validates an etcdfile from disk. Loading runs programs on this
/// machine only for `binary_source` (each release's `--version`, with a
/// deadline), before anything touches a host.
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
        releases: Default::default(),
    };
    let name = path.display().to_string();
    // Without releases, binary_source is resolved but not looked at; only a
    // file that names one is parsed again with what was found there.
    let first = parse(&name, text.clone(), &ctx)?;
    let Some(source) = first.desired.etcd.binary_source else {
        return Ok(first);
    };
    let found = crate::io::release::find(&source.path).map_err(|e| e.to_string());
    ctx.releases.insert(source.path, found);
    parse(&name, text, &ctx)
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
