//! Transport security: the TLS a PostgreSQL URL gets (`austa_sql::transport`).
//!
//! Three servers: a plaintext-only one (a listener that answers PostgreSQL's TLS request with "no", as
//! a server with `ssl = off` does), the test cluster switched to TLS with a CA and a certificate this
//! test makes, and the same cluster checked with another CA. A host off this machine is reached by the
//! machine's own host name, which the policy does not treat as loopback (it decides on the literal
//! host, never by resolving it).

use std::net::ToSocketAddrs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use austa_core::Database;
use austa_sql::Pool;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
use sqlx::postgres::PgConnectOptions;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support;

/// The machine's host name: not loopback to the policy, though it may resolve to a loopback address.
fn host_name() -> String {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").expect("the kernel's host name");
    let name = name.trim().to_string();
    assert!(
        (name.as_str(), 5432).to_socket_addrs().is_ok_and(|mut a| a.next().is_some()),
        "the host name {name} must resolve (it is in /etc/hosts on the test machines)"
    );
    name
}

/// What a plaintext-only server saw of one client.
#[derive(Debug, PartialEq)]
enum Seen {
    /// The client asked for TLS, heard "no" and hung up: nothing was sent in plaintext.
    TlsRequestThenHangUp,
    /// The client went on in plaintext after the "no" (its startup message names the user).
    PlaintextStartup,
    /// The first message was not PostgreSQL's TLS request.
    NoTlsRequest,
}

/// A server that speaks only plaintext: it answers the TLS request with `N`, like PostgreSQL with
/// `ssl = off`, and reports whether the client then carried on without TLS.
async fn plaintext_only_server() -> (u16, tokio::task::JoinHandle<Seen>) {
    let listener = tokio::net::TcpListener::bind("0.0.0.0:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut request = [0u8; 8];
        socket.read_exact(&mut request).await.unwrap();
        // Length 8, then the SSLRequest code 80877103.
        if request != [0, 0, 0, 8, 4, 210, 22, 47] {
            return Seen::NoTlsRequest;
        }
        socket.write_all(b"N").await.unwrap();
        let mut next = [0u8; 1];
        match tokio::time::timeout(Duration::from_secs(5), socket.read(&mut next)).await {
            Ok(Ok(0)) | Ok(Err(_)) => Seen::TlsRequestThenHangUp,
            _ => Seen::PlaintextStartup,
        }
    });
    (port, seen)
}

#[tokio::test]
async fn a_host_off_this_machine_gets_verified_tls_and_a_plaintext_only_server_is_refused() {
    let (port, seen) = plaintext_only_server().await;
    let url = format!("postgres://austa_app@{}:{port}/austa", host_name());
    let err = Database::connect_with(&url, support::test_keys()).await.unwrap_err();
    assert_eq!(err.code(), "transport", "{err}");
    assert!(err.to_string().contains("does not support TLS"), "{err}");
    assert_eq!(seen.await.unwrap(), Seen::TlsRequestThenHangUp);
}

#[tokio::test]
async fn a_url_that_asks_for_less_than_verified_tls_to_another_host_is_refused_before_connecting() {
    // Nothing listens on this port: the refusal comes from the policy, before any connection.
    for mode in ["disable", "require", "verify-ca"] {
        let url = format!("postgres://austa_app:pw@{}:9/austa?sslmode={mode}", host_name());
        let err = Database::connect_with(&url, support::test_keys()).await.unwrap_err();
        assert_eq!(err.code(), "transport", "{mode}: {err}");
        assert!(err.to_string().contains(&format!("sslmode={mode}")), "{err}");
    }
}

#[tokio::test]
async fn verify_full_on_loopback_refuses_a_plaintext_only_server_too() {
    let (port, seen) = plaintext_only_server().await;
    let url = format!("postgres://austa_app@127.0.0.1:{port}/austa?sslmode=verify-full");
    let err = Database::connect_with(&url, support::test_keys()).await.unwrap_err();
    assert_eq!(err.code(), "transport", "{err}");
    assert_eq!(seen.await.unwrap(), Seen::TlsRequestThenHangUp);
}

/// A CA made for one test run, and the certificates it issues.
struct TestCa {
    key: KeyPair,
    cert: rcgen::Certificate,
}

impl TestCa {
    fn new(name: &str) -> TestCa {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = params.self_signed(&key).unwrap();
        TestCa { key, cert }
    }

    /// A server certificate for `names` and its private key, as PEM.
    fn issue(&self, names: &[&str]) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
        params.distinguished_name.push(DnType::CommonName, names[0]);
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    fn write(&self, dir: &Path, file: &str) -> PathBuf {
        let path = dir.join(file);
        std::fs::write(&path, self.cert.pem()).unwrap();
        path
    }
}

/// Writes the server's key where the server may read it: PostgreSQL accepts a key file owned by its
/// own user with mode 0600, or owned by root, readable by its group, with mode 0640.
fn write_server_key(path: &Path, pem: &str, server_data_dir: &Path) {
    std::fs::write(path, pem).unwrap();
    let server = std::fs::metadata(server_data_dir).expect("the test server's data directory is on this machine");
    let ours = std::fs::metadata(path).unwrap();
    if ours.uid() == 0 {
        std::os::unix::fs::chown(path, None, Some(server.gid())).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o640)).unwrap();
    } else {
        assert_eq!(ours.uid(), server.uid(), "run the TLS test as root or as the test server's user");
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
}

/// `url` with another host and a query string.
fn with_host(url: &str, host: &str, query: &str) -> String {
    let options = PgConnectOptions::from_str(url).unwrap();
    let database = options.get_database().unwrap_or("postgres");
    format!("postgres://{}@{host}:{}/{database}?{query}", options.get_username(), options.get_port())
}

/// Whether the one connection of a pool opened on `url` runs over TLS, or the error code of opening it.
async fn tls_in_use(url: &str) -> Result<bool, String> {
    let pool = Pool::open(url).await.map_err(|e| format!("{}: {e}", e.code()))?;
    let Pool::Postgres(pg) = &pool else { panic!("a PostgreSQL URL") };
    let ssl: bool = sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .fetch_one(pg)
        .await
        .map_err(|e| e.to_string())?;
    pool.close().await;
    Ok(ssl)
}

async fn set_ssl(admin: &sqlx::PgPool, settings: &[(&str, Option<&Path>)]) {
    for (name, value) in settings {
        let sql = match value {
            Some(path) => format!("ALTER SYSTEM SET {name} = '{}'", path.display().to_string().replace('\'', "''")),
            None => format!("ALTER SYSTEM RESET {name}"),
        };
        sqlx::query(&sql).execute(admin).await.unwrap();
    }
    sqlx::query("SELECT pg_reload_conf()").execute(admin).await.unwrap();
}

#[tokio::test]
async fn the_test_cluster_with_a_self_signed_ca_accepts_that_ca_only_and_checks_the_host_name_postgres() {
    let Some(admin_url) = support::postgres_url() else { return };
    let admin = sqlx::PgPool::connect(&admin_url).await.unwrap();
    let data_dir: String =
        sqlx::query_scalar("SELECT current_setting('data_directory')").fetch_one(&admin).await.unwrap();
    let host = host_name();

    // The CA, the server's certificate for localhost and this machine's name, and another CA.
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let ca = TestCa::new("Austa test CA");
    let (cert, key) = ca.issue(&["localhost", &host]);
    let (cert_path, key_path) = (dir.path().join("server.crt"), dir.path().join("server.key"));
    std::fs::write(&cert_path, cert).unwrap();
    write_server_key(&key_path, &key, Path::new(&data_dir));
    let right = ca.write(dir.path(), "ca.pem");
    let wrong = TestCa::new("Another CA").write(dir.path(), "other-ca.pem");

    // TLS on, for new connections; plaintext ones are still accepted (other tests keep running).
    set_ssl(
        &admin,
        &[("ssl_cert_file", Some(&cert_path)), ("ssl_key_file", Some(&key_path)), ("ssl", Some(Path::new("on")))],
    )
    .await;
    let verified = |host: &str, ca: &Path| {
        with_host(&admin_url, host, &format!("sslmode=verify-full&sslrootcert={}", ca.display()))
    };
    // The reload reaches the postmaster asynchronously: wait for the first verified connection.
    let mut right_ca = Err(String::new());
    for _ in 0..50 {
        right_ca = tls_in_use(&verified("localhost", &right)).await;
        if right_ca.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let wrong_ca = tls_in_use(&verified("localhost", &wrong)).await;
    // The certificate names localhost and the host name, not 127.0.0.1.
    let wrong_name = tls_in_use(&verified("127.0.0.1", &right)).await;
    // No sslmode: a host off this machine gets verify-full, the CA named by sslrootcert.
    let by_default = tls_in_use(&with_host(&admin_url, &host, &format!("sslrootcert={}", right.display()))).await;
    let by_default_other_ca =
        tls_in_use(&with_host(&admin_url, &host, &format!("sslrootcert={}", wrong.display()))).await;

    set_ssl(&admin, &[("ssl", None), ("ssl_cert_file", None), ("ssl_key_file", None)]).await;
    admin.close().await;

    assert_eq!(right_ca, Ok(true), "the right CA connects, over TLS");
    assert_eq!(by_default, Ok(true), "a host off this machine gets verified TLS without asking");
    for (what, result, cause) in [
        ("another CA", wrong_ca, "UnknownIssuer"),
        ("a certificate for another name", wrong_name, "not valid for name \"127.0.0.1\""),
        ("default mode, another CA", by_default_other_ca, "UnknownIssuer"),
    ] {
        let err = result.expect_err(what);
        assert!(err.starts_with("transport: ") && err.contains(cause), "{what}: {err}");
    }
}
