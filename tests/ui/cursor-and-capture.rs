use sync_runtime::Mapping;

#[derive(Mapping)]
#[sync(from = "users", key = "id", cursor = "updated_at", capture = "log")]
struct Users {
    #[sync(to = "user_main", primary_key)]
    id: i64,
    updated_at: i64,
}

fn main() {}
