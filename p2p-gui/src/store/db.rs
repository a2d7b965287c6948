//! The history database itself: its schema and migrations, and every query. Only the
//! database thread ([`super`]) calls these; each takes the connection it owns.
//!
//! One table holds every line of every conversation, keyed by the conversation's name
//! ([`crate::data::form::Request::conversation_key`]) and ordered by its row id (lines are appended in the
//! order they were shown). An FTS5 index over the text serves the search. The schema's
//! version is SQLite's `PRAGMA user_version`; [`MIGRATIONS`] brings any older database to
//! the current one, step by step, each step in a transaction.

use std::collections::HashMap;
use std::path::Path;

use rusqlite::{Connection, OptionalExtension, params};

/// A line as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// When it was shown, in milliseconds since the Unix epoch.
    pub at_ms: i64,
    /// What it is.
    pub kind: Kind,
    /// Who sent it (empty for notices and for this user's own messages).
    pub sender: String,
    /// What it says.
    pub text: String,
}

/// What a stored line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A message this user sent.
    Own,
    /// A message from another user.
    Other,
    /// Something that happened (joined, left, a failure).
    Notice,
    /// Something the user should look at (an identity changed, a wrong passphrase). Older
    /// versions of the app read it as a notice.
    Warning,
}

impl Kind {
    fn code(self) -> i64 {
        match self {
            Kind::Own => 0,
            Kind::Other => 1,
            Kind::Notice => 2,
            Kind::Warning => 3,
        }
    }

    fn from_code(code: i64) -> Kind {
        match code {
            0 => Kind::Own,
            1 => Kind::Other,
            3 => Kind::Warning,
            _ => Kind::Notice,
        }
    }
}

/// A stored line with its row id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// Its id: later lines have larger ids.
    pub id: i64,
    /// The line.
    pub line: Line,
}

/// Lines of a conversation, oldest first, and whether older ones exist before them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Page {
    /// The lines.
    pub rows: Vec<Row>,
    /// Whether the conversation has lines older than the first of `rows`.
    pub more: bool,
}

/// Most lines kept per conversation: past it the oldest go, [`RETENTION_SLACK`] at a time.
/// 100,000 lines of ordinary chat are about 10 MB; a search over them takes milliseconds.
pub const RETENTION: i64 = 100_000;

/// How far past [`RETENTION`] a conversation may grow before its oldest lines are deleted,
/// so that the deletion runs once every thousand lines, not at every line.
pub const RETENTION_SLACK: i64 = 1_000;

/// The schema, one step per version: `MIGRATIONS[n]` takes a database at version `n` to
/// version `n + 1`.
pub const MIGRATIONS: &[&str] = &[
    // 1: the lines.
    "CREATE TABLE lines (
        id INTEGER PRIMARY KEY,
        conversation TEXT NOT NULL,
        at_ms INTEGER NOT NULL,
        kind INTEGER NOT NULL,
        sender TEXT NOT NULL,
        text TEXT NOT NULL
    );
    CREATE INDEX lines_by_conversation ON lines (conversation, id);",
    // 2: full-text search over the text, kept up to date by triggers; lines stored by
    // version 1 are indexed on the way.
    "CREATE VIRTUAL TABLE lines_search USING fts5 (
        text, content = 'lines', content_rowid = 'id', tokenize = 'unicode61 remove_diacritics 2'
    );
    CREATE TRIGGER lines_search_insert AFTER INSERT ON lines BEGIN
        INSERT INTO lines_search (rowid, text) VALUES (new.id, new.text);
    END;
    CREATE TRIGGER lines_search_delete AFTER DELETE ON lines BEGIN
        INSERT INTO lines_search (lines_search, rowid, text) VALUES ('delete', old.id, old.text);
    END;
    INSERT INTO lines_search (lines_search) VALUES ('rebuild');",
];

/// The schema version this code reads and writes.
pub fn current_version() -> i64 {
    MIGRATIONS.len() as i64
}

/// The name of the database file in the data directory.
pub const FILE: &str = "history.sqlite3";

/// Why the history cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbError {
    /// The database was written by a newer version of the app: it is left untouched.
    Newer(i64),
    /// SQLite (or the file system) failed.
    Sqlite(String),
}

impl std::fmt::Display for DbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DbError::Newer(v) => write!(
                f,
                "the history was written by a newer version of the app (schema {v}); it is left as it is"
            ),
            DbError::Sqlite(e) => f.write_str(e),
        }
    }
}

impl From<rusqlite::Error> for DbError {
    fn from(e: rusqlite::Error) -> Self {
        DbError::Sqlite(e.to_string())
    }
}

/// Opens (creating it if need be) the database at `path` and brings its schema up to date.
///
/// WAL with `synchronous = NORMAL`: a commit is a write to the log, in the operating
/// system's hands as soon as it returns, so a killed app loses nothing it committed (a
/// power cut may lose the last commits; `FULL` would sync the log at every commit).
pub fn open(path: &Path) -> Result<Connection, DbError> {
    let mut conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    let _: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    migrate(&mut conn)?;
    Ok(conn)
}

/// Applies the migrations the database lacks, each in its own transaction.
pub fn migrate(conn: &mut Connection) -> Result<(), DbError> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version > current_version() {
        return Err(DbError::Newer(version));
    }
    for (from, step) in MIGRATIONS.iter().enumerate().skip(version.max(0) as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(step)?;
        tx.pragma_update(None, "user_version", from as i64 + 1)?;
        tx.commit()?;
        log::info!("history: schema version {}", from + 1);
    }
    Ok(())
}

/// Appends `lines` to `conversation` and returns their ids (inside the caller's
/// transaction).
pub fn append(conn: &Connection, conversation: &str, lines: &[Line]) -> rusqlite::Result<Vec<i64>> {
    let mut insert = conn.prepare_cached(
        "INSERT INTO lines (conversation, at_ms, kind, sender, text) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    lines
        .iter()
        .map(|line| {
            insert.execute(params![
                conversation,
                line.at_ms,
                line.kind.code(),
                line.sender,
                line.text
            ])?;
            Ok(conn.last_insert_rowid())
        })
        .collect()
}

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
    Ok(Row {
        id: r.get(0)?,
        line: Line {
            at_ms: r.get(1)?,
            kind: Kind::from_code(r.get(2)?),
            sender: r.get(3)?,
            text: r.get(4)?,
        },
    })
}

/// The `limit` lines of `conversation` just before the line `before` (the latest ones
/// when `None`), oldest first.
pub fn page(
    conn: &Connection,
    conversation: &str,
    before: Option<i64>,
    limit: usize,
) -> rusqlite::Result<Page> {
    let mut query = conn.prepare_cached(
        "SELECT id, at_ms, kind, sender, text FROM lines
         WHERE conversation = ?1 AND id < ?2 ORDER BY id DESC LIMIT ?3",
    )?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut rows = query
        .query_map(
            params![
                conversation,
                before.unwrap_or(i64::MAX),
                limit.saturating_add(1)
            ],
            row,
        )?
        .collect::<rusqlite::Result<Vec<Row>>>()?;
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    rows.reverse();
    Ok(Page { rows, more })
}

/// An FTS5 query that matches lines holding every word of what the user typed, the last
/// word also as the start of a longer one; every word is quoted, so that nothing typed is
/// read as query syntax. `None` when nothing searchable was typed.
pub fn fts_query(typed: &str) -> Option<String> {
    let words: Vec<String> = typed
        .split_whitespace()
        .map(|w| format!("\"{}\"", w.replace('"', "\"\"")))
        .collect();
    let (last, rest) = words.split_last()?;
    let mut query = rest.join(" ");
    if !query.is_empty() {
        query.push(' ');
    }
    query.push_str(last);
    query.push('*');
    Some(query)
}

/// The newest `limit` lines of `conversation` that match `typed`, newest first.
pub fn search(
    conn: &Connection,
    conversation: &str,
    typed: &str,
    limit: usize,
) -> rusqlite::Result<Vec<Row>> {
    let Some(query) = fts_query(typed) else {
        return Ok(Vec::new());
    };
    let mut search = conn.prepare_cached(
        "SELECT l.id, l.at_ms, l.kind, l.sender, l.text
         FROM lines_search JOIN lines AS l ON l.id = lines_search.rowid
         WHERE lines_search MATCH ?1 AND l.conversation = ?2
         ORDER BY l.id DESC LIMIT ?3",
    )?;
    search
        .query_map(
            params![
                query,
                conversation,
                i64::try_from(limit).unwrap_or(i64::MAX)
            ],
            row,
        )?
        .collect()
}

/// Deletes every line of `conversation`; returns how many.
pub fn clear(conn: &Connection, conversation: &str) -> rusqlite::Result<usize> {
    conn.execute(
        "DELETE FROM lines WHERE conversation = ?1",
        params![conversation],
    )
}

/// How many lines `conversation` holds.
pub fn count(conn: &Connection, conversation: &str) -> rusqlite::Result<i64> {
    conn.query_row(
        "SELECT count(*) FROM lines WHERE conversation = ?1",
        params![conversation],
        |r| r.get(0),
    )
}

/// Keeps conversations within [`RETENTION`] lines: counts what each holds (once, then as
/// lines are added) and deletes the oldest once one is [`RETENTION_SLACK`] past it.
#[derive(Debug)]
pub struct Retention {
    limit: i64,
    slack: i64,
    counts: HashMap<String, i64>,
}

impl Default for Retention {
    fn default() -> Self {
        Retention::new(RETENTION, RETENTION_SLACK)
    }
}

impl Retention {
    /// A bound of `limit` lines, enforced once `slack` lines past it.
    pub fn new(limit: i64, slack: i64) -> Self {
        Retention {
            limit,
            slack,
            counts: HashMap::new(),
        }
    }

    /// `added` lines were appended to `conversation`: deletes its oldest lines if it has
    /// grown past the bound. Returns how many were deleted.
    pub fn added(
        &mut self,
        conn: &Connection,
        conversation: &str,
        added: usize,
    ) -> rusqlite::Result<usize> {
        let count = match self.counts.get_mut(conversation) {
            Some(count) => {
                *count += added as i64;
                *count
            }
            None => {
                let count = self::count(conn, conversation)?;
                self.counts.insert(conversation.to_owned(), count);
                count
            }
        };
        if count <= self.limit + self.slack {
            return Ok(0);
        }
        let excess = count - self.limit;
        let deleted = conn.execute(
            "DELETE FROM lines WHERE id IN
             (SELECT id FROM lines WHERE conversation = ?1 ORDER BY id LIMIT ?2)",
            params![conversation, excess],
        )?;
        self.counts
            .insert(conversation.to_owned(), count - deleted as i64);
        Ok(deleted)
    }

    /// `conversation` was cleared.
    pub fn cleared(&mut self, conversation: &str) {
        self.counts.insert(conversation.to_owned(), 0);
    }
}

/// The schema version of the database at `path`, without changing it (for tests and
/// diagnostics).
pub fn version_of(path: &Path) -> Result<i64, DbError> {
    let conn = Connection::open(path)?;
    Ok(conn.query_row("PRAGMA user_version", [], |r| r.get(0))?)
}

/// Whether `conversation` has any line (for tests and diagnostics).
pub fn has_lines(conn: &Connection, conversation: &str) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT 1 FROM lines WHERE conversation = ?1 LIMIT 1",
        params![conversation],
        |_| Ok(()),
    )
    .optional()
    .map(|found| found.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(i: usize) -> Line {
        Line {
            at_ms: 1_000 + i as i64,
            kind: Kind::Other,
            sender: "bob".into(),
            text: format!("message {i}"),
        }
    }

    fn fresh() -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let conn = open(&dir.path().join(FILE)).unwrap();
        (dir, conn)
    }

    fn texts(rows: &[Row]) -> Vec<String> {
        rows.iter().map(|r| r.line.text.clone()).collect()
    }

    #[test]
    fn a_new_database_is_at_the_current_version_in_wal_mode() {
        let (dir, conn) = fresh();
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        drop(conn);
        assert_eq!(
            version_of(&dir.path().join(FILE)).unwrap(),
            current_version()
        );
    }

    #[test]
    fn pages_go_back_from_the_latest_line() {
        let (_dir, conn) = fresh();
        let lines: Vec<Line> = (0..25).map(line).collect();
        let ids = append(&conn, "room", &lines).unwrap();
        append(&conn, "other room", &[line(99)]).unwrap();
        assert_eq!(ids.len(), 25);
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
        let latest = page(&conn, "room", None, 10).unwrap();
        assert_eq!(
            texts(&latest.rows),
            (15..25).map(|i| format!("message {i}")).collect::<Vec<_>>()
        );
        assert!(latest.more);
        let earlier = page(&conn, "room", Some(latest.rows[0].id), 10).unwrap();
        assert_eq!(earlier.rows.last().unwrap().line.text, "message 14");
        let first = page(&conn, "room", Some(earlier.rows[0].id), 10).unwrap();
        assert_eq!(first.rows.len(), 5);
        assert!(!first.more);
        assert_eq!(first.rows[0].line, line(0));
        assert_eq!(page(&conn, "nobody", None, 10).unwrap(), Page::default());
    }

    #[test]
    fn search_finds_words_and_word_starts_of_one_conversation_newest_first() {
        let (_dir, conn) = fresh();
        let say = |text: &str| Line {
            text: text.into(),
            ..line(0)
        };
        append(
            &conn,
            "room",
            &[
                say("Shall we meet at five?"),
                say("Meeting moved to six"),
                say("Olá, até já"),
                say("quote \" and * and NEAR( are plain text"),
            ],
        )
        .unwrap();
        append(&conn, "elsewhere", &[say("meet me elsewhere")]).unwrap();
        assert_eq!(
            texts(&search(&conn, "room", "meet", 10).unwrap()),
            ["Meeting moved to six", "Shall we meet at five?"]
        );
        assert_eq!(
            texts(&search(&conn, "room", "meet five", 10).unwrap()),
            ["Shall we meet at five?"]
        );
        // Accents are ignored both ways.
        assert_eq!(
            texts(&search(&conn, "room", "ate", 10).unwrap()),
            ["Olá, até já"]
        );
        // Query syntax typed by the user is searched for as text, never an error.
        for typed in ["\"", "*", "NEAR(", "a OR", "\" OR 1=1 --", "-x", "(", ""] {
            assert!(search(&conn, "room", typed, 10).is_ok(), "{typed}");
        }
        assert_eq!(texts(&search(&conn, "room", "near(", 10).unwrap()).len(), 1);
        assert_eq!(search(&conn, "room", "meet", 1).unwrap().len(), 1);
    }

    #[test]
    fn clear_empties_one_conversation_and_its_search() {
        let (_dir, conn) = fresh();
        append(&conn, "room", &[line(1), line(2)]).unwrap();
        append(&conn, "other", &[line(3)]).unwrap();
        assert_eq!(clear(&conn, "room").unwrap(), 2);
        assert!(!has_lines(&conn, "room").unwrap());
        assert!(search(&conn, "room", "message", 10).unwrap().is_empty());
        assert_eq!(search(&conn, "other", "message", 10).unwrap().len(), 1);
    }

    #[test]
    fn retention_deletes_the_oldest_past_the_bound() {
        let (_dir, conn) = fresh();
        let mut retention = Retention::new(100, 10);
        for i in 0..110 {
            append(&conn, "room", &[line(i)]).unwrap();
            assert_eq!(retention.added(&conn, "room", 1).unwrap(), 0);
        }
        append(&conn, "room", &[line(110)]).unwrap();
        assert_eq!(retention.added(&conn, "room", 1).unwrap(), 11);
        assert_eq!(count(&conn, "room").unwrap(), 100);
        let all = page(&conn, "room", None, 1000).unwrap();
        assert_eq!(all.rows[0].line.text, "message 11");
        let found = texts(&search(&conn, "room", "10", 100).unwrap());
        assert!(found.contains(&"message 100".to_owned()));
        assert!(
            !found.contains(&"message 10".to_owned()),
            "gone from the index"
        );
    }

    #[test]
    fn a_version_1_database_is_migrated_and_its_lines_become_searchable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE);
        {
            // A database as version 1 of the app left it, written by hand.
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(
                "CREATE TABLE lines (
                    id INTEGER PRIMARY KEY, conversation TEXT NOT NULL, at_ms INTEGER NOT NULL,
                    kind INTEGER NOT NULL, sender TEXT NOT NULL, text TEXT NOT NULL);
                 CREATE INDEX lines_by_conversation ON lines (conversation, id);
                 INSERT INTO lines (conversation, at_ms, kind, sender, text)
                    VALUES ('tracker:127.0.0.1:7000', 5, 1, 'bob', 'an old message from bob'),
                           ('tracker:127.0.0.1:7000', 6, 0, '', 'and my old answer');
                 PRAGMA user_version = 1;",
            )
            .unwrap();
        }
        let conn = open(&path).unwrap();
        let room = "tracker:127.0.0.1:7000";
        let found = search(&conn, room, "old", 10).unwrap();
        assert_eq!(
            texts(&found),
            ["and my old answer", "an old message from bob"]
        );
        assert_eq!(found[1].line.kind, Kind::Other);
        assert_eq!(found[0].line.kind, Kind::Own);
        // New lines go on after the old ones and are indexed too.
        append(&conn, room, &[line(7)]).unwrap();
        assert_eq!(page(&conn, room, None, 10).unwrap().rows.len(), 3);
        assert_eq!(search(&conn, room, "message", 10).unwrap().len(), 2);
        drop(conn);
        assert_eq!(version_of(&path).unwrap(), current_version());
    }

    #[test]
    fn a_newer_database_is_refused_and_left_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE);
        Connection::open(&path)
            .unwrap()
            .execute_batch("CREATE TABLE future (x); PRAGMA user_version = 99;")
            .unwrap();
        assert_eq!(open(&path).err(), Some(DbError::Newer(99)));
        assert_eq!(version_of(&path).unwrap(), 99);
    }

    #[test]
    fn a_file_that_is_not_a_database_is_an_error_not_a_crash() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE);
        std::fs::write(&path, vec![0x42u8; 8192]).unwrap();
        assert!(matches!(open(&path), Err(DbError::Sqlite(_))));
    }
}
