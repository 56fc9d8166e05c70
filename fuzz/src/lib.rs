//! Shared by the fuzz targets in `fuzz_targets/`: the properties every
//! etcdfile must keep ([`props`]) and the structure-aware etcdfile builder
//! ([`splice`]). Run them with `scripts/fuzz.sh`.

pub mod props;
pub mod splice;
