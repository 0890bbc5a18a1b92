//! OpenRouter's guardrails (SPEC §12): a [`GuardrailId`], the account's
//! [`Guardrail`]s by name, and the [`GuardrailRef`] a rule's
//! `set.guardrail` names, resolved against them.

use serde::{Serialize, Serializer};
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

/// The id of a guardrail (a UUID), as `GET /guardrails` lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GuardrailId(Uuid);

impl FromStr for GuardrailId {
    type Err = uuid::Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s).map(GuardrailId)
    }
}

impl fmt::Display for GuardrailId {
    /// The hyphenated lower-case form the API uses.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0.hyphenated(), f)
    }
}

impl Serialize for GuardrailId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A guardrail of the account: what a name resolves against.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Guardrail {
    /// Its id.
    pub id: GuardrailId,
    /// Its name.
    pub name: String,
}

/// What a rule's `set.guardrail` says: `"none"`, or a guardrail's id or name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(into = "String")]
pub enum GuardrailRef {
    /// `"none"`: the key holds no guardrail.
    None,
    /// A guardrail's id or name, resolved at evaluation.
    Named(String),
}

impl GuardrailRef {
    /// Reads the TOML string: `"none"` or an id or name.
    pub fn parse(s: &str) -> GuardrailRef {
        match s {
            "none" => GuardrailRef::None,
            name => GuardrailRef::Named(name.to_string()),
        }
    }

    /// The text as written in the rule.
    pub fn as_str(&self) -> &str {
        match self {
            GuardrailRef::None => "none",
            GuardrailRef::Named(name) => name,
        }
    }

    /// The guardrail it names among `guardrails` (`None` for `"none"`): an
    /// id matches that guardrail, else a name must match exactly one. The
    /// error says why it resolves to none or several.
    pub fn resolve(&self, guardrails: &[Guardrail]) -> Result<Option<GuardrailId>, String> {
        let GuardrailRef::Named(name) = self else {
            return Ok(None);
        };
        if let Ok(id) = name.parse::<GuardrailId>()
            && guardrails.iter().any(|g| g.id == id)
        {
            return Ok(Some(id));
        }
        let named: Vec<&Guardrail> = guardrails.iter().filter(|g| &g.name == name).collect();
        match named.as_slice() {
            [one] => Ok(Some(one.id)),
            [] => Err(format!(
                "no guardrail has the id or name {name:?} (the account has {})",
                names_of(guardrails)
            )),
            several => Err(format!(
                "{} guardrails are named {name:?} ({}): name one by its id",
                several.len(),
                several
                    .iter()
                    .map(|g| g.id.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }
}

impl From<GuardrailRef> for String {
    fn from(r: GuardrailRef) -> String {
        r.as_str().to_string()
    }
}

impl<'de> serde::Deserialize<'de> for GuardrailRef {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(|s| GuardrailRef::parse(&s))
    }
}

/// The guardrails' names for a message: `"a", "b"` or `none`.
fn names_of(guardrails: &[Guardrail]) -> String {
    if guardrails.is_empty() {
        return "none".into();
    }
    guardrails
        .iter()
        .map(|g| format!("{:?}", g.name))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guardrail(id: &str, name: &str) -> Guardrail {
        Guardrail {
            id: id.parse().unwrap(),
            name: name.into(),
        }
    }

    #[test]
    fn a_reference_resolves_by_id_or_by_a_unique_name() {
        let a = "00000000-0000-4000-8000-00000000000a";
        let b = "00000000-0000-4000-8000-00000000000b";
        let c = "00000000-0000-4000-8000-00000000000c";
        let all = [
            guardrail(a, "cheap"),
            guardrail(b, "twin"),
            guardrail(c, "twin"),
        ];
        let by = |s: &str| GuardrailRef::parse(s).resolve(&all);
        assert_eq!(by("none"), Ok(None));
        assert_eq!(by("cheap"), Ok(Some(a.parse().unwrap())));
        assert_eq!(by(b), Ok(Some(b.parse().unwrap())));
        assert_eq!(
            by("missing").unwrap_err(),
            r#"no guardrail has the id or name "missing" (the account has "cheap", "twin", "twin")"#
        );
        assert_eq!(
            by("twin").unwrap_err(),
            format!(r#"2 guardrails are named "twin" ({b}, {c}): name one by its id"#)
        );
        assert!(by("00000000-0000-4000-8000-0000000000ff").is_err());
    }

    #[test]
    fn an_id_prints_as_the_api_writes_it() {
        let id: GuardrailId = "00000000-0000-4000-8000-00000000C4E9".parse().unwrap();
        assert_eq!(id.to_string(), "00000000-0000-4000-8000-00000000c4e9");
        assert_eq!(
            serde_json::to_value(id).unwrap(),
            serde_json::json!("00000000-0000-4000-8000-00000000c4e9")
        );
    }
}
