//! Which URLs keywarden talks to: `https://`, or plain `http://` on a
//! loopback host only. Used for the OpenRouter base URL, webhooks and
//! budget sources alike.

/// Checks that `url` is `https://`, or `http://` on a loopback host
/// (127.0.0.0/8, ::1, `localhost`). The error names `field` and never echoes
/// the URL's path, query or credentials (a webhook URL is often a secret).
pub fn check_url(field: &str, url: &str) -> Result<url::Url, String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("{field} is not a valid URL: {e}"))?;
    let host = parsed.host();
    let loopback = match &host {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    let shown = match &host {
        Some(h) => format!("{}://{h}", parsed.scheme()),
        None => format!("{}:", parsed.scheme()),
    };
    match parsed.scheme() {
        "https" if host.is_some() => Ok(parsed),
        "http" if loopback => Ok(parsed),
        "http" => Err(format!(
            "{field} must use https:// ({shown} is not a loopback address; plain http:// is \
             accepted only for 127.0.0.0/8, ::1 and localhost)"
        )),
        _ => Err(format!("{field} must be an https:// URL, got {shown}")),
    }
}
