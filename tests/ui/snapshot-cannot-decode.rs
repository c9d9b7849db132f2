use sync_runtime::Mapping;

// The snapshot says `avatar` is `bytea`, which a `String` cannot read.
#[derive(Mapping)]
#[sync(from = "public.accounts", key = "id", snapshot = "schema")]
struct Accounts {
    #[sync(to = "account", primary_key)]
    id: i64,
    #[sync(to = "account")]
    avatar: Option<String>,
}

fn main() {}
