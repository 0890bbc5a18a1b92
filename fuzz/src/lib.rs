//! The properties the fuzz targets check, shared with
//! `tests/suite/fuzz_regressions.rs` (which includes this file by path and runs
//! it on stable with proptest and on every input a fuzzer found failing).
//! Each panics when its property does not hold; a returned `()` is a pass.

use keywarden::domain::{Credits, Field, Key};
use keywarden::openrouter::model::{CurrentKey, Data, ErrorBody, KeyPatch};
use keywarden::rules::{Severity, export::to_toml, parse_rules};

/// Any text as a rules file: the parser returns rules or diagnostics and
/// never panics; every diagnostic names a line and column inside the text
/// (or just past its end); valid rules survive `rules export` and a
/// re-import unchanged.
pub fn rules_file(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match parse_rules("fuzz.toml", text) {
        Ok(file) => {
            assert_eq!(file.positions.len(), file.rules.len());
            let exported = to_toml(&file.rules);
            let again = parse_rules("exported.toml", &exported).unwrap_or_else(|d| {
                panic!("the export of valid rules does not parse: {d:?}\n{exported}")
            });
            assert_eq!(again.rules, file.rules, "export round trip\n{exported}");
        }
        Err(diagnostics) => {
            assert!(
                diagnostics.iter().any(|d| d.severity == Severity::Error),
                "refused without an error: {diagnostics:?}"
            );
            let lines = text.split('\n').count();
            for d in &diagnostics {
                assert!(d.line >= 1 && d.col >= 1, "{d:?}");
                assert!(d.line <= lines + 1, "{d:?} past the end ({lines} lines)");
                let _ = d.to_string();
            }
        }
    }
}

/// Any bytes as an API response body: each model either refuses them or
/// reads a value that can be used and written back without a panic; a key
/// read back from its own JSON is the same key.
pub fn api_models(data: &[u8]) {
    if let Ok(page) = serde_json::from_slice::<Data<Vec<Key>>>(data) {
        for key in &page.data {
            check_key(key);
        }
    }
    if let Ok(one) = serde_json::from_slice::<Data<Key>>(data) {
        check_key(&one.data);
    }
    if let Ok(credits) = serde_json::from_slice::<Data<Credits>>(data) {
        let _ = credits.data.remaining();
    }
    if let Ok(current) = serde_json::from_slice::<Data<CurrentKey>>(data) {
        let _ = serde_json::to_string(&current.data).unwrap();
    }
    if let Ok(error) = serde_json::from_slice::<ErrorBody>(data) {
        let _ = error.error.message.len();
    }
    if let Ok(patch) = serde_json::from_slice::<KeyPatch>(data) {
        let text = serde_json::to_string(&patch).unwrap();
        let again: KeyPatch = serde_json::from_str(&text).unwrap();
        assert_eq!(again, patch, "{text}");
        let _ = patch.fields();
    }
}

fn check_key(key: &Key) {
    for field in Field::ALL {
        let value = key.get(field);
        let _ = value.to_string();
        let _ = value.to_json();
    }
    let text = serde_json::to_string(key).unwrap();
    let again: Key = serde_json::from_str(&text).unwrap();
    assert_eq!(&again, key, "{text}");
}
