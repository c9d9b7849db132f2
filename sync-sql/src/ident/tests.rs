use super::*;

#[test]
fn quote_doubles_inner_quotes() {
    assert_eq!(quote("id"), "\"id\"");
    assert_eq!(quote("User Name"), "\"User Name\"");
    assert_eq!(quote("a\"b"), "\"a\"\"b\"");
    assert_eq!(quote(""), "\"\"");
    assert_eq!(
        quote_qualified(Some("public"), "users"),
        "\"public\".\"users\""
    );
    assert_eq!(quote_qualified(None, "Odd Source"), "\"Odd Source\"");
}

#[test]
fn identifier_problems() {
    assert_eq!(identifier_problem("select"), None);
    assert_eq!(identifier_problem("User Name"), None);
    assert_eq!(identifier_problem(&"x".repeat(63)), None);
    assert!(identifier_problem("").is_some());
    assert!(identifier_problem("a\0b").unwrap().contains("NUL"));
    assert!(
        identifier_problem(&"x".repeat(64))
            .unwrap()
            .contains("64 bytes")
    );
    // 32 two-byte characters are 64 bytes.
    assert!(identifier_problem(&"é".repeat(32)).is_some());
    assert!(target_table_problem("sqlite_stat1").is_some());
    assert!(target_table_problem("SQLITE_x").is_some());
    assert!(target_table_problem("_data_sync_state").is_some());
    assert_eq!(target_table_problem("user_main"), None);
}

#[test]
fn split_at_first_dot() {
    assert_eq!(split_qualified("public.users"), (Some("public"), "users"));
    assert_eq!(split_qualified("users"), (None, "users"));
    assert_eq!(split_qualified("a.b.c"), (Some("a"), "b.c"));
}
