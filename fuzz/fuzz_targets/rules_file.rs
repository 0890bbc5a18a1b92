//! Fuzzes the rules-file parser: see `keywarden_fuzz::rules_file`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| keywarden_fuzz::rules_file(data));
