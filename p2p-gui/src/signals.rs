//! SIGINT and SIGTERM (Ctrl+C in a terminal, the session manager at logout): the app leaves
//! exactly as closing its window does.
//!
//! No work is done in a signal handler. signal-hook's iterator, on a thread of its own
//! ([`Listener`]), receives each signal and hands it to the UI through a small channel
//! that an Iced subscription reads ([`subscription`]); its message makes the app leave as
//! a close request does (goodbyes, tracker leave, threads joined, exit status 0). The
//! first signal also arms signal-hook's conditional shutdown, so that a second one while
//! leaving ends the process at once (status 128 + the signal's number), as terminal
//! programs do.
//!
//! The listening thread lives from [`Listener::start`] (before the window opens) to
//! [`Listener::stop`] (after it has closed), which closes the iterator and joins it.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};

use iced::Subscription;
use iced::futures::channel::mpsc;
use iced::futures::{Stream, StreamExt, stream};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::flag;
use signal_hook::iterator::{Handle, Signals};

use crate::threads::lock;

/// A signal that asks the app to leave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGINT: Ctrl+C in the terminal that started the app.
    Interrupt,
    /// SIGTERM: the session manager at logout, `kill`, a service manager.
    Terminate,
}

impl Signal {
    fn from_number(number: i32) -> Option<Signal> {
        match number {
            SIGINT => Some(Signal::Interrupt),
            SIGTERM => Some(Signal::Terminate),
            _ => None,
        }
    }

    /// The signal's usual name.
    pub fn name(self) -> &'static str {
        match self {
            Signal::Interrupt => "SIGINT",
            Signal::Terminate => "SIGTERM",
        }
    }
}

/// The UI's end of the listener: what [`subscription`] reads. Every clone is the same
/// inbox; the subscription takes its receiver once.
#[derive(Clone)]
pub struct Inbox {
    receiver: Arc<Mutex<Option<mpsc::Receiver<Signal>>>>,
}

impl fmt::Debug for Inbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("signals::Inbox")
    }
}

impl Hash for Inbox {
    /// There is one listener per process: every inbox is the same subscription.
    fn hash<H: Hasher>(&self, state: &mut H) {
        "signals".hash(state);
    }
}

/// The signals that ask the app to leave, as a subscription.
pub fn subscription(inbox: &Inbox) -> Subscription<Signal> {
    Subscription::run_with(inbox.clone(), signal_stream)
}

fn signal_stream(inbox: &Inbox) -> impl Stream<Item = Signal> + use<> {
    let receiver = lock(&inbox.receiver).take();
    match receiver {
        Some(receiver) => receiver.left_stream(),
        None => stream::empty().right_stream(),
    }
}

/// The thread that receives SIGINT and SIGTERM, and what it registered.
pub struct Listener {
    handle: Handle,
    thread: Option<JoinHandle<()>>,
    /// Set by the first signal (in the handler, by signal-hook): a second one then ends
    /// the process.
    armed: Arc<AtomicBool>,
    inbox: Inbox,
}

impl fmt::Debug for Listener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Listener").finish_non_exhaustive()
    }
}

/// Signals queued for the UI; more are not needed, as the first one already makes the app
/// leave.
const QUEUE: usize = 2;

impl Listener {
    /// Starts listening for SIGINT and SIGTERM.
    pub fn start() -> io::Result<Listener> {
        let armed = Arc::new(AtomicBool::new(false));
        for signal in [SIGINT, SIGTERM] {
            // signal-hook runs a signal's actions in the order they were registered: the
            // shutdown, which finds the flag unset on the first signal, then the action that
            // sets it, so that only a second signal ends the process. They stay for the
            // life of the process (unregistering would leave the signal ignored).
            flag::register_conditional_shutdown(signal, 128 + signal, Arc::clone(&armed))?;
            flag::register(signal, Arc::clone(&armed))?;
        }
        let mut signals = Signals::new([SIGINT, SIGTERM])?;
        let handle = signals.handle();
        let (mut sender, receiver) = mpsc::channel(QUEUE);
        let spawned = thread::Builder::new()
            .name("gui-signals".into())
            .spawn(move || {
                for signal in signals.forever().filter_map(Signal::from_number) {
                    eprintln!(
                        "p2p-gui: {} received: leaving the network (a second one quits at once)",
                        signal.name()
                    );
                    // Full: signals already on their way make the app leave all the same.
                    let _ = sender.try_send(signal);
                }
            });
        let thread = match spawned {
            Ok(thread) => thread,
            Err(e) => {
                armed.store(true, Ordering::SeqCst);
                return Err(e);
            }
        };
        Ok(Listener {
            handle,
            thread: Some(thread),
            armed,
            inbox: Inbox {
                receiver: Arc::new(Mutex::new(Some(receiver))),
            },
        })
    }

    /// What the app's subscription reads.
    pub fn inbox(&self) -> Inbox {
        self.inbox.clone()
    }

    /// Stops listening and joins the thread. From then on the process is on its way out:
    /// SIGINT or SIGTERM ends it at once.
    pub fn stop(mut self) {
        self.shut();
    }

    fn shut(&mut self) {
        self.armed.store(true, Ordering::SeqCst);
        self.handle.close();
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            log::error!("the signal thread panicked");
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.shut();
    }
}
