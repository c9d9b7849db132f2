use sync_runtime::Mapping;

#[derive(Mapping)]
#[sync(from = "users", key = "id", publication = "app_changes")]
struct Users {
    #[sync(to = "user_main", primary_key)]
    id: i64,
}

fn main() {}
