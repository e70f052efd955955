//! Transport security of PostgreSQL connections: which TLS a database URL gets.
//!
//! A connection to another machine carries patient data over a network, so it is encrypted to a
//! server whose certificate chains to a trusted CA **and** names the host the URL names (libpq's
//! `sslmode=verify-full`). The policy, applied to every PostgreSQL URL the library opens:
//!
//! | host in the URL | `sslmode` in the URL (or `PGSSLMODE`) | what the library does |
//! |---|---|---|
//! | a Unix socket, `localhost`, a loopback address (`127.0.0.0/8`, `::1`) | any | keeps it (libpq's default `prefer`): the bytes never leave the machine |
//! | any other | none, or `prefer` | raises it to `verify-full` |
//! | any other | `verify-full` | keeps it |
//! | any other | `disable`, `allow`, `require`, `verify-ca` | refuses to connect: [`Error::Transport`] |
//!
//! So there is no silent fall back to plaintext: a server that does not offer TLS, a certificate from
//! another CA and a certificate for another host name all fail the connection with
//! [`Error::Transport`]. `require` and `verify-ca` are refused because neither checks that the
//! certificate belongs to the host: anyone holding a certificate from the same CA could stand in the
//! middle.
//!
//! The CA is named by `sslrootcert=/path/ca.pem` in the URL or by the `PGSSLROOTCERT` variable, and
//! is trusted in addition to the system's trust store (the `ca-certificates` bundle). Loopback is
//! decided on the URL's literal host, never by resolving a name: a name that resolves to 127.0.0.1
//! today may not tomorrow.
//!
//! ```
//! use austa_sql::transport::postgres_options;
//! use sqlx::postgres::PgSslMode;
//!
//! let remote = postgres_options("postgres://app@db.hospital.example/austa").unwrap();
//! assert!(matches!(remote.get_ssl_mode(), PgSslMode::VerifyFull));
//!
//! let local = postgres_options("postgres://app@127.0.0.1/austa").unwrap();
//! assert!(matches!(local.get_ssl_mode(), PgSslMode::Prefer));
//!
//! let plaintext = postgres_options("postgres://app@db.hospital.example/austa?sslmode=disable");
//! assert_eq!(plaintext.unwrap_err().code(), "transport");
//! ```

use std::net::IpAddr;
use std::str::FromStr;

use austa_error::{Error, Result};
use sqlx::postgres::{PgConnectOptions, PgSslMode};

/// Parses a PostgreSQL URL and applies the transport policy of this module to it.
pub fn postgres_options(url: &str) -> Result<PgConnectOptions> {
    let options = PgConnectOptions::from_str(url).map_err(|e| Error::Config(format!("invalid PostgreSQL URL: {e}")))?;
    secure(options)
}

/// Applies the transport policy to options already built: raises the default TLS mode to
/// `verify-full` for a host off this machine, and refuses a weaker mode the caller asked for.
pub fn secure(options: PgConnectOptions) -> Result<PgConnectOptions> {
    if stays_on_this_machine(&options) {
        return Ok(options);
    }
    match options.get_ssl_mode() {
        PgSslMode::VerifyFull => Ok(options),
        PgSslMode::Prefer => Ok(options.ssl_mode(PgSslMode::VerifyFull)),
        weaker => Err(Error::Transport(format!(
            "sslmode={} to {}, a host off this machine, could expose patient data on the network: use \
             sslmode=verify-full (the default) and name the server's CA with sslrootcert= or PGSSLROOTCERT",
            mode_name(weaker),
            options.get_host()
        ))),
    }
}

/// Whether the connection never leaves this machine: a Unix socket, `localhost` or a loopback
/// address, decided on the literal host.
pub fn stays_on_this_machine(options: &PgConnectOptions) -> bool {
    // A host that is a directory (`PGHOST=/var/run/postgresql`) is a Unix socket too: sqlx connects
    // to the socket in it.
    options.get_socket().is_some() || options.get_host().starts_with('/') || is_loopback_host(options.get_host())
}

fn is_loopback_host(host: &str) -> bool {
    let bare = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    bare.eq_ignore_ascii_case("localhost") || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// libpq's name of a mode, as a URL spells it.
fn mode_name(mode: PgSslMode) -> &'static str {
    match mode {
        PgSslMode::Disable => "disable",
        PgSslMode::Allow => "allow",
        PgSslMode::Prefer => "prefer",
        PgSslMode::Require => "require",
        PgSslMode::VerifyCa => "verify-ca",
        PgSslMode::VerifyFull => "verify-full",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(url: &str) -> Result<&'static str> {
        postgres_options(url).map(|o| mode_name(o.get_ssl_mode()))
    }

    #[test]
    fn a_remote_host_gets_verify_full_by_default() {
        assert_eq!(mode("postgres://app@db.hospital.example/austa").unwrap(), "verify-full");
        assert_eq!(mode("postgres://app@10.0.0.5:5432/austa").unwrap(), "verify-full");
        assert_eq!(mode("postgres://app@db.hospital.example/austa?sslmode=prefer").unwrap(), "verify-full");
        assert_eq!(mode("postgres://app@db.hospital.example/austa?sslmode=verify-full").unwrap(), "verify-full");
    }

    #[test]
    fn a_remote_host_refuses_every_weaker_mode_and_names_it() {
        for weaker in ["disable", "allow", "require", "verify-ca"] {
            let err = mode(&format!("postgres://app:s3cret@db.hospital.example/austa?sslmode={weaker}")).unwrap_err();
            assert_eq!(err.code(), "transport", "{weaker}");
            let text = err.to_string();
            assert!(text.contains(&format!("sslmode={weaker}")) && text.contains("db.hospital.example"), "{text}");
            assert!(!text.contains("s3cret"), "the password stays out of the error");
        }
    }

    #[test]
    fn this_machine_keeps_the_mode_the_url_asks_for() {
        assert_eq!(mode("postgres://app@127.0.0.1/austa").unwrap(), "prefer");
        assert_eq!(mode("postgres://app@127.0.0.2/austa?sslmode=disable").unwrap(), "disable");
        assert_eq!(mode("postgres://app@localhost/austa?sslmode=require").unwrap(), "require");
        assert_eq!(mode("postgres://app@[::1]:5432/austa").unwrap(), "prefer");
        assert_eq!(mode("postgres://app@%2Fvar%2Frun%2Fpostgresql/austa").unwrap(), "prefer");
        assert_eq!(mode("postgres:///austa?host=/var/run/postgresql&sslmode=disable").unwrap(), "disable");
    }

    #[test]
    fn a_socket_directory_given_as_the_host_stays_on_this_machine() {
        let options = PgConnectOptions::new_without_pgpass().host("/var/run/postgresql").ssl_mode(PgSslMode::Disable);
        assert!(stays_on_this_machine(&options));
        assert!(matches!(secure(options).unwrap().get_ssl_mode(), PgSslMode::Disable));
    }

    #[test]
    fn loopback_is_decided_on_the_literal_host() {
        assert!(is_loopback_host("LOCALHOST"));
        assert!(is_loopback_host("127.8.9.10"));
        assert!(!is_loopback_host("localhost.hospital.example"));
        assert!(!is_loopback_host("127.0.0.1.nip.io"));
        assert!(!is_loopback_host("0.0.0.0"));
    }
}
