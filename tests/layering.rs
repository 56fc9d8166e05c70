//! The core crate stays pure: none of the crates that reach the network, the
//! hosts, etcd or the file watcher is in its dependency tree, so the compiler
//! refuses any I/O there. This reads the tree cargo resolves.

use std::process::Command;

#[test]
fn core_depends_on_no_io_crate() {
    let out = match Command::new(env!("CARGO"))
        .args([
            "tree",
            "--locked",
            "-p",
            "etcdplan-core",
            "-e",
            "normal",
            "--prefix",
            "none",
            "--format",
            "{lib}",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
    {
        Ok(out) => out,
        Err(e) => panic!("cargo tree did not run: {e}"),
    };
    assert!(
        out.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tree = String::from_utf8_lossy(&out.stdout);
    let crates: Vec<&str> = tree.lines().map(str::trim).collect();
    assert!(crates.contains(&"etcdplan_core"), "tree: {tree}");
    assert!(crates.contains(&"petgraph"), "tree: {tree}");
    for banned in [
        "tokio",
        "openssh",
        "etcd_client",
        "reqwest",
        "notify",
        "tonic",
        "hyper",
    ] {
        assert!(
            !crates.contains(&banned),
            "etcdplan-core depends on {banned}: {tree}"
        );
    }
}
