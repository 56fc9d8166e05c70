//! etcdplan's pipeline run in the test process (observe, diff, plan, apply)
//! with an etcd client the test builds, for tests that need a client the
//! command line would not make (a given identity or login).

use std::sync::Arc;
use std::time::Duration;

use etcdplan::config::Desired;
use etcdplan::io::{EtcdClient, HostMap, SshHost, SshOptions};

/// Observes, plans and applies `d` through ssh (as the etcdfile says) and
/// `etcd`, with the passwords `[auth]` names; the plan must have no
/// blocker. Returns the plan's step descriptions and its JSON.
pub async fn plan_and_apply(d: &Desired, etcd: &EtcdClient) -> (Vec<String>, String) {
    let opts = SshOptions {
        user: d.hosts.ssh.user.clone(),
        port: d.hosts.ssh.port,
        identity: d.hosts.ssh.identity.clone(),
        known_hosts: d.hosts.ssh.known_hosts.clone(),
        accept_new: false,
        connect_timeout: Duration::from_secs(10),
        persist: None,
    };
    let mut hosts = HostMap::default();
    for m in &d.members {
        let h = SshHost::connect(&m.address, &opts).await;
        assert!(h.failure().is_none(), "{:?}", h.failure());
        hosts.insert(m.address.clone(), Arc::new(h));
    }
    let secrets = etcdplan::config::Secrets::read(d);
    let live = etcdplan::observe::observe(d, &hosts, etcd, &secrets).await;
    let diff = etcdplan::diff::diff(d, &live);
    assert!(diff.blockers.is_empty(), "{:#?}", diff.blockers);
    let plan = etcdplan::plan::build(d, &live, diff);
    let steps: Vec<String> = plan.steps.iter().map(|s| s.description.clone()).collect();
    let json = serde_json::to_string(&plan).unwrap_or_else(|e| panic!("{e}"));
    if !plan.steps.is_empty() {
        let stop = std::sync::atomic::AtomicBool::new(false);
        let ctx = etcdplan::execute::Context {
            desired: d,
            hosts: &hosts,
            etcd,
            deadlines: etcdplan::execute::Deadlines::default(),
            advertised: Vec::new(),
            stop: &stop,
            tolerates: plan.tolerates(),
            secrets,
        };
        etcdplan::execute::apply(&plan, &ctx, &mut |_| {})
            .await
            .unwrap_or_else(|e| panic!("apply: {e}\n{steps:#?}"));
    }
    hosts.close().await;
    (steps, json)
}
