//! Checks of single strings of a rules file (names, cron expressions,
//! timezones, globs, environment variable names, JSON pointers, headers):
//! `Err` is the message of the diagnostic.

/// A rule name: letters, digits, `-`, `_`, `.`.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("the name is empty".into());
    }
    match name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        Some(c) => Err(format!(
            "{name:?} is not a valid name: {c:?} is not allowed (letters, digits, '-', '_', '.')"
        )),
        None => Ok(()),
    }
}

/// A cron expression of 5 fields, or 6 with seconds.
pub fn check_schedule(expr: &str) -> Result<(), String> {
    croner::Cron::new(expr)
        .with_seconds_optional()
        .parse()
        .map(|_| ())
        .map_err(|e| {
            format!("{expr:?} is not a cron expression (5 fields, or 6 with seconds): {e}")
        })
}

/// An IANA timezone name.
pub fn check_timezone(name: &str) -> Result<(), String> {
    name.parse::<chrono_tz::Tz>()
        .map(|_| ())
        .map_err(|_| format!("unknown timezone {name:?} (an IANA name such as Europe/Berlin)"))
}

/// A string that is not empty (hashes, workspace ids, paths).
pub(super) fn check_nonempty(s: &str) -> Result<String, String> {
    if s.is_empty() {
        Err("empty string".into())
    } else {
        Ok(s.to_string())
    }
}

/// A glob over key names or labels.
pub(super) fn check_glob(s: &str) -> Result<String, String> {
    check_nonempty(s)?;
    globset::Glob::new(s)
        .map(|_| s.to_string())
        .map_err(|e| format!("{s:?} is not a valid glob: {}", e.kind()))
}

/// An environment variable name.
pub(super) fn check_env_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.contains(['=', '\0']) {
        Err(format!("{name:?} is not an environment variable name"))
    } else {
        Ok(())
    }
}

/// An RFC 6901 JSON pointer: empty, or `/`-separated with `~` only in `~0`/`~1`.
pub fn check_pointer(p: &str) -> Result<(), String> {
    if !p.is_empty() && !p.starts_with('/') {
        return Err(format!(
            "{p:?} is not a JSON pointer: it must be empty or start with '/' (like \"/teams/a\")"
        ));
    }
    let mut chars = p.chars();
    while let Some(c) = chars.next() {
        if c == '~' && !matches!(chars.next(), Some('0' | '1')) {
            return Err(format!(
                "{p:?} is not a JSON pointer: '~' must be followed by 0 or 1"
            ));
        }
    }
    Ok(())
}

/// An HTTP header name.
pub(super) fn check_header_name(name: &str) -> Result<(), String> {
    http::HeaderName::from_bytes(name.as_bytes())
        .map(|_| ())
        .map_err(|_| format!("{name:?} is not a valid header name"))
}

/// A literal HTTP header value.
pub(super) fn check_header_value(value: &str) -> Result<(), String> {
    http::HeaderValue::from_str(value)
        .map(|_| ())
        .map_err(|_| "the value has characters a header cannot carry".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointers_follow_rfc_6901() {
        assert!(check_pointer("").is_ok());
        assert!(check_pointer("/a/~0b/~1c").is_ok());
        assert!(check_pointer("a/b").is_err());
        assert!(check_pointer("/a~2").is_err());
        assert!(check_pointer("/a~").is_err());
    }
}
