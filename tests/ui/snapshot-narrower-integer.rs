use sync_runtime::Mapping;

// The snapshot says `id` is `bigint`; an `i32` field holds only some of its values.
#[derive(Mapping)]
#[sync(from = "public.accounts", key = "id", snapshot = "schema")]
struct Accounts {
    #[sync(to = "account", primary_key)]
    id: i32,
}

fn main() {}
