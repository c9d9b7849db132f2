use sync_runtime::Mapping;

struct Mood;

#[derive(Mapping)]
#[sync(from = "users", key = "id")]
struct Users {
    #[sync(to = "user_main", primary_key)]
    id: i64,
    #[sync(to = "user_main")]
    mood: Mood,
}

fn main() {}
