use sync_runtime::Mapping;

// The snapshot says `id` is `bigint`.
#[derive(Mapping)]
#[sync(from = "public.accounts", key = "id", snapshot = "schema")]
struct Accounts {
    #[sync(type = "integer", to = "account", primary_key)]
    id: i32,
}

fn main() {}
