//! The plan, Terraform-style for people and as a stable JSON document.

use std::fmt::Write as _;

use super::Style;
use crate::config::Desired;
use crate::diff::{Action, FileChange, LineKind, Situation};
use crate::plan::{Plan, Step};

/// A unified diff of one host file, with headers naming the host, coloured.
pub fn unified_diff(f: &FileChange, style: Style, indent: &str) -> String {
    f.unified_diff(indent, &|kind, text| match kind {
        LineKind::OldHeader | LineKind::Removed => style.red(text),
        LineKind::NewHeader | LineKind::Added => style.green(text),
        LineKind::Hunk => style.dim(text),
        LineKind::Context => text.to_owned(),
    })
}

/// The word for an action, as plans and recaps print it.
pub fn action_word(a: Action) -> &'static str {
    match a {
        Action::Create => "create",
        Action::Add => "add",
        Action::Start => "start",
        Action::Restart => "restart",
        Action::Remove => "remove",
        Action::Replace => "replace",
        Action::Update => "update",
        Action::Adopt => "adopt",
        Action::Restore => "restore",
        Action::Defragment => "defragment",
    }
}

fn headline(plan: &Plan, d: &Desired) -> String {
    let n = d.members.len();
    match plan.situation {
        Situation::Bootstrap => format!(
            "Cluster {:?} does not exist yet: {n} member{} will bootstrap it.",
            d.cluster.as_str(),
            if n == 1 { "" } else { "s" }
        ),
        Situation::Down => format!(
            "Cluster {:?} is down: no member answers, but members have data.",
            d.cluster.as_str()
        ),
        Situation::Running => format!("Cluster {:?} is running.", d.cluster.as_str()),
    }
}

/// The plan for people. `file` names the etcdfile in the "no changes" line.
pub fn human(plan: &Plan, d: &Desired, file: &str, style: Style) -> String {
    let mut out = String::new();
    if plan.is_empty() {
        let _ = writeln!(
            out,
            "{} The cluster matches {file}.",
            style.green(&style.bold("No changes."))
        );
        let _ = writeln!(
            out,
            "Checked {} member{}: membership, health, and the files etcdplan owns on each host.",
            d.members.len(),
            if d.members.len() == 1 { "" } else { "s" }
        );
        for n in &plan.notes {
            let _ = writeln!(out, "Note: {n}");
        }
        return out;
    }
    let _ = writeln!(out, "{}", headline(plan, d));
    if !plan.changes.is_empty() {
        let _ = writeln!(out);
    }
    let width = plan
        .changes
        .iter()
        .map(|c| c.member.as_str().len())
        .max()
        .unwrap_or(0);
    let mut shown_files: Vec<(Vec<String>, String)> = Vec::new();
    for c in &plan.changes {
        let action = c.action();
        let sym = match action {
            Action::Create | Action::Add => style.green(action.symbol()),
            Action::Remove => style.red(action.symbol()),
            Action::Replace | Action::Restore => {
                format!("{}{}{}", style.red("-"), "/", style.green("+"))
            }
            Action::Start
            | Action::Restart
            | Action::Update
            | Action::Adopt
            | Action::Defragment => style.yellow(action.symbol()),
        };
        let verb = action_word(action);
        let mut tail = String::new();
        if c.leader
            && matches!(
                action,
                Action::Restart | Action::Remove | Action::Replace | Action::Defragment
            )
        {
            let to = plan.steps.iter().find_map(|s| match &s.step {
                Step::MoveLeader { from, to, .. } if *from == c.member => Some(to.to_string()),
                _ => None,
            });
            tail = match to {
                Some(to) => format!("   (leader: moves to {to} first)"),
                None if matches!(action, Action::Restart) => {
                    format!("   (leader: {})", crate::plan::LEADER_RESTART)
                }
                None => "   (leader)".into(),
            };
        }
        let _ = writeln!(
            out,
            "{}{sym} {}   {verb}: {}{tail}",
            " ".repeat(3usize.saturating_sub(action.symbol().len())),
            style.bold(&format!("{:<width$}", c.member.as_str())),
            c.reason
        );
        if let Some(mv) = c.binary() {
            let _ = writeln!(out, "      {}", binary_line(mv, d));
        }
        // The same hunks for several members (a rolling change) are shown once.
        let bodies: Vec<String> = c
            .files
            .iter()
            .map(|f| {
                let d = unified_diff(f, Style::PLAIN, "");
                d.lines().skip(2).collect::<Vec<_>>().join("\n")
            })
            .collect();
        let same = shown_files.iter().find(|(b, _)| {
            !bodies.is_empty() && *b == bodies && c.files.iter().all(|f| f.before.is_some())
        });
        if let Some((_, first)) = same {
            let _ = writeln!(out, "      (same change as {first})");
            continue;
        }
        for f in &c.files {
            out.push_str(&unified_diff(f, style, "      "));
        }
        shown_files.push((bodies, c.member.to_string()));
    }
    auth_changes(plan, style, &mut out);
    if !plan.steps.is_empty() {
        let _ = writeln!(out);
        let _ = writeln!(out, "Order:");
        for (i, s) in plan.steps.iter().enumerate() {
            let _ = writeln!(out, "  {:>2}. {}", i + 1, s.description);
        }
    }
    if !plan.deferred.is_empty() {
        let _ = writeln!(out, "\nDeferred (not applied by this plan):");
        for c in &plan.deferred {
            let _ = writeln!(out, "  {} {}   {}", style.dim("…"), c.member, c.reason);
        }
    }
    for n in &plan.notes {
        let _ = writeln!(out, "\nNote: {n}");
    }
    if !plan.blockers.is_empty() {
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "{}",
            style.red(&style.bold("This plan cannot be applied:"))
        );
        for b in &plan.blockers {
            let _ = writeln!(out, "  {} {}", style.red("✗"), b.message);
            let _ = writeln!(out, "    {}", style.dim(&format!("→ {}", b.help)));
        }
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "{}",
        style.bold(&format!(
            "Plan: {} to add, {} to change, {} to remove{}.",
            plan.summary.add,
            plan.summary.change,
            plan.summary.remove,
            match plan.auth.len() {
                0 => String::new(),
                1 => ", 1 auth change".into(),
                n => format!(", {n} auth changes"),
            }
        ))
    );
    out
}

/// The auth changes, one a line in the order they run: `+ user app`,
/// `~ role app: + readwrite /app/ (prefix)`, `~ user app: password` (the
/// password itself is never in the plan).
fn auth_changes(plan: &Plan, style: Style, out: &mut String) {
    if plan.auth.is_empty() {
        return;
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "Auth:");
    let width = plan
        .auth
        .iter()
        .map(|c| c.op.to_string().chars().count())
        .max()
        .unwrap_or(0);
    for c in &plan.auth {
        let sym = match c.op.symbol() {
            "+" => style.green("+"),
            "-" => style.red("-"),
            other => style.yellow(other),
        };
        let _ = writeln!(
            out,
            "  {sym} {:<width$}   {}",
            c.op.to_string(),
            style.dim(&c.reason)
        );
    }
}

/// What a member's (re)start does to its binary, in one line.
fn binary_line(mv: &crate::diff::BinaryMove, d: &Desired) -> String {
    let from = mv.from.map_or("?".into(), |v| v.to_string());
    let mut line = format!("binary: etcd {from} → {}", mv.to);
    if mv.link {
        let _ = write!(
            line,
            "; {} → {}",
            d.etcd.binary.display(),
            d.etcd.installed_path(mv.to).display()
        );
    } else {
        let _ = write!(line, " (the binary on its host)");
    }
    if let Some(r) = &mv.install {
        let _ = write!(
            line,
            ", uploaded from {} (sha256 {})",
            r.path.display(),
            &r.sha256[..12.min(r.sha256.len())]
        );
    }
    line
}
