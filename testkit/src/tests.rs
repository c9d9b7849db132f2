use std::net::{Ipv4Addr, TcpStream};
use std::thread;
use std::time::Duration;

use super::*;

fn throwaway(server: &PgServer) -> &Cluster {
    match &server.kind {
        Kind::Throwaway(cluster) => cluster,
        Kind::External { .. } => unreachable!("PgServer::start gives a throwaway cluster"),
    }
}

fn answers(port: u16) -> bool {
    TcpStream::connect_timeout(&(Ipv4Addr::LOCALHOST, port).into(), Duration::from_secs(1)).is_ok()
}

#[test]
fn databases_are_isolated_and_survive_restart() {
    let server = PgServer::start().unwrap();
    let first = server.create_database();
    let second = server.create_database();
    assert_ne!(first.name(), second.name());

    let mut client = first.client();
    client
        .batch_execute("CREATE TABLE item (id bigint PRIMARY KEY, label text); INSERT INTO item VALUES (1, 'one')")
        .unwrap();
    let seen = second
        .client()
        .query_one("SELECT to_regclass('item') IS NOT NULL", &[])
        .unwrap()
        .get::<_, bool>(0);
    assert!(!seen, "a table of one test database is visible in another");

    let settings = client
        .query_one(
            "SELECT current_setting('wal_level'), current_setting('fsync'), \
             pg_encoding_to_char(encoding), datcollate, current_setting('max_replication_slots') \
             FROM pg_database WHERE datname = current_database()",
            &[],
        )
        .unwrap();
    assert_eq!(settings.get::<_, &str>(0), "logical");
    assert_eq!(settings.get::<_, &str>(1), "off");
    assert_eq!(settings.get::<_, &str>(2), "UTF8");
    assert_eq!(settings.get::<_, &str>(3), "C");
    // Change capture's tests each hold a slot, many at once.
    assert_eq!(settings.get::<_, &str>(4), "100");

    server.restart().unwrap();
    assert!(
        client.is_closed() || client.simple_query("SELECT 1").is_err(),
        "restart kept an old connection"
    );
    let label: String = first
        .client()
        .query_one("SELECT label FROM item WHERE id = 1", &[])
        .unwrap()
        .get(0);
    assert_eq!(label, "one");
    // Twice, to be sure the supervisor keeps following the server.
    server.restart().unwrap();
    first.client().simple_query("SELECT 1").unwrap();

    let name = second.name().to_owned();
    drop(second);
    let exists: bool = first
        .client()
        .query_one(
            "SELECT EXISTS (SELECT FROM pg_database WHERE datname = $1)",
            &[&name],
        )
        .unwrap()
        .get(0);
    assert!(!exists, "a dropped TestDb left its database behind");
}

#[test]
fn create_database_from_many_threads() {
    let server = PgServer::start().unwrap();
    let names: Vec<String> = thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                scope.spawn(|| {
                    let db = server.create_database();
                    db.client().simple_query("SELECT 1").unwrap();
                    db.name().to_owned()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| handle.join().unwrap())
            .collect()
    });
    let mut unique = names.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), names.len());
}

#[test]
fn drop_stops_the_server_and_removes_its_directory() {
    let server = PgServer::start().unwrap();
    let cluster = throwaway(&server);
    let (dir, port) = (cluster.dir().to_path_buf(), cluster.port());
    assert!(dir.join("data").join("PG_VERSION").is_file());
    assert!(answers(port));
    let db = server.create_database();
    let client = db.client();

    drop(server);
    assert!(!dir.exists(), "{} is still there", dir.display());
    assert!(!answers(port), "port {port} still answers");
    drop(client);
    drop(db);
}

#[test]
fn external_server_is_used_through_its_url() {
    let cluster = PgServer::start().unwrap();
    let server = PgServer {
        kind: Kind::External {
            url: format!("{}?application_name=testkit", cluster.url("postgres")),
        },
    };
    let db = server.create_database();
    assert_eq!(
        db.url(),
        format!("{}?application_name=testkit", cluster.url(db.name()))
    );
    let database: String = db
        .client()
        .query_one("SELECT current_database()", &[])
        .unwrap()
        .get(0);
    assert_eq!(database, db.name());
    assert!(matches!(server.restart(), Err(Error::NotThrowaway)));
}

#[test]
fn shared_is_one_server() {
    let servers: Vec<usize> = thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|_| scope.spawn(|| PgServer::shared() as *const PgServer as usize))
            .collect();
        handles
            .into_iter()
            .map(|handle| handle.join().unwrap())
            .collect()
    });
    assert!(servers.windows(2).all(|pair| pair[0] == pair[1]));
    PgServer::shared()
        .create_database()
        .client()
        .simple_query("SELECT 1")
        .unwrap();
}

#[test]
fn url_with_database() {
    let cases = [
        ("postgresql://u@h:5/old", "postgresql://u@h:5/new"),
        (
            "postgres://u:p@h/old?sslmode=disable",
            "postgres://u:p@h/new?sslmode=disable",
        ),
        ("postgresql://h", "postgresql://h/new"),
        ("postgresql://h?x=1", "postgresql://h/new?x=1"),
        ("postgresql://", "postgresql:///new"),
        ("postgresql://[::1]:5432/old", "postgresql://[::1]:5432/new"),
        ("host=h dbname=old user=u", "host=h user=u dbname='new'"),
    ];
    for (conninfo, expected) in cases {
        assert_eq!(url::with_database(conninfo, "new"), expected, "{conninfo}");
    }
    assert_eq!(
        url::with_database("postgresql://h/x", "a b/ü"),
        "postgresql://h/a%20b%2F%C3%BC"
    );
}

#[test]
fn url_redact() {
    assert_eq!(
        url::redact("postgresql://u:secret@h/db"),
        "postgresql://u:***@h/db"
    );
    assert_eq!(
        url::redact("postgresql://u@h/db?password=secret&x=1"),
        "postgresql://u@h/db?password=***&x=1"
    );
    assert_eq!(url::redact("host=h password=secret"), "host=h password=***");
    assert_eq!(url::redact("postgresql://h/db"), "postgresql://h/db");
}
