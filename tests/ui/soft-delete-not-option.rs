use sync_runtime::Mapping;

#[derive(Mapping)]
#[sync(from = "users", key = "id", soft_delete = "deleted")]
struct Users {
    #[sync(to = "user_main", primary_key)]
    id: i64,
    deleted: bool,
}

fn main() {}
