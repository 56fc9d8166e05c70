//! The planner with the operator's own CA (`[tls] issuer = "external"`)
//! against described live states: no step ever issues or writes a
//! certificate; a member the plan would (re)start blocks the plan when its
//! certificate expired, does not name it, does not verify against `ca_file`,
//! or its key is readable by others; certificates that expire soon are
//! warned about. The certificates are real (made by the PKI module, standing
//! in for the operator's CA), the cluster is described.

mod common;

use common::plans::{kinds as steps, notes_but_end_of_life, plan_for};
use common::{HostSpec, cluster, desired_from, live, text_with};
use etcdplan::config::Desired;
use etcdplan::hostfiles::{self, Initial};
use etcdplan::observe::{HostCerts, HostState, Live};
use etcdplan::pki::{self, Ca, Role, San};
use etcdplan::plan::Plan;

/// The [tls] table of the operator's CA, with client and peer TLS.
const EXTERNAL: &str = r#"issuer = "external"
client = true
peer = true
client_cert_auth = true
ca_file = "/srv/etcdplan/operator-ca.crt"
server_cert = "/etc/ssl/etcd/{name}.pem"
server_key = "/etc/ssl/etcd/{name}-key.pem"
peer_cert = "/etc/ssl/etcd/peer-{address}.pem"
peer_key = "/etc/ssl/etcd/peer-{address}-key.pem"
trusted_ca = "/etc/ssl/etcd/ca.pem"
renew_before_days = 30"#;

/// The 3-member etcdfile with the operator's CA, `etcd` appended to [etcd].
fn external(etcd: &str) -> Desired {
    desired_from(&text_with(3, etcd).replace("[hosts]", &format!("[tls]\n{EXTERNAL}\n[hosts]")))
}

/// A CA standing in for the operator's.
struct OperatorCa {
    ca: Ca,
    _dir: tempfile::TempDir,
}

fn operator_ca(name: &str) -> OperatorCa {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let ca = Ca::create_named(&dir.path().join("ca"), name).unwrap_or_else(|e| panic!("{e}"));
    OperatorCa { ca, _dir: dir }
}

/// Member `i`'s files as the operator placed them: valid `days`, for `sans`
/// (default: the member's name and address), keys 0600.
fn placed(x: &OperatorCa, d: &Desired, i: usize, days: i64, sans: Option<Vec<San>>) -> HostCerts {
    let m = &d.members[i];
    let sans = sans.unwrap_or_else(|| etcdplan::diff::external_sans(m));
    let issue = |role| {
        x.ca.issue(role, m.name.as_str(), &sans, days)
            .unwrap_or_else(|e| panic!("{e}"))
            .cert_pem
    };
    HostCerts {
        ca: Some(x.ca.cert_pem().to_owned()),
        server: Some(issue(Role::Server)),
        peer: Some(issue(Role::Peer)),
        server_key_mode: Some(0o600),
        peer_key_mode: Some(0o600),
    }
}

/// A healthy cluster running as `from` says, every member's files placed
/// from `x` valid 300 days; `ca_file` holds `x`.
fn running_external(x: &OperatorCa, from: &Desired) -> Live {
    let specs: Vec<HostSpec> = (0..3)
        .map(|i| HostSpec {
            certs: placed(x, from, i, 300, None),
            ..HostSpec::running_from(from)
        })
        .collect();
    let mut l = live(from, &specs, Some(cluster(from, &[true; 3], 1)));
    l.local_ca = Some(x.ca.cert_pem().to_owned());
    l.observed_at = pki::now();
    l
}

fn set_certs(l: &mut Live, d: &Desired, i: usize, f: impl FnOnce(&mut HostCerts)) {
    if let Some(HostState::Reached(facts)) = l.hosts.get_mut(&d.members[i].name) {
        f(&mut facts.certs);
    }
}

/// The plan with what the test's certificates say made stable.
fn snapshot(name: &str, p: &Plan, d: &Desired) {
    insta::with_settings!({filters => vec![
        (r"\d{4}-\d\d-\d\d", "[date]"),
        (r"expires in \d+ days", "expires in [n] days"),
        (r"-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----", "[certificate]"),
        (r#""(certificates of etcd-\d)": "[0-9a-f]{16}""#, r#""$1": "[hash]""#),
    ]}, {
        crate::plan_snapshot!(name, p, d);
    });
}

fn no_certificate_steps(p: &Plan) {
    assert!(
        !steps(p).iter().any(|s| s.contains("certificate")),
        "{:#?}",
        steps(p)
    );
    assert!(p.changes.iter().all(|c| !c.certificates));
}

#[test]
fn the_members_config_points_at_the_operators_files() {
    let d = external("");
    let yaml = hostfiles::etcd_config(
        &d,
        &d.members[1],
        &Initial::bootstrap(&d),
        common::release(&d, &common::HostSpec::empty()),
    );
    for line in [
        "cert-file: '/etc/ssl/etcd/etcd-2.pem'",
        "key-file: '/etc/ssl/etcd/etcd-2-key.pem'",
        "cert-file: '/etc/ssl/etcd/peer-10.0.0.12.pem'",
        "key-file: '/etc/ssl/etcd/peer-10.0.0.12-key.pem'",
        "trusted-ca-file: '/etc/ssl/etcd/ca.pem'",
    ] {
        assert!(yaml.contains(line), "{line} not in\n{yaml}");
    }
    assert!(!yaml.contains("/etc/etcd/pki"), "{yaml}");
}

#[test]
fn files_that_serve_mean_no_changes_and_no_notes() {
    let x = operator_ca("Operator Root CA");
    let d = external("");
    let p = plan_for(&d, &running_external(&x, &d));
    assert!(p.is_empty(), "{:#?}", steps(&p));
    assert!(notes_but_end_of_life(&p).is_empty(), "{:#?}", p.notes);
}

#[test]
fn a_new_cluster_starts_with_the_placed_files_and_issues_nothing() {
    let x = operator_ca("Operator Root CA");
    let d = external("");
    let specs: Vec<HostSpec> = (0..3)
        .map(|i| HostSpec {
            certs: placed(&x, &d, i, 300, None),
            ..HostSpec::empty()
        })
        .collect();
    let mut l = live(&d, &specs, None);
    l.local_ca = Some(x.ca.cert_pem().to_owned());
    l.observed_at = pki::now();
    let p = plan_for(&d, &l);
    assert!(p.blockers.is_empty(), "{:#?}", p.blockers);
    assert!(!p.is_empty());
    no_certificate_steps(&p);
    snapshot("bootstrap", &p, &d);
}

#[test]
fn a_new_cluster_without_the_files_on_a_host_is_blocked() {
    let x = operator_ca("Operator Root CA");
    let d = external("");
    let specs: Vec<HostSpec> = (0..3)
        .map(|i| HostSpec {
            certs: if i == 2 {
                HostCerts::default()
            } else {
                placed(&x, &d, i, 300, None)
            },
            ..HostSpec::empty()
        })
        .collect();
    let mut l = live(&d, &specs, None);
    l.local_ca = Some(x.ca.cert_pem().to_owned());
    l.observed_at = pki::now();
    let p = plan_for(&d, &l);
    let msgs: Vec<&str> = p.blockers.iter().map(|b| b.message.as_str()).collect();
    assert!(
        msgs.iter().any(|m| m.contains(
            "etcd-3: its server certificate /etc/ssl/etcd/etcd-3.pem is not on its host"
        )),
        "{msgs:#?}"
    );
    assert!(
        msgs.iter()
            .any(|m| m
                .contains("its peer key /etc/ssl/etcd/peer-10.0.0.13-key.pem is not on its host")),
        "{msgs:#?}"
    );
    assert!(msgs.iter().all(|m| m.starts_with("etcd-3:")), "{msgs:#?}");
    no_certificate_steps(&p);
}

/// A quota change: every member restarts, one at a time.
fn quota_change(x: &OperatorCa) -> (Desired, Live) {
    let before = external("");
    let after = external("quota_backend_bytes = \"4GiB\"\n");
    (after, running_external(x, &before))
}

#[test]
fn a_rolling_restart_with_files_that_serve_writes_no_certificate() {
    let x = operator_ca("Operator Root CA");
    let (d, l) = quota_change(&x);
    let p = plan_for(&d, &l);
    assert!(p.blockers.is_empty(), "{:#?}", p.blockers);
    assert_eq!(steps(&p), common::plans::QUOTA_STEPS);
    no_certificate_steps(&p);
}

#[test]
fn an_expired_certificate_blocks_a_restart_of_its_member() {
    let x = operator_ca("Operator Root CA");
    let (d, mut l) = quota_change(&x);
    // etcd-3's server certificate was valid 10 days; 20 have passed.
    let short = placed(&x, &d, 2, 10, None);
    set_certs(&mut l, &d, 2, |c| c.server = short.server.clone());
    l.observed_at += 20 * 86_400;
    let p = plan_for(&d, &l);
    assert!(p.cannot_apply().is_some());
    assert_eq!(p.blockers.len(), 1, "{:#?}", p.blockers);
    assert!(
        p.blockers[0]
            .message
            .starts_with("etcd-3: its server certificate /etc/ssl/etcd/etcd-3.pem expired on "),
        "{}",
        p.blockers[0].message
    );
    snapshot("expired-blocks-restart", &p, &d);
}

#[test]
fn a_certificate_that_does_not_name_its_member_blocks_a_restart() {
    let x = operator_ca("Operator Root CA");
    let (d, mut l) = quota_change(&x);
    // etcd-1's server certificate names the host, not its address.
    let wrong = placed(&x, &d, 0, 300, Some(vec![San::Dns("etcd-1".into())]));
    set_certs(&mut l, &d, 0, |c| c.server = wrong.server.clone());
    let p = plan_for(&d, &l);
    let msgs: Vec<&str> = p.blockers.iter().map(|b| b.message.as_str()).collect();
    assert_eq!(
        msgs,
        [
            "etcd-1: its server certificate /etc/ssl/etcd/etcd-1.pem is not valid for IP:10.0.0.11 (its names: DNS:etcd-1); the plan would start its etcd with it"
        ]
    );
    // And a peer certificate for another member's address.
    let (d, mut l) = quota_change(&x);
    let other = placed(&x, &d, 1, 300, None);
    set_certs(&mut l, &d, 0, |c| c.peer = other.peer.clone());
    let p = plan_for(&d, &l);
    assert!(
        p.blockers.iter().any(|b| b
            .message
            .contains("its peer certificate /etc/ssl/etcd/peer-10.0.0.11.pem is not valid for DNS:etcd-1, IP:10.0.0.11")),
        "{:#?}",
        p.blockers
    );
}

#[test]
fn a_certificate_from_another_ca_blocks_a_restart() {
    let x = operator_ca("Operator Root CA");
    let stranger = operator_ca("Some Other CA");
    let (d, mut l) = quota_change(&x);
    let foreign = placed(&stranger, &d, 1, 300, None);
    set_certs(&mut l, &d, 1, |c| c.peer = foreign.peer.clone());
    let p = plan_for(&d, &l);
    let msgs: Vec<&str> = p.blockers.iter().map(|b| b.message.as_str()).collect();
    assert_eq!(msgs.len(), 1, "{msgs:#?}");
    assert!(
        msgs[0].contains("etcd-2: its peer certificate /etc/ssl/etcd/peer-10.0.0.12.pem (issuer \"Some Other CA\") does not verify against the CA in ca_file /srv/etcdplan/operator-ca.crt"),
        "{msgs:#?}"
    );
    // Same name, other key: the signature, not the issuer's name, decides.
    let impostor = operator_ca("Operator Root CA");
    let (d, mut l) = quota_change(&x);
    let forged = placed(&impostor, &d, 1, 300, None);
    set_certs(&mut l, &d, 1, |c| c.server = forged.server.clone());
    let p = plan_for(&d, &l);
    assert!(
        p.blockers.iter().any(|b| b
            .message
            .contains("does not verify against the CA in ca_file")),
        "{:#?}",
        p.blockers
    );
}

#[test]
fn a_key_others_may_read_blocks_a_restart() {
    let x = operator_ca("Operator Root CA");
    let (d, mut l) = quota_change(&x);
    set_certs(&mut l, &d, 2, |c| c.peer_key_mode = Some(0o644));
    set_certs(&mut l, &d, 0, |c| c.server_key_mode = Some(0o640));
    let p = plan_for(&d, &l);
    let msgs: Vec<&str> = p.blockers.iter().map(|b| b.message.as_str()).collect();
    assert_eq!(
        msgs,
        [
            "etcd-1: its server key /etc/ssl/etcd/etcd-1-key.pem has mode 0640: others may read it; the plan would start its etcd with it",
            "etcd-3: its peer key /etc/ssl/etcd/peer-10.0.0.13-key.pem has mode 0644: others may read it; the plan would start its etcd with it",
        ]
    );
    snapshot("readable-key-blocks-restart", &p, &d);
}

#[test]
fn certificates_that_expire_soon_are_warned_about_and_change_nothing() {
    let x = operator_ca("Operator Root CA");
    let d = external("");
    let mut l = running_external(&x, &d);
    let soon = placed(&x, &d, 1, 12, None);
    set_certs(&mut l, &d, 1, |c| *c = soon.clone());
    let p = plan_for(&d, &l);
    assert!(p.is_empty(), "{:#?}", steps(&p));
    let notes = notes_but_end_of_life(&p);
    assert_eq!(notes.len(), 2, "{:#?}", p.notes);
    assert!(
        // 12 days less the seconds the test took.
        notes[0].starts_with("etcd-2's server certificate /etc/ssl/etcd/etcd-2.pem expires in 1")
            && notes[0].contains("renew_before_days = 30): renew it with your CA"),
        "{:#?}",
        p.notes
    );
    assert!(
        notes[1].starts_with("etcd-2's peer certificate"),
        "{:#?}",
        p.notes
    );
    snapshot("expiring-warned", &p, &d);
}

#[test]
fn a_problem_on_a_member_the_plan_does_not_restart_is_a_note() {
    let x = operator_ca("Operator Root CA");
    let d = external("");
    let mut l = running_external(&x, &d);
    set_certs(&mut l, &d, 0, |c| c.server_key_mode = Some(0o644));
    let p = plan_for(&d, &l);
    assert!(p.blockers.is_empty(), "{:#?}", p.blockers);
    assert!(p.is_empty());
    assert_eq!(
        notes_but_end_of_life(&p),
        [
            "etcd-1: its server key /etc/ssl/etcd/etcd-1-key.pem has mode 0644: others may read it; a plan that restarts it is refused until this is fixed"
        ]
    );
}

#[test]
fn switching_to_the_operators_ca_restarts_onto_its_files_and_issues_nothing() {
    let x = operator_ca("Operator Root CA");
    let before = common::plans::with_tls("client = true\npeer = true\nclient_cert_auth = true");
    let d = external("");
    let specs: Vec<HostSpec> = (0..3)
        .map(|i| HostSpec {
            certs: placed(&x, &d, i, 300, None),
            ..HostSpec::running_from(&before)
        })
        .collect();
    let mut l = live(&before, &specs, Some(cluster(&before, &[true; 3], 1)));
    l.local_ca = Some(x.ca.cert_pem().to_owned());
    l.observed_at = pki::now();
    let p = plan_for(&d, &l);
    assert!(p.blockers.is_empty(), "{:#?}", p.blockers);
    assert_eq!(steps(&p), common::plans::QUOTA_STEPS);
    no_certificate_steps(&p);
}

/// Runs openssl in `dir`; false when there is no openssl to run.
fn openssl(dir: &std::path::Path, args: &[&str]) -> bool {
    match std::process::Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
    {
        Err(_) => false,
        Ok(o) => {
            assert!(
                o.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            true
        }
    }
}

#[test]
fn a_certificate_issued_through_an_intermediate_ca_verifies_with_its_chain() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let dir = tmp.path();
    let ca_ext = [
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ];
    let mut root = vec![
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        "root.key",
        "-out",
        "root.crt",
        "-days",
        "30",
        "-subj",
        "/CN=Root",
    ];
    root.extend(ca_ext);
    if !openssl(dir, &root) {
        eprintln!("skipped: no openssl");
        return;
    }
    std::fs::write(
        dir.join("ca.ext"),
        "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        dir.join("leaf.ext"),
        "subjectAltName=DNS:etcd-1,IP:10.0.0.11\nextendedKeyUsage=serverAuth,clientAuth\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    for (name, signer, ext) in [("inter", "root", "ca.ext"), ("leaf", "inter", "leaf.ext")] {
        assert!(openssl(
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
                &format!("/CN={name}")
            ]
        ));
        assert!(openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &format!("{name}.csr"),
                "-CA",
                &format!("{signer}.crt"),
                "-CAkey",
                &format!("{signer}.key"),
                "-CAcreateserial",
                "-days",
                "20",
                "-out",
                &format!("{name}.crt"),
                "-extfile",
                ext
            ]
        ));
    }
    let read =
        |f: &str| std::fs::read_to_string(dir.join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
    let (root, inter, leaf) = (read("root.crt"), read("inter.crt"), read("leaf.crt"));
    let chain = format!("{leaf}{inter}");
    assert!(pki::signed_by(&inter, &root));
    assert!(
        etcdplan::cert::chains_to(&chain, &root),
        "leaf + intermediate to the root"
    );
    assert!(
        etcdplan::cert::chains_to(&leaf, &inter),
        "to the intermediate as ca_file"
    );
    assert!(
        !etcdplan::cert::chains_to(&leaf, &root),
        "the leaf alone does not reach the root"
    );
    assert!(!etcdplan::cert::chains_to(
        &format!("{leaf}{root}"),
        &inter.replace("A", "B")
    ));
}
