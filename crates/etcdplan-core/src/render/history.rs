//! `etcdplan history`: the records applies left in etcd (`crate::history`),
//! newest first, as a table for people or JSON for scripts.

use crate::history::Stored;

/// The table: when, who, what, the result, the step count and the plan's
/// hash (its first 12 digits); a value that is not a record says so.
pub fn human(records: &[Stored]) -> String {
    if records.is_empty() {
        return "No apply recorded yet (etcdplan/history/ is empty).\n".into();
    }
    let mut rows = vec![[
        "WHEN".to_owned(),
        "WHO".to_owned(),
        "WHAT".to_owned(),
        "STEPS".to_owned(),
        "PLAN".to_owned(),
        "RESULT".to_owned(),
    ]];
    for s in records {
        rows.push(match &s.record {
            Ok(r) => [
                r.started.clone(),
                r.who.clone(),
                r.operation.clone(),
                r.steps.len().to_string(),
                r.plan_sha256.chars().take(12).collect(),
                r.outcome.describe(r.steps.len()),
            ],
            Err(e) => [
                s.key.clone(),
                "?".into(),
                "?".into(),
                "?".into(),
                "?".into(),
                format!("not a record etcdplan reads: {e}"),
            ],
        });
    }
    let widths: Vec<usize> = (0..5)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for r in rows {
        for (i, w) in widths.iter().enumerate() {
            out.push_str(&format!("{:<w$}  ", r[i]));
        }
        out.push_str(&r[5]);
        out.push('\n');
    }
    out
}

/// `history --json`: an array, newest first, each record as stored with its
/// key; a value that is not a record has `error` instead.
pub fn json(records: &[Stored]) -> serde_json::Value {
    serde_json::Value::Array(
        records
            .iter()
            .map(|s| match &s.record {
                Ok(r) => {
                    let mut v = serde_json::to_value(r).unwrap_or_default();
                    if let Some(o) = v.as_object_mut() {
                        o.insert("key".into(), s.key.clone().into());
                    }
                    v
                }
                Err(e) => serde_json::json!({ "key": s.key, "error": e }),
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{Outcome, Record};

    fn record(started: &str, outcome: Outcome, steps: usize) -> Record {
        Record {
            operation: "apply".into(),
            who: "ops@admin-1".into(),
            started: started.into(),
            finished: None,
            plan_sha256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".into(),
            etcdfile_sha256: "e3b0c442".into(),
            steps: (1..=steps).map(|i| format!("step {i}")).collect(),
            outcome,
        }
    }

    fn sample() -> Vec<Stored> {
        let rs = [
            record("2026-12-03T07:10:00.000Z", Outcome::Started, 4),
            record(
                "2026-12-03T07:05:00.000Z",
                Outcome::Failed {
                    step: 3,
                    description: "wait until m2 healthy".into(),
                    error: "timed out".into(),
                },
                10,
            ),
            record(
                "2026-12-03T07:00:00.000Z",
                Outcome::Cancelled { step: 2 },
                3,
            ),
            record("2026-12-03T06:55:00.000Z", Outcome::Applied, 1),
        ];
        let mut v: Vec<Stored> = rs
            .into_iter()
            .map(|r| Stored {
                key: r.key(),
                record: Ok(r),
            })
            .collect();
        v.push(Stored {
            key: "etcdplan/history/hand-written".into(),
            record: Err("expected value at line 1 column 1".into()),
        });
        v
    }

    #[test]
    fn table() {
        insta::assert_snapshot!(human(&sample()));
    }

    #[test]
    fn empty() {
        assert!(human(&[]).starts_with("No apply recorded yet"));
        assert_eq!(json(&[]), serde_json::json!([]));
    }

    #[test]
    fn json_has_key_result_and_steps() {
        let v = json(&sample());
        assert_eq!(v[1]["result"], "failed");
        assert_eq!(v[1]["step"], 3);
        assert_eq!(v[1]["steps"].as_array().map(Vec::len), Some(10));
        assert_eq!(
            v[3]["key"],
            "etcdplan/history/20261203T065500.000Z-9f86d081884c"
        );
        assert_eq!(v[4]["error"], "expected value at line 1 column 1");
    }
}
