//! The history on disk, and the one thread that owns its database.
//!
//! [`Store::open`] opens (or creates) `history.sqlite3` in the data directory, brings its
//! schema up to date ([`db`]) and starts the thread `gui-db`, which owns the connection
//! until [`Store::close`] joins it. Everything else talks to it through two bounded queues:
//!
//! - the **bulk** queue, fed by the event bridge (`network`): each batch of incoming
//!   messages is written and committed *before* the bridge hands it to the window, so a
//!   line on screen is already on disk ([`Store::append_blocking`]; the bridge thread
//!   waits, never the UI thread; while it waits, the peer's bounded event queue holds what
//!   comes next);
//! - the **UI** queue, fed by the window for the lines it makes itself (its own messages,
//!   notices) and for reads (pages, search, clear): [`Store::try_append`] never waits, and
//!   when the queue is full it says so at once, so the screen can show that the line was
//!   not saved instead of losing it silently.
//!
//! The thread takes whatever is queued (up to [`MAX_JOBS`] jobs) and runs it in one
//! transaction: writes are batched without delaying any of them, as a busy moment
//! simply gathers more per commit. Each job that writes runs in a savepoint of its own,
//! so a job that fails leaves nothing of itself behind (not half of its lines) and
//! undoes nothing of the others. Replies go out after the commit.

pub mod db;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};

use crossbeam_channel::{Receiver, Sender, TrySendError, bounded};
use iced::futures::channel::oneshot;
use rusqlite::{Connection, Transaction};

pub use db::{DbError, Kind, Line, Page, Row};

use crate::threads::lock;

/// Batches of incoming messages that may wait for the database thread.
pub const BULK_QUEUE: usize = 16;
/// Requests from the window that may wait for the database thread.
pub const UI_QUEUE: usize = 256;
/// Most jobs run in one transaction.
pub const MAX_JOBS: usize = 512;

/// What the database answers: the value, or why it failed.
pub type Answer<T> = Result<T, String>;

/// Why a request could not be queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Busy {
    /// [`UI_QUEUE`] requests already wait.
    Full,
    /// The store is closed.
    Closed,
}

impl fmt::Display for Busy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Busy::Full => "the history database is behind",
            Busy::Closed => "the history is closed",
        })
    }
}

enum Job {
    Append {
        conversation: String,
        lines: Vec<Line>,
        reply: oneshot::Sender<Answer<Vec<i64>>>,
    },
    Page {
        conversation: String,
        before: Option<i64>,
        limit: usize,
        reply: oneshot::Sender<Answer<Page>>,
    },
    Search {
        conversation: String,
        typed: String,
        limit: usize,
        reply: oneshot::Sender<Answer<Vec<Row>>>,
    },
    Clear {
        conversation: String,
        reply: oneshot::Sender<Answer<usize>>,
    },
}

/// The job that appends `lines` to `conversation`, and where its answer comes.
fn append_job(conversation: &str, lines: Vec<Line>) -> (Job, oneshot::Receiver<Answer<Vec<i64>>>) {
    let (reply, answer) = oneshot::channel();
    let job = Job::Append {
        conversation: conversation.to_owned(),
        lines,
        reply,
    };
    (job, answer)
}

struct Queues {
    bulk: Sender<Job>,
    ui: Sender<Job>,
}

struct Inner {
    path: PathBuf,
    queues: Mutex<Option<Queues>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

/// The history database's thread and its queues. Clones share the one thread.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens the history of the data directory `dir` (creating both if need be) and starts
    /// the database thread.
    pub fn open(dir: &Path) -> Result<Store, DbError> {
        std::fs::create_dir_all(dir).map_err(|e| DbError::Sqlite(e.to_string()))?;
        let path = dir.join(db::FILE);
        let conn = db::open(&path)?;
        let (bulk, bulk_jobs) = bounded(BULK_QUEUE);
        let (ui, ui_jobs) = bounded(UI_QUEUE);
        let thread = thread::Builder::new()
            .name("gui-db".into())
            .spawn(move || serve(conn, &bulk_jobs, &ui_jobs))
            .map_err(|e| DbError::Sqlite(e.to_string()))?;
        Ok(Store {
            inner: Arc::new(Inner {
                path,
                queues: Mutex::new(Some(Queues { bulk, ui })),
                thread: Mutex::new(Some(thread)),
            }),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    fn queue(&self, job: Job, bulk: bool) -> Result<(), Busy> {
        let guard = lock(&self.inner.queues);
        let queues = guard.as_ref().ok_or(Busy::Closed)?;
        if bulk {
            // Cloned so that the lock is not held while waiting for room.
            let bulk = queues.bulk.clone();
            drop(guard);
            return bulk.send(job).map_err(|_| Busy::Closed);
        }
        match queues.ui.try_send(job) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => Err(Busy::Full),
            Err(TrySendError::Disconnected(_)) => Err(Busy::Closed),
        }
    }

    /// Appends `lines` and waits until they are committed; their ids, in order. For the
    /// event bridge's thread: it waits while the queue is full. Never call it on the UI
    /// thread.
    pub fn append_blocking(&self, conversation: &str, lines: Vec<Line>) -> Answer<Vec<i64>> {
        let (job, answer) = append_job(conversation, lines);
        self.queue(job, true).map_err(|e| e.to_string())?;
        iced::futures::executor::block_on(answer).unwrap_or_else(|_| Err(Busy::Closed.to_string()))
    }

    /// Queues `lines` for appending, without waiting; the receiver answers with their ids
    /// once they are committed.
    pub fn try_append(
        &self,
        conversation: &str,
        lines: Vec<Line>,
    ) -> Result<oneshot::Receiver<Answer<Vec<i64>>>, Busy> {
        let (job, answer) = append_job(conversation, lines);
        self.queue(job, false)?;
        Ok(answer)
    }

    /// Asks for the `limit` lines before the line `before` (the latest when `None`).
    pub fn page(
        &self,
        conversation: &str,
        before: Option<i64>,
        limit: usize,
    ) -> Result<oneshot::Receiver<Answer<Page>>, Busy> {
        let (reply, answer) = oneshot::channel();
        self.queue(
            Job::Page {
                conversation: conversation.to_owned(),
                before,
                limit,
                reply,
            },
            false,
        )?;
        Ok(answer)
    }

    /// The latest `limit` lines, waiting for them: for threads other than the UI's (the
    /// start of a session).
    pub fn latest_blocking(&self, conversation: &str, limit: usize) -> Answer<Page> {
        let answer = self
            .page(conversation, None, limit)
            .map_err(|e| e.to_string())?;
        iced::futures::executor::block_on(answer).unwrap_or_else(|_| Err(Busy::Closed.to_string()))
    }

    /// Asks for the newest `limit` lines of the conversation that match `typed`.
    pub fn search(
        &self,
        conversation: &str,
        typed: &str,
        limit: usize,
    ) -> Result<oneshot::Receiver<Answer<Vec<Row>>>, Busy> {
        let (reply, answer) = oneshot::channel();
        self.queue(
            Job::Search {
                conversation: conversation.to_owned(),
                typed: typed.to_owned(),
                limit,
                reply,
            },
            false,
        )?;
        Ok(answer)
    }

    /// Asks to delete every line of the conversation.
    pub fn clear(&self, conversation: &str) -> Result<oneshot::Receiver<Answer<usize>>, Busy> {
        let (reply, answer) = oneshot::channel();
        self.queue(
            Job::Clear {
                conversation: conversation.to_owned(),
                reply,
            },
            false,
        )?;
        Ok(answer)
    }

    /// Takes no more requests, lets the thread finish what is queued, and joins it. Later
    /// calls, and requests after it, do nothing but answer [`Busy::Closed`].
    pub fn close(&self) {
        lock(&self.inner.queues).take();
        if let Some(thread) = lock(&self.inner.thread).take()
            && thread.join().is_err()
        {
            log::error!("the history database thread panicked");
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        lock(&self.queues).take();
        if let Some(thread) = lock(&self.thread).take() {
            let _ = thread.join();
        }
    }
}

/// The database thread: runs what is queued, a transaction at a time, until both queues
/// are closed and empty.
fn serve(mut conn: Connection, bulk: &Receiver<Job>, ui: &Receiver<Job>) {
    let mut retention = db::Retention::default();
    loop {
        let first = crossbeam_channel::select! {
            recv(bulk) -> job => job,
            recv(ui) -> job => job,
        };
        // An error means one queue is closed, so both are (they are dropped together):
        // what is left is finished, then the thread ends.
        let mut jobs: Vec<Job> = first.into_iter().collect();
        while jobs.len() < MAX_JOBS {
            match bulk.try_recv().or_else(|_| ui.try_recv()) {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        if jobs.is_empty() {
            return;
        }
        run(&mut conn, &mut retention, jobs);
    }
}

/// A reply waiting for the commit.
enum Reply {
    Ids(oneshot::Sender<Answer<Vec<i64>>>, Answer<Vec<i64>>),
    Page(oneshot::Sender<Answer<Page>>, Answer<Page>),
    Rows(oneshot::Sender<Answer<Vec<Row>>>, Answer<Vec<Row>>),
    Count(oneshot::Sender<Answer<usize>>, Answer<usize>),
}

impl Reply {
    /// The answer, or `error` when the transaction could not be committed.
    fn send(self, error: Option<&str>) {
        fn pick<T>(answer: Answer<T>, error: Option<&str>) -> Answer<T> {
            match error {
                Some(e) => Err(e.to_owned()),
                None => answer,
            }
        }
        // The asker may be gone (a screen that closed): the answer is then unread.
        match self {
            Reply::Ids(tx, a) => drop(tx.send(pick(a, error))),
            Reply::Page(tx, a) => drop(tx.send(pick(a, error))),
            Reply::Rows(tx, a) => drop(tx.send(pick(a, error))),
            Reply::Count(tx, a) => drop(tx.send(pick(a, error))),
        }
    }
}

fn run(conn: &mut Connection, retention: &mut db::Retention, jobs: Vec<Job>) {
    let text = |e: rusqlite::Error| e.to_string();
    let mut tx = match conn.transaction() {
        Ok(tx) => tx,
        Err(e) => {
            log::error!("history: cannot begin a transaction: {e}");
            let error = e.to_string();
            for job in jobs {
                answer_error(job, &error);
            }
            return;
        }
    };
    let mut replies = Vec::with_capacity(jobs.len());
    for job in jobs {
        match job {
            Job::Append {
                conversation,
                lines,
                reply,
            } => {
                let ids =
                    in_savepoint(&mut tx, |sp| db::append(sp, &conversation, &lines)).map_err(text);
                if ids.is_ok()
                    && let Err(e) = in_savepoint(&mut tx, |sp| {
                        retention.added(sp, &conversation, lines.len())
                    })
                {
                    log::warn!("history: cannot apply the retention bound: {e}");
                }
                replies.push(Reply::Ids(reply, ids));
            }
            Job::Page {
                conversation,
                before,
                limit,
                reply,
            } => {
                let page = db::page(&tx, &conversation, before, limit).map_err(text);
                replies.push(Reply::Page(reply, page));
            }
            Job::Search {
                conversation,
                typed,
                limit,
                reply,
            } => {
                let rows = db::search(&tx, &conversation, &typed, limit).map_err(text);
                replies.push(Reply::Rows(reply, rows));
            }
            Job::Clear {
                conversation,
                reply,
            } => {
                let cleared = in_savepoint(&mut tx, |sp| db::clear(sp, &conversation));
                if cleared.is_ok() {
                    retention.cleared(&conversation);
                }
                replies.push(Reply::Count(reply, cleared.map_err(text)));
            }
        }
    }
    let committed = tx.commit().map_err(text);
    if let Err(e) = &committed {
        log::error!("history: cannot commit: {e}");
    }
    let error = committed.err();
    for reply in replies {
        reply.send(error.as_deref());
    }
}

/// Runs `work` in a savepoint of `tx`: kept if it succeeds, rolled back if it fails, so
/// that a failing job leaves none of its changes and undoes none of the jobs before it.
fn in_savepoint<T>(
    tx: &mut Transaction<'_>,
    work: impl FnOnce(&Connection) -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    let savepoint = tx.savepoint()?;
    let done = work(&savepoint)?;
    savepoint.commit()?;
    Ok(done)
}

fn answer_error(job: Job, error: &str) {
    let e = error.to_owned();
    match job {
        Job::Append { reply, .. } => drop(reply.send(Err(e))),
        Job::Page { reply, .. } => drop(reply.send(Err(e))),
        Job::Search { reply, .. } => drop(reply.send(Err(e))),
        Job::Clear { reply, .. } => drop(reply.send(Err(e))),
    }
}

#[cfg(test)]
mod tests {
    use iced::futures::executor::block_on;

    use super::*;
    use crate::test_support::{threads_named, wait_until};

    fn line(text: &str) -> Line {
        Line {
            at_ms: 1,
            kind: Kind::Other,
            sender: "bob".into(),
            text: text.into(),
        }
    }

    #[test]
    fn a_failing_job_leaves_none_of_its_lines_and_the_others_of_its_transaction_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = db::open(&dir.path().join(db::FILE)).unwrap();
        // A line SQLite refuses half-way through a job, as a full disk or a damaged
        // page would refuse it.
        conn.execute_batch(
            "CREATE TRIGGER poison BEFORE INSERT ON lines WHEN new.text = 'poison'
             BEGIN SELECT RAISE(ABORT, 'poisoned'); END;",
        )
        .unwrap();
        let mut retention = db::Retention::default();
        let (before, before_ids) = append_job("room", vec![line("b1"), line("b2")]);
        let (failing, failing_ids) =
            append_job("room", vec![line("f1"), line("poison"), line("f3")]);
        let (after, after_ids) = append_job("other", vec![line("a1")]);
        run(&mut conn, &mut retention, vec![before, failing, after]);

        assert_eq!(block_on(before_ids).unwrap().unwrap().len(), 2);
        assert!(
            block_on(failing_ids)
                .unwrap()
                .unwrap_err()
                .contains("poisoned")
        );
        assert_eq!(block_on(after_ids).unwrap().unwrap().len(), 1);
        let texts = |conversation: &str| -> Vec<String> {
            db::page(&conn, conversation, None, 100)
                .unwrap()
                .rows
                .into_iter()
                .map(|r| r.line.text)
                .collect()
        };
        assert_eq!(texts("room"), ["b1", "b2"], "nothing of the failing job");
        assert_eq!(texts("other"), ["a1"]);
    }

    #[test]
    fn writes_from_both_queues_are_committed_in_order_and_the_thread_is_joined() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        wait_until(|| threads_named("gui-db") >= 1);
        let bridge = {
            let store = store.clone();
            thread::spawn(move || {
                for i in 0..200 {
                    let ids = store
                        .append_blocking("room", vec![line(&format!("in {i}"))])
                        .unwrap();
                    assert_eq!(ids.len(), 1);
                }
            })
        };
        let mut answers = Vec::new();
        for i in 0..100 {
            loop {
                match store.try_append("room", vec![line(&format!("ui {i}"))]) {
                    Ok(answer) => break answers.push(answer),
                    Err(Busy::Full) => thread::yield_now(),
                    Err(Busy::Closed) => panic!("closed"),
                }
            }
        }
        bridge.join().unwrap();
        for answer in answers {
            assert_eq!(block_on(answer).unwrap().unwrap().len(), 1);
        }
        let page = store.latest_blocking("room", 1000).unwrap();
        assert_eq!(page.rows.len(), 300);
        // Each source's lines keep their order.
        let of = |prefix: &str| {
            page.rows
                .iter()
                .filter(|r| r.line.text.starts_with(prefix))
                .map(|r| r.line.text.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            of("in "),
            (0..200).map(|i| format!("in {i}")).collect::<Vec<_>>()
        );
        assert_eq!(
            of("ui "),
            (0..100).map(|i| format!("ui {i}")).collect::<Vec<_>>()
        );
        let found = block_on(store.search("room", "ui", 5).unwrap())
            .unwrap()
            .unwrap();
        assert_eq!(found[0].line.text, "ui 99");
        assert_eq!(block_on(store.clear("room").unwrap()).unwrap(), Ok(300));

        let path = store.path().to_path_buf();
        // close() returns once the thread has been joined.
        store.close();
        assert_eq!(store.try_append("room", vec![]).err(), Some(Busy::Closed));
        assert_eq!(
            store.append_blocking("room", vec![line("late")]),
            Err(Busy::Closed.to_string())
        );
        // Reopened, what was committed is there.
        let store = Store::open(path.parent().unwrap()).unwrap();
        assert!(store.latest_blocking("room", 10).unwrap().rows.is_empty());
    }

    #[test]
    fn a_full_ui_queue_is_refused_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        // Hold the database thread in a long transaction of its own: a write lock taken
        // by another connection makes its commit wait (busy timeout), so the queue fills.
        let other = db::open(store.path()).unwrap();
        other.execute_batch("BEGIN IMMEDIATE").unwrap();
        let mut queued = Vec::new();
        let refused = loop {
            match store.try_append("room", vec![line("x")]) {
                Ok(answer) => queued.push(answer),
                Err(e) => break e,
            }
            assert!(queued.len() <= UI_QUEUE + MAX_JOBS, "never refused");
        };
        assert_eq!(refused, Busy::Full);
        other.execute_batch("COMMIT").unwrap();
        for answer in queued {
            assert!(block_on(answer).unwrap().is_ok());
        }
    }
}
