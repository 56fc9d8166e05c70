//! Versions against described live states: what `status` says about a cluster
//! whose members run different versions, or whose binary on disk differs from
//! the one running. Pure: no etcd is started.

mod common;

use common::{HostSpec, cluster, live};
use etcdplan::model::EtcdVersion;
use etcdplan::observe::{Binary, HostState};
use etcdplan::render::{self, Style};
use etcdplan::{diff, plan};

fn v(s: &str) -> Option<EtcdVersion> {
    EtcdVersion::parse(s)
}

#[test]
fn status_explains_mixed_versions_and_a_binary_waiting_for_a_restart() {
    let d = common::desired_from(&common::text_with(3, ""));
    // Each host's files as etcdplan renders them for the binary there (the
    // corruption checks are named per release, so 3.4's and 3.5's differ).
    let specs: Vec<HostSpec> = ["3.5.16", "3.5.16", "3.4.23"]
        .iter()
        .map(|bin| {
            let mut s = HostSpec::running_from(&d);
            s.binary = Binary::Found { version: v(bin) };
            s
        })
        .collect();
    let mut c = cluster(&d, &[true; 3], 0);
    // etcd-2 already runs 3.5.16; etcd-1's host holds the 3.5.16 binary, but
    // its etcd still runs 3.4.23.
    if let Ok(s) = c.members[1].status.as_mut() {
        s.reported.version = v("3.5.16");
    }
    let mut l = live(&d, &specs, Some(c));
    for (i, bin) in [(0, "3.5.16"), (1, "3.5.16"), (2, "3.4.23")] {
        if let Some(HostState::Reached(f)) = l.hosts.get_mut(&d.members[i].name) {
            f.binary = Binary::Found { version: v(bin) };
        }
    }
    let out = render::status_human(&l, &d, Style::PLAIN);
    assert!(
        out.contains("Members run 3.4.23, 3.5.16: the cluster runs at 3.4"),
        "{out}"
    );
    assert!(out.contains("3.4.23 (binary 3.5.16)"), "{out}");
    assert_eq!(out.matches("(binary").count(), 1, "{out}");
    // The plan says so too, without planning anything for it.
    let p = plan::build(&d, &l, diff::diff(&d, &l));
    assert_eq!(
        p.notes,
        [
            "etcd-1 runs etcd 3.4.23, but the binary on its host is 3.5.16: its next restart runs 3.5.16",
            "etcd-1, etcd-3 run etcd 3.4, which reached its end of life with 3.4.45 in June 2026 and gets no more fixes; upgrade one minor version at a time: 3.5 (3.5.32 or newer before 3.6), then 3.6 (3.6.11 or newer before 3.7), then 3.7 (set [cluster] version; with the releases in binary_source etcdplan makes the passes in order)",
        ]
    );
    // status says the same.
    assert!(out.contains("reached its end of life with 3.4.45"), "{out}");
    assert!(p.is_empty(), "{:?}", p.changes);

    // One version everywhere: no such line.
    let same = live(&d, &specs, Some(cluster(&d, &[true; 3], 0)));
    let out = render::status_human(&same, &d, Style::PLAIN);
    assert!(!out.contains("Members run"), "{out}");
}
