use sync_runtime::Mapping;

pub fn label(row: &Users) -> String {
    row.email.clone()
}

#[derive(Mapping)]
#[sync(from = "public.users", key = "id")]
#[sync(computed(to = "user_main", column = "label", with = "label"))]
pub struct Users {
    #[sync(to = "user_main", primary_key)]
    id: i64,
    #[sync(to = "user_main")]
    email: String,
}

fn main() {}
