//! The fuzz targets' properties on stable (issue 7, item 3): the same
//! checks as `fuzz/` (its `src/lib.rs`, included here by path), run on
//! every input a fuzzer ever found failing (kept below, one test each) and
//! on inputs proptest generates: rules files assembled from the grammar's
//! pieces, and API bodies built from the key model with hostile values.

#[path = "../../fuzz/src/lib.rs"]
mod properties;

use proptest::prelude::*;

/// Pieces of rules files, valid and not, for proptest to assemble.
fn rules_piece() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("[[rule]]\n".to_string()),
        "[a-z_.-]{0,12}".prop_map(|n| format!("name = \"{n}\"\n")),
        Just("keys = \"all\"\n".to_string()),
        "[a-z*?\\[\\]{}-]{0,8}".prop_map(|g| format!("keys = {{ names = [\"{g}\"] }}\n")),
        "[0-9*/, -]{0,14}".prop_map(|s| format!("schedule = \"{s}\"\n")),
        "[A-Za-z/_]{0,16}".prop_map(|t| format!("timezone = \"{t}\"\n")),
        Just("[rule.when]\n".to_string()),
        (-5.0f64..1e6, "[a-z]{0,8}", "[a-z]{0,6}").prop_map(|(u, w, s)| format!(
            "budget = {{ usd = {u}, window = \"{w}\", scope = \"{s}\" }}\n"
        )),
        "[0-9]{1,2}-[0-9]{1,2}"
            .prop_map(|d| format!("season = {{ from = \"{d}\", to = \"02-30\" }}\n")),
        "[0-9:-]{0,12}".prop_map(|h| format!("hours = \"{h}\"\n")),
        "[a-z]{0,4}".prop_map(|d| format!("weekdays = [\"{d}\", \"sun\"]\n")),
        "[/a-z~0-9]{0,8}".prop_map(|p| format!(
            "credits_below = {{ usd = {{ file = \"/nonexistent\", pointer = \"{p}\" }} }}\n"
        )),
        Just("[rule.set]\n".to_string()),
        any::<bool>().prop_map(|b| format!("disabled = {b}\n")),
        (-10.0f64..1e4).prop_map(|l| format!("limit = {l}\n")),
        "[a-z]{0,8}".prop_map(|r| format!("limit_reset = \"{r}\"\n")),
        any::<i64>().prop_map(|p| format!("priority = {p}\n")),
        "\\PC{0,12}".prop_map(|junk| format!("{junk}\n")),
        Just("é = \"ü\" # ✓\n".to_string()),
    ]
}

/// A key's JSON with every field possibly of a hostile value or absent.
fn api_body() -> impl Strategy<Value = Vec<u8>> {
    let value = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::Bool),
        any::<f64>().prop_map(|f| serde_json::json!(f)),
        any::<i64>().prop_map(|i| serde_json::json!(i)),
        "\\PC{0,16}".prop_map(serde_json::Value::String),
        Just(serde_json::json!([1, "x"])),
        Just(serde_json::json!({"nested": {}})),
    ];
    let fields = [
        "hash",
        "name",
        "label",
        "disabled",
        "limit",
        "limit_remaining",
        "limit_reset",
        "include_byok_in_limit",
        "usage",
        "usage_daily",
        "usage_weekly",
        "usage_monthly",
        "byok_usage",
        "created_at",
        "updated_at",
        "workspace_id",
        "total_credits",
        "total_usage",
        "code",
        "message",
    ];
    (
        proptest::collection::vec((0..fields.len(), value), 0..24),
        0..4usize,
        any::<bool>(),
    )
        .prop_map(move |(pairs, shape, truncate)| {
            let mut object = serde_json::Map::new();
            for (i, v) in pairs {
                object.insert(fields[i].to_string(), v);
            }
            let object = serde_json::Value::Object(object);
            let body = match shape {
                0 => serde_json::json!({"data": [object]}),
                1 => serde_json::json!({"data": object}),
                2 => serde_json::json!({"error": object}),
                _ => object,
            };
            let mut bytes = body.to_string().into_bytes();
            if truncate {
                bytes.truncate(bytes.len() / 2);
            }
            bytes
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn any_assembled_rules_file_parses_or_is_refused_with_a_place(
        pieces in proptest::collection::vec(rules_piece(), 0..24)
    ) {
        properties::rules_file(pieces.concat().as_bytes());
    }

    #[test]
    fn any_key_shaped_body_is_read_or_refused_without_a_panic(body in api_body()) {
        properties::api_models(&body);
    }

    #[test]
    fn any_bytes_are_neither_rules_nor_bodies_that_panic(
        bytes in proptest::collection::vec(any::<u8>(), 0..256)
    ) {
        properties::rules_file(&bytes);
        properties::api_models(&bytes);
    }
}

/// A valid file with one rule of each kind survives the checks (the
/// round trip through `rules export` included).
#[test]
fn the_example_rules_pass_the_round_trip() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/config/rules.example.toml"
    ))
    .unwrap();
    assert!(keywarden::rules::parse_rules("example", &text).is_ok());
    properties::rules_file(text.as_bytes());
}
