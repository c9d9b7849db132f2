use sync_runtime::Mapping;

#[derive(Mapping)]
#[sync(from = "users", key = "id")]
struct Users {
    #[sync(to = "user_main", primary_key)]
    #[sync(to = "user_profile", primary_key)]
    id: i64,
    #[sync(to = "user_profile", references = "user_main.id")]
    manager_id: i64,
}

fn main() {}
