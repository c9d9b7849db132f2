use sync_runtime::Mapping;

#[derive(Mapping)]
#[sync(key = "id")]
struct Users {
    #[sync(to = "user_main", primary_key)]
    id: i64,
}

fn main() {}
