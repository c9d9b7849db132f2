use sync_runtime::Mapping;

#[derive(Mapping)]
#[sync(from = "users", key = "id", cursor = "version")]
struct Users {
    #[sync(to = "user_main", primary_key)]
    id: i64,
    version: Option<i64>,
}

fn main() {}
