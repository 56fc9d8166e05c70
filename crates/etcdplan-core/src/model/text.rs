//! Domain types travel as the text people write (`"3.5.16"`, `"8e9e05c52164694d"`,
//! `"https://10.0.0.11:2380"`): serialized with `Display`, and read back
//! through the same parser the etcdfile and the etcd API use, so a saved plan
//! can hold nothing the parsers would refuse.

/// Implements `Serialize` (as `Display` text) and `Deserialize` (through
/// `$parse`, which returns a `Result` or an `Option`) for each type.
macro_rules! as_text {
    ($($t:ty => $parse:expr),* $(,)?) => {$(
        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> serde::Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = String::deserialize(d)?;
                $crate::model::text::Parsed::parsed($parse(text.as_str())).ok_or_else(|| {
                    <D::Error as serde::de::Error>::custom(format!(
                        "{text:?} is not a valid {}",
                        stringify!($t)
                    ))
                })
            }
        }
    )*};
}
pub(crate) use as_text;

/// What a parser returns, seen as "a value or nothing".
pub(crate) trait Parsed<T> {
    /// The value, if the text parsed.
    fn parsed(self) -> Option<T>;
}

impl<T> Parsed<T> for Option<T> {
    fn parsed(self) -> Option<T> {
        self
    }
}

impl<T, E> Parsed<T> for Result<T, E> {
    fn parsed(self) -> Option<T> {
        self.ok()
    }
}
