use sync_runtime::Mapping;

#[derive(Mapping)]
#[sync(from = "users", key = "id")]
struct Users {
    #[sync(to = "user_main", primary_key)]
    id: i64,
    #[sync(from = "a_column_name_that_is_much_longer_than_postgres_allows_for_names_x", to = "user_main", column = "long")]
    long: String,
}

fn main() {}
