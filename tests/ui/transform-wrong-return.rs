use sync_runtime::Mapping;

pub fn length(value: &str) -> usize {
    value.len()
}

#[derive(Mapping)]
#[sync(from = "public.users", key = "id")]
struct Users {
    #[sync(to = "user_main", primary_key)]
    id: i64,
    #[sync(to = "user_main", with = "length")]
    email: String,
}

fn main() {}
