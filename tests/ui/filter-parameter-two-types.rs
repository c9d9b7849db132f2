use sync_runtime::Mapping;

#[derive(Mapping)]
#[sync(from = "public.orders", key = "id", filter = "tenant_id = $tenant OR status = $tenant")]
struct Orders {
    #[sync(to = "order_main", primary_key)]
    id: i64,
    tenant_id: i64,
    #[sync(to = "order_main")]
    status: String,
}

fn main() {}
