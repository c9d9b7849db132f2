use sync_runtime::Mapping;

// The schema snapshot `schema/public.accounts.json` has no column `emial`.
#[derive(Mapping)]
#[sync(from = "public.accounts", key = "id", snapshot = "schema")]
struct Accounts {
    #[sync(to = "account", primary_key)]
    id: i64,
    #[sync(to = "account")]
    emial: String,
}

fn main() {}
