use sync_runtime::Mapping;

// `username` is neither the primary key nor unique in the snapshot.
#[derive(Mapping)]
#[sync(from = "public.accounts", key = "username", snapshot = "schema")]
struct Accounts {
    #[sync(to = "account", primary_key)]
    username: String,
}

fn main() {}
