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
        for source in auth.password_sources() {
            // Only whether it can be read is kept; the value is dropped here.
            let readable = read_secret(source).map(drop);
            ctx.secret_sources.insert(source.clone(), readable);
            looked = true;
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
        for source in auth.password_sources() {
            if let Ok(s) = read_secret(source) {
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

#[cfg(test)]
mod tests {
    use super::*;

    const MEMBER: &str = "\n[[member]]\nname = \"etcd-1\"\naddress = \"10.0.0.11\"\n";

    /// Writes `etcdfile.toml` (with one member) in a fresh folder.
    fn etcdfile(body: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("etcdfile.toml");
        let text = format!("[cluster]\nname = \"main\"\n{body}{MEMBER}");
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("{e}"));
        (dir, path)
    }

    fn codes(r: Result<Loaded, ConfigError>) -> Vec<&'static str> {
        match r {
            Err(ConfigError::Invalid { problems, .. }) => problems
                .iter()
                .filter(|p| p.level == Level::Error)
                .map(|p| p.code)
                .collect(),
            Err(ConfigError::Read { .. }) => vec!["read"],
            Ok(_) => Vec::new(),
        }
    }

    #[test]
    fn load_reads_the_password_sources_and_never_keeps_a_password() {
        let (dir, path) = etcdfile(
            "[auth]\nroot_password_file = \"root.pw\"\ntoken = \"jwt\"\n\
             [[auth.user]]\nname = \"app\"\npassword_file = \"app.pw\"\n\
             [[auth.user]]\nname = \"ops\"\npassword_env = \"ETCDPLAN_TEST_NEVER_SET_7Q\"\n",
        );
        std::fs::write(dir.path().join("root.pw"), "s3cret-root\n")
            .unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(dir.path().join("app.pw"), "\n").unwrap_or_else(|e| panic!("{e}"));
        let result = load(&path);
        let shown = format!("{result:?}");
        assert!(!shown.contains("s3cret-root"), "a password in {shown}");
        let Err(ConfigError::Invalid { problems, .. }) = result else {
            panic!("an empty password file and an unset variable were accepted");
        };
        let unreadable: Vec<&str> = problems
            .iter()
            .filter(|p| p.code == "etcdfile::password-unreadable")
            .map(|p| p.message.as_str())
            .collect();
        assert_eq!(unreadable.len(), 2, "{unreadable:?}");
        assert!(
            unreadable.iter().any(|m| m.contains("app.pw is empty")),
            "{unreadable:?}"
        );
        assert!(
            unreadable
                .iter()
                .any(|m| m.contains("ETCDPLAN_TEST_NEVER_SET_7Q is not set"))
        );
        assert!(!render_plain(&problems, 100).contains("s3cret-root"));

        // With both fixed the file loads, and the password is read only by Secrets.
        std::fs::write(dir.path().join("app.pw"), "app-pw\n").unwrap_or_else(|e| panic!("{e}"));
        let fixed = std::fs::read_to_string(&path).unwrap_or_default().replace(
            "password_env = \"ETCDPLAN_TEST_NEVER_SET_7Q\"",
            "password_file = \"app.pw\"",
        );
        std::fs::write(&path, fixed).unwrap_or_else(|e| panic!("{e}"));
        let loaded = load(&path).unwrap_or_else(|e| panic!("{e:?}"));
        assert!(!format!("{loaded:?}").contains("s3cret-root"));
        let Some(auth) = &loaded.desired.auth else {
            panic!("no auth")
        };
        let secrets = Secrets::read(&loaded.desired);
        assert_eq!(
            secrets.of_user(auth, &AuthName::root()).map(Secret::expose),
            Some("s3cret-root")
        );
    }

    #[test]
    fn load_checks_the_crl_file_is_a_pem_crl() {
        let (dir, path) =
            etcdfile("[tls]\nclient = true\nclient_cert_auth = true\ncrl_file = \"revoked.crl\"\n");
        assert_eq!(
            codes(load(&path)),
            ["etcdfile::crl-unreadable"],
            "missing file"
        );
        let crl = dir.path().join("revoked.crl");
        std::fs::write(&crl, "not a crl").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            codes(load(&path)),
            ["etcdfile::crl-unreadable"],
            "not a CRL"
        );
        std::fs::write(
            &crl,
            "-----BEGIN X509 CRL-----\nMIIB\n-----END X509 CRL-----\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let loaded = load(&path).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(loaded.desired.tls.crl_file, Some(crl));
    }
}
