use sync_runtime::Mapping;

#[derive(Mapping)]
#[sync(from = "orders", key = "id", partition_by = "amount")]
struct Orders {
    #[sync(to = "orders", primary_key)]
    id: i64,
    #[sync(to = "orders")]
    amount: f64,
}

fn main() {}
