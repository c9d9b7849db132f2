//! Connection strings: replacing the database of a libpq URL or key/value string.

/// Returns `conninfo` with its database replaced by `database`.
///
/// Supports the URL form (`postgres://` or `postgresql://`) and the key/value form
/// (`host=... dbname=...`).
pub(crate) fn with_database(conninfo: &str, database: &str) -> String {
    let conninfo = conninfo.trim();
    let Some(scheme_end) = ["postgresql://", "postgres://"]
        .iter()
        .find(|scheme| conninfo.starts_with(*scheme))
        .map(|scheme| scheme.len())
    else {
        return with_database_key_value(conninfo, database);
    };
    // postgresql://[userspec@][hostspec][/dbname][?paramspec]
    let rest = &conninfo[scheme_end..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, after_authority) = rest.split_at(authority_end);
    let parameters = match after_authority.find(['?', '#']) {
        Some(start) => &after_authority[start..],
        None => "",
    };
    format!(
        "{}{authority}/{}{parameters}",
        &conninfo[..scheme_end],
        percent_encode(database)
    )
}

fn with_database_key_value(conninfo: &str, database: &str) -> String {
    let mut kept: Vec<&str> = conninfo
        .split_whitespace()
        .filter(|pair| !pair.starts_with("dbname="))
        .collect();
    let quoted = format!(
        "dbname='{}'",
        database.replace('\\', "\\\\").replace('\'', "\\'")
    );
    kept.push(&quoted);
    kept.join(" ")
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
pub(crate) fn percent_encode(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

/// Returns `conninfo` with any password replaced by `***`, for messages.
pub(crate) fn redact(conninfo: &str) -> String {
    let conninfo = conninfo.trim();
    if let Some(scheme_end) = conninfo.find("://") {
        let rest = &conninfo[scheme_end + 3..];
        let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let authority = &rest[..authority_end];
        let mut redacted = conninfo.to_owned();
        if let Some(at) = authority.rfind('@')
            && let Some(colon) = authority[..at].find(':')
        {
            let start = scheme_end + 3 + colon + 1;
            redacted.replace_range(start..scheme_end + 3 + at, "***");
        }
        // A password can also come as a query parameter.
        if let Some(query) = redacted.find('?') {
            let (head, parameters) = redacted.split_at(query + 1);
            let parameters: Vec<String> = parameters
                .split('&')
                .map(|pair| {
                    if pair.starts_with("password=") {
                        "password=***".to_owned()
                    } else {
                        pair.to_owned()
                    }
                })
                .collect();
            redacted = format!("{head}{}", parameters.join("&"));
        }
        return redacted;
    }
    conninfo
        .split_whitespace()
        .map(|pair| {
            if pair.starts_with("password=") {
                "password=***"
            } else {
                pair
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}
