//! writ-error-kind is the vocabulary in which a domain crate says what kind of failure one of its
//! errors is — not found, invalid (which field), conflict (which slug), forbidden, unauthorized
//! (which slug), unavailable (which dependency), internal — so that the gateway turns each kind
//! into one problem type, in one place. It knows nothing of HTTP and depends on no crate of ours:
//! a domain crate never picks a status code, and nothing anywhere decides by an error's text.
//!
//! Every domain error implements [`Classify`] with a `match` that has no wildcard arm, so a new
//! variant does not compile until someone has decided what kind of failure it is.
//! [`classify_sqlx`] (feature `sqlx`) is the one judgement of database errors every crate uses.

use std::fmt;

/// The slug of a conflict that needs no name of its own.
pub const CONFLICT: &str = "conflict";

/// What kind of failure an error is. The `detail`s and `reason`s here are shown to the caller:
/// they say what to change, and never carry internals (a query, a path, a provider's answer),
/// which stay in the error's own text for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorKind {
    /// What was asked for does not exist — or belongs to another agency, which is not told apart
    /// from nothing, on purpose.
    NotFound,
    /// A value the caller gave is not acceptable: `field` names it as the caller wrote it (a JSON
    /// member or path), `reason` says why.
    Invalid { field: String, reason: String },
    /// The request cannot be taken as it stands for the reason `slug` names
    /// (`banner-acknowledgement-required`), where no single value is wrong.
    BadRequest { slug: &'static str, detail: String },
    /// The request conflicts with the current state; `slug` names the conflict ([`CONFLICT`]
    /// when it needs no name of its own; `key-disabled`).
    Conflict { slug: &'static str, detail: String },
    /// It existed and is gone for good (a crypto-erased document); `slug` says how.
    Gone { slug: &'static str, detail: String },
    /// The content is larger than the `limit` (bytes) that applies to it.
    TooLarge { limit: u64 },
    /// The byte range asked for lies outside the content, `size` bytes long.
    RangeNotSatisfiable { size: u64 },
    /// The content is not of a type that is accepted here (judged from what was sent).
    UnsupportedMedia { detail: String },
    /// Authenticated, but not allowed.
    Forbidden { detail: String },
    /// Not authenticated, or no longer; `slug` says why (`invalid-token`, `step-up-required`).
    Unauthorized { slug: &'static str, detail: String },
    /// A dependency is down, overloaded or briefly contended: the same request may succeed if
    /// retried later, unchanged.
    Unavailable { dependency: Dependency },
    /// A bug or a state that should not exist. Nothing of it is told to the caller.
    Internal,
}

impl ErrorKind {
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// A conflict with the generic [`CONFLICT`] slug.
    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::Conflict {
            slug: CONFLICT,
            detail: detail.into(),
        }
    }

    pub fn unavailable(dependency: Dependency) -> Self {
        Self::Unavailable { dependency }
    }
}

/// What an [`ErrorKind::Unavailable`] is waiting for. Each may get a problem type of its own (a
/// key provider outage is `key-provider-unavailable`), so a new one is a decision in the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dependency {
    /// PostgreSQL: unreachable, shutting down, out of resources, or a transaction it rolled back
    /// for contention (see [`classify_sqlx`]).
    Database,
    /// The agency's key provider (AWS KMS, Azure Key Vault), or one this server has not
    /// configured.
    KeyProvider,
    /// Object storage outside the database (audit archives, sealed objects).
    Storage,
    /// The RFC 3161 time-stamping authority of signature records.
    TimestampAuthority,
}

impl Dependency {
    pub fn name(self) -> &'static str {
        match self {
            Dependency::Database => "database",
            Dependency::KeyProvider => "key provider",
            Dependency::Storage => "storage",
            Dependency::TimestampAuthority => "time-stamping authority",
        }
    }
}

impl fmt::Display for Dependency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An error that can say what kind of failure it is. Wrappers delegate to the error they wrap,
/// so a key error inside an audit error is the same kind as on its own.
pub trait Classify {
    fn kind(&self) -> ErrorKind;
}

impl<T: Classify + ?Sized> Classify for &T {
    fn kind(&self) -> ErrorKind {
        (**self).kind()
    }
}

impl<T: Classify + ?Sized> Classify for Box<T> {
    fn kind(&self) -> ErrorKind {
        (**self).kind()
    }
}

/// The kind of a database error.
///
/// - Unavailable (database): the pool timed out or is closed (shutting down); the connection
///   failed (I/O, TLS, protocol, a crashed worker); SQLSTATE class 08 (connection exception), 53
///   (insufficient resources: disk full, out of memory, too many connections) and 57P (operator
///   intervention: shutdown, cannot connect now).
/// - Unavailable (database) as well: 40001 `serialization_failure`, 40P01 `deadlock_detected`
///   and 55P03 `lock_not_available` (a `lock_timeout` ran out); 57014 `query_canceled` (a
///   `statement_timeout` ran out) and 25006 `read_only_sql_transaction` (connected to a standby
///   during a failover) pass too. The database rolled the transaction back with nothing applied,
///   and the same request succeeds when retried: a 503 with `Retry-After` says exactly that. Not a conflict — the caller has nothing to change —
///   and not internal: it is contention, not a bug.
/// - Internal: everything else — a constraint violation a domain function did not turn into an
///   error of its own, a decoding failure, `RowNotFound` where a row had to exist. A domain
///   function that expects a constraint to fire maps it before it gets here.
#[cfg(feature = "sqlx")]
pub fn classify_sqlx(e: &sqlx::Error) -> ErrorKind {
    use sqlx::Error as E;
    match e {
        E::PoolTimedOut
        | E::PoolClosed
        | E::Io(_)
        | E::Tls(_)
        | E::Protocol(_)
        | E::WorkerCrashed => ErrorKind::unavailable(Dependency::Database),
        E::Database(db) if is_transient_sqlstate(db.code().as_deref()) => {
            ErrorKind::unavailable(Dependency::Database)
        }
        _ => ErrorKind::Internal,
    }
}

#[cfg(feature = "sqlx")]
fn is_transient_sqlstate(code: Option<&str>) -> bool {
    code.is_some_and(|c| {
        c.starts_with("08")
            || c.starts_with("53")
            || c.starts_with("57P")
            || matches!(c, "40001" | "40P01" | "55P03" | "57014" | "25006")
    })
}

#[cfg(feature = "sqlx")]
impl Classify for sqlx::Error {
    fn kind(&self) -> ErrorKind {
        classify_sqlx(self)
    }
}

#[cfg(all(test, feature = "sqlx"))]
mod tests {
    use std::borrow::Cow;

    use super::*;

    /// A database error with only a SQLSTATE, as PostgreSQL would send it.
    #[derive(Debug)]
    struct Sqlstate(&'static str);

    impl fmt::Display for Sqlstate {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "SQLSTATE {}", self.0)
        }
    }

    impl std::error::Error for Sqlstate {}

    impl sqlx::error::DatabaseError for Sqlstate {
        fn message(&self) -> &str {
            "test"
        }
        fn code(&self) -> Option<Cow<'_, str>> {
            Some(Cow::Borrowed(self.0))
        }
        fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
            self
        }
        fn kind(&self) -> sqlx::error::ErrorKind {
            sqlx::error::ErrorKind::Other
        }
    }

    fn db(code: &'static str) -> sqlx::Error {
        sqlx::Error::Database(Box::new(Sqlstate(code)))
    }

    const DATABASE_DOWN: ErrorKind = ErrorKind::Unavailable {
        dependency: Dependency::Database,
    };

    #[test]
    fn connection_failures_and_exhaustion_are_unavailable() {
        for e in [
            sqlx::Error::PoolTimedOut,
            sqlx::Error::PoolClosed,
            sqlx::Error::WorkerCrashed,
            sqlx::Error::Protocol("unexpected message".into()),
            sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionReset)),
            // connection_failure, too_many_connections, disk_full, admin_shutdown,
            // cannot_connect_now
            db("08006"),
            db("53300"),
            db("53100"),
            db("57P01"),
            db("57P03"),
        ] {
            assert_eq!(e.kind(), DATABASE_DOWN, "{e}");
        }
    }

    #[test]
    fn contention_the_database_rolled_back_is_unavailable_not_a_conflict() {
        for code in ["40001", "40P01", "55P03", "57014", "25006"] {
            assert_eq!(classify_sqlx(&db(code)), DATABASE_DOWN, "{code}");
        }
    }

    #[test]
    fn everything_else_is_internal() {
        // unique_violation, undefined_table, invalid_transaction_termination
        for code in ["23505", "42P01", "40002"] {
            assert_eq!(classify_sqlx(&db(code)), ErrorKind::Internal, "{code}");
        }
        assert_eq!(
            classify_sqlx(&sqlx::Error::RowNotFound),
            ErrorKind::Internal
        );
        assert_eq!(
            classify_sqlx(&sqlx::Error::ColumnNotFound("x".into())),
            ErrorKind::Internal
        );
    }

    #[test]
    fn wrappers_classify_as_what_they_wrap() {
        fn kind_of(e: impl Classify) -> ErrorKind {
            e.kind()
        }
        let e = Box::new(db("08006"));
        assert_eq!(kind_of(&e), DATABASE_DOWN);
        assert_eq!(kind_of(e), DATABASE_DOWN);
    }
}
