//! Faults injected into the test bed while etcdplan runs: a host's link
//! taken down, its client port dropped by a firewall rule in its own
//! namespace, its link slowed, its ssh connections killed by pid. Each fault
//! is a guard that undoes itself on drop, so a failing test leaves no rule,
//! no slowed or downed link behind. The etcdplan run they strike is a
//! [`super::failpoint::Running`].

use std::process::Command;

use super::testbed::{Testbed, sh};

fn ip(args: &[&str]) -> Result<String, String> {
    sh(Command::new("ip").args(args))
}

/// Host `i`'s link (its veth end in the root namespace) set down; up again
/// on drop.
pub struct LinkDown {
    veth: String,
}

impl LinkDown {
    /// Takes host `i`'s link down.
    pub fn take(tb: &Testbed, i: usize) -> Result<Self, String> {
        let veth = tb.hosts[i].veth.clone();
        ip(&["link", "set", &veth, "down"])?;
        Ok(Self { veth })
    }
}

impl Drop for LinkDown {
    fn drop(&mut self) {
        let _ = ip(&["link", "set", &self.veth, "up"]);
    }
}

/// An nftables table of its own inside host `i`'s namespace that drops
/// what reaches one tcp port there; the table is deleted on drop (nothing
/// else of the ruleset is touched).
pub struct PortDropped {
    ns: String,
    table: String,
}

impl PortDropped {
    /// Drops tcp packets to `port` arriving at host `i`.
    pub fn tcp(tb: &Testbed, i: usize, port: u16) -> Result<Self, String> {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let k = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let guard = Self {
            ns: tb.hosts[i].ns.clone(),
            table: format!("etcdplan_fault_{}_{k}", std::process::id()),
        };
        let t = &guard.table;
        guard.nft(&["add", "table", "inet", t])?;
        guard.nft(&[
            "add",
            "chain",
            "inet",
            t,
            "input",
            "{ type filter hook input priority 0; policy accept; }",
        ])?;
        guard.nft(&[
            "add",
            "rule",
            "inet",
            t,
            "input",
            "tcp",
            "dport",
            &port.to_string(),
            "drop",
        ])?;
        Ok(guard)
    }

    fn nft(&self, args: &[&str]) -> Result<String, String> {
        sh(Command::new("ip")
            .args(["netns", "exec", &self.ns, "nft"])
            .args(args))
    }
}

impl Drop for PortDropped {
    fn drop(&mut self) {
        let _ = self.nft(&["delete", "table", "inet", &self.table]);
    }
}

/// Host `i`'s link slowed to `kbit` kbit/s towards the host (a token
/// bucket on its veth end in the root namespace), so a large upload is
/// still under way when a test acts; the queueing discipline is removed on
/// drop.
pub struct Slowed {
    veth: String,
}

impl Slowed {
    /// Slows what is sent to host `i`.
    pub fn to(tb: &Testbed, i: usize, kbit: u32) -> Result<Self, String> {
        let veth = tb.hosts[i].veth.clone();
        sh(Command::new("tc").args([
            "qdisc",
            "add",
            "dev",
            &veth,
            "root",
            "tbf",
            "rate",
            &format!("{kbit}kbit"),
            "burst",
            "32kbit",
            "latency",
            "400ms",
        ]))?;
        Ok(Self { veth })
    }
}

impl Drop for Slowed {
    fn drop(&mut self) {
        let _ = sh(Command::new("tc").args(["qdisc", "del", "dev", &self.veth, "root"]));
    }
}

/// Kills (SIGKILL) host `i`'s per-connection sshd processes, found among the
/// pids of its namespace by their command line; the listener (its pid file)
/// is spared. Returns the pids killed.
pub fn kill_ssh_connections(tb: &Testbed, i: usize) -> Vec<u32> {
    let h = &tb.hosts[i];
    let listener: Option<u32> = h
        .sshd_pid_file
        .as_ref()
        .and_then(|f| std::fs::read_to_string(f).ok())
        .and_then(|t| t.trim().parse().ok());
    let pids: Vec<u32> = ip(&["netns", "pids", &h.ns])
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .filter(|p| Some(*p) != listener)
        .filter(|p| {
            let cmd = std::fs::read(format!("/proc/{p}/cmdline")).unwrap_or_default();
            String::from_utf8_lossy(&cmd).starts_with("sshd: ")
        })
        .collect();
    for p in &pids {
        let _ = Command::new("kill")
            .args(["-KILL", &p.to_string()])
            .output();
    }
    pids
}
