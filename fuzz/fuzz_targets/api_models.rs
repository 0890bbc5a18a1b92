//! Fuzzes the API model deserialisation: see `keywarden_fuzz::api_models`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| keywarden_fuzz::api_models(data));
