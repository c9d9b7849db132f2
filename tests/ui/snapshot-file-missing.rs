use sync_runtime::Mapping;

// `snapshot` names a directory with no snapshot of `public.accounts`.
#[derive(Mapping)]
#[sync(from = "public.accounts", key = "id", snapshot = "no-such-dir")]
struct Accounts {
    #[sync(to = "account", primary_key)]
    id: i64,
}

fn main() {}
