//! Identifiers: the SQL rules (quoting, what PostgreSQL and SQLite can take) are
//! `sync_sql::ident`'s, re-exported here; the Rust field and mapping names a column
//! or struct becomes are this module's own.

pub use sync_sql::ident::{
    MAX_IDENTIFIER_BYTES, STATE_TABLE, identifier_problem, quote, quote_qualified, split_qualified,
    target_table_problem,
};

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
