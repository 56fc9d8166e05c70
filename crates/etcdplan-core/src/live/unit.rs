//! What systemd says about the member's unit: whether it runs, whether it
//! starts at boot, and whether the file on disk is the one systemd loaded.
//! Only the `systemd` service reports it.

use std::fmt;

/// systemd's `ActiveState` of the unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActiveState {
    /// Running (`active`).
    Active,
    /// Reloading its configuration (`reloading`).
    Reloading,
    /// Not running, and not failed (`inactive`).
    Inactive,
    /// Stopped after a failure (`failed`).
    Failed,
    /// Starting (`activating`; also while waiting to be restarted).
    Activating,
    /// Stopping (`deactivating`).
    Deactivating,
    /// A state this version of etcdplan does not know (newer systemd), as printed.
    Other(String),
}

impl ActiveState {
    /// From `systemctl show -p ActiveState --value`; unknown words are kept.
    pub fn from_systemd(s: &str) -> Self {
        match s {
            "active" => Self::Active,
            "reloading" => Self::Reloading,
            "inactive" => Self::Inactive,
            "failed" => Self::Failed,
            "activating" => Self::Activating,
            "deactivating" => Self::Deactivating,
            other => Self::Other(other.to_owned()),
        }
    }

    /// systemd's word for it.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Active => "active",
            Self::Reloading => "reloading",
            Self::Inactive => "inactive",
            Self::Failed => "failed",
            Self::Activating => "activating",
            Self::Deactivating => "deactivating",
            Self::Other(s) => s,
        }
    }
}

/// systemd's `UnitFileState` of the unit: whether it starts at boot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnitFileState {
    /// Starts at boot (`enabled`).
    Enabled,
    /// Enabled until the next reboot only (`enabled-runtime`).
    EnabledRuntime,
    /// Does not start at boot (`disabled`).
    Disabled,
    /// Cannot be started at all (`masked`).
    Masked,
    /// Cannot be started until the next reboot (`masked-runtime`).
    MaskedRuntime,
    /// Has no `[Install]` section, so cannot be enabled (`static`).
    Static,
    /// systemd finds no unit file (it printed nothing).
    NotFound,
    /// Any other state (`linked`, `indirect`, `generated`, `bad`, …), as printed.
    Other(String),
}

impl UnitFileState {
    /// From `systemctl show -p UnitFileState --value`: empty when systemd
    /// finds no unit file; unknown words are kept.
    pub fn from_systemd(s: &str) -> Self {
        match s {
            "enabled" => Self::Enabled,
            "enabled-runtime" => Self::EnabledRuntime,
            "disabled" => Self::Disabled,
            "masked" => Self::Masked,
            "masked-runtime" => Self::MaskedRuntime,
            "static" => Self::Static,
            "" => Self::NotFound,
            other => Self::Other(other.to_owned()),
        }
    }

    /// systemd's word for it (`not-found` when it has none).
    pub fn as_str(&self) -> &str {
        match self {
            Self::Enabled => "enabled",
            Self::EnabledRuntime => "enabled-runtime",
            Self::Disabled => "disabled",
            Self::Masked => "masked",
            Self::MaskedRuntime => "masked-runtime",
            Self::Static => "static",
            Self::NotFound => "not-found",
            Self::Other(s) => s,
        }
    }

    /// Whether systemd refuses to start the unit at all.
    pub fn masked(&self) -> bool {
        matches!(self, Self::Masked | Self::MaskedRuntime)
    }
}

/// The member's unit as systemd shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct UnitState {
    /// `ActiveState`.
    pub active: ActiveState,
    /// `SubState` (`running`, `dead`, `auto-restart`, …): detail, shown as is.
    pub sub: String,
    /// `UnitFileState`.
    pub enabled: UnitFileState,
    /// `NeedDaemonReload`: the unit's file changed on disk since systemd
    /// loaded it, so what runs follows the old file until a daemon-reload.
    pub needs_reload: bool,
}

impl UnitState {
    /// Whether the member starts again when its host boots. Only `enabled`
    /// lasts: `enabled-runtime` ends at the reboot it would be needed for.
    pub fn starts_at_boot(&self) -> bool {
        self.enabled == UnitFileState::Enabled
    }
}

impl fmt::Display for ActiveState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for UnitFileState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `active (running), enabled`, as `systemctl status` words it.
impl fmt::Display for UnitState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}), {}", self.active, self.sub, self.enabled)
    }
}

/// As JSON: systemd's word.
impl serde::Serialize for ActiveState {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// As JSON: systemd's word (`not-found` when it has none).
impl serde::Serialize for UnitFileState {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn systemd_words_round_trip_and_unknown_ones_are_kept() {
        for w in [
            "active",
            "reloading",
            "inactive",
            "failed",
            "activating",
            "deactivating",
            "maintenance",
        ] {
            assert_eq!(ActiveState::from_systemd(w).as_str(), w);
        }
        assert_eq!(
            ActiveState::from_systemd("maintenance"),
            ActiveState::Other("maintenance".into())
        );
        for w in [
            "enabled",
            "enabled-runtime",
            "disabled",
            "masked",
            "masked-runtime",
            "static",
            "indirect",
        ] {
            assert_eq!(UnitFileState::from_systemd(w).as_str(), w);
        }
        assert_eq!(UnitFileState::from_systemd(""), UnitFileState::NotFound);
        assert_eq!(UnitFileState::NotFound.as_str(), "not-found");
    }

    #[test]
    fn only_a_lasting_enable_starts_at_boot() {
        let unit = |enabled: &str| UnitState {
            active: ActiveState::Active,
            sub: "running".into(),
            enabled: UnitFileState::from_systemd(enabled),
            needs_reload: false,
        };
        assert!(unit("enabled").starts_at_boot());
        for w in ["enabled-runtime", "disabled", "masked", "static", ""] {
            assert!(!unit(w).starts_at_boot(), "{w:?}");
        }
        assert!(unit("masked-runtime").enabled.masked());
        assert!(!unit("disabled").enabled.masked());
        assert_eq!(unit("enabled").to_string(), "active (running), enabled");
        let v = serde_json::to_value(unit("")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            v,
            serde_json::json!({"active": "active", "sub": "running", "enabled": "not-found", "needs_reload": false})
        );
    }
}
