//! Arbitrary bytes, as lossy UTF-8: every property of `props::check`, with
//! the report rendered.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    etcdplan_fuzz::props::check(&etcdplan_fuzz::props::text_of(data), true);
});
