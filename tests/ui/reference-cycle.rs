use sync_runtime::Mapping;

#[derive(Mapping)]
#[sync(from = "users", key = "id")]
struct Users {
    #[sync(to = "a", primary_key, references = "b.id")]
    #[sync(to = "b", primary_key, references = "a.id")]
    id: i64,
}

fn main() {}
