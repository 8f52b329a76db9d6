//! The migrate demo: a production SQLite setup, migrated at start-up.
//!
//! ```text
//! cargo run --example migrate                   # database under target/
//! cargo run --example migrate -- app.db         # or at a path of your own
//! cargo run --example migrate -- --check app.db # verify only, write nothing
//! cargo run --example migrate -- lock           # lock newly released migrations
//! ```
//!
//! It opens (or creates) the database, applies the connection settings of
//! `migrations_example::configure`, applies the pending migrations of
//! `migrations/` and prints the report; then it writes and reads the schema
//! the way an application would (a batched insert, a lookup, an update, a
//! full-text search), shows the query plans, and prints the database's
//! statistics. Each run first removes the rows of the previous one, so it
//! can run again and again.
//!
//! `--check` only verifies the database against the migrations (no write,
//! not even a new file) and exits with status 1 if, for example, a
//! migration was edited after it was applied. `lock` appends the migrations
//! not yet in `migrations/migrate.lock` to it (never changing a line), so
//! that an edit to a released migration fails the build. Any error is one line on
//! stderr and exit status 1; a bad command line is status 2.

use std::ffi::OsString;
use std::fmt::{self, Display};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use migrations_example::{configure, ensure_wal, migrator, MIGRATIONS};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, TransactionBehavior, MAIN_DB};

/// How many users the demo inserts, in one transaction.
const USERS: usize = 10_000;

/// The demo's users have emails at this domain; a run deletes them first.
const DOMAIN: &str = "demo.example";

/// `println!` that returns a [`Failure`] instead of panicking when stdout
/// is closed (`migrate | head`).
macro_rules! say {
    ($($arg:tt)*) => {
        writeln!(std::io::stdout(), $($arg)*).map_err(Failure::output)?
    };
}

const USAGE: &str = "usage: migrate [--check] [DATABASE] | migrate lock";

fn main() -> ExitCode {
    let args = match Args::parse(std::env::args_os().skip(1)) {
        Ok(Some(args)) => args,
        Ok(None) => {
            let _ = writeln!(std::io::stdout(), "{USAGE}\n\n{HELP}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            let _ = writeln!(std::io::stderr(), "error: {message}; {USAGE}");
            return ExitCode::from(2);
        }
    };
    if args.lock {
        return match lock() {
            Ok(()) => ExitCode::SUCCESS,
            Err(failure) => {
                let _ = writeln!(std::io::stderr(), "error: {failure}");
                ExitCode::FAILURE
            }
        };
    }
    let path = match args.path.map_or_else(default_path, Ok) {
        Ok(path) => path,
        Err(message) => {
            let _ = writeln!(std::io::stderr(), "error: {message}");
            return ExitCode::FAILURE;
        }
    };
    let result = if args.check {
        check(&path)
    } else {
        demo(&path)
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            if !failure.0.is_empty() {
                let _ = writeln!(std::io::stderr(), "error: {failure}");
            }
            ExitCode::FAILURE
        }
    }
}

const HELP: &str = "Migrates DATABASE (default: migrate-demo/demo.db in the target directory), \
then writes and reads it like an application and prints statistics.\n\
\n  --check   verify DATABASE against the migrations without writing; exit status 1 on drift\
\n  lock      append the migrations not yet locked to migrations/migrate.lock\
\n  --help    this text";

/// The command line.
struct Args {
    check: bool,
    /// `migrate lock`.
    lock: bool,
    /// `None`: the default path.
    path: Option<PathBuf>,
}

impl Args {
    /// `Ok(None)` for `--help`.
    fn parse(args: impl Iterator<Item = OsString>) -> Result<Option<Args>, String> {
        let mut check = false;
        let mut lock = false;
        let mut path = None;
        for arg in args {
            match arg.to_str() {
                Some("--check") => check = true,
                Some("lock") if path.is_none() && !check => lock = true,
                Some("-h" | "--help") => return Ok(None),
                Some(flag) if flag.starts_with('-') && flag.len() > 1 => {
                    return Err(format!("unknown option `{flag}`"));
                }
                _ if path.is_some() => {
                    return Err(format!(
                        "one database path expected, got a second one: {}",
                        Path::new(&arg).display()
                    ));
                }
                _ => path = Some(PathBuf::from(arg)),
            }
        }
        if lock && (check || path.is_some()) {
            return Err("`lock` takes no other argument".to_owned());
        }
        Ok(Some(Args { check, lock, path }))
    }
}

/// `lock`: appends the migrations not yet locked to the lock file of the
/// source directory this program was built from.
fn lock() -> Result<(), Failure> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    let added = migrate_core::lock::append(&dir).map_err(|e| Failure(e.to_string()))?;
    let lock = dir.join("migrate.lock");
    match added.as_slice() {
        [] => say!("nothing to lock: every migration is in {}", lock.display()),
        [one] => say!("locked version {one} in {}", lock.display()),
        [first, .., last] => say!("locked versions {first} to {last} in {}", lock.display()),
    }
    Ok(())
}

/// `<target>/migrate-demo/demo.db`, created if needed. The target directory
/// is found from this program's own path (`<target>/<profile>/examples/`),
/// which also works with `CARGO_TARGET_DIR` or `--target`; failing that,
/// from `CARGO_TARGET_DIR`, then the system's temporary directory.
fn default_path() -> Result<PathBuf, String> {
    let from_exe = std::env::current_exe().ok().and_then(|exe| {
        let examples = exe.parent()?;
        (examples.file_name()? == "examples").then_some(())?;
        Some(examples.parent()?.parent()?.to_path_buf())
    });
    let target = from_exe
        .or_else(|| std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from))
        .unwrap_or_else(std::env::temp_dir);
    let dir = target.join("migrate-demo");
    std::fs::create_dir_all(&dir)
        .map_err(|e| format!("cannot create the directory {}: {e}", dir.display()))?;
    Ok(dir.join("demo.db"))
}

/// An error for the user: one line, no debug dump. Empty when there is
/// nothing to say (stdout was closed by the reader).
struct Failure(String);

impl Failure {
    fn output(e: std::io::Error) -> Self {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            Failure(String::new())
        } else {
            Failure(format!("cannot write the output: {e}"))
        }
    }
}

impl Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // SQLite and the library write one line, but make sure of it.
        let mut lines = self.0.lines().map(str::trim);
        if let Some(first) = lines.next() {
            f.write_str(first)?;
        }
        for line in lines.filter(|l| !l.is_empty()) {
            write!(f, " {line}")?;
        }
        Ok(())
    }
}

/// Adds what was being done to an error.
trait Context<T> {
    fn context(self, what: impl Display) -> Result<T, Failure>;
}

impl<T, E: Display> Context<T> for Result<T, E> {
    fn context(self, what: impl Display) -> Result<T, Failure> {
        self.map_err(|e| Failure(format!("{what}: {e}")))
    }
}

/// `--check`: verification only, on a read-only connection.
fn check(path: &Path) -> Result<(), Failure> {
    if !path.exists() {
        return Err(Failure(format!(
            "there is no database at {}; run the demo without --check to create it",
            path.display()
        )));
    }
    let conn = open(path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    MIGRATIONS
        .verify(&conn)
        .map_err(|e| Failure(e.to_string()))?;
    let status = MIGRATIONS
        .status(&conn)
        .context(format!("cannot read {}", path.display()))?;
    say!("ok: {} is {status}", path.display());
    Ok(())
}

/// Opens `path` and makes sure it is a SQLite database.
fn open(path: &Path, flags: OpenFlags) -> Result<Connection, Failure> {
    let shown = path.display();
    if path.is_dir() {
        return Err(Failure(format!(
            "{shown} is a directory; give the path of a database file"
        )));
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        if !parent.is_dir() {
            let what = if parent.exists() {
                "is not a directory"
            } else {
                "does not exist"
            };
            return Err(Failure(format!(
                "cannot create {shown}: {} {what}",
                parent.display()
            )));
        }
    }
    let conn = Connection::open_with_flags(path, flags).context(format!("cannot open {shown}"))?;
    // Opening reads nothing yet: read the schema to find out what the file is.
    conn.query_row("SELECT count(*) FROM sqlite_schema", [], |r| {
        r.get::<_, i64>(0)
    })
    .map_err(|e| match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::NotADatabase) => Failure(format!(
            "{shown} is not a SQLite database (or it is encrypted or damaged)"
        )),
        _ => Failure(format!("cannot read {shown}: {e}")),
    })?;
    Ok(conn)
}

/// The demo: migrate, then use the database like an application.
fn demo(path: &Path) -> Result<(), Failure> {
    let shown = path.display();
    let new = std::fs::metadata(path).map_or(true, |m| m.len() == 0);
    let mut conn = open(path, OpenFlags::default())?;
    if conn.is_readonly(MAIN_DB).unwrap_or(false) {
        return Err(Failure(format!(
            "{shown} is read-only; the demo writes to its database: give a writable path"
        )));
    }
    configure(&conn).context("cannot apply the connection settings")?;
    let sqlite: String = conn
        .query_row("SELECT sqlite_version()", [], |r| r.get(0))
        .context("cannot read the SQLite version")?;
    say!(
        "migrate demo: {shown} ({}), SQLite {sqlite}",
        if new {
            "new database"
        } else {
            "existing database"
        }
    );

    heading("Migrations")?;
    let report = migrator()
        .migrate(&mut conn)
        .map_err(|e| Failure(e.to_string()))?;
    let took = report.duration();
    let report = report.to_string();
    for line in report.lines() {
        say!("  {line}");
    }
    // Under the report's duration column ("{:>9.1} ms", 12 characters).
    let width = report
        .lines()
        .filter(|l| l.ends_with(" ms"))
        .map(str::len)
        .max()
        .unwrap_or(0)
        .max(42);
    let total = format!("{:>9.1} ms", took.as_secs_f64() * 1000.0);
    say!("  {:<w$}{total}", "total, checks included", w = width - 12);
    ensure_wal(&conn).context("cannot switch the database to WAL")?;

    heading("Connection")?;
    settings(&conn)?;

    heading("Workload")?;
    workload(&mut conn)?;

    heading("Query plans")?;
    plans(&conn)?;

    // What SQLite's documentation advises before closing a connection that
    // wrote: refresh the statistics of the tables that changed a lot.
    conn.execute_batch("PRAGMA optimize")
        .context("PRAGMA optimize failed")?;

    heading("Database")?;
    statistics(&conn, path)?;
    Ok(())
}

fn heading(title: &str) -> Result<(), Failure> {
    say!("\n{title}");
    Ok(())
}

/// A duration in milliseconds, right-aligned.
fn ms(d: Duration) -> String {
    format!("{:>9.2} ms", d.as_secs_f64() * 1000.0)
}

/// A line of the workload: what, how long, details.
fn timed(label: impl Display, took: Duration, detail: impl Display) -> Result<(), Failure> {
    say!("  {label:<30}{}   {detail}", ms(took));
    Ok(())
}

/// `12345` as `12,345`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `1 user`, `2,000 users`.
fn plural(n: u64, what: &str) -> String {
    match (n, what.split_once(' ')) {
        (1, _) => format!("1 {what}"),
        (_, Some((noun, rest))) => format!("{} {noun}s {rest}", thousands(n)),
        (_, None) => format!("{} {what}s", thousands(n)),
    }
}

fn pragma(conn: &Connection, name: &str) -> Result<String, Failure> {
    conn.query_row(&format!("PRAGMA {name}"), [], |r| {
        r.get::<_, rusqlite::types::Value>(0)
    })
    .map(|v| match v {
        rusqlite::types::Value::Integer(i) => i.to_string(),
        rusqlite::types::Value::Text(t) => t,
        other => format!("{other:?}"),
    })
    .context(format!("cannot read PRAGMA {name}"))
}

fn row(label: &str, value: impl Display) -> Result<(), Failure> {
    say!("  {label:<30}{value}");
    Ok(())
}

/// The settings in effect, read back from SQLite.
fn settings(conn: &Connection) -> Result<(), Failure> {
    let synchronous = match pragma(conn, "synchronous")?.as_str() {
        "0" => "OFF",
        "1" => "NORMAL",
        "2" => "FULL",
        "3" => "EXTRA",
        _ => "?",
    };
    let temp_store = match pragma(conn, "temp_store")?.as_str() {
        "1" => "FILE",
        "2" => "MEMORY",
        _ => "DEFAULT",
    };
    let on_off = |v: String| if v == "1" { "ON" } else { "OFF" };
    row("journal_mode", pragma(conn, "journal_mode")?.to_uppercase())?;
    row("synchronous", synchronous)?;
    row("foreign_keys", on_off(pragma(conn, "foreign_keys")?))?;
    row(
        "busy_timeout",
        format!("{} ms", pragma(conn, "busy_timeout")?),
    )?;
    row(
        "cache_size",
        format!("{} (KiB when negative)", pragma(conn, "cache_size")?),
    )?;
    row("temp_store", temp_store)?;
    let mmap: u64 = pragma(conn, "mmap_size")?.parse().unwrap_or(0);
    row("mmap_size", format!("{} MiB", mmap / (1 << 20)))?;
    Ok(())
}

/// Deterministic demo data: user `i`'s name and bio.
fn person(i: usize) -> (String, String) {
    const FIRST: [&str; 12] = [
        "Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Margaret",
        "Dennis", "Radia", "Niklaus",
    ];
    const LAST: [&str; 10] = [
        "Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson",
        "Hamilton", "Ritchie",
    ];
    const LIKES: [&str; 8] = [
        "Writes Rust and reviews pull requests.",
        "Runs SQLite in production and likes it boring.",
        "Gardening, chess and compilers.",
        "Tunes queries; reads EXPLAIN before lunch.",
        "Coffee first, then distributed systems.",
        "Maintains a Rust crate for parsing logs.",
        "Climbs, cooks, and keeps backups.",
        "Teaches databases at night school.",
    ];
    let name = format!("{} {}", FIRST[i % FIRST.len()], LAST[(i / 3) % LAST.len()]);
    (name, LIKES[(i * 7 + i / 5) % LIKES.len()].to_owned())
}

fn email(i: usize) -> String {
    format!("user{i}@{DOMAIN}")
}

/// Writes and reads the schema the way an application does.
fn workload(conn: &mut Connection) -> Result<(), Failure> {
    // One write transaction for the whole batch: one commit (one fsync)
    // instead of one per row, and prepared statements reused for every row.
    // IMMEDIATE takes the write lock at once, so a second demo running at
    // the same time waits for this one (busy_timeout) instead of failing.
    let t0 = Instant::now();
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .context("cannot start the insert transaction")?;
    // Start from a clean slate: the previous run's users go, and with them,
    // by cascade, their posts and events; the search index follows through
    // its triggers.
    let removed = tx
        .execute(
            "DELETE FROM users WHERE email LIKE ?1",
            [format!("%@{DOMAIN}")],
        )
        .context("cannot remove the previous run's users")?;
    if removed > 0 {
        timed(
            "remove the last run's users",
            t0.elapsed(),
            format!(
                "{} (their posts and events by cascade)",
                plural(removed as u64, "user")
            ),
        )?;
    }
    let t0 = Instant::now();
    let mut posts = 0u64;
    {
        let mut user = tx
            .prepare("INSERT INTO users (email, name, bio) VALUES (?1, ?2, ?3)")
            .context("cannot prepare the user insert")?;
        let mut event = tx
            .prepare(
                "INSERT INTO events (user_id, payload) \
                 VALUES (?1, json_object('kind', 'signup', 'via', ?2))",
            )
            .context("cannot prepare the event insert")?;
        let mut post = tx
            .prepare("INSERT INTO posts (author_id, title, body) VALUES (?1, ?2, ?3)")
            .context("cannot prepare the post insert")?;
        for i in 1..=USERS {
            let (name, bio) = person(i);
            let id = user
                .insert(params![email(i), name, bio])
                .context(format!("cannot insert user {}", email(i)))?;
            let via = if i % 3 == 0 { "mobile" } else { "web" };
            event
                .execute(params![id, via])
                .context("cannot insert an event")?;
            if i % 5 == 0 {
                post.execute(params![id, format!("Hello from {name}"), bio])
                    .context("cannot insert a post")?;
                posts += 1;
            }
        }
    }
    tx.commit().context("cannot commit the inserts")?;
    let took = t0.elapsed();
    let users = USERS as u64;
    let rate = users as f64 / took.as_secs_f64().max(1e-9);
    timed(
        "insert, one transaction",
        took,
        format!(
            "{} users, {} events, {} posts: {} users/s",
            thousands(users),
            thousands(users),
            thousands(posts),
            thousands(rate as u64)
        ),
    )?;

    // Sign-in: emails are case-insensitive since migration 6.
    let typed = format!("User4242@{}", DOMAIN.to_uppercase());
    let t0 = Instant::now();
    let found: Option<(i64, String)> = conn
        .query_row(
            "SELECT id, name FROM users WHERE email = ?1",
            [&typed],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .context("cannot look a user up by email")?;
    let took = t0.elapsed();
    let (id, name) = found.ok_or_else(|| Failure(format!("no user has the email {typed}")))?;
    timed(
        "lookup by email, any case",
        took,
        format!("{typed}: user {id}, {name}"),
    )?;

    // An update that the search index must follow (through a trigger).
    let t0 = Instant::now();
    let changed = conn
        .execute(
            "UPDATE users SET bio = bio || ' Flies zeppelins on weekends.' WHERE id = ?1",
            [id],
        )
        .context("cannot update the user")?;
    timed(
        "update a bio",
        t0.elapsed(),
        format!("user {id}: {}", plural(changed as u64, "row changed")),
    )?;

    // Full-text search, best matches first (FTS5's bm25 `rank`).
    for query in ["zeppelins", "sqlite production", "rust NOT crate"] {
        let t0 = Instant::now();
        let hits: i64 = conn
            .query_row(
                "SELECT count(*) FROM users_fts WHERE users_fts MATCH ?1",
                [query],
                |r| r.get(0),
            )
            .context(format!("cannot search for `{query}`"))?;
        let best: Option<String> = conn
            .query_row(
                "SELECT u.name FROM users_fts JOIN users AS u ON u.id = users_fts.rowid \
                 WHERE users_fts MATCH ?1 ORDER BY rank LIMIT 1",
                [query],
                |r| r.get(0),
            )
            .optional()
            .context(format!("cannot search for `{query}`"))?;
        let best = best
            .map(|n| format!(", best match {n}"))
            .unwrap_or_default();
        timed(
            format!("search `{query}`"),
            t0.elapsed(),
            format!("{}{best}", plural(u64::try_from(hits).unwrap_or(0), "user")),
        )?;
    }
    Ok(())
}

/// `EXPLAIN QUERY PLAN` of the application's queries: each finds its rows
/// through an index (`SEARCH ... USING INDEX`, or `SCAN ... USING INDEX`
/// that stops after the first rows in index order), none reads a whole
/// table to filter it.
fn plans(conn: &Connection) -> Result<(), Failure> {
    let queries = [
        (
            "sign-in: user by email",
            "SELECT id, name FROM users WHERE email = 'ada@example.com'",
        ),
        (
            "admin: newest users",
            "SELECT id, email FROM users ORDER BY created_at DESC LIMIT 20",
        ),
        (
            "profile: a user's posts",
            "SELECT id, title FROM posts WHERE author_id = 1 ORDER BY published_at DESC",
        ),
        (
            "report: sign-ups per day",
            "SELECT day, count(*) FROM events WHERE kind = 'signup' GROUP BY day",
        ),
        (
            "search: users by text",
            "SELECT rowid FROM users_fts WHERE users_fts MATCH 'rust' ORDER BY rank",
        ),
    ];
    for (label, sql) in queries {
        let mut stmt = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .context(format!("cannot explain `{sql}`"))?;
        let details = stmt
            .query_map([], |r| r.get::<_, String>(3))
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .context(format!("cannot explain `{sql}`"))?;
        say!("  {label:<30}{}", details.join("; "));
    }
    Ok(())
}

/// Page and file statistics.
fn statistics(conn: &Connection, path: &Path) -> Result<(), Failure> {
    let number =
        |name: &str| -> Result<u64, Failure> { Ok(pragma(conn, name)?.parse().unwrap_or(0)) };
    let page_size = number("page_size")?;
    let pages = number("page_count")?;
    let free = number("freelist_count")?;
    let auto_vacuum = match number("auto_vacuum")? {
        1 => "FULL",
        2 => "INCREMENTAL",
        _ => "NONE",
    };
    let file = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let mut wal_path = path.as_os_str().to_owned();
    wal_path.push("-wal");
    let wal = std::fs::metadata(&wal_path).map(|m| m.len()).unwrap_or(0);
    let kib = |bytes: u64| format!("{} KiB", thousands(bytes.div_ceil(1024)));
    row(
        "version",
        format!("{} of {}", number("user_version")?, MIGRATIONS.latest()),
    )?;
    row("page_size", format!("{} bytes", thousands(page_size)))?;
    row(
        "page_count",
        format!("{} ({})", thousands(pages), kib(pages * page_size)),
    )?;
    row("freelist", format!("{} pages", thousands(free)))?;
    row("journal_mode", pragma(conn, "journal_mode")?.to_uppercase())?;
    row("auto_vacuum", auto_vacuum)?;
    row("file size", kib(file))?;
    // Commits go to the WAL; a checkpoint (automatic, and when the last
    // connection closes) moves them into the file.
    row(
        "WAL size",
        format!("{} (not yet checkpointed into the file)", kib(wal)),
    )?;
    for table in ["users", "posts", "events"] {
        let n: i64 = conn
            .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
            .context(format!("cannot count the rows of {table}"))?;
        row(
            &format!("{table} rows"),
            thousands(u64::try_from(n).unwrap_or(0)),
        )?;
    }
    Ok(())
}
