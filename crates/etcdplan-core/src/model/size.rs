//! Byte sizes as the etcdfile writes them: binary units only.
//!
//! Accepted: an integer number of bytes (`2147483648`, as a TOML integer or a
//! string of digits) or an integer followed directly by `KiB`, `MiB`, `GiB` or
//! `TiB` (`"2GiB"`). Refused, with a hint: decimal units (`"2GB"`: etcd's quota
//! is a byte count, and GB vs GiB silently differ by 7%), a space before the unit
//! (`"2 GiB"`), fractions and negative numbers.

use std::fmt;

/// A size in bytes.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct ByteSize(pub u64);

/// Why a size string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SizeError {
    /// Nothing to parse.
    #[error("the size is empty")]
    Empty,
    /// `"2 GiB"`.
    #[error("no space is allowed between the number and the unit")]
    Space,
    /// `"2GB"`.
    #[error("{0:?} is a decimal unit; etcdplan accepts only binary units")]
    DecimalUnit(String),
    /// `"2XB"`.
    #[error("unknown unit {0:?}")]
    UnknownUnit(String),
    /// `"1.5GiB"`, `"-1"`.
    #[error("the number must be a whole, non-negative number")]
    BadNumber,
    /// Too large for 64 bits.
    #[error("the size does not fit in 64 bits")]
    Overflow,
}

const UNITS: [(&str, u64); 5] = [
    ("B", 1),
    ("KiB", 1 << 10),
    ("MiB", 1 << 20),
    ("GiB", 1 << 30),
    ("TiB", 1 << 40),
];

impl ByteSize {
    /// Parses `"2GiB"`, `"512MiB"` or `"2147483648"`.
    pub fn parse(s: &str) -> Result<Self, SizeError> {
        let s = s.trim();
        if s.is_empty() {
            return Err(SizeError::Empty);
        }
        let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (num, unit) = s.split_at(split);
        if num.is_empty() {
            return Err(SizeError::BadNumber);
        }
        if unit.starts_with(char::is_whitespace) {
            return Err(SizeError::Space);
        }
        if unit.starts_with(['.', ',']) {
            return Err(SizeError::BadNumber);
        }
        let factor = if unit.is_empty() {
            1
        } else if let Some((_, f)) = UNITS.iter().find(|(u, _)| *u == unit) {
            *f
        } else if [
            "K", "KB", "M", "MB", "G", "GB", "T", "TB", "k", "kB", "Gb", "Mb",
        ]
        .contains(&unit)
        {
            return Err(SizeError::DecimalUnit(unit.to_owned()));
        } else {
            return Err(SizeError::UnknownUnit(unit.to_owned()));
        };
        let n: u64 = num.parse().map_err(|_| SizeError::Overflow)?;
        n.checked_mul(factor).map(Self).ok_or(SizeError::Overflow)
    }

    /// The size in bytes.
    pub fn bytes(self) -> u64 {
        self.0
    }
}

impl fmt::Display for ByteSize {
    /// The largest binary unit that divides the size exactly, so "2GiB" reads back as written.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (unit, factor) in UNITS.iter().rev() {
            if *factor > 1 && self.0 >= *factor && self.0.is_multiple_of(*factor) {
                return write!(f, "{}{unit}", self.0 / factor);
            }
        }
        write!(f, "{}B", self.0)
    }
}

/// A human rendering for tables: one decimal, binary units (`1.5 MiB`).
pub fn human(bytes: u64) -> String {
    let mut v = bytes as f64;
    for unit in ["B", "KiB", "MiB", "GiB", "TiB"] {
        if v < 1024.0 || unit == "TiB" {
            return if unit == "B" {
                format!("{bytes} B")
            } else {
                format!("{v:.1} {unit}")
            };
        }
        v /= 1024.0;
    }
    format!("{bytes} B")
}

impl ByteSize {
    /// A rounded rendering for tables (`20.5 KiB`).
    pub fn human(self) -> String {
        human(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_binary_units_and_bytes() {
        assert_eq!(ByteSize::parse("2GiB"), Ok(ByteSize(2 << 30)));
        assert_eq!(ByteSize::parse("512MiB"), Ok(ByteSize(512 << 20)));
        assert_eq!(ByteSize::parse("2147483648"), Ok(ByteSize(2 << 30)));
        assert_eq!(
            ByteSize::parse("8GiB")
                .map(|s| s.to_string())
                .ok()
                .as_deref(),
            Some("8GiB")
        );
    }

    #[test]
    fn refuses_ambiguous_sizes() {
        assert_eq!(ByteSize::parse("2 GiB"), Err(SizeError::Space));
        assert_eq!(
            ByteSize::parse("2GB"),
            Err(SizeError::DecimalUnit("GB".into()))
        );
        assert_eq!(ByteSize::parse("1.5GiB"), Err(SizeError::BadNumber));
        assert_eq!(ByteSize::parse("-1"), Err(SizeError::BadNumber));
        assert_eq!(
            ByteSize::parse("2XiB"),
            Err(SizeError::UnknownUnit("XiB".into()))
        );
        assert_eq!(ByteSize::parse("99999999999TiB"), Err(SizeError::Overflow));
    }

    #[test]
    fn human_rendering() {
        assert_eq!(human(20480), "20.0 KiB");
        assert_eq!(human(12), "12 B");
    }
}
