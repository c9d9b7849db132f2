use sync_runtime::Mapping;

// The snapshot says `bio` may be NULL.
#[derive(Mapping)]
#[sync(from = "public.accounts", key = "id", snapshot = "schema")]
struct Accounts {
    #[sync(to = "account", primary_key)]
    id: i64,
    #[sync(to = "account")]
    bio: String,
}

fn main() {}
