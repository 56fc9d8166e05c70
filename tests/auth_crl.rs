//! A client CRL on real etcd (Debian's 3.4.23, one member on the test bed,
//! client TLS with client-certificate auth): `[tls] crl_file` is placed on
//! the member and rendered into its config (`ClientTLSInfo.CRLFile`, etcd has
//! no documented key for it), so a client certificate from `etcdplan pki
//! client` that the operator revoked with openssl is refused while another
//! still writes; a new CRL is placed in place, without a restart, and
//! withdraws the other certificate too.
//!
//! `crl_file` is set in code on the Desired parsed from a plain etcdfile (the
//! etcdfile key lands separately), so the walk runs in-process through the
//! real edges (ssh, the etcd client with etcdplan's own certificate).

mod harness;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use etcdplan::config::Desired;
use etcdplan::io::{ClientIdentity, ClientTls, EtcdClient, Timeouts};
use harness::testbed::{Testbed, up_or_skip};
use harness::text;

/// Observes, plans and applies `d`, talking to the member over https as
/// etcdplan (a client certificate from the CA, like the CLI); returns the
/// plan's step descriptions.
async fn plan_and_apply(d: &Desired) -> Vec<String> {
    let auth = etcdplan::pki::Authority::load(&d.tls.ca_dir, etcdplan::pki::now())
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|| panic!("no CA"));
    let issued = auth
        .client_certificates("etcdplan", 1)
        .unwrap_or_else(|e| panic!("{e}"));
    let etcd = EtcdClient::new(Timeouts {
        connect: Duration::from_secs(2),
        request: Duration::from_secs(10),
    })
    .with_tls(ClientTls {
        ca_pem: auth.trust_bundle(),
        identities: issued
            .into_iter()
            .map(|i| ClientIdentity {
                cert_pem: i.cert_pem,
                key_pem: i.key_pem,
            })
            .collect(),
    });
    harness::inproc::plan_and_apply(d, &etcd).await.0
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?}: {}", text(&out));
    text(&out)
}

/// An openssl CA over etcdplan's CA files, to revoke certificates and sign
/// CRLs with its key.
fn openssl_ca(dir: &Path, ca_dir: &Path) -> std::path::PathBuf {
    let conf = dir.join("crl-ca.cnf");
    std::fs::write(dir.join("index.txt"), "").unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.join("crlnumber"), "01\n").unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        &conf,
        format!(
            "[ca]\ndefault_ca = c\n[c]\ndatabase = {}\ncertificate = {}\nprivate_key = {}\ncrlnumber = {}\ndefault_md = sha256\ndefault_crl_days = 2\n",
            dir.join("index.txt").display(),
            ca_dir.join("ca.crt").display(),
            ca_dir.join("ca.key").display(),
            dir.join("crlnumber").display(),
        ),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    conf
}

fn revoke(conf: &Path, cert: &Path, crl: &Path) {
    run(Command::new("openssl")
        .args(["ca", "-config"])
        .arg(conf)
        .arg("-revoke")
        .arg(cert));
    run(Command::new("openssl")
        .args(["ca", "-config"])
        .arg(conf)
        .arg("-gencrl")
        .arg("-out")
        .arg(crl));
}

/// A put with `name`'s certificate: whether etcd took it.
fn put_as(tb: &Testbed, endpoint: &str, name: &str) -> bool {
    let p = |f: &str| tb.dir.path().join(f).display().to_string();
    Command::new("timeout")
        .args([
            "20",
            "etcdctl",
            "--endpoints",
            endpoint,
            "--dial-timeout",
            "3s",
            "--command-timeout",
            "5s",
        ])
        .args([
            "--cacert",
            &p("ca.crt"),
            "--cert",
            &p(&format!("{name}.crt")),
            "--key",
            &p(&format!("{name}.key")),
        ])
        .args(["put", &format!("/crl/{name}"), "v"])
        .env("ETCDCTL_API", "3")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn a_revoked_client_certificate_is_refused_and_a_new_crl_needs_no_restart() {
    let Some(tb) = up_or_skip(1) else { return };
    let file = tb.etcdfile("crl", "", &[0], &[]).replace(
        "[hosts]",
        "[tls]\nclient = true\npeer = true\nclient_cert_auth = true\n\n[hosts]",
    );
    let out_dir = tb.dir.path().display().to_string();
    // The CA (made by the first) and two operators' certificates.
    for name in ["good", "bad"] {
        let out = tb.etcdplan(&file, &["pki", "client", name, "--out", &out_dir]);
        assert!(out.status.success(), "{}", text(&out));
    }
    let path = tb.dir.path().join("etcdfile.toml");
    let mut d = etcdplan::config::load(&path)
        .unwrap_or_else(|e| panic!("{e}"))
        .desired;
    let crl = tb.dir.path().join("crl.pem");
    let conf = openssl_ca(tb.dir.path(), &d.tls.ca_dir);
    revoke(&conf, &tb.dir.path().join("bad.crt"), &crl);
    d.tls.crl_file = Some(crl.clone());
    let rt = tokio::runtime::Runtime::new().unwrap_or_else(|e| panic!("{e}"));

    let steps = rt.block_on(plan_and_apply(&d));
    let at = |what: &str| {
        steps
            .iter()
            .position(|s| s == what)
            .unwrap_or_else(|| panic!("no {what:?} in {steps:#?}"))
    };
    assert!(
        at("place the CRL on etcd-1's host") < at("start etcd-1"),
        "{steps:#?}"
    );
    let endpoint = format!("https://{}:2379", d.members[0].address);
    assert!(
        put_as(&tb, &endpoint, "good"),
        "the good certificate was refused"
    );
    assert!(
        !put_as(&tb, &endpoint, "bad"),
        "the revoked certificate was taken"
    );
    // Nothing left to do: the placed CRL is crl_file's.
    let steps = rt.block_on(plan_and_apply(&d));
    assert!(steps.is_empty(), "{steps:#?}");

    // The other certificate revoked too: the CRL is placed in place, etcd
    // keeps running (it reads the CRL at each handshake) and refuses it.
    let pids = tb.etcd_pids();
    revoke(&conf, &tb.dir.path().join("good.crt"), &crl);
    let steps = rt.block_on(plan_and_apply(&d));
    assert_eq!(
        steps,
        [
            "place the CRL on etcd-1's host",
            "wait until etcd-1 healthy"
        ],
        "{steps:#?}"
    );
    assert_eq!(tb.etcd_pids(), pids, "etcd restarted");
    assert!(
        !put_as(&tb, &endpoint, "good"),
        "a certificate revoked since was taken"
    );
}
