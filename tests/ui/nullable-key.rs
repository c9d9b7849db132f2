use sync_runtime::Mapping;

#[derive(Mapping)]
#[sync(from = "users", key = "id")]
struct Users {
    #[sync(to = "user_main", primary_key)]
    id: Option<i64>,
}

fn main() {}
