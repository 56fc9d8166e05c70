//! Integration on one machine: the repository's demo etcdfile applied from
//! nothing with real etcd processes (each test in its own network namespace),
//! then changed, repaired, and the failure paths that must change nothing.

mod harness;

use harness::{Site, prerequisites, text};

fn demo_etcdfile() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/etcdfile.toml"))
        .unwrap_or_else(|e| panic!("etcdfile.toml: {e}"))
}

fn status_json(site: &Site) -> serde_json::Value {
    let out = site.etcdplan(&["status", "--json"]);
    assert!(out.status.success(), "status failed: {}", text(&out));
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("status JSON: {e}: {}", text(&out)))
}

#[test]
fn demo_cluster_from_nothing_to_rolling_change() {
    if !prerequisites() {
        return;
    }
    let site = Site::new("demo", &demo_etcdfile());

    // From nothing: three members bootstrap.
    let out = site.apply_ok();
    assert!(
        text(&out).contains("Apply complete! Members: 3 added, 0 changed, 0 removed."),
        "{}",
        text(&out)
    );

    // The etcd API shows three started voting members, all healthy, one leader.
    let s = status_json(&site);
    let members = s["members"].as_array().cloned().unwrap_or_default();
    assert_eq!(members.len(), 3, "{s}");
    for m in &members {
        assert_eq!(m["is_learner"], false, "{m}");
        assert_eq!(m["healthy"], true, "{m}");
        assert!(
            m["name"].as_str().is_some_and(|n| n.starts_with("etcd-")),
            "{m}"
        );
    }
    assert_eq!(members.iter().filter(|m| m["leader"] == true).count(), 1);
    let cluster_id = s["cluster_id"].clone();

    // A key written through one member is read through another.
    let put = site.etcdctl("127.0.0.11:2379", &["put", "greeting", "hello from etcd-1"]);
    assert!(put.status.success(), "{}", text(&put));
    let get = site.etcdctl(
        "127.0.0.13:2379",
        &["get", "greeting", "--print-value-only"],
    );
    assert_eq!(
        String::from_utf8_lossy(&get.stdout).trim(),
        "hello from etcd-1",
        "{}",
        text(&get)
    );

    // A second plan has nothing to do.
    let out = site.etcdplan(&["plan", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("No changes."), "{}", text(&out));

    // A settings change is a rolling restart; the data stays.
    let changed = demo_etcdfile().replace(
        "quota_backend_bytes = \"2GiB\"",
        "quota_backend_bytes = \"4GiB\"",
    );
    assert_ne!(changed, demo_etcdfile());
    std::fs::write(site.etcdfile(), changed).unwrap_or_else(|e| panic!("{e}"));
    let out = site.etcdplan(&["plan", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("+quota-backend-bytes: 4294967296"),
        "{}",
        text(&out)
    );
    let out = site.apply_ok();
    assert!(
        text(&out).contains("0 added, 3 changed, 0 removed"),
        "{}",
        text(&out)
    );
    let get = site.etcdctl(
        "127.0.0.12:2379",
        &["get", "greeting", "--print-value-only"],
    );
    assert_eq!(
        String::from_utf8_lossy(&get.stdout).trim(),
        "hello from etcd-1"
    );
    assert_eq!(status_json(&site)["cluster_id"], cluster_id);
    let out = site.etcdplan(&["plan", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    // A member killed by hand is seen and started again.
    site.kill_member("etcd-2", "KILL");
    let out = site.etcdplan(&["plan"]);
    assert!(text(&out).contains("~ etcd-2   start:"), "{}", text(&out));
    site.apply_ok();
    let s = status_json(&site);
    assert!(
        s["members"]
            .as_array()
            .is_some_and(|m| m.iter().all(|m| m["healthy"] == true)),
        "{s}"
    );
    assert_eq!(site.etcd_pids().len(), 3);
}

#[test]
fn apply_refuses_without_yes_and_changes_nothing() {
    if !prerequisites() {
        return;
    }
    let site = Site::new("noyes", &demo_etcdfile());
    // No --auto-approve and stdin closed: cancelled.
    let out = site.etcdplan(&["apply"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("apply cancelled"), "{}", text(&out));
    assert!(!site.path("demo-cluster").exists());
}

#[test]
fn missing_binary_is_named_and_nothing_is_started() {
    if !prerequisites() {
        return;
    }
    let site = Site::new(
        "nobin",
        &demo_etcdfile().replace("/usr/bin/etcd", "/opt/nowhere/etcd"),
    );
    let out = site.etcdplan(&["apply", "--auto-approve"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let t = text(&out);
    assert!(
        t.contains("etcd-1: the etcd binary /opt/nowhere/etcd is missing"),
        "{t}"
    );
    assert!(t.contains("apt-get install etcd-server"), "{t}");
    assert!(!site.path("demo-cluster").exists(), "something was written");
    assert!(site.etcd_pids().is_empty());
}

#[test]
fn busy_port_is_named_and_nothing_is_started() {
    if !prerequisites() {
        return;
    }
    let mut site = Site::new("busy", &demo_etcdfile());
    // Something else listens on etcd-2's client port.
    let squatter = site
        .ns
        .command("python3")
        .args([
            "-c",
            "import socket,time\ns=socket.socket()\ns.bind(('127.0.0.12',2379))\ns.listen()\nprint('ready',flush=True)\ntime.sleep(120)",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("python3: {e}"));
    site.children.push(squatter);
    let mut line = String::new();
    if let Some(out) = site.children[0].stdout.as_mut() {
        use std::io::BufRead as _;
        let _ = std::io::BufReader::new(out).read_line(&mut line);
    }
    assert_eq!(line.trim(), "ready");
    let out = site.etcdplan(&["apply", "--auto-approve"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("etcd-2: port 2379 on 127.0.0.12 is already in use"),
        "{}",
        text(&out)
    );
    assert!(!site.path("demo-cluster").exists());
    assert!(site.etcd_pids().is_empty());
}

#[test]
fn foreign_data_dir_is_named_and_kept() {
    if !prerequisites() {
        return;
    }
    let site = Site::new("foreign", &demo_etcdfile());
    let wal = site.path("demo-cluster/etcd-1/data/member/wal");
    std::fs::create_dir_all(&wal).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        wal.join("0000000000000000-0000000000000000.wal"),
        b"someone else's",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let out = site.etcdplan(&["apply", "--auto-approve"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let t = text(&out);
    assert!(
        t.contains("etcd-1: data dir") && t.contains("belongs to"),
        "{t}"
    );
    assert!(t.contains("mv "), "{t}");
    assert!(wal.join("0000000000000000-0000000000000000.wal").exists());
    assert!(site.etcd_pids().is_empty());
}

#[test]
fn invalid_etcdfile_changes_nothing() {
    if !prerequisites() {
        return;
    }
    let site = Site::new(
        "invalid",
        &demo_etcdfile().replace("client_port = 2379", "client_port = \"2379\""),
    );
    let out = site.etcdplan(&["apply", "--auto-approve"]);
    assert_eq!(out.status.code(), Some(1));
    let t = text(&out);
    assert!(
        t.contains("`client_port` in [etcd] must be an integer"),
        "{t}"
    );
    assert!(t.contains("etcdfile.toml:10:"), "{t}");
    assert!(!site.path("demo-cluster").exists());
}

#[test]
fn demo_shrinks_to_one_member_and_grows_back() {
    if !prerequisites() {
        return;
    }
    let site = Site::new("resize", &demo_etcdfile());
    site.apply_ok();
    let put = site.etcdctl("127.0.0.11:2379", &["put", "kept", "yes"]);
    assert!(put.status.success(), "{}", text(&put));

    // Only etcd-1 stays: two of three leave, which needs the flag.
    let one = demo_etcdfile();
    let cut = one
        .find("[[member]]\nname = \"etcd-2\"")
        .unwrap_or(one.len());
    std::fs::write(site.etcdfile(), &one[..cut]).unwrap_or_else(|e| panic!("{e}"));
    let out = site.etcdplan(&["apply", "--auto-approve"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("removes 2 of 3 voters"),
        "{}",
        text(&out)
    );
    let out = site.etcdplan(&["apply", "--auto-approve", "--allow-majority-removal"]);
    assert!(out.status.success(), "{}", text(&out));
    let s = status_json(&site);
    assert_eq!(s["members"].as_array().map(Vec::len), Some(1), "{s}");

    // And back to three: they join as learners with their old data moved aside.
    // Through a saved plan, which runs as saved and is never planned again: it
    // was made with one snapshot folder, and applying it with another (which
    // would change a fresh plan's snapshot step, but not the etcdfile or the
    // cluster) still writes the snapshot where the saved plan says.
    std::fs::write(site.etcdfile(), demo_etcdfile()).unwrap_or_else(|e| panic!("{e}"));
    let (saved_dir, other_dir) = (site.path("snap-saved"), site.path("snap-other"));
    let plan_file = site.path("grow.plan").display().to_string();
    let planned = site.etcdplan(&[
        "--snapshot-dir",
        &saved_dir.display().to_string(),
        "plan",
        "--out",
        &plan_file,
    ]);
    assert!(planned.status.success(), "{}", text(&planned));
    let out = site.etcdplan(&[
        "--snapshot-dir",
        &other_dir.display().to_string(),
        "apply",
        &plan_file,
    ]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("2 added, 0 changed, 0 removed"),
        "{}",
        text(&out)
    );
    let snapshots = |dir: &std::path::Path| {
        std::fs::read_dir(dir).map_or(0, |entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().ends_with(".db"))
                .count()
        })
    };
    assert_eq!(snapshots(&saved_dir), 1, "{}", text(&out));
    assert_eq!(snapshots(&other_dir), 0, "{}", text(&out));
    let s = status_json(&site);
    let members = s["members"].as_array().cloned().unwrap_or_default();
    assert_eq!(members.len(), 3, "{s}");
    assert!(
        members
            .iter()
            .all(|m| m["healthy"] == true && m["is_learner"] == false),
        "{s}"
    );
    let get = site.etcdctl("127.0.0.13:2379", &["get", "kept", "--print-value-only"]);
    assert_eq!(String::from_utf8_lossy(&get.stdout).trim(), "yes");
    let out = site.etcdplan(&["plan", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

#[test]
fn demo_moves_every_client_port() {
    if !prerequisites() {
        return;
    }
    let site = Site::new("cport", &demo_etcdfile());
    site.apply_ok();
    // No member listens on the new port yet: etcdplan finds them where they
    // say they listen, and rolls the change.
    let moved = demo_etcdfile().replace("client_port = 2379", "client_port = 2479");
    std::fs::write(site.etcdfile(), &moved).unwrap_or_else(|e| panic!("{e}"));
    let out = site.etcdplan(&["plan"]);
    assert!(
        text(&out).contains("Cluster \"demo\" is running."),
        "{}",
        text(&out)
    );
    let out = site.apply_ok();
    assert!(
        text(&out).contains("0 added, 3 changed, 0 removed"),
        "{}",
        text(&out)
    );
    let s = status_json(&site);
    let members = s["members"].as_array().cloned().unwrap_or_default();
    assert_eq!(members.len(), 3);
    for m in &members {
        assert_eq!(m["healthy"], true, "{m}");
        assert!(
            m["client_urls"][0]
                .as_str()
                .is_some_and(|u| u.ends_with(":2479")),
            "{m}"
        );
    }
    let out = site.etcdplan(&["plan", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}
