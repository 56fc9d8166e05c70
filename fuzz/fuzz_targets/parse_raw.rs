//! Arbitrary bytes, as lossy UTF-8, into `config::parse`: it must not panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = etcdplan_fuzz::props::parse(&etcdplan_fuzz::props::text_of(data));
});
