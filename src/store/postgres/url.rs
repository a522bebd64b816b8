//! A PostgreSQL URL as libpq reads it, checked before sqlx sees it: the TLS
//! parameters (`sslmode`, `sslrootcert`, `sslcert`, `sslkey`) with libpq's
//! meaning, files that can be read, and no parameter improbe would ignore
//! (docs/many-regions.md "TLS to PostgreSQL").

use std::str::FromStr;

use sqlx::postgres::{PgConnectOptions, PgSslMode};

use crate::store::redact_url;

/// The parameters passed on to the connection as libpq defines them.
const PASSED_ON: [&str; 8] = [
    "host",
    "hostaddr",
    "port",
    "dbname",
    "user",
    "password",
    "application_name",
    "options",
];

/// Every parameter improbe reads, for the error that names one it does not.
const KNOWN: &str = "sslmode, sslrootcert, sslcert, sslkey, host, hostaddr, port, dbname, user, password, application_name, options";

/// `sslrootcert=system`: the CAs built into improbe (Mozilla's, as in
/// libpq 16, which takes the system's).
const SYSTEM_ROOTS: &str = "system";

/// libpq's `sslmode`, less `allow` (which never asks for TLS first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    fn for_sqlx(self) -> PgSslMode {
        match self {
            SslMode::Disable => PgSslMode::Disable,
            SslMode::Prefer => PgSslMode::Prefer,
            SslMode::Require => PgSslMode::Require,
            SslMode::VerifyCa => PgSslMode::VerifyCa,
            SslMode::VerifyFull => PgSslMode::VerifyFull,
        }
    }
}

/// What a URL's TLS parameters ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
struct TlsSettings {
    mode: SslMode,
    /// `sslrootcert`, unless `system`.
    root_cert: Option<String>,
    /// `sslcert` and `sslkey`, always together.
    client_cert: Option<(String, String)>,
}

/// sqlx's connect options for `url`, with its parameters checked: an
/// unknown or unsupported one, an unreadable file or a bad `sslmode` is an
/// error that names it (never a secret's value).
pub fn connect_options(url: &str) -> anyhow::Result<PgConnectOptions> {
    let mut passed = parse(url)?;
    let tls = tls_of(&passed, url)?;
    let kept: Vec<(String, String)> = passed
        .query_pairs()
        .filter(|(key, _)| PASSED_ON.contains(&key.as_ref()))
        .map(|(key, value)| (key.into_owned(), value.into_owned()))
        .collect();
    passed.set_query(None);
    if !kept.is_empty() {
        passed.query_pairs_mut().extend_pairs(kept);
    }
    let mut options = PgConnectOptions::from_str(passed.as_str())
        .map_err(|e| anyhow::anyhow!("invalid PostgreSQL URL `{}`: {e}", redact_url(url)))?
        .ssl_mode(tls.mode.for_sqlx())
        // A startup parameter PgBouncer refuses unless told to ignore it;
        // the server's default (1, PostgreSQL 12+) already prints floats
        // exactly, and improbe reads them in binary.
        .extra_float_digits(None);
    if let Some(ca) = &tls.root_cert {
        options = options.ssl_root_cert(ca);
    }
    if let Some((cert, key)) = &tls.client_cert {
        options = options.ssl_client_cert(cert).ssl_client_key(key);
    }
    Ok(options)
}

fn parse(url: &str) -> anyhow::Result<reqwest::Url> {
    reqwest::Url::parse(url)
        .map_err(|e| anyhow::anyhow!("invalid PostgreSQL URL `{}`: {e}", redact_url(url)))
}

/// The TLS `url` (parsed as `parsed`) asks for, with libpq's rules:
/// `prefer` when `sslmode` is absent, and `require` with a CA file acts as
/// `verify-ca`.
fn tls_of(parsed: &reqwest::Url, url: &str) -> anyhow::Result<TlsSettings> {
    let shown = redact_url(url);
    let mut mode = None;
    let (mut root_cert, mut cert, mut key) = (None, None, None);
    for (name, value) in parsed.query_pairs() {
        match name.as_ref() {
            "sslmode" => mode = Some(ssl_mode(&value, &shown)?),
            "sslrootcert" if value == SYSTEM_ROOTS => root_cert = Some(None),
            "sslrootcert" => root_cert = Some(Some(readable("sslrootcert", &value, &shown)?)),
            "sslcert" => cert = Some(readable("sslcert", &value, &shown)?),
            "sslkey" => key = Some(readable("sslkey", &value, &shown)?),
            "sslpassword" => anyhow::bail!(
                "PostgreSQL URL `{shown}`: sslpassword is not supported: give sslkey a key file that is \
                 not encrypted, readable only by improbe's user"
            ),
            known if PASSED_ON.contains(&known) => {}
            other => anyhow::bail!(
                "PostgreSQL URL `{shown}`: improbe does not understand the parameter `{other}` \
                 and will not ignore it; it understands {KNOWN}"
            ),
        }
    }
    let client_cert = match (cert, key) {
        (Some(cert), Some(key)) => Some((cert, key)),
        (None, None) => None,
        (Some(_), None) => {
            anyhow::bail!("PostgreSQL URL `{shown}`: sslcert needs sslkey, the certificate's key")
        }
        (None, Some(_)) => {
            anyhow::bail!("PostgreSQL URL `{shown}`: sslkey needs sslcert, the key's certificate")
        }
    };
    let mode = mode.unwrap_or(SslMode::Prefer);
    let root_cert = root_cert.flatten();
    let mode = if mode == SslMode::Require && root_cert.is_some() {
        SslMode::VerifyCa
    } else {
        mode
    };
    Ok(TlsSettings {
        mode,
        root_cert,
        client_cert,
    })
}

fn ssl_mode(value: &str, shown: &str) -> anyhow::Result<SslMode> {
    Ok(match value {
        "disable" => SslMode::Disable,
        "prefer" => SslMode::Prefer,
        "require" => SslMode::Require,
        "verify-ca" => SslMode::VerifyCa,
        "verify-full" => SslMode::VerifyFull,
        "allow" => anyhow::bail!(
            "PostgreSQL URL `{shown}`: sslmode=allow is not supported; use prefer, or require, \
             verify-ca or verify-full to insist on TLS"
        ),
        other => anyhow::bail!(
            "PostgreSQL URL `{shown}`: sslmode `{other}` is not one of disable, prefer, require, \
             verify-ca, verify-full"
        ),
    })
}

/// A file the URL names, checked readable now, so that a wrong path is
/// named as such rather than found at the first connection. Its content is
/// never shown.
fn readable(parameter: &str, path: &str, shown: &str) -> anyhow::Result<String> {
    std::fs::File::open(path).map_err(|e| {
        anyhow::anyhow!("PostgreSQL URL `{shown}`: {parameter} `{path}` cannot be read: {e}")
    })?;
    Ok(path.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tls_settings(url: &str) -> anyhow::Result<TlsSettings> {
        tls_of(&parse(url)?, url)
    }

    #[test]
    fn libpq_defaults_and_rules() {
        let plain = tls_settings("postgres://u@db/x").unwrap();
        assert_eq!(plain.mode, SslMode::Prefer);
        assert_eq!(plain.root_cert, None);
        let ca = tempfile::NamedTempFile::new().unwrap();
        let path = ca.path().display().to_string();
        let require = tls_settings(&format!(
            "postgres://u@db/x?sslmode=require&sslrootcert={path}"
        ))
        .unwrap();
        assert_eq!(
            require.mode,
            SslMode::VerifyCa,
            "libpq: require with a CA file verifies it"
        );
        let system =
            tls_settings("postgres://u@db/x?sslmode=verify-full&sslrootcert=system").unwrap();
        assert_eq!((system.mode, system.root_cert), (SslMode::VerifyFull, None));
    }

    #[test]
    fn bad_parameters_are_named_and_secrets_never_shown() {
        let error = |url: &str| format!("{:#}", tls_settings(url).unwrap_err());
        assert!(error("postgres://u@db/x?sslmode=verify_full").contains("sslmode `verify_full`"));
        assert!(error("postgres://u@db/x?sslmode=allow").contains("allow is not supported"));
        let missing =
            error("postgres://u@db/x?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem");
        assert!(
            missing.contains("sslrootcert `/nonexistent/ca.pem` cannot be read"),
            "{missing}"
        );
        let encrypted = error("postgres://u:S3CRET@db/x?sslpassword=K3YPASS");
        assert!(
            encrypted.contains("sslpassword is not supported"),
            "{encrypted}"
        );
        assert!(
            !encrypted.contains("K3YPASS") && !encrypted.contains("S3CRET"),
            "{encrypted}"
        );
        let unknown = error("postgres://u@db/x?channel_binding=require");
        assert!(unknown.contains("`channel_binding`"), "{unknown}");
        let key = tempfile::NamedTempFile::new().unwrap();
        let half = error(&format!(
            "postgres://u@db/x?sslkey={}",
            key.path().display()
        ));
        assert!(half.contains("sslkey needs sslcert"), "{half}");
    }

    #[test]
    fn the_connection_gets_what_was_asked() {
        let options =
            connect_options("postgres://u@db:6432/x?sslmode=disable&application_name=p").unwrap();
        assert!(matches!(options.get_ssl_mode(), PgSslMode::Disable));
        assert_eq!(options.get_port(), 6432);
        assert_eq!(options.get_database(), Some("x"));
        assert_eq!(options.get_application_name(), Some("p"));
    }
}
