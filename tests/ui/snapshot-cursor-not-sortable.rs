use sync_runtime::Mapping;

// The snapshot says `tags` is `integer[]`, which has no useful order.
#[derive(Mapping)]
#[sync(from = "public.accounts", key = "id", cursor = "tags", snapshot = "schema")]
struct Accounts {
    #[sync(to = "account", primary_key)]
    id: i64,
    tags: sync_runtime::value::Array,
}

fn main() {}
