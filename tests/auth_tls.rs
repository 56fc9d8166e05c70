//! etcd auth with client TLS and client-certificate auth, real etcd and real
//! certificates: root logs in by its certificate's CN (no root password), a
//! user declared without a password writes through the certificate
//! `etcdplan pki client` issues for it, under its prefix only; a name that is
//! not a declared user gets no certificate; and the endpoint list in the
//! forms etcdctl and kube-apiserver read.

mod harness;

use harness::{Site, prerequisites, text};

fn etcdfile() -> String {
    let base = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/etcdfile.toml"))
        .unwrap_or_default()
        .replace(
            "[hosts]",
            "[tls]\nclient = true\npeer = true\nclient_cert_auth = true\n\n[hosts]",
        );
    format!(
        "{base}\n[auth]\nenabled = true\ntoken = \"jwt\"\n\n\
         [[auth.role]]\nname = \"cn\"\npermissions = [{{ key = \"/cn/\", prefix = true, access = \"readwrite\" }}]\n\n\
         [[auth.user]]\nname = \"cn-app\"\nroles = [\"cn\"]\n"
    )
}

#[test]
fn a_certificate_user_writes_under_its_prefix_only() {
    if !prerequisites() {
        return;
    }
    let site = Site::new("authtls", &etcdfile());
    let plan = site.etcdplan(&["plan"]);
    assert!(plan.status.success(), "{}", text(&plan));
    assert!(text(&plan).contains("+ user cn-app"), "{}", text(&plan));
    site.apply_ok();
    let again = site.etcdplan(&["plan", "--detailed-exitcode"]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));

    let out = site.path("").display().to_string();
    // Only declared users get a certificate while auth is managed.
    let stranger = site.etcdplan(&["pki", "client", "alice", "--out", &out]);
    assert!(!stranger.status.success(), "{}", text(&stranger));
    assert!(text(&stranger).contains("cn-app"), "{}", text(&stranger));
    let issued = site.etcdplan(&["pki", "client", "cn-app", "--out", &out]);
    assert!(issued.status.success(), "{}", text(&issued));

    let ep = "https://127.0.0.11:2379";
    let as_cn_app = |args: &[&str]| {
        let mut a = vec![
            "--cacert".to_owned(),
            site.path("ca.crt").display().to_string(),
            "--cert".to_owned(),
            site.path("cn-app.crt").display().to_string(),
            "--key".to_owned(),
            site.path("cn-app.key").display().to_string(),
        ];
        a.extend(args.iter().map(|s| (*s).to_owned()));
        let refs: Vec<&str> = a.iter().map(String::as_str).collect();
        site.etcdctl(ep, &refs)
    };
    let put = as_cn_app(&["put", "/cn/k", "v"]);
    assert!(put.status.success(), "{}", text(&put));
    let get = as_cn_app(&["get", "/cn/k", "--print-value-only"]);
    assert_eq!(String::from_utf8_lossy(&get.stdout).trim(), "v", "{}", text(&get));
    let outside = as_cn_app(&["put", "/elsewhere", "v"]);
    assert!(!outside.status.success(), "{}", text(&outside));
    assert!(text(&outside).contains("permission denied"), "{}", text(&outside));

    // The endpoint list for consumers: etcdctl's variables with the files.
    let env = site.etcdplan(&["endpoints", "--healthy", "--format", "etcdctl"]);
    assert!(env.status.success(), "{}", text(&env));
    let env = String::from_utf8_lossy(&env.stdout).to_string();
    assert!(
        env.contains("ETCDCTL_ENDPOINTS=") && env.contains("https://127.0.0.12:2379"),
        "{env}"
    );
    assert!(env.contains("ETCDCTL_CACERT="), "{env}");
    let kube = site.etcdplan(&["endpoints", "--format", "kube-apiserver"]);
    assert!(kube.status.success(), "{}", text(&kube));
    let kube = String::from_utf8_lossy(&kube.stdout).to_string();
    for flag in [
        "--etcd-servers=https://127.0.0.11:2379,https://127.0.0.12:2379,https://127.0.0.13:2379",
        "--etcd-cafile=",
        "--etcd-certfile=",
        "--etcd-keyfile=",
    ] {
        assert!(kube.contains(flag), "{flag} missing:\n{kube}");
    }
}
