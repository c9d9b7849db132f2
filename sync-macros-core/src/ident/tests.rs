use super::*;

#[test]
fn field_idents_for_columns() {
    assert_eq!(field_ident_for("id"), "id");
    assert_eq!(field_ident_for("User Name"), "user_name");
    assert_eq!(field_ident_for("Id"), "id");
    assert_eq!(field_ident_for("select"), "select");
    assert_eq!(field_ident_for("type"), "r#type");
    assert_eq!(field_ident_for("self"), "self_");
    assert_eq!(field_ident_for("1st"), "_1st");
    assert_eq!(field_ident_for("avatarUrl"), "avatar_url");
    assert_eq!(field_ident_for("ÄÖ"), "_");
    assert_eq!(field_ident_for("a--b"), "a_b");
}

#[test]
fn snake_case_of_struct_names() {
    assert_eq!(snake_case("Users"), "users");
    assert_eq!(snake_case("UserProfile"), "user_profile");
    assert_eq!(snake_case("r#Odd"), "odd");
}
