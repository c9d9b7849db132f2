//! SQL identifiers: what PostgreSQL and SQLite can take, and how generated SQL quotes
//! them. Every identifier in generated SQL goes through [`quote()`]; names are exact and
//! never case-folded.

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

/// Rust's strict and reserved keywords, which a field named after a column must
/// escape.
const RUST_KEYWORDS: &[&str] = &[
    "abstract", "as", "async", "await", "become", "box", "break", "const", "continue", "crate",
    "do", "dyn", "else", "enum", "extern", "false", "final", "fn", "for", "gen", "if", "impl",
    "in", "let", "loop", "macro", "match", "mod", "move", "mut", "override", "priv", "pub", "ref",
    "return", "self", "Self", "static", "struct", "super", "trait", "true", "try", "type",
    "typeof", "unsafe", "unsized", "use", "virtual", "where", "while", "yield",
];

/// A valid Rust field name for source column `column`: `User Name` is `user_name`,
/// `type` is `r#type`, `1st` is `_1st`.
pub fn field_ident_for(column: &str) -> String {
    let mut ident = String::with_capacity(column.len() + 2);
    let mut previous: Option<char> = None;
    for character in column.chars() {
        if character.is_ascii_alphanumeric() {
            // `avatarUrl` is `avatar_url`.
            if character.is_ascii_uppercase() && previous.is_some_and(|c| c.is_ascii_lowercase()) {
                ident.push('_');
            }
            ident.push(character.to_ascii_lowercase());
        } else if !ident.is_empty() && !ident.ends_with('_') {
            ident.push('_');
        }
        previous = Some(character);
    }
    while ident.ends_with('_') {
        ident.pop();
    }
    if ident.is_empty() || ident.starts_with(|c: char| c.is_ascii_digit()) {
        ident.insert(0, '_');
    }
    if RUST_KEYWORDS.contains(&ident.as_str()) {
        if matches!(ident.as_str(), "self" | "Self" | "super" | "crate") {
            ident.push('_');
        } else {
            ident.insert_str(0, "r#");
        }
    }
    ident
}

/// The name a field ident stands for, without `r#`.
pub fn unraw(ident: &str) -> &str {
    ident.strip_prefix("r#").unwrap_or(ident)
}

/// `Users` and `UserProfile` as mapping names: `users`, `user_profile`.
pub fn snake_case(ident: &str) -> String {
    let ident = unraw(ident);
    let mut snake = String::with_capacity(ident.len() + 4);
    for (index, character) in ident.char_indices() {
        if character.is_uppercase() {
            if index > 0 && !snake.ends_with('_') {
                snake.push('_');
            }
            snake.extend(character.to_lowercase());
        } else {
            snake.push(character);
        }
    }
    snake
}

#[cfg(test)]
mod tests;
