use sync_runtime::Mapping;

#[derive(Mapping)]
#[sync(from = "users", key = "id")]
struct Users {
    #[sync(too = "user_main", primary_key)]
    id: i64,
}

fn main() {}
