//! The plan, Terraform-style for people and as a stable JSON document.

use std::fmt::Write as _;

use similar::{ChangeTag, TextDiff};

use super::Style;
use crate::config::Desired;
use crate::diff::{Action, FileChange, Situation};
use crate::plan::{Plan, Step};

/// A file's text as people read it: each PEM certificate becomes one line
/// with its subject, fingerprint and expiry (a CA bundle's diff then says
/// which CA comes and goes, not which base64 lines).
fn readable(text: &str) -> String {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    if !text.contains(BEGIN) {
        return text.to_owned();
    }
    let mut out = String::new();
    for cert in crate::cert::split_bundle(text) {
        match crate::cert::inspect(&cert) {
            Ok(i) => {
                let _ = writeln!(
                    out,
                    "# certificate {:?}, sha256 {}, valid until {}",
                    i.subject,
                    i.short_fingerprint(),
                    crate::cert::date(i.not_after)
                );
            }
            Err(e) => {
                let _ = writeln!(out, "# unreadable certificate: {e}");
            }
        }
    }
    out
}

/// A unified diff of one host file, with headers naming the host.
pub fn unified_diff(f: &FileChange, style: Style, indent: &str) -> String {
    let before = readable(f.before.as_deref().unwrap_or(""));
    let after = readable(&f.after);
    let old_header = match &f.before {
        Some(_) => format!("{}   (on {})", f.path.display(), f.host),
        None => format!("{}   (absent on {})", f.path.display(), f.host),
    };
    let new_header = format!("{}   (desired)", f.path.display());
    let d = TextDiff::from_lines(before.as_str(), after.as_str());
    let mut out = String::new();
    let _ = writeln!(out, "{indent}{}", style.red(&format!("--- {old_header}")));
    let _ = writeln!(out, "{indent}{}", style.green(&format!("+++ {new_header}")));
    for group in d.grouped_ops(2) {
        let (Some(first), Some(last)) = (group.first(), group.last()) else {
            continue;
        };
        let (o, n) = (first.old_range().start, first.new_range().start);
        let (oe, ne) = (last.old_range().end, last.new_range().end);
        let start = |s: usize, len: usize| if len == 0 { s } else { s + 1 };
        let _ = writeln!(
            out,
            "{indent}{}",
            style.dim(&format!(
                "@@ -{},{} +{},{} @@",
                start(o, oe - o),
                oe - o,
                start(n, ne - n),
                ne - n
            ))
        );
        for op in &group {
            for ch in d.iter_changes(op) {
                let line = ch.value().trim_end_matches('\n');
                let text = match ch.tag() {
                    ChangeTag::Delete => style.red(&format!("-{line}")),
                    ChangeTag::Insert => style.green(&format!("+{line}")),
                    ChangeTag::Equal => format!(" {line}"),
                };
                let _ = writeln!(out, "{indent}{text}");
            }
        }
    }
    out
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
        let sym = match c.action {
            Action::Create | Action::Add => style.green(c.action.symbol()),
            Action::Remove => style.red(c.action.symbol()),
            Action::Replace => format!("{}{}{}", style.red("-"), "/", style.green("+")),
            Action::Start | Action::Restart | Action::Update => style.yellow(c.action.symbol()),
        };
        let verb = action_word(c.action);
        let mut tail = String::new();
        if c.leader && matches!(c.action, Action::Restart | Action::Remove | Action::Replace) {
            let to = plan.steps.iter().find_map(|s| match s {
                Step::MoveLeader { from, to, .. } if *from == c.member => Some(to.to_string()),
                _ => None,
            });
            tail = match to {
                Some(to) => format!("   (leader: moves to {to} first)"),
                None => "   (leader)".into(),
            };
        }
        let _ = writeln!(
            out,
            "{}{sym} {}   {verb}: {}{tail}",
            " ".repeat(3usize.saturating_sub(c.action.symbol().len())),
            style.bold(&format!("{:<width$}", c.member.as_str())),
            c.reason
        );
        if let Some(mv) = &c.binary {
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
    if !plan.steps.is_empty() {
        let _ = writeln!(out);
        let _ = writeln!(out, "Order:");
        for (i, s) in plan.steps.iter().enumerate() {
            let _ = writeln!(out, "  {:>2}. {}", i + 1, s.describe());
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
            "Plan: {} to add, {} to change, {} to remove.",
            plan.summary.add, plan.summary.change, plan.summary.remove
        ))
    );
    out
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

/// The plan as a stable JSON document (`format_version` bumps on breaking change).
pub fn json(plan: &Plan, d: &Desired) -> serde_json::Value {
    let changes: Vec<serde_json::Value> = plan
        .changes
        .iter()
        .map(|c| {
            let mut v = serde_json::json!({
                "member": c.member,
                "action": c.action,
                "reason": c.reason,
                "id": c.id,
                "leader": c.leader,
                "phase": c.phase,
                "certificates": c.certificates,
                "files": c.files.iter().map(|f| serde_json::json!({
                    "path": f.path,
                    "host": f.host,
                    "mode": format!("{:04o}", f.mode),
                    "exists": f.before.is_some(),
                    "diff": unified_diff(f, Style::PLAIN, ""),
                })).collect::<Vec<_>>(),
            });
            // Only on version changes, so other plans keep their shape.
            if let (Some(mv), Some(obj)) = (&c.binary, v.as_object_mut()) {
                obj.insert(
                    "binary".into(),
                    serde_json::json!({
                        "from": mv.from.map(|x| x.to_string()),
                        "to": mv.to.to_string(),
                        "pass": mv.pass.0,
                        "passes": mv.pass.1,
                        "path": mv.link.then(|| d.etcd.installed_path(mv.to)),
                        "upload": mv.install.as_ref().map(|r| serde_json::json!({
                            "source": r.path,
                            "sha256": r.sha256,
                        })),
                    }),
                );
            }
            v
        })
        .collect();
    let steps: Vec<serde_json::Value> = plan
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let after: Vec<usize> = plan
                .edges
                .iter()
                .filter(|(_, b)| *b == i)
                .map(|(a, _)| *a)
                .collect();
            let mut v = serde_json::to_value(s).unwrap_or_default();
            if let Some(obj) = v.as_object_mut()
                && let Some(files) = obj.remove("files")
            {
                // File contents are under `changes`; steps name the paths.
                let paths: Vec<serde_json::Value> = files
                    .as_array()
                    .map(|fs| fs.iter().filter_map(|f| f.get("path").cloned()).collect())
                    .unwrap_or_default();
                obj.insert("paths".into(), serde_json::Value::Array(paths));
            }
            if let Some(obj) = v.as_object_mut() {
                obj.insert("index".into(), i.into());
                obj.insert("description".into(), s.describe().into());
                obj.insert("disruptive".into(), s.disruptive().into());
                obj.insert("after".into(), after.into());
            }
            v
        })
        .collect();
    serde_json::json!({
        "format_version": "1",
        "cluster": d.cluster,
        "situation": plan.situation,
        "etcdfile_sha256": plan.file_hash,
        "changes": changes,
        "steps": steps,
        "blockers": plan.blockers,
        "notes": plan.notes,
        "deferred": plan.deferred.iter().map(|c| serde_json::json!({"member": c.member, "action": c.action, "reason": c.reason})).collect::<Vec<_>>(),
        "summary": plan.summary,
        "applicable": plan.blockers.is_empty(),
    })
}
