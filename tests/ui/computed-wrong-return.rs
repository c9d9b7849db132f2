use sync_runtime::Mapping;

pub fn length(row: &Users) -> usize {
    row.email.len()
}

#[derive(Mapping)]
#[sync(from = "public.users", key = "id")]
#[sync(computed(to = "user_main", column = "length", with = "length", type = "text"))]
pub struct Users {
    #[sync(to = "user_main", primary_key)]
    id: i64,
    #[sync(to = "user_main")]
    email: String,
}

fn main() {}
