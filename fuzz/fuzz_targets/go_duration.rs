#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tracekeeper_fuzzing::go_duration(data));
