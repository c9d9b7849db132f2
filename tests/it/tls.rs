//! TLS to PostgreSQL with libpq's `sslmode` meanings, against a throwaway cluster with
//! a certificate signed by a throwaway CA.

use std::sync::OnceLock;

use sync_runtime::{SourceConfig, SslMode};
use testkit::PgServer;

/// One TLS cluster for this module's tests.
fn server() -> &'static PgServer {
    static SERVER: OnceLock<PgServer> = OnceLock::new();
    SERVER.get_or_init(|| PgServer::start_with_tls().expect("TLS cluster starts"))
}

fn port() -> u16 {
    let url = server().url("postgres");
    let port = url.rsplit(':').next().unwrap().split('/').next().unwrap();
    port.parse().unwrap()
}

/// Whether the connection `text` opens is encrypted, as the server sees it.
fn uses_tls(text: &str) -> sync_runtime::Result<bool> {
    let config = SourceConfig::parse(text)?;
    let mut client = config.connect()?;
    let row = client
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .unwrap();
    Ok(row.get(0))
}

fn root() -> String {
    server().root_certificate().unwrap().display().to_string()
}

#[test]
fn disable_and_prefer_and_require() {
    let base = format!(
        "host=127.0.0.1 port={} user=postgres dbname=postgres",
        port()
    );
    assert!(!uses_tls(&format!("{base} sslmode=disable")).unwrap());
    assert!(uses_tls(&format!("{base} sslmode=prefer")).unwrap());
    assert!(uses_tls(&format!("{base} sslmode=require")).unwrap());
    // Without sslmode, libpq's default: prefer.
    assert!(uses_tls(&base).unwrap());
}

#[test]
fn verify_full_checks_the_certificate_and_the_host_name() {
    let url = format!(
        "postgresql://postgres@localhost:{}/postgres?sslmode=verify-full&sslrootcert={}",
        port(),
        root()
    );
    assert_eq!(
        SourceConfig::parse(&url).unwrap().ssl_mode(),
        SslMode::VerifyFull
    );
    assert!(uses_tls(&url).unwrap());
    let by_address = format!(
        "host=127.0.0.1 port={} user=postgres dbname=postgres sslmode=verify-full sslrootcert='{}'",
        port(),
        root()
    );
    assert!(uses_tls(&by_address).unwrap());
}

#[test]
fn verify_ca_with_the_wrong_root_is_refused() {
    // The system store does not know the throwaway CA.
    let text = format!(
        "host=localhost port={} user=postgres dbname=postgres sslmode=verify-ca sslrootcert=system",
        port()
    );
    let error = uses_tls(&text).unwrap_err().to_string();
    assert!(
        error.starts_with(&format!(
            "cannot connect to the source localhost:{}/postgres: ",
            port()
        )),
        "{error}"
    );
    assert!(error.contains("certificate verify failed"), "{error}");
}

#[test]
fn verify_without_a_root_certificate_says_how_to_give_one() {
    let target = crate::support::target_file();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_data-sync"))
        .args(["sync", "--mapping", "users"])
        .env(
            "DATA_SYNC_SOURCE",
            format!(
                "host=localhost port={} user=postgres sslmode=verify-full",
                port()
            ),
        )
        .env("DATA_SYNC_TARGET", &target.path)
        .env("HOME", "/nonexistent")
        .env_remove("PGSSLROOTCERT")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "error: source configuration: sslmode verify-ca and verify-full need a root certificate: \
         set sslrootcert (a PEM file, or `system`) or PGSSLROOTCERT, or put it in ~/.postgresql/root.crt\n"
    );
}

#[test]
fn a_full_sync_over_verified_tls() {
    let mut client = postgres::Client::connect(&server().url("postgres"), postgres::NoTls).unwrap();
    client
        .batch_execute(
            "CREATE TABLE public.users (id bigint PRIMARY KEY, username text NOT NULL, email text NOT NULL, bio text, avatar_url text, updated_at timestamptz NOT NULL DEFAULT now(), deleted_at timestamptz);
             INSERT INTO public.users SELECT g, 'u' || g, g || '@x', NULL, NULL FROM generate_series(1, 100) g;",
        )
        .unwrap();
    let source = SourceConfig::parse(&format!(
        "postgresql://postgres@localhost:{}/postgres?sslmode=verify-full&sslrootcert={}",
        port(),
        root()
    ))
    .unwrap();
    let target = crate::support::target_file();
    let summary = sync_runtime::sync::<mappings::Users>(
        &source,
        &target.path,
        &sync_runtime::SyncOptions::default(),
    )
    .unwrap();
    assert_eq!(summary.rows_read, 100);
}

/// SCRAM with `channel_binding=require` binds the login to the TLS session
/// (`tls-server-end-point`), over `sslmode=require` (which checks no certificate) and
/// `verify-full` alike; without TLS there is nothing to bind to, and the login is
/// refused rather than sent unbound.
#[test]
fn scram_with_channel_binding_over_tls() {
    server()
        .require_password("bound", "s3cr\u{e9}t pass")
        .unwrap();
    let base = format!(
        "host=127.0.0.1 port={} user=bound password='s3cr\u{e9}t pass' dbname=postgres channel_binding=require",
        port()
    );
    assert!(uses_tls(&format!("{base} sslmode=require")).unwrap());
    assert!(uses_tls(&format!("{base} sslmode=prefer")).unwrap());
    let verified = format!(
        "host=localhost port={} user=bound password='s3cr\u{e9}t pass' dbname=postgres channel_binding=require sslmode=verify-full sslrootcert='{}'",
        port(),
        root()
    );
    assert!(uses_tls(&verified).unwrap());
    let error = uses_tls(&format!("{base} sslmode=disable"))
        .unwrap_err()
        .to_string();
    assert!(error.contains("channel binding"), "{error}");
    assert!(!error.contains("s3cr"), "the password leaked: {error}");
}
