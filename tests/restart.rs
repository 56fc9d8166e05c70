//! End to end over ssh: `etcdplan restart MEMBER` on a 3-member cluster
//! under writes: the leader hands over before it stops, its etcd comes back
//! as a new process, and the cluster is healthy after; with another member's
//! etcd stopped, a restart is refused with the reason and nothing restarts.

mod harness;

use std::process::{Command, Output};
use std::time::Duration;

use harness::testbed::{Testbed, up_or_skip};
use harness::writer::{Writer, disruptions, missing};
use harness::{etcdctl, text, wait_for};

fn ok(out: Output) -> String {
    assert!(out.status.success(), "etcdplan failed:\n{}", text(&out));
    text(&out)
}

fn endpoints(tb: &Testbed) -> Vec<String> {
    tb.client_endpoints(&tb.all())
}

/// The index of the host whose member leads, as the members report it.
fn leader(tb: &Testbed) -> Option<usize> {
    let out = etcdctl(
        &endpoints(tb).join(","),
        &["endpoint", "status", "-w", "json"],
    );
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    let list = list.as_array()?;
    let leader = list.iter().find_map(|e| e["Status"]["leader"].as_u64())?;
    let ep = list
        .iter()
        .find(|e| e["Status"]["header"]["member_id"].as_u64() == Some(leader))?["Endpoint"]
        .as_str()?
        .to_owned();
    endpoints(tb).iter().position(|e| *e == ep)
}

/// The pid of host `i`'s etcd, if one runs.
fn pid(tb: &Testbed, i: usize) -> Option<u32> {
    tb.etcd_pids()
        .into_iter()
        .find_map(|(h, p)| (h == i).then_some(p))
}

/// The line of `out` where `what` appears first.
fn line_of(out: &str, what: &str) -> Option<usize> {
    out.lines().position(|l| l.contains(what))
}

#[test]
fn restart_of_the_leader_lets_etcd_hand_over_and_is_refused_when_a_member_is_down() {
    let Some(tb) = up_or_skip(3) else { return };
    let file = tb.etcdfile("restart", "", &tb.all(), &[]);
    ok(tb.etcdplan(&file, &["apply", "--auto-approve"]));
    let l = leader(&tb).unwrap_or_else(|| panic!("no leader"));
    let name = format!("etcd-{}", l + 1);
    let before = pid(&tb, l).unwrap_or_else(|| panic!("no etcd pid on host {l}"));

    // The leader restarts under a writer.
    let writer = Writer::start(
        endpoints(&tb),
        "r",
        Duration::from_millis(20),
        Duration::from_secs(2),
    );
    std::thread::sleep(Duration::from_millis(300));
    let out = ok(tb.etcdplan(&file, &["restart", &name, "--auto-approve"]));
    std::thread::sleep(Duration::from_millis(300));
    let seen = writer.stop();
    eprintln!("{out}");
    seen.assert_within("restart of the leader", disruptions(&out));
    assert_eq!(disruptions(&out), 2, "a restart of the leader:\n{out}");
    assert!(missing(&endpoints(&tb)[0], "r", &seen.acked).is_empty());

    // No move: etcd's graceful stop handed leadership over, and the
    // restart says who leads after it.
    assert!(!out.contains("move leader"), "{out}");
    let restarted = line_of(&out, &format!("restart {name} (leader: ")).unwrap_or(usize::MAX);
    let led = line_of(&out, &format!("{name} led; ")).unwrap_or(0);
    assert!(restarted < led, "{out}");
    assert!(out.contains("0 added, 1 changed, 0 removed"), "{out}");
    let now = leader(&tb);
    assert!(
        now.is_some() && now != Some(l),
        "{name} leads again: {now:?}"
    );
    // A new etcd process, and the cluster healthy after.
    let after = pid(&tb, l).unwrap_or_else(|| panic!("no etcd on host {l} after"));
    assert_ne!(after, before, "{name} was not restarted");
    let health = etcdctl(&endpoints(&tb).join(","), &["endpoint", "health"]);
    assert!(health.status.success(), "{}", text(&health));
    let out = tb.etcdplan(&file, &["plan", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    // A follower's etcd stops (by its pid): restarting any other member
    // would leave 1 of 3 voters up.
    let l = leader(&tb).unwrap_or_else(|| panic!("no leader"));
    let down = (l + 1) % 3;
    let other = (l + 2) % 3;
    let victim = pid(&tb, down).unwrap_or_else(|| panic!("no etcd on host {down}"));
    let killed = Command::new("kill")
        .args(["-KILL", &victim.to_string()])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(killed.status.success(), "{}", text(&killed));
    assert!(wait_for(Duration::from_secs(10), || pid(&tb, down).is_none()));
    for target in [l, other] {
        let before = pid(&tb, target);
        let out = tb.etcdplan(
            &file,
            &["restart", &format!("etcd-{}", target + 1), "--auto-approve"],
        );
        let t = text(&out);
        eprintln!("{t}");
        assert_eq!(out.status.code(), Some(1), "{t}");
        assert!(
            t.contains(&format!(
                "etcd-{} is down: restarting etcd-{} now would leave 1 of 3 voters up, below the quorum of 2",
                down + 1,
                target + 1
            )),
            "{t}"
        );
        assert!(t.contains("nothing was changed"), "{t}");
        assert!(!t.contains(" …\n"), "a step ran:\n{t}");
        assert_eq!(pid(&tb, target), before, "etcd-{} restarted", target + 1);
    }
    // The same refusal as JSON Lines: the plan event carries the blocker.
    let out = tb.etcdplan(
        &file,
        &[
            "restart",
            &format!("etcd-{}", l + 1),
            "--auto-approve",
            "--json",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let first = String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .and_then(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .unwrap_or_default();
    assert_eq!(first["event"], "plan", "{}", text(&out));
    assert_eq!(first["plan"]["applicable"], false);
    assert!(
        first["plan"]["blockers"][0]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with(&format!("etcd-{} is down", down + 1))),
        "{first}"
    );
    assert_eq!(first["plan"]["steps"].as_array().map(Vec::len), Some(0));
    // The stopped member itself is apply's to start.
    let out = tb.etcdplan(
        &file,
        &["restart", &format!("etcd-{}", down + 1), "--auto-approve"],
    );
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(
        t.contains(&format!("etcd-{} is not running", down + 1))
            && t.contains("`etcdplan apply` starts it"),
        "{t}"
    );
}
