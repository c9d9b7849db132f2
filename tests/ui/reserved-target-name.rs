use sync_runtime::Mapping;

#[derive(Mapping)]
#[sync(from = "users", key = "id")]
struct Users {
    #[sync(to = "sqlite_users", primary_key)]
    id: i64,
}

fn main() {}
