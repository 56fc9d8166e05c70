//! The clap definitions: the global flags, the subcommands and their own
//! flags, and how a duration flag is read. `--help`, the completions and the
//! man page are all made from these.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::model;

/// Plan and apply changes to an etcd cluster without losing quorum.
#[derive(Debug, Parser)]
#[command(name = "etcdplan", version, about, propagate_version = true)]
pub struct Cli {
    /// The etcdfile.
    #[arg(
        short,
        long,
        global = true,
        env = "ETCDPLAN_FILE",
        default_value = "etcdfile.toml"
    )]
    pub file: PathBuf,
    /// Never colour the output (also: NO_COLOR).
    #[arg(long, global = true)]
    pub no_color: bool,
    /// Deadline of one etcd request (at least 1s).
    #[arg(long, global = true, default_value = "5s", value_name = "DURATION", value_parser = duration_arg)]
    pub etcd_timeout: Duration,
    /// Deadline for an ssh connection (at least 1s).
    #[arg(long, global = true, default_value = "10s", value_name = "DURATION", value_parser = duration_arg)]
    pub ssh_timeout: Duration,
    /// Keep ssh connections open this long idle after the command, for the
    /// next one to reuse (OpenSSH control masters in a private runtime
    /// folder, closed by `etcdplan disconnect` or on expiry); 0 closes them
    /// at the end of each command.
    #[arg(long, global = true, env = "ETCDPLAN_SSH_PERSIST", default_value = "60s", value_name = "DURATION", value_parser = duration_arg)]
    pub ssh_persist: Duration,
    /// Accept and record the keys of hosts not yet in known_hosts (a changed key
    /// is still refused). Host keys are checked strictly without it.
    #[arg(long, global = true)]
    pub accept_new_host_keys: bool,
    /// Allow a plan that removes a majority of the cluster's voters (they still
    /// leave one at a time).
    #[arg(long, global = true)]
    pub allow_majority_removal: bool,
    /// Allow [cluster] version to name a version older than the members run,
    /// where etcd supports that downgrade (3.5 → 3.4.32 or later).
    #[arg(long, global = true)]
    pub allow_downgrade: bool,
    /// How long apply waits for another etcdplan's lock on the cluster
    /// (0: fail at once, naming the holder).
    #[arg(long, global = true, default_value = "0s", value_name = "DURATION", value_parser = duration_arg)]
    pub lock_timeout: Duration,
    /// Where the snapshot taken before a membership change is written
    /// (default: `snapshots/` next to the etcdfile).
    #[arg(long, global = true, value_name = "DIR")]
    pub snapshot_dir: Option<PathBuf>,
    /// CA bundle etcdplan verifies the members' certificates with, as
    /// etcdctl's (default: [client] cacert, else the CA of [tls]).
    #[arg(long, global = true, env = "ETCDCTL_CACERT", value_name = "FILE")]
    pub cacert: Option<PathBuf>,
    /// Client certificate etcdplan presents to the members, with --key, as
    /// etcdctl's (default: [client] cert, else one etcdplan issues per run).
    #[arg(long, global = true, env = "ETCDCTL_CERT", value_name = "FILE")]
    pub cert: Option<PathBuf>,
    /// The client certificate's key.
    #[arg(long, global = true, env = "ETCDCTL_KEY", value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// etcd user etcdplan logs in as, as etcdctl's, when the etcdfile has no
    /// [auth] (with [auth] it logs in as root); the password comes from
    /// ETCDCTL_PASSWORD (or ETCDCTL_USER=user:password), never from the
    /// command line, never shown.
    #[arg(long, global = true, env = "ETCDCTL_USER", value_name = "USER")]
    pub user: Option<String>,
    /// Recover from a lost quorum (a majority of voters gone for good) from
    /// this member: its data copied aside and kept, the lost members fenced,
    /// it started once with --force-new-cluster, then normally, checked, and
    /// the others re-added learner first. plan and apply only (also needed
    /// to apply a saved recovery plan); never watch.
    #[arg(long, global = true, value_name = "MEMBER")]
    pub recover_from: Option<String>,
    /// Accept losing data, where the operator names the loss: a recovery
    /// (--recover-from) from a member that is not the most up to date one
    /// that answers, or a restore of a snapshot older than the live cluster.
    #[arg(long, global = true)]
    pub allow_data_loss: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check the etcdfile; every problem is reported with its place in the file.
    Validate {
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show the live cluster: members, leader, versions, db size, health, alarms.
    Status {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show what apply would change, in which order, and why.
    Plan {
        /// Print the plan as JSON.
        #[arg(long)]
        json: bool,
        /// Print the step graph as Graphviz dot.
        #[arg(long, conflicts_with = "json")]
        graph: bool,
        /// Exit 0 for no changes, 2 for changes, 1 for errors.
        #[arg(long)]
        detailed_exitcode: bool,
        /// Save the plan to FILE, to apply exactly it later with `apply FILE`.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Plan, show, ask, then apply one member at a time; or apply a saved plan.
    Apply {
        /// A plan saved by `plan --out`: applied without asking, if the cluster
        /// and the etcdfile are still what it was made from.
        #[arg(value_name = "PLAN_FILE")]
        plan_file: Option<PathBuf>,
        /// Apply without asking.
        #[arg(long)]
        auto_approve: bool,
        /// Report the plan and the progress as JSON Lines on stdout, one event
        /// per line (needs --auto-approve or PLAN_FILE: it cannot ask).
        #[arg(long)]
        json: bool,
        /// How long each health gate may wait.
        #[arg(long, default_value = "60s", value_name = "DURATION", value_parser = duration_arg)]
        gate_timeout: Duration,
    },
    /// Re-plan whenever the etcdfile is saved and every --interval (drift);
    /// with --auto-approve, apply the plans that need no force flag.
    Watch {
        /// Apply safe plans without asking (never a majority removal).
        #[arg(long)]
        auto_approve: bool,
        /// Time between drift checks of the live cluster (at least 1s).
        #[arg(long, default_value = "30s", value_name = "DURATION", value_parser = duration_arg)]
        interval: Duration,
        /// One JSON object per line per event, for log shippers.
        #[arg(long)]
        json: bool,
        /// How long each health gate may wait.
        #[arg(long, default_value = "60s", value_name = "DURATION", value_parser = duration_arg)]
        gate_timeout: Duration,
        /// Serve etcdplan's own metrics (plans, applies, drift, snapshot
        /// age) at http://HOST:PORT/metrics while watching.
        #[arg(long, value_name = "HOST:PORT")]
        metrics_addr: Option<std::net::SocketAddr>,
    },
    /// Write the etcdfile of a running cluster built by hand: read through the
    /// etcd API and each member's host; changes nothing.
    Import(super::import::ImportArgs),
    /// The cluster's certificate authority (the CA in [tls] ca_dir).
    Pki {
        /// What to issue.
        #[command(subcommand)]
        what: PkiCommand,
    },
    /// Remove the cluster's lock left by an etcdplan that is gone (the id is in
    /// the "locked by" message). It expires by itself 20 s after its holder
    /// died, and so do the lock files on the hosts (restore, recovery).
    ForceUnlock {
        /// The lock id.
        id: String,
    },
    /// Print the JSON Schema of the etcdfile.
    Schema,
    /// Take a snapshot from the leader into [backup] dir (else snapshots/
    /// beside the etcdfile), check it, and write its manifest; then copy
    /// the snapshots not copied yet and apply keep. Changes nothing in the cluster.
    Snapshot(super::snapshot::SnapshotArgs),
    /// Print a systemd service and timer that run `snapshot --if-due` every
    /// [backup] interval, for machines without `etcdplan watch`.
    BackupTimer,
    /// Print Prometheus alerting rules for the cluster (etcd's mixin alerts,
    /// selecting its members' metrics endpoints, quorum from the member
    /// count); reads only the etcdfile: `promtool check rules` takes it.
    Alerts {
        /// The Prometheus job that scrapes the members.
        #[arg(long, value_name = "NAME", default_value = crate::render::ALERTS_DEFAULT_JOB)]
        job: String,
    },
    /// Print the client endpoints of the cluster the etcdfile describes
    /// (every voting member) in a consumer's form: a list, etcdctl's
    /// variables, kube-apiserver's flags, StorageOS's KV_ADDR, or JSON; exit
    /// 1 when none is known. Reads only the etcdfile unless --healthy.
    Endpoints(super::endpoints::EndpointsArgs),
    /// List who applied what to the cluster, newest first: every walk of a
    /// plan (apply, restart, restore, watch) records who, when, the plan's
    /// hash, its steps and the result in etcd under etcdplan/history/ (the
    /// newest 100 are kept; with auth on, only root reads them).
    History {
        /// Print JSON (the records as stored, with their keys).
        #[arg(long)]
        json: bool,
        /// Show at most N records.
        #[arg(long, value_name = "N", default_value_t = etcdplan_core::history::KEEP)]
        limit: usize,
    },
    /// Close the ssh connections earlier commands left open (--ssh-persist):
    /// every master in the runtime folder is asked to exit and its socket
    /// removed.
    Disconnect,
    /// Print shell completions.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), made from the same definitions as --help:
    /// `etcdplan man | man -l -`.
    Man,
    /// Rebuild the cluster the etcdfile describes from a snapshot, as a new
    /// cluster: checked, shown and approved like any plan; every member is
    /// stopped, its data moved aside (never deleted), the snapshot restored
    /// on every host, and the new cluster verified.
    Restore(RestoreArgs),
    /// Restart one running member for host maintenance (OS patches, a
    /// reboot): refused, changing nothing, when the cluster could not lose
    /// it now; else shown and approved like any plan, leadership moved away
    /// first when it leads, and the member waited for until healthy.
    Restart(RestartArgs),
}

/// `etcdplan restart MEMBER …`
#[derive(Debug, clap::Args)]
pub struct RestartArgs {
    /// The member, as the etcdfile names it.
    #[arg(value_name = "MEMBER")]
    pub member: String,
    /// Restart without asking.
    #[arg(long)]
    pub auto_approve: bool,
    /// Report the plan and the progress as JSON Lines (needs --auto-approve).
    #[arg(long)]
    pub json: bool,
    /// How long the health gate may wait.
    #[arg(long, default_value = "60s", value_name = "DURATION", value_parser = duration_arg)]
    pub gate_timeout: Duration,
}

/// `etcdplan restore SNAPSHOT …`
#[derive(Debug, clap::Args)]
pub struct RestoreArgs {
    /// The snapshot file (`etcdplan snapshot`'s, or `etcdctl snapshot save`'s);
    /// its manifest `SNAPSHOT.json` is used when present.
    #[arg(value_name = "SNAPSHOT")]
    pub snapshot: PathBuf,
    /// Restore without asking.
    #[arg(long)]
    pub auto_approve: bool,
    /// Report the plan and the progress as JSON Lines (needs --auto-approve).
    #[arg(long)]
    pub json: bool,
    /// Restore the snapshot's revisions as they are (watchers that saw later
    /// revisions of the old cluster may then miss changes).
    #[arg(long, conflicts_with = "bump_revision")]
    pub no_bump_revision: bool,
    /// How far the restored revision is bumped (`--bump-revision`, with
    /// `--mark-compacted`), where every member's release can.
    #[arg(long, value_name = "N", default_value_t = crate::plan::restore::DEFAULT_BUMP)]
    pub bump_revision: u64,
    /// How long the health gate may wait.
    #[arg(long, default_value = "60s", value_name = "DURATION", value_parser = duration_arg)]
    pub gate_timeout: Duration,
}

/// What a duration flag accepts, for its error message.
const DURATION_FORMS: &str =
    "expected a duration such as 30s, 2m, 1h30m or 500ms, or a whole number of seconds";

/// Reads a duration flag the way etcd reads its own (`5s`, `2m`, `1h30m`,
/// `500ms`, see [`model::parse_duration`]); a bare number is seconds, as these
/// flags always took.
fn duration_arg(s: &str) -> Result<Duration, String> {
    let parsed = if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        model::parse_duration(&format!("{s}s"))
    } else {
        model::parse_duration(s)
    };
    parsed.map_err(|e| format!("{e}; {DURATION_FORMS}"))
}

/// `etcdplan pki …`
#[derive(Debug, Subcommand)]
pub enum PkiCommand {
    /// Issue a client certificate for an operator or an application
    /// (CN = NAME, which etcd takes as the user name when auth is on).
    Client {
        /// The certificate's common name.
        name: String,
        /// How long it is valid, in days.
        #[arg(long, default_value_t = 365)]
        days: i64,
        /// Folder for NAME.crt, NAME.key (0600) and ca.crt.
        #[arg(long, default_value = ".", value_name = "DIR")]
        out: PathBuf,
    },
    /// Start a CA rotation: the CA moves to ca_dir/previous and a new one is
    /// created. The next apply makes every member trust both (a rolling
    /// restart), then issues its certificates from the new CA (in place).
    RotateCa,
    /// End a CA rotation once applied: the previous CA is retired, and the
    /// next apply drops it from every member's trust (a rolling restart).
    RetireCa,
    /// Hand etcdplan an existing CA to issue from from then on: DIR holds
    /// ca.crt and ca.key (openssl) or ca.pem and ca-key.pem (cfssl), an RSA
    /// or ECDSA key in PKCS#1, PKCS#8 or SEC1. It is copied into ca_dir
    /// (the key 0600); no key material is printed.
    ImportCa {
        /// The folder holding the CA's certificate and key.
        #[arg(value_name = "DIR")]
        dir: PathBuf,
        /// Replace the CA ca_dir holds (every member's certificates are then
        /// issued again, and members stop trusting each other's until then).
        #[arg(long)]
        force: bool,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory as _;

    #[test]
    fn duration_flags_take_bare_seconds_and_etcds_syntax() {
        assert_eq!(duration_arg("5"), Ok(Duration::from_secs(5)));
        assert_eq!(duration_arg("0"), Ok(Duration::ZERO));
        assert_eq!(duration_arg("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(duration_arg("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(duration_arg("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(duration_arg("500ms"), Ok(Duration::from_millis(500)));
        for bad in ["", "5x", "-5", "1.5", "99999999999999999999", "2562048h"] {
            let e = duration_arg(bad).err().unwrap_or_default();
            assert!(e.contains(DURATION_FORMS), "{bad:?}: {e:?}");
        }
        assert!(duration_arg("99999999999999999999").is_err_and(|e| e.contains("too long")));
    }

    #[test]
    fn duration_defaults_parse_to_what_they_were_in_seconds() {
        let cli = Cli::try_parse_from(["etcdplan", "watch"]).map_err(|e| e.to_string());
        let Ok(cli) = cli else {
            panic!("{cli:?}");
        };
        assert_eq!(cli.etcd_timeout, Duration::from_secs(5));
        assert_eq!(cli.ssh_timeout, Duration::from_secs(10));
        assert_eq!(cli.lock_timeout, Duration::ZERO);
        let Command::Watch {
            interval,
            gate_timeout,
            ..
        } = cli.command
        else {
            panic!("not watch: {:?}", cli.command);
        };
        assert_eq!(interval, Duration::from_secs(30));
        assert_eq!(gate_timeout, Duration::from_secs(60));
    }

    #[test]
    fn clap_definitions_are_consistent() {
        Cli::command().debug_assert();
    }
}
