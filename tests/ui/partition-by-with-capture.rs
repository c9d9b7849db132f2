use sync_runtime::Mapping;

#[derive(Mapping)]
#[sync(from = "orders", key = "id", capture = "log", partition_by = "tenant_id")]
struct Orders {
    #[sync(to = "orders", primary_key)]
    id: i64,
    #[sync(to = "orders")]
    tenant_id: i64,
}

fn main() {}
