use sync_runtime::Mapping;
use sync_runtime::value::PgText;

#[derive(Mapping)]
#[sync(from = "events", key = "id", capture = "log")]
struct Events {
    #[sync(to = "event", primary_key)]
    id: i64,
    #[sync(to = "event", type = "interval")]
    span: Option<PgText>,
}

fn main() {}
