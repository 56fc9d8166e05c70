//! Structure-aware mutation: builds an etcdfile from a valid (or nearly
//! valid) seed and edits it line by line with keys, values, tables and whole
//! blocks taken from the other seeds, so that most inputs are good TOML and
//! reach the validator instead of stopping at a syntax error.

use libfuzzer_sys::arbitrary::{Result, Unstructured};

/// The seeds, in `build.rs`'s order: `examples/*.toml`, `etcdfile.toml`,
/// `tests/etcdfiles/warnings/*` and `tests/etcdfiles/invalid/*`.
pub const SEEDS: &[(&str, &str)] = include!(concat!(env!("OUT_DIR"), "/seeds.rs"));

/// Values that sit at the edges of what the validator checks.
const EDGE_VALUES: &[&str] = &[
    "0",
    "-1",
    "1",
    "65535",
    "65536",
    "9223372036854775807",
    "-9223372036854775808",
    "1.5",
    "true",
    "\"\"",
    "\"0\"",
    "\"-1B\"",
    "\"18446744073709551615\"",
    "\"99999999999999999999GiB\"",
    "\"8EiB\"",
    "\"1h\"",
    "\"0s\"",
    "\"999999999999h\"",
    "\"{name}\"",
    "\"{name}/{address}/{unknown}\"",
    "\"{\"",
    "\"}\"",
    "\"~\"",
    "\"~/x\"",
    "\"/\"",
    "\"..\"",
    "\"é\u{301}\u{1F600}\"",
    "\"a,b\"",
    "\"3.5\"",
    "\"3.6.0\"",
    "\"v3\"",
    "\"::1\"",
    "\"[::1]\"",
    "\"10.0.0.1:2379\"",
    "\"http://10.0.0.1\"",
    "\"256.0.0.1\"",
    "[]",
    "[\"\"]",
    "{}",
    "1979-05-27T07:32:00Z",
];

/// One etcdfile built from the fuzzer's bytes.
pub fn build(u: &mut Unstructured<'_>) -> Result<String> {
    let all: Vec<&str> = SEEDS.iter().flat_map(|(_, t)| t.lines()).collect();
    let (_, base) = u.choose(SEEDS)?;
    let mut lines: Vec<String> = base.lines().map(str::to_owned).collect();
    let edits = u.int_in_range(0..=12)?;
    for _ in 0..edits {
        if u.is_empty() {
            break;
        }
        let at = if lines.is_empty() {
            0
        } else {
            u.choose_index(lines.len())?
        };
        match u.int_in_range(0..=8)? {
            // A value from another line, under this line's key.
            0 => {
                let donor = *u.choose(&all)?;
                if let (Some(line), Some((_, v))) = (lines.get_mut(at), donor.split_once('=')) {
                    if let Some((k, _)) = line.split_once('=') {
                        *line = format!("{k}={v}");
                    }
                }
            }
            // A key from another line, with this line's value.
            1 => {
                let donor = *u.choose(&all)?;
                if let (Some(line), Some((k, _))) = (lines.get_mut(at), donor.split_once('=')) {
                    if let Some((_, v)) = line.split_once('=') {
                        *line = format!("{k}={v}");
                    }
                }
            }
            // A line from any seed.
            2 => {
                let donor = *u.choose(&all)?;
                lines.insert(at.min(lines.len()), donor.to_owned());
            }
            // A line gone.
            3 => {
                if at < lines.len() {
                    lines.remove(at);
                }
            }
            // A line twice.
            4 => {
                if let Some(line) = lines.get(at).cloned() {
                    lines.insert(at, line);
                }
            }
            // An edge value under this line's key.
            5 => {
                let v = *u.choose(EDGE_VALUES)?;
                if let Some(line) = lines.get_mut(at)
                    && let Some((k, _)) = line.split_once('=')
                {
                    *line = format!("{k}= {v}");
                }
            }
            // A whole table from another seed: its header and the lines up to the next.
            6 => {
                let (_, donor) = u.choose(SEEDS)?;
                let donor: Vec<&str> = donor.lines().collect();
                let heads: Vec<usize> = (0..donor.len())
                    .filter(|i| donor[*i].trim_start().starts_with('['))
                    .collect();
                if !heads.is_empty() {
                    let h = *u.choose(&heads)?;
                    let end = (h + 1..donor.len())
                        .find(|i| donor[*i].trim_start().starts_with('['))
                        .unwrap_or(donor.len());
                    let at = at.min(lines.len());
                    for (k, l) in donor[h..end].iter().enumerate() {
                        lines.insert(at + k, (*l).to_owned());
                    }
                }
            }
            // A few arbitrary bytes into a value, as lossy text.
            7 => {
                let n = u.int_in_range(0..=8)?;
                let bytes = u.bytes(n)?;
                let s = String::from_utf8_lossy(bytes).replace(['"', '\\', '\n'], "");
                if let Some(line) = lines.get_mut(at)
                    && let Some((k, _)) = line.split_once('=')
                {
                    *line = format!("{k}= \"{s}\"");
                }
            }
            // Two lines swapped.
            _ => {
                if !lines.is_empty() {
                    let other = u.choose_index(lines.len())?;
                    if at < lines.len() {
                        lines.swap(at, other);
                    }
                }
            }
        }
    }
    let mut text = lines.join("\n");
    text.push('\n');
    Ok(text)
}
