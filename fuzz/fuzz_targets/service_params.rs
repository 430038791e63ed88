#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| qcgate::fuzzing::service_params(data));
