use sync_runtime::Mapping;

#[derive(Mapping)]
#[sync(from = "users", key = "id")]
struct Users {
    #[sync(to = "user_main", primary_key)]
    id: i64,
    #[sync(to = "user_main", nullable)]
    bio: String,
    #[sync(to = "user_mian")]
    email: String,
}

fn main() {}
