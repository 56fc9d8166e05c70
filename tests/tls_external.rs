//! End to end with the operator's own CA (`[tls] issuer = "external"`) on
//! the namespace test bed: the CA and every certificate are made with the
//! `openssl` CLI and placed on the hosts by the test, as an operator would;
//! etcdplan creates the cluster with them, issues and writes nothing, reports
//! their expiry, and the operator's client certificate reads what was written.

mod harness;

use std::process::Command;

use harness::pki::{etcdctl_tls, issue, make_ca, place};
use harness::text;

#[test]
fn a_cluster_on_the_operators_own_certificates() {
    let Some(tb) = harness::testbed::up_or_skip(3) else {
        return;
    };
    // The operator's CA (RSA, as many runbooks make it) and the members'
    // certificates (ECDSA), valid 20 days: inside the default renewal window.
    let pki = tb.dir.path().join("operator-pki");
    std::fs::create_dir_all(&pki).unwrap_or_else(|e| panic!("{e}"));
    make_ca(&pki);
    for (i, h) in tb.hosts.iter().enumerate() {
        let name = format!("etcd-{}", i + 1);
        issue(
            &pki,
            &name,
            Some(&format!("DNS:{name},IP:{}", h.ip)),
            "serverAuth,clientAuth",
            "20",
        );
        place(
            &tb,
            i,
            &pki.join(format!("{name}.crt")),
            &format!("/etc/etcd/ssl/{name}.pem"),
            0o644,
        );
        place(
            &tb,
            i,
            &pki.join(format!("{name}.key")),
            &format!("/etc/etcd/ssl/{name}-key.pem"),
            0o600,
        );
        // The peer files are named by address, the same certificate here.
        place(
            &tb,
            i,
            &pki.join(format!("{name}.crt")),
            &format!("/etc/etcd/ssl/peer-{}.pem", h.ip),
            0o644,
        );
        place(
            &tb,
            i,
            &pki.join(format!("{name}.key")),
            &format!("/etc/etcd/ssl/peer-{}-key.pem", h.ip),
            0o600,
        );
        place(&tb, i, &pki.join("ca.crt"), "/etc/etcd/ssl/ca.pem", 0o644);
    }
    issue(&pki, "operator", None, "clientAuth", "20");
    let placed_before: Vec<Vec<u8>> = (0..3)
        .map(|i| std::fs::read(tb.hosts[i].file("/etc/etcd/ssl/etcd-1.pem")).unwrap_or_default())
        .collect();

    let tls = format!(
        "[tls]\nissuer = \"external\"\nclient = true\npeer = true\nclient_cert_auth = true\n\
ca_file = \"{ca}\"\nserver_cert = \"/etc/etcd/ssl/{{name}}.pem\"\nserver_key = \"/etc/etcd/ssl/{{name}}-key.pem\"\n\
peer_cert = \"/etc/etcd/ssl/peer-{{address}}.pem\"\npeer_key = \"/etc/etcd/ssl/peer-{{address}}-key.pem\"\n\
trusted_ca = \"/etc/etcd/ssl/ca.pem\"\n\n",
        ca = pki.join("ca.crt").display()
    );
    let client = format!(
        "[client]\ncert = \"{}\"\nkey = \"{}\"\n\n",
        pki.join("operator.crt").display(),
        pki.join("operator.key").display()
    );
    let base = tb.etcdfile("testbed", "", &tb.all(), &[]);
    let file = base.replace("[hosts]", &format!("{tls}{client}[hosts]"));

    let out = tb.etcdplan(&file, &["apply", "--auto-approve"]);
    let t = text(&out);
    assert!(out.status.success(), "apply failed:\n{t}");
    assert!(t.contains("3 added, 0 changed, 0 removed"), "{t}");
    assert!(!t.contains("issued"), "etcdplan issued a certificate:\n{t}");
    assert!(!t.contains("PRIVATE KEY"), "{t}");
    // Nothing of etcdplan's own PKI: no CA here, no pki folder on the hosts,
    // and the operator's files are as placed.
    assert!(!tb.dir.path().join("pki").exists());
    for (i, before) in placed_before.iter().enumerate() {
        assert!(!tb.hosts[i].file("/etc/etcd/pki").exists());
        assert_eq!(
            &std::fs::read(tb.hosts[i].file("/etc/etcd/ssl/etcd-1.pem")).unwrap_or_default(),
            before
        );
        let yaml = std::fs::read_to_string(tb.hosts[i].file("/etc/etcd/etcd.conf.yml"))
            .unwrap_or_default();
        assert!(
            yaml.contains(&format!(
                "cert-file: '/etc/etcd/ssl/peer-{}.pem'",
                tb.hosts[i].ip
            )),
            "{yaml}"
        );
    }

    // status reads the placed certificates: their expiry, their issuer.
    let status = tb.etcdplan(&file, &["status"]);
    let st = text(&status);
    assert!(status.status.success(), "{st}");
    for m in ["etcd-1", "etcd-2", "etcd-3"] {
        for role in ["server", "peer"] {
            assert!(
                st.lines().any(|l| l.contains(m)
                    && l.contains(role)
                    && l.contains("expires")
                    && (l.contains("(19 days)") || l.contains("(20 days)"))
                    && l.contains("issuer \"Operator Root CA\"")),
                "{m} {role}:\n{st}"
            );
        }
    }

    // plan: nothing to change, and the renewal window is said.
    let plan = tb.etcdplan(&file, &["plan", "--detailed-exitcode"]);
    let pt = text(&plan);
    assert_eq!(plan.status.code(), Some(0), "{pt}");
    assert!(pt.contains("No changes."), "{pt}");
    assert!(
        pt.contains("etcd-1's server certificate /etc/etcd/ssl/etcd-1.pem expires in 19 days"),
        "{pt}"
    );

    // The operator's own client certificate, through etcdctl: it writes and
    // reads; without a certificate the members refuse.
    let all: Vec<String> = tb
        .hosts
        .iter()
        .map(|h| format!("https://{}:2379", h.ip))
        .collect();
    let all = all.join(",");
    let ca = pki.join("ca.crt");
    let id = (pki.join("operator.crt"), pki.join("operator.key"));
    let id = Some((id.0.as_path(), id.1.as_path()));
    let put = etcdctl_tls(&all, &ca, id, &["put", "/adopted/by", "operator"]);
    assert!(put.status.success(), "{}", text(&put));
    let get = etcdctl_tls(&all, &ca, id, &["get", "/adopted/by", "--print-value-only"]);
    assert_eq!(text(&get).trim(), "operator", "{}", text(&get));
    let anonymous = etcdctl_tls(&all, &ca, None, &["get", "/adopted/by"]);
    assert!(!anonymous.status.success(), "{}", text(&anonymous));

    // etcdplan's own connections take --cacert/--cert/--key as etcdctl does
    // (here without [client] in the etcdfile): status still reads the cluster.
    let bare = base.replace("[hosts]", &format!("{tls}[hosts]"));
    let path = tb.dir.path().join("bare.toml");
    std::fs::write(&path, &bare).unwrap_or_else(|e| panic!("{e}"));
    let flags = Command::new(env!("CARGO_BIN_EXE_etcdplan"))
        .env("NO_COLOR", "1")
        .env("ETCDCTL_CERT", pki.join("operator.crt"))
        .env("ETCDCTL_KEY", pki.join("operator.key"))
        .arg("-f")
        .arg(&path)
        .arg("--cacert")
        .arg(&ca)
        .args(["plan", "--detailed-exitcode"])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(flags.status.code(), Some(0), "{}", text(&flags));
    assert!(text(&flags).contains("No changes."), "{}", text(&flags));
}
