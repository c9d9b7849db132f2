//! SQL identifiers: what PostgreSQL and SQLite can take, and how data-sync quotes
//! them. Every identifier in SQL that data-sync writes goes through [`quote()`];
//! names are exact and never case-folded.

/// PostgreSQL silently truncates identifiers longer than this many bytes
/// (`NAMEDATALEN - 1`), which would make a mapping read a different column.
pub const MAX_IDENTIFIER_BYTES: usize = 63;

/// The table data-sync keeps its own state in, inside every target file.
pub const STATE_TABLE: &str = "_data_sync_state";

/// Quotes `name` for PostgreSQL and SQLite alike: `"` around it, inner `"` doubled.
pub fn quote(name: &str) -> String {
    let mut quoted = String::with_capacity(name.len() + 2);
    quoted.push('"');
    for character in name.chars() {
        if character == '"' {
            quoted.push('"');
        }
        quoted.push(character);
    }
    quoted.push('"');
    quoted
}

/// Quotes a possibly schema-qualified name: `public.users` is `"public"."users"`.
pub fn quote_qualified(schema: Option<&str>, name: &str) -> String {
    match schema {
        Some(schema) => format!("{}.{}", quote(schema), quote(name)),
        None => quote(name),
    }
}

/// Why `name` cannot be an identifier in PostgreSQL or SQLite even when quoted, or
/// `None` when it can.
pub fn identifier_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("an empty name is not an identifier".to_owned());
    }
    if name.contains('\0') {
        return Some(format!(
            "`{}` contains a NUL character",
            name.escape_debug()
        ));
    }
    if name.len() > MAX_IDENTIFIER_BYTES {
        return Some(format!(
            "`{name}` is {} bytes long; PostgreSQL truncates identifiers to {MAX_IDENTIFIER_BYTES} bytes",
            name.len()
        ));
    }
    None
}

/// Why `name` cannot be a target table, or `None` when it can.
pub fn target_table_problem(name: &str) -> Option<String> {
    if let Some(problem) = identifier_problem(name) {
        return Some(problem);
    }
    if name.len() >= 7 && name[..7].eq_ignore_ascii_case("sqlite_") {
        return Some(format!(
            "`{name}`: SQLite reserves table names that begin with `sqlite_`"
        ));
    }
    if name == STATE_TABLE {
        return Some(format!("`{name}` is data-sync's own state table"));
    }
    None
}

/// Splits `schema.table` at its first dot; no dot means the search path.
pub fn split_qualified(name: &str) -> (Option<&str>, &str) {
    match name.split_once('.') {
        Some((schema, table)) => (Some(schema), table),
        None => (None, name),
    }
}

#[cfg(test)]
mod tests;
