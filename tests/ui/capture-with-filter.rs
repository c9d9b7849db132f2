use sync_runtime::Mapping;

#[derive(Mapping)]
#[sync(from = "users", key = "id", capture = "log", filter = "id > 0")]
struct Users {
    #[sync(to = "user_main", primary_key)]
    id: i64,
}

fn main() {}
