//! What went wrong with the database, and URLs safe to show.

/// What went wrong with the database, decided once where the driver's error
/// is first seen: callers choose between waiting (unavailable) and giving
/// up (refused) by matching, not by digging through error chains.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database did not answer at all: refused or lost connection, timed
    /// out, or a server shutting down or still starting up. An outage: retry.
    #[error("the database does not answer: {0}")]
    Unreachable(#[source] sqlx::Error),
    /// TLS with the database failed: its certificate does not verify, it
    /// refused ours, or it offers no TLS. Named for what it is, never as an
    /// outage; retried like one, since a certificate renewed on the server
    /// fixes it without improbe (docs/many-regions.md "TLS to PostgreSQL").
    #[error("{0}: {1}")]
    Tls(TlsProblem, sqlx::Error),
    /// Statements prepared on one server connection were missing, or
    /// another client's, on the next: a pooler in transaction mode that
    /// improbe was not told of.
    #[error(
        "prepared statements do not survive from one transaction to the next here: the database is reached \
         through a connection pooler in transaction mode; set `[database] pooler = \"transaction\"` \
         (docs/many-regions.md \"Through a connection pooler\")"
    )]
    PoolerInTransactionMode(#[source] sqlx::Error),
    /// The database answered with an error: wrong password, unknown database,
    /// missing privilege, a failed statement. Retrying will not help.
    #[error("the database refused: {0}")]
    Refused(#[source] sqlx::Error),
    /// Anything else: data that does not decode, a failed attempt source.
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// Why TLS with the database failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TlsProblem {
    #[error(
        "the database's certificate is not signed by a CA improbe trusts: give the URL's sslrootcert the CA that signed it"
    )]
    UnknownIssuer,
    #[error(
        "the database's certificate is not valid for the host name in the URL (sslmode=verify-full checks it): \
         connect by a name the certificate holds"
    )]
    WrongHostName,
    #[error("the database's certificate has expired")]
    Expired,
    #[error("the database's certificate is not valid yet: check this machine's clock")]
    NotValidYet,
    #[error("the database's certificate does not verify: {0}")]
    BadCertificate(String),
    #[error(
        "the database refused improbe's client certificate (the URL's sslcert and sslkey): TLS alert {0}"
    )]
    ClientCertificateRefused(String),
    #[error("the database does not offer TLS, and the URL's sslmode requires it")]
    NoTlsOffered,
    #[error("TLS with the database failed: {0}")]
    Other(String),
}

impl TlsProblem {
    /// The TLS problem `error` reports, if it is one: sqlx hands rustls's
    /// errors over as its `Tls` error or, from the handshake, as I/O.
    fn of(error: &sqlx::Error) -> Option<TlsProblem> {
        use tokio_rustls::rustls;
        let tls: &(dyn std::error::Error + 'static) = match error {
            sqlx::Error::Tls(inner) => inner.as_ref(),
            sqlx::Error::Io(io) => io.get_ref()?,
            _ => return None,
        };
        let Some(rustls_error) = tls.downcast_ref::<rustls::Error>() else {
            return match error {
                sqlx::Error::Tls(inner) if inner.to_string().contains("does not support TLS") => {
                    Some(TlsProblem::NoTlsOffered)
                }
                sqlx::Error::Tls(inner) => Some(TlsProblem::Other(inner.to_string())),
                _ => None,
            };
        };
        use rustls::{AlertDescription as Alert, CertificateError as Cert};
        Some(match rustls_error {
            // A bad signature: a CA of the same name, not the one that
            // signed it (a CA rotated on one side only).
            rustls::Error::InvalidCertificate(Cert::UnknownIssuer | Cert::BadSignature) => {
                TlsProblem::UnknownIssuer
            }
            rustls::Error::InvalidCertificate(
                Cert::NotValidForName | Cert::NotValidForNameContext { .. },
            ) => TlsProblem::WrongHostName,
            rustls::Error::InvalidCertificate(Cert::Expired | Cert::ExpiredContext { .. }) => {
                TlsProblem::Expired
            }
            rustls::Error::InvalidCertificate(
                Cert::NotValidYet | Cert::NotValidYetContext { .. },
            ) => TlsProblem::NotValidYet,
            rustls::Error::InvalidCertificate(other) => {
                TlsProblem::BadCertificate(format!("{other:?}"))
            }
            rustls::Error::AlertReceived(
                alert @ (Alert::BadCertificate
                | Alert::UnknownCA
                | Alert::CertificateRequired
                | Alert::CertificateExpired
                | Alert::CertificateRevoked
                | Alert::CertificateUnknown
                | Alert::AccessDenied),
            ) => TlsProblem::ClientCertificateRefused(format!("{alert:?}")),
            other => TlsProblem::Other(other.to_string()),
        })
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

impl StoreError {
    /// The database cannot be used now and may be later without a change
    /// of ours: it does not answer, or TLS with it fails. Attempts wait in
    /// the spool meanwhile.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unreachable(_) | StoreError::Tls(..))
    }

    /// The database's disk is full: SQLite's `SQLITE_FULL` (13, also as the
    /// extended codes built on it), PostgreSQL's SQLSTATE 53100. Writes
    /// wait in memory and in the spool until space returns.
    pub fn is_disk_full(&self) -> bool {
        let (StoreError::Refused(sqlx::Error::Database(e))
        | StoreError::Unreachable(sqlx::Error::Database(e))) = self
        else {
            return false;
        };
        e.code().is_some_and(|code| {
            code == "53100" || code.parse::<i64>().is_ok_and(|n| n & 0xff == 13)
        })
    }

    /// Why a write failed, as the `reason` label of
    /// `improbe_database_write_errors_total`.
    pub fn write_error_reason(&self) -> WriteErrorReason {
        if self.is_disk_full() {
            WriteErrorReason::DiskFull
        } else if matches!(self, StoreError::Tls(..)) {
            WriteErrorReason::Tls
        } else if self.is_unavailable() {
            WriteErrorReason::Unreachable
        } else {
            WriteErrorReason::Refused
        }
    }
}

/// Why a database write failed (`improbe_database_write_errors_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteErrorReason {
    /// The database's disk is full.
    DiskFull,
    /// The database did not answer.
    Unreachable,
    /// TLS with the database failed (`TlsProblem`).
    Tls,
    /// The database answered with another error.
    Refused,
    /// No answer within the write's time limit.
    Timeout,
}

impl WriteErrorReason {
    pub const ALL: [WriteErrorReason; 5] = [
        WriteErrorReason::DiskFull,
        WriteErrorReason::Unreachable,
        WriteErrorReason::Tls,
        WriteErrorReason::Refused,
        WriteErrorReason::Timeout,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            WriteErrorReason::DiskFull => "disk_full",
            WriteErrorReason::Unreachable => "unreachable",
            WriteErrorReason::Tls => "tls",
            WriteErrorReason::Refused => "refused",
            WriteErrorReason::Timeout => "timeout",
        }
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        if let Some(problem) = TlsProblem::of(&error) {
            return StoreError::Tls(problem, error);
        }
        // sqlx names its prepared statements `sqlx_s_N`: one that already
        // exists, does not, or takes other parameters was prepared in
        // another session than the one that runs it.
        if let sqlx::Error::Database(e) = &error
            && e.message().contains("prepared statement \"sqlx_s_")
        {
            return StoreError::PoolerInTransactionMode(error);
        }
        let unreachable = match &error {
            sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut => true,
            // SQLSTATE class 08 (connection exception) and 57P01-57P03 (admin
            // or crash shutdown, cannot connect now): the server is going away
            // or not back yet, which is an outage, not a configuration error.
            sqlx::Error::Database(e) => e.code().is_some_and(|code| {
                code.starts_with("08") || matches!(&*code, "57P01" | "57P02" | "57P03")
            }),
            _ => false,
        };
        if unreachable {
            StoreError::Unreachable(error)
        } else {
            StoreError::Refused(error)
        }
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(error: sqlx::migrate::MigrateError) -> Self {
        match error {
            sqlx::migrate::MigrateError::Execute(e) => e.into(),
            other => StoreError::Other(other.into()),
        }
    }
}

/// A URL with every credential replaced, for logs and errors: the password
/// in the user part (whatever it contains, `@` included), any query
/// parameter named like a credential ([`is_credential_name`]) and the
/// fragment. The one function every URL improbe prints goes through
/// (database, control check). A URL that does not parse is not shown at
/// all, since what it hides cannot be known.
pub fn redact_url(url: &str) -> String {
    let Ok(mut parsed) = reqwest::Url::parse(url) else {
        return "(a URL that does not parse; not shown)".to_owned();
    };
    if parsed.password().is_some() {
        let _ = parsed.set_password(Some("***"));
    }
    if parsed
        .query_pairs()
        .any(|(key, _)| is_credential_name(&key))
    {
        let pairs: Vec<(String, String)> = parsed
            .query_pairs()
            .map(|(key, value)| {
                let secret = is_credential_name(&key);
                let value = if secret {
                    "***".into()
                } else {
                    value.into_owned()
                };
                (key.into_owned(), value)
            })
            .collect();
        parsed.query_pairs_mut().clear().extend_pairs(pairs);
    }
    if parsed.fragment().is_some() {
        parsed.set_fragment(Some("***"));
    }
    parsed.to_string()
}

/// Whether a query parameter's name says it may carry a credential:
/// `password`, `sslpassword`, `token`, `access_token`, `key`, `apikey`,
/// `secret`, `auth`, `signature`, `sig`, ... (any case).
fn is_credential_name(name: &str) -> bool {
    const CREDENTIAL_WORDS: [&str; 7] = [
        "pass",
        "token",
        "key",
        "secret",
        "auth",
        "sig",
        "credential",
    ];
    let name = name.to_ascii_lowercase();
    CREDENTIAL_WORDS.iter().any(|word| name.contains(word))
}

/// Whether an error from [`super::prepare`] or any store call means the database
/// cannot be used now (retry: [`StoreError::is_unavailable`]) rather than
/// answered with a refusal (give up).
pub fn is_unavailable(error: &anyhow::Error) -> bool {
    error
        .downcast_ref::<StoreError>()
        .is_some_and(StoreError::is_unavailable)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_that_does_not_answer_is_told_from_one_that_refuses() {
        let lost = StoreError::from(sqlx::Error::Io(std::io::Error::from(
            std::io::ErrorKind::ConnectionRefused,
        )));
        assert!(lost.is_unavailable());
        assert!(StoreError::from(sqlx::Error::PoolTimedOut).is_unavailable());
        let refused = StoreError::from(sqlx::Error::RowNotFound);
        assert!(matches!(refused, StoreError::Refused(_)));
        // Context added by callers does not hide the kind.
        let wrapped = anyhow::Error::from(StoreError::from(sqlx::Error::PoolTimedOut))
            .context("cannot migrate");
        assert!(is_unavailable(&wrapped));
        assert!(!is_unavailable(
            &anyhow::Error::from(refused).context("cannot migrate")
        ));
    }

    #[test]
    fn passwords_never_leave_a_url() {
        assert_eq!(
            redact_url("postgres://u:s3cret@db/x"),
            "postgres://u:***@db/x"
        );
        assert_eq!(redact_url("postgres://u@db/x"), "postgres://u@db/x");
        assert_eq!(redact_url("sqlite://improbe.db"), "sqlite://improbe.db");
        // A password with `@`, or in the query, never shows.
        let at = redact_url("postgres://u:S3@T@host/db");
        assert!(!at.contains("S3") && !at.contains("T@"), "{at}");
        let query = redact_url("postgres://u@127.0.0.1:9/db?password=S3CRET&sslmode=require");
        assert!(!query.contains("S3CRET"), "{query}");
        assert!(query.contains("sslmode=require"), "{query}");
        let control = redact_url("https://user:S3CRET@example.net/ping");
        assert_eq!(control, "https://user:***@example.net/ping");
        assert!(!redact_url("postgres://u:S3CRET@[bad").contains("S3CRET"));
        for hostile in [
            "postgres://u@h/db?sslpassword=S3CRET",
            "https://h/x?access_token=S3CRET&x=1",
            "https://h/x?apiKey=S3CRET",
            "https://h/x?X-Amz-Signature=S3CRET",
            "https://h/x?Auth=S3CRET",
            "https://h/x#token=S3CRET",
            "https://u:S3%40CRET%3A@h/x",
            "https://u:S3CRET:more@h/x",
            "postgres://u:S3CRET@h:notaport/db",
            "S3CRET",
        ] {
            let shown = redact_url(hostile);
            assert!(!shown.contains("S3"), "{hostile} shown as {shown}");
        }
        assert!(redact_url("https://h/x?access_token=S&x=1").contains("x=1"));
    }
}
