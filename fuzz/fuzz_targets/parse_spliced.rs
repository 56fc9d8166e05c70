//! Etcdfiles spliced from the examples and test files (`splice::build`),
//! checked for every property of `props::check`: most reach the validator.
//! With `ETCDPLAN_FUZZ_PRINT` set, the built text is printed first, to keep a
//! crash as a regression input.
#![no_main]

use libfuzzer_sys::arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    if let Ok(text) = etcdplan_fuzz::splice::build(&mut u) {
        if std::env::var_os("ETCDPLAN_FUZZ_PRINT").is_some() {
            eprintln!("{text}");
        }
        etcdplan_fuzz::props::check(&text, true);
    }
});
