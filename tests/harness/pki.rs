//! The operator's own PKI for end-to-end tests: a CA and certificates made
//! with the `openssl` CLI, as a runbook makes them, placed on test-bed hosts,
//! and etcdctl presenting them.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::{Command, Output};

use super::testbed::Testbed;

/// Runs openssl in `dir`, which must succeed.
pub fn openssl(dir: &Path, args: &[&str]) {
    let o = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("openssl: {e}"));
    assert!(
        o.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// A certificate `name` signed by the CA in `dir`, valid `days`, with its
/// key (PKCS#8 ECDSA P-256), for `san` and `usage`.
pub fn issue(dir: &Path, name: &str, san: Option<&str>, usage: &str, days: &str) {
    let mut ext = format!("extendedKeyUsage={usage}\nkeyUsage=critical,digitalSignature\n");
    if let Some(san) = san {
        ext.push_str(&format!("subjectAltName={san}\n"));
    }
    std::fs::write(dir.join(format!("{name}.ext")), ext).unwrap_or_else(|e| panic!("{e}"));
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
            "-subj",
            &format!("/CN={name}"),
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            days,
            "-out",
            &format!("{name}.crt"),
            "-extfile",
            &format!("{name}.ext"),
        ],
    );
}

/// Copies `from` to the host path `to` with `mode`.
pub fn place(tb: &Testbed, host: usize, from: &Path, to: &str, mode: u32) {
    let dest = tb.hosts[host].file(to);
    if let Some(parent) = dest.parent() {
        std::fs::create_dir_all(parent).unwrap_or_else(|e| panic!("{e}"));
    }
    std::fs::copy(from, &dest).unwrap_or_else(|e| panic!("{}: {e}", dest.display()));
    std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("{e}"));
}

/// etcdctl over TLS with the given client certificate (None: none).
pub fn etcdctl_tls(
    endpoints: &str,
    ca: &Path,
    id: Option<(&Path, &Path)>,
    args: &[&str],
) -> Output {
    let mut c = Command::new("/usr/bin/etcdctl");
    c.env_remove("ETCDCTL_ENDPOINTS")
        .env("ETCDCTL_API", "3")
        .args([
            "--endpoints",
            endpoints,
            "--command-timeout=5s",
            "--dial-timeout=2s",
        ])
        .arg("--cacert")
        .arg(ca);
    if let Some((cert, key)) = id {
        c.arg("--cert").arg(cert).arg("--key").arg(key);
    }
    c.args(args)
        .output()
        .unwrap_or_else(|e| panic!("etcdctl: {e}"))
}

/// A CA (RSA 2048, one year, `CA:TRUE`, keyCertSign) as `ca.crt`/`ca.key` in `dir`.
pub fn make_ca(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("{e}"));
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-days",
            "365",
            "-subj",
            "/CN=Operator Root CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
}
