use sync_runtime::Mapping;

#[derive(Mapping)]
#[sync(from = "users", key = "id")]
struct Users {
    #[sync(to = "user_main", primary_key)]
    id: i64,
    #[sync(from = "id", to = "user_main", column = "copy")]
    id_again: i64,
}

fn main() {}
