use sync_runtime::Mapping;

#[derive(Mapping)]
#[sync(from = "users", key = "id")]
struct Users {
    #[sync(to = "user_main", primary_key)]
    #[sync(to = "user_profile", primary_key, references = "user_main.user_id")]
    id: i64,
}

fn main() {}
