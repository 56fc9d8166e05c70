//! The `[auth]` table: root's login, the token, the declared roles and users.
//!
//! Every problem is reported at its line and nothing is changed: a password
//! source that is named twice, cannot be read or is empty (what the edge
//! found is in `Context::secret_sources`; a source not there was not looked
//! at); a role granting on an empty key; a user naming an undeclared role;
//! duplicate names; root described as a user; a certificate user without
//! `client_cert_auth`; a token lifetime out of range. A password value never
//! reaches this module, so it can never reach a diagnostic.

use std::ops::Range;
use std::path::PathBuf;
use std::time::Duration;

use toml::Spanned;

use super::{PathSide, Validator};
use crate::config::auth::{
    Access, Auth, AuthName, DesiredRole, DesiredUser, Login, Permission, SecretSource, TokenKind,
};
use crate::config::diagnostic::{Problem, did_you_mean};
use crate::config::raw::{RawAccess, RawAuth, RawEtcdfile, RawRole, RawToken, RawUser};

/// etcd's default `auth-token-ttl` (seconds).
const DEFAULT_TTL: Duration = Duration::from_secs(300);
/// The longest token lifetime accepted: a stolen token should not outlive a day.
const MAX_TTL: Duration = Duration::from_secs(24 * 3600);

/// What `[auth]` needs from the rest of the file.
pub(super) struct AuthInputs {
    /// `[tls] client_cert_auth`: users may log in by certificate CN.
    pub client_cert_auth: bool,
    /// The CA folder on this machine; the JWT key pair goes beside it.
    pub ca_dir: Option<PathBuf>,
}

impl Validator<'_> {
    /// `Some(None)`: no `[auth]`; `None`: it has an error (reported).
    pub(super) fn auth(&mut self, raw: &RawEtcdfile, inputs: &AuthInputs) -> Option<Option<Auth>> {
        let Some(table) = &raw.auth else {
            return Some(None);
        };
        let table_span = table.span();
        let a = table.get_ref();
        let enabled = a.enabled.as_ref().is_none_or(|e| *e.get_ref());
        let here = a.enabled.as_ref().map_or(table_span.clone(), Spanned::span);
        let mut ok = true;

        let root = match self.password_source(
            &a.root_password_env,
            &a.root_password_file,
            "root_password_env",
            "root_password_file",
        ) {
            Err(()) => {
                ok = false;
                None
            }
            Ok(Some(source)) => Some(Login::Password(source)),
            Ok(None) if inputs.client_cert_auth => Some(Login::Certificate),
            Ok(None) => {
                self.push(
                    Problem::error(
                        "etcdfile::auth-without-root-password",
                        "[auth] does not say where root's password is",
                    )
                    .label(here.clone(), "root must log in to change users, roles and auth itself")
                    .help("set root_password_env = \"ETCD_ROOT_PASSWORD\" or root_password_file = \"/path\" (the password itself is never written in the etcdfile); with [tls] client_cert_auth, root may log in by a certificate with CN \"root\" instead"),
                );
                None
            }
        };

        let token = self.token(a, enabled, &here, inputs);
        let token_ttl = self.token_ttl(a);
        let roles = self.roles(a);
        let users = self.users(a, roles.as_deref(), inputs.client_cert_auth);
        ok.then_some(())?;
        Some(Some(Auth {
            enabled,
            root: root?,
            token: token?,
            token_ttl: token_ttl?,
            prune: a.prune.as_ref().is_some_and(|p| *p.get_ref()),
            roles: roles?,
            users: users?,
        }))
    }

    /// One login's password source: `Ok(None)` when neither key is set,
    /// `Err` when the source is refused (reported).
    fn password_source(
        &mut self,
        env: &Option<Spanned<String>>,
        file: &Option<Spanned<String>>,
        env_key: &str,
        file_key: &str,
    ) -> Result<Option<SecretSource>, ()> {
        let (source, span) = match (env, file) {
            (None, None) => return Ok(None),
            (Some(e), Some(f)) => {
                self.push(
                    Problem::error(
                        "etcdfile::two-password-sources",
                        format!("both {env_key} and {file_key} are set"),
                    )
                    .label(e.span(), "one password here")
                    .label(f.span(), "and another here")
                    .help(format!("keep one: {env_key} names an environment variable, {file_key} a file on this machine")),
                );
                return Err(());
            }
            (Some(e), None) => {
                let var = e.get_ref();
                if var.is_empty() || var.contains(['=', '\0']) {
                    self.push(
                        Problem::error(
                            "etcdfile::bad-password-env",
                            format!("{env_key} is not the name of an environment variable"),
                        )
                        .label(e.span(), "a variable's name")
                        .help(format!("name the variable that holds the password, such as {env_key} = \"ETCD_ROOT_PASSWORD\"; the password itself is never written here")),
                    );
                    return Err(());
                }
                (SecretSource::Env(var.clone()), e.span())
            }
            (None, Some(f)) => {
                let path = self.path(f, None, PathSide::Local, false).ok_or(())?;
                (SecretSource::File(path), f.span())
            }
        };
        match self.ctx.secret_sources.get(&source) {
            Some(Err(why)) => {
                let help = match &source {
                    SecretSource::Env(v) => format!("export {v} before running etcdplan"),
                    SecretSource::File(_) => {
                        "the file's first line is the password; make it readable by the user running etcdplan".to_owned()
                    }
                };
                self.push(
                    Problem::error(
                        "etcdfile::password-unreadable",
                        format!("cannot read a password: {why}"),
                    )
                    .label(span, "this password cannot be read")
                    .help(help),
                );
                Err(())
            }
            Some(Ok(())) | None => Ok(Some(source)),
        }
    }

    /// `token` and `key_dir`: jwt's key pair folder, the simple token warned about.
    fn token(
        &mut self,
        a: &RawAuth,
        enabled: bool,
        here: &Range<usize>,
        inputs: &AuthInputs,
    ) -> Option<TokenKind> {
        let kind = a.token.as_ref().map_or(RawToken::Simple, |t| *t.get_ref());
        match kind {
            RawToken::Simple => {
                if enabled {
                    let (span, label) = match &a.token {
                        Some(t) => (t.span(), "token = \"simple\""),
                        None => (here.clone(), "the token is simple by default"),
                    };
                    self.push(
                        Problem::warning(
                            "etcdfile::simple-token",
                            "simple tokens are not advised in production",
                        )
                        .label(span, label)
                        .help("etcd advises token = \"jwt\": signed tokens any member verifies; etcdplan makes the key pair and places it on every member"),
                    );
                }
                if let Some(k) = &a.key_dir {
                    self.push(
                        Problem::error(
                            "etcdfile::key-dir-without-jwt",
                            "key_dir holds the JWT signing keys, but the token is simple",
                        )
                        .label(k.span(), "used only with token = \"jwt\"")
                        .help("set token = \"jwt\", or drop key_dir"),
                    );
                    return None;
                }
                Some(TokenKind::Simple)
            }
            RawToken::Jwt => {
                let key_dir = match &a.key_dir {
                    Some(k) => self.path(k, None, PathSide::Local, false)?,
                    None => default_key_dir(inputs.ca_dir.as_deref(), &self.ctx.base_dir),
                };
                Some(TokenKind::Jwt { key_dir })
            }
        }
    }

    /// `token_ttl`: whole seconds, 1s to 24h.
    fn token_ttl(&mut self, a: &RawAuth) -> Option<Duration> {
        let Some(t) = &a.token_ttl else {
            return Some(DEFAULT_TTL);
        };
        let why = match crate::model::parse_duration(t.get_ref()) {
            Ok(d) if d.subsec_nanos() != 0 => "etcd counts it in whole seconds".to_owned(),
            Ok(d) if d < Duration::from_secs(1) => "it must be at least 1s".to_owned(),
            Ok(d) if d > MAX_TTL => "it must be at most 24h".to_owned(),
            Ok(d) => return Some(d),
            Err(e) => e.to_string(),
        };
        self.push(
            Problem::error(
                "etcdfile::bad-token-ttl",
                format!("invalid token_ttl {:?}: {why}", t.get_ref()),
            )
            .label(t.span(), "how long a token lives")
            .help("write whole seconds to a day, as etcd writes durations: \"5m\" (the default), \"10m\", \"1h\""),
        );
        None
    }

    /// `[[auth.role]]`: names, grants.
    fn roles(&mut self, a: &RawAuth) -> Option<Vec<DesiredRole>> {
        let mut ok = true;
        let mut roles: Vec<DesiredRole> = Vec::new();
        let mut seen: Vec<(String, Range<usize>)> = Vec::new();
        for r in &a.role {
            let RawRole { name, permissions } = r.get_ref();
            let Some(n) = self.auth_name(name, "role") else {
                ok = false;
                continue;
            };
            if n.is_root() {
                ok = false;
                self.push(
                    Problem::error(
                        "etcdfile::root-role-declared",
                        "the role root is etcd's own",
                    )
                    .label(name.span(), "root grants everything and cannot be changed")
                    .help("drop this role; give a user root's powers with roles = [\"root\"]"),
                );
                continue;
            }
            if !self.unique(&mut seen, name, "role") {
                ok = false;
                continue;
            }
            let mut grants = Vec::new();
            for p in permissions {
                let p = p.get_ref();
                if p.key.get_ref().is_empty() {
                    ok = false;
                    self.push(
                        Problem::error(
                            "etcdfile::empty-permission-key",
                            format!("role {n} grants on an empty key"),
                        )
                        .label(p.key.span(), "no key")
                        .help("name the key, or its prefix with prefix = true: { key = \"/app/\", prefix = true, access = \"readwrite\" }"),
                    );
                    continue;
                }
                let grant = Permission {
                    key: p.key.get_ref().clone(),
                    prefix: p.prefix.as_ref().is_some_and(|b| *b.get_ref()),
                    access: match p.access.get_ref() {
                        RawAccess::Read => Access::Read,
                        RawAccess::Write => Access::Write,
                        RawAccess::Readwrite => Access::ReadWrite,
                    },
                };
                if !grants.contains(&grant) {
                    grants.push(grant);
                }
            }
            roles.push(DesiredRole {
                name: n,
                permissions: grants,
            });
        }
        ok.then_some(roles)
    }

    /// `[[auth.user]]`: names, logins, roles. `roles` is `None` when a role
    /// was refused; its users' role names are then not checked again.
    fn users(
        &mut self,
        a: &RawAuth,
        roles: Option<&[DesiredRole]>,
        client_cert_auth: bool,
    ) -> Option<Vec<DesiredUser>> {
        let declared: Vec<&str> = a
            .role
            .iter()
            .map(|r| r.get_ref().name.get_ref().as_str())
            .collect();
        let mut ok = true;
        let mut users = Vec::new();
        let mut seen: Vec<(String, Range<usize>)> = Vec::new();
        for u in &a.user {
            let RawUser {
                name,
                password_env,
                password_file,
                roles: user_roles,
            } = u.get_ref();
            let Some(n) = self.auth_name(name, "user") else {
                ok = false;
                continue;
            };
            if n.is_root() {
                ok = false;
                self.push(
                    Problem::error("etcdfile::root-user-declared", "root is not declared as a user")
                        .label(name.span(), "root is etcd's superuser")
                        .help("say where root's password is with root_password_env or root_password_file in [auth]"),
                );
                continue;
            }
            if !self.unique(&mut seen, name, "user") {
                ok = false;
                continue;
            }
            let login = match self.password_source(
                password_env,
                password_file,
                "password_env",
                "password_file",
            ) {
                Err(()) => None,
                Ok(Some(s)) => Some(Login::Password(s)),
                Ok(None) if client_cert_auth => Some(Login::Certificate),
                Ok(None) => {
                    self.push(
                        Problem::error(
                            "etcdfile::certificate-user-without-cert-auth",
                            format!("user {n} has no password, and etcd does not ask clients for certificates"),
                        )
                        .label(name.span(), "this user could never log in")
                        .help("set password_env or password_file, or set client = true and client_cert_auth = true in [tls] so it logs in by its certificate's CN"),
                    );
                    None
                }
            };
            let mut names = Vec::new();
            for r in user_roles {
                let Some(rn) = self.auth_name(r, "role") else {
                    ok = false;
                    continue;
                };
                let known = rn.is_root() || declared.contains(&rn.as_str());
                if !known {
                    ok = false;
                    let help = match did_you_mean(rn.as_str(), declared.iter().copied()) {
                        Some(s) => {
                            format!("did you mean \"{s}\"? Or declare it with [[auth.role]]")
                        }
                        None => format!(
                            "declare it with [[auth.role]] name = \"{rn}\"; the roles declared are {}",
                            list(&declared)
                        ),
                    };
                    self.push(
                        Problem::error(
                            "etcdfile::undeclared-role",
                            format!("user {n} has the role {rn}, which is not declared"),
                        )
                        .label(r.span(), "no [[auth.role]] with this name")
                        .help(help),
                    );
                    continue;
                }
                if !names.contains(&rn) {
                    names.push(rn);
                }
            }
            match login {
                Some(login) => users.push(DesiredUser {
                    name: n,
                    login,
                    roles: names,
                }),
                None => ok = false,
            }
        }
        roles?;
        ok.then_some(users)
    }

    /// A user's or role's name.
    fn auth_name(&mut self, v: &Spanned<String>, what: &str) -> Option<AuthName> {
        AuthName::parse(v.get_ref())
            .map_err(|e| {
                self.push(
                    Problem::error(
                        "etcdfile::bad-auth-name",
                        format!("invalid {what} name: {e}"),
                    )
                    .label(v.span(), "this name")
                    .help("write the name as etcdctl takes it, without surrounding spaces"),
                );
            })
            .ok()
    }

    /// Whether `name` is the first of its kind; a repeat is reported at both places.
    fn unique(
        &mut self,
        seen: &mut Vec<(String, Range<usize>)>,
        name: &Spanned<String>,
        what: &str,
    ) -> bool {
        if let Some((_, first)) = seen.iter().find(|(s, _)| s == name.get_ref()) {
            self.push(
                Problem::error(
                    "etcdfile::duplicate-auth-name",
                    format!("two {what}s are named {}", name.get_ref()),
                )
                .label(first.clone(), "first here")
                .label(name.span(), "and again here")
                .help(format!("each {what} is declared once; merge the two")),
            );
            return false;
        }
        seen.push((name.get_ref().clone(), name.span()));
        true
    }
}

/// Where the JWT key pair is kept when `key_dir` is not set: the folder
/// `auth` beside the CA folder (with the default `ca_dir`, `<etcdfile's
/// folder>/auth`), so the cluster's secrets on this machine sit together.
pub(super) fn default_key_dir(
    ca_dir: Option<&std::path::Path>,
    base_dir: &std::path::Path,
) -> PathBuf {
    ca_dir
        .and_then(std::path::Path::parent)
        .unwrap_or(base_dir)
        .join("auth")
}

fn list(names: &[&str]) -> String {
    if names.is_empty() {
        return "none (root is always there)".to_owned();
    }
    names
        .iter()
        .map(|n| format!("\"{n}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};
    use std::time::Duration;

    use crate::config::{
        Access, AuthName, ConfigError, Context, Login, Permission, SecretSource, TokenKind, hash,
        parse,
    };

    const MEMBERS: &str = "\n[[member]]\nname = \"etcd-1\"\naddress = \"10.0.0.11\"\n";

    fn ctx(text: &str) -> Context {
        Context {
            base_dir: PathBuf::from("/srv/etcdplan"),
            home: None,
            file_hash: hash(text),
            ..Default::default()
        }
    }

    fn load(
        head: &str,
        ctx_of: impl FnOnce(&mut Context),
    ) -> Result<crate::config::Loaded, Vec<&'static str>> {
        let text = format!("[cluster]\nname = \"main\"\n{head}\n{MEMBERS}");
        let mut c = ctx(&text);
        ctx_of(&mut c);
        parse("etcdfile.toml", text, &c).map_err(|e| match e {
            ConfigError::Invalid { problems, .. } => problems.iter().map(|p| p.code).collect(),
            ConfigError::Read { .. } => vec!["read"],
        })
    }

    fn auth_of(l: crate::config::Loaded) -> crate::config::Auth {
        let Some(a) = l.desired.auth else {
            panic!("no auth in the model")
        };
        a
    }

    #[test]
    fn the_contract_example_is_read_into_the_model() {
        let loaded = load(
            r#"
[auth]
enabled = true
root_password_env = "ETCD_ROOT_PASSWORD"
token = "jwt"
token_ttl = "10m"
[[auth.role]]
name = "app"
permissions = [{ key = "/app/", prefix = true, access = "readwrite" }, { key = "/app/", prefix = true, access = "readwrite" }, { key = "/cfg", access = "read" }]
[[auth.user]]
name = "app"
password_file = "secrets/app"
roles = ["app", "root", "app"]
"#,
            |_| {},
        )
        .unwrap_or_else(|e| panic!("{e:?}"));
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
        let auth = auth_of(loaded);
        assert!(auth.enabled && !auth.prune);
        assert_eq!(
            auth.root,
            Login::Password(SecretSource::Env("ETCD_ROOT_PASSWORD".into()))
        );
        assert_eq!(
            auth.token,
            TokenKind::Jwt {
                key_dir: PathBuf::from("/srv/etcdplan/auth")
            }
        );
        assert_eq!(auth.token_ttl, Duration::from_secs(600));
        let role = &auth.roles[0];
        assert_eq!(
            role.permissions,
            vec![
                Permission {
                    key: "/app/".into(),
                    prefix: true,
                    access: Access::ReadWrite
                },
                Permission {
                    key: "/cfg".into(),
                    prefix: false,
                    access: Access::Read
                },
            ],
            "duplicates dropped, prefix defaults to false"
        );
        let user = &auth.users[0];
        assert_eq!(
            user.login,
            Login::Password(SecretSource::File("/srv/etcdplan/secrets/app".into()))
        );
        assert_eq!(
            user.roles,
            vec![
                AuthName::parse("app").unwrap_or_else(|e| panic!("{e}")),
                AuthName::root()
            ]
        );
    }

    #[test]
    fn without_auth_the_model_has_none_and_simple_is_the_warned_default() {
        let none = load("", |_| {}).unwrap_or_else(|e| panic!("{e:?}"));
        assert!(none.desired.auth.is_none());
        let simple =
            load("[auth]\nroot_password_env = \"R\"\n", |_| {}).unwrap_or_else(|e| panic!("{e:?}"));
        let codes: Vec<_> = simple.warnings.iter().map(|p| p.code).collect();
        let auth = auth_of(simple);
        assert_eq!(auth.token, TokenKind::Simple);
        assert_eq!(auth.token_ttl, Duration::from_secs(300));
        assert_eq!(codes, ["etcdfile::simple-token"]);
        // Turning auth off is not warned about the token.
        let off = load(
            "[auth]\nenabled = false\nroot_password_env = \"R\"\n",
            |_| {},
        )
        .unwrap_or_else(|e| panic!("{e:?}"));
        assert!(off.warnings.is_empty());
        assert!(!auth_of(off).enabled);
    }

    #[test]
    fn with_client_cert_auth_root_and_users_may_log_in_by_certificate() {
        let loaded = load(
            "[tls]\nclient = true\nclient_cert_auth = true\nca_dir = \"/etc/etcdplan/pki\"\n\
             [auth]\ntoken = \"jwt\"\n[[auth.user]]\nname = \"app\"\n",
            |_| {},
        )
        .unwrap_or_else(|e| panic!("{e:?}"));
        let auth = auth_of(loaded);
        assert_eq!(auth.root, Login::Certificate);
        assert_eq!(auth.users[0].login, Login::Certificate);
        assert_eq!(
            auth.token,
            TokenKind::Jwt {
                key_dir: PathBuf::from("/etc/etcdplan/auth")
            },
            "the key pair sits beside the CA"
        );
    }

    #[test]
    fn a_source_found_unreadable_is_refused_and_one_not_looked_at_is_not() {
        let head = "[auth]\nroot_password_env = \"ROOT_PW\"\ntoken = \"jwt\"\n";
        assert!(load(head, |_| {}).is_ok());
        let refused = load(head, |c| {
            c.secret_sources.insert(
                SecretSource::Env("ROOT_PW".into()),
                Err("the environment variable ROOT_PW is not set".into()),
            );
        });
        assert_eq!(refused.err(), Some(vec!["etcdfile::password-unreadable"]));
        let fine = load(head, |c| {
            c.secret_sources
                .insert(SecretSource::Env("ROOT_PW".into()), Ok(()));
        });
        assert!(fine.is_ok());
    }

    #[test]
    fn every_auth_problem_is_reported_in_one_run() {
        let codes = load(
            r#"
[auth]
token_ttl = "0s"
[[auth.role]]
name = "app"
permissions = [{ key = "", access = "read" }]
[[auth.role]]
name = "app"
[[auth.user]]
name = "root"
[[auth.user]]
name = "svc"
password_env = "A"
password_file = "/a"
[[auth.user]]
name = "cert"
roles = ["nope"]
"#,
            |_| {},
        )
        .err()
        .unwrap_or_default();
        for code in [
            "etcdfile::auth-without-root-password",
            "etcdfile::bad-token-ttl",
            "etcdfile::empty-permission-key",
            "etcdfile::duplicate-auth-name",
            "etcdfile::root-user-declared",
            "etcdfile::two-password-sources",
            "etcdfile::certificate-user-without-cert-auth",
            "etcdfile::undeclared-role",
        ] {
            assert!(codes.contains(&code), "missing {code} in {codes:?}");
        }
    }

    #[test]
    fn crl_file_is_read_beside_the_etcdfile_and_refused_when_found_unreadable() {
        let head = "[tls]\nclient = true\nclient_cert_auth = true\ncrl_file = \"revoked.crl\"\n";
        let loaded = load(head, |_| {}).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(
            loaded.desired.tls.crl_file.as_deref(),
            Some(Path::new("/srv/etcdplan/revoked.crl"))
        );
        let refused = load(head, |c| {
            c.local_files
                .insert(PathBuf::from("/srv/etcdplan/revoked.crl"), Err("no".into()));
        });
        assert_eq!(refused.err(), Some(vec!["etcdfile::crl-unreadable"]));
    }
}
