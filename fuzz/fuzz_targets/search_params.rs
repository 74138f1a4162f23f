#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tracekeeper_fuzzing::search_params(data));
