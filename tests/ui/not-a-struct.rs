use sync_runtime::Mapping;

#[derive(Mapping)]
#[sync(from = "users", key = "id")]
enum Users {
    One,
}

fn main() {}
