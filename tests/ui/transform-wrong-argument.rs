use sync_runtime::Mapping;

pub fn double(value: &i64) -> i64 {
    value * 2
}

#[derive(Mapping)]
#[sync(from = "public.users", key = "id")]
struct Users {
    #[sync(to = "user_main", primary_key)]
    id: i64,
    #[sync(to = "user_main", with = "double")]
    email: String,
}

fn main() {}
