//! The root of the app: which screen is shown, and the wiring between screens, the network,
//! the settings, the history and the window.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use iced::widget::{checkbox, column, container, operation, pick_list, row, text};
use iced::{Alignment, Element, Fill, Subscription, Task, Theme, window};

use crate::data::form::Form;
use crate::data::secret::Secret;
use crate::data::settings::{Problem, Settings, ThemeChoice};
use crate::i18n::{Lang, Strings, fill};
use crate::network::{self, Inbound, Session, StartError};
use crate::notify::{self, Notifier};
use crate::screen::chat::{self, Chat};
use crate::screen::connect::{self, Connect};
use crate::signals::{self, Signal};
use crate::store::Store;
use crate::threads::Threads;

/// How the app starts: language, prefilled form, and whether to connect at once.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The language of every string.
    pub lang: Lang,
    /// The form as the saved settings and the command line prefilled it.
    pub form: Form,
    /// Press Connect at once (skipping the "start alone?" question).
    pub connect: bool,
    /// SIGINT and SIGTERM, when the process listens for them ([`signals::Listener`]).
    pub signals: Option<signals::Inbox>,
    /// Where settings and history are kept; `None`: nothing is kept.
    pub data_dir: Option<PathBuf>,
    /// The settings read at start (the form above already holds the saved one).
    pub settings: Settings,
    /// Why the saved settings could not be used, shown on the connect screen.
    pub settings_problem: Option<Problem>,
    /// The history database, when it could be opened.
    pub store: Option<Store>,
    /// Why the history database could not be opened, shown on the chat screen.
    pub store_problem: Option<String>,
    /// The desktop notifications' thread, when there is one.
    pub notifier: Option<Notifier>,
}

/// The screen shown. There is one per app, so the size of its variants does not matter.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Screen {
    /// Filling in who and how.
    Connect(Connect),
    /// Chatting.
    Chat(Chat),
}

/// The app's state.
#[derive(Debug)]
pub struct App {
    lang: Lang,
    screen: Screen,
    closing: bool,
    signals: Option<signals::Inbox>,
    data_dir: Option<PathBuf>,
    settings: Settings,
    /// What went wrong with the settings file, shown until the next successful connect.
    settings_problem: Option<Problem>,
    store: Option<Store>,
    store_problem: Option<String>,
    notifier: Option<Notifier>,
    focused: bool,
    /// The number of the latest start asked for: an answer to an older one (cancelled) is
    /// closed and ignored.
    start: u64,
    restarting: bool,
    /// The threads that start and close sessions and bridge their events: joined as the
    /// app exits.
    threads: Threads,
}

/// How long the app, as it exits, waits for its threads (`gui-start`, `gui-close`,
/// `gui-events`) to end once the session is closed. They end promptly then; the bound
/// only keeps a stuck one from holding the exit (it is logged and left).
pub const EXIT_JOIN: Duration = Duration::from_secs(2);

/// Everything that can happen to the app.
#[derive(Debug, Clone)]
pub enum Message {
    /// On the connect screen.
    Connect(connect::Message),
    /// On the chat screen.
    Chat(chat::Message),
    /// Start number `.0` ended.
    Started(u64, Result<Session, StartError>),
    /// A restart (after the tracker was lost) ended.
    Restarted(Result<Session, StartError>),
    /// Events from the running peer, saved in the history.
    Network(Inbound),
    /// The window gained (true) or lost the focus.
    Focus(bool),
    /// The desktop notification about this conversation was clicked.
    NotificationClicked(String),
    /// Chose a language.
    Lang(Lang),
    /// Chose a theme.
    Theme(ThemeChoice),
    /// Turned desktop notifications on or off.
    Notifications(bool),
    /// The user asked to close the window.
    CloseRequested(window::Id),
    /// The process was asked to end (SIGINT, SIGTERM): it leaves as closing the window does.
    Signal(Signal),
    /// The peer has left the network; the window may close.
    Closed,
}

/// This machine's interface addresses, loopback first, for the IP field's list.
pub fn local_addresses() -> Vec<String> {
    let mut addresses = vec!["127.0.0.1".to_owned()];
    if let Ok(interfaces) = if_addrs::get_if_addrs() {
        for interface in interfaces {
            let ip = interface.ip().to_string();
            if !addresses.contains(&ip) {
                addresses.push(ip);
            }
        }
    }
    addresses
}

/// A language as the language list shows it (in its own language).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct LangItem(Lang);

impl std::fmt::Display for LangItem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self.0 {
            Lang::En => "English",
            Lang::Pt => "Português",
        })
    }
}

/// A theme choice as the theme list shows it, in the app's language.
#[derive(Debug, Clone, Copy)]
struct ThemeItem(ThemeChoice, &'static Strings);

impl PartialEq for ThemeItem {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}

impl std::fmt::Display for ThemeItem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self.0 {
            ThemeChoice::System => self.1.theme_system,
            ThemeChoice::Light => self.1.theme_light,
            ThemeChoice::Dark => self.1.theme_dark,
        })
    }
}

fn focus_event(event: iced::Event, _: iced::event::Status, _: window::Id) -> Option<Message> {
    match event {
        iced::Event::Window(window::Event::Focused) => Some(Message::Focus(true)),
        iced::Event::Window(window::Event::Unfocused) => Some(Message::Focus(false)),
        _ => None,
    }
}

impl App {
    /// The app as `options` say, with the task that connects at once if asked to.
    pub fn new(options: Options) -> (App, Task<Message>) {
        let mut app = App {
            lang: options.lang,
            screen: Screen::Connect(Connect::new(options.form, local_addresses())),
            closing: false,
            signals: options.signals,
            data_dir: options.data_dir,
            settings: options.settings,
            settings_problem: options.settings_problem,
            store: options.store,
            store_problem: options.store_problem,
            notifier: options.notifier,
            // Not known to be focused until the window says so.
            focused: false,
            start: 0,
            restarting: false,
            threads: Threads::default(),
        };
        let task = if options.connect {
            app.update(Message::Connect(connect::Message::Connect))
                .chain(app.update(Message::Connect(connect::Message::ConfirmAlone)))
        } else {
            operation::focus("username")
        };
        (app, task)
    }

    /// The language in use.
    pub fn lang(&self) -> Lang {
        self.lang
    }

    /// The screen shown.
    pub fn screen(&self) -> &Screen {
        &self.screen
    }

    /// The settings as they stand.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// What went wrong with the settings, if anything.
    pub fn settings_problem(&self) -> Option<&Problem> {
        self.settings_problem.as_ref()
    }

    /// The running session, once connected.
    pub fn session(&self) -> Option<&Session> {
        match &self.screen {
            Screen::Chat(chat) => chat.session(),
            Screen::Connect(_) => None,
        }
    }

    /// The window title: the unread count, the user and address once connected.
    pub fn title(&self) -> String {
        match &self.screen {
            Screen::Connect(_) => self.lang.strings().app_title.to_owned(),
            Screen::Chat(chat) => chat.title(self.lang),
        }
    }

    /// Writes the settings to the data directory (a small file, written at a connect or a
    /// change of setting); a failure is shown.
    fn save_settings(&mut self) {
        let Some(dir) = &self.data_dir else {
            return;
        };
        if let Err(e) = self.settings.save(dir) {
            log::warn!("cannot save the settings: {e}");
            self.settings_problem = Some(Problem::NotSaved(e.to_string()));
        }
    }

    /// Handles a message.
    pub fn update(&mut self, message: Message) -> Task<Message> {
        match (message, &mut self.screen) {
            (Message::Connect(m), Screen::Connect(screen)) => match screen.update(m) {
                connect::Action::Start(request) => {
                    self.start += 1;
                    let start = self.start;
                    network::start(
                        request,
                        self.store.clone(),
                        self.data_dir.clone(),
                        &self.threads,
                    )
                    .map(move |result| Message::Started(start, result))
                }
                connect::Action::Cancel => {
                    // The start under way answers later; its session is closed then.
                    self.start += 1;
                    Task::none()
                }
                connect::Action::None => Task::none(),
            },
            (Message::Started(start, Ok(session)), Screen::Connect(screen)) => {
                if self.closing || start != self.start {
                    let closed = network::close(session, &self.threads);
                    return if self.closing {
                        closed.map(|()| Message::Closed)
                    } else {
                        closed.discard()
                    };
                }
                // Remembered at each successful connect (a failed save is shown again).
                self.settings.form = screen.form().clone();
                // The passphrase is never remembered (serde skips it too).
                self.settings.form.passphrase = Secret::default();
                self.settings.language = Some(self.lang);
                self.settings_problem = None;
                self.save_settings();
                let mut chat = Chat::new(session, self.lang, self.focused);
                if let Some(problem) = &self.store_problem {
                    chat.history_off(problem.clone(), self.lang);
                }
                self.screen = Screen::Chat(chat);
                operation::focus(chat::MESSAGE_BOX)
            }
            (Message::Started(start, Err(error)), Screen::Connect(screen)) => {
                if self.closing {
                    return self.exit();
                }
                if start == self.start {
                    screen.failed(error);
                }
                Task::none()
            }
            (Message::Started(_, Ok(session)), Screen::Chat(_)) => {
                network::close(session, &self.threads).discard()
            }
            (Message::Chat(chat::Message::Restart), Screen::Chat(screen)) => {
                let Some(session) = screen.take_session() else {
                    return Task::none();
                };
                self.restarting = true;
                // The same request on the same port, so that the others find this peer
                // where they knew it.
                let mut request = session.request().clone();
                request.port = session.peer().bound_addr().port();
                let store = self.store.clone();
                let data_dir = self.data_dir.clone();
                let threads = self.threads.clone();
                network::close(session, &self.threads)
                    .then(move |()| {
                        network::start(request.clone(), store.clone(), data_dir.clone(), &threads)
                    })
                    .map(Message::Restarted)
            }
            (Message::Restarted(result), Screen::Chat(screen)) => {
                self.restarting = false;
                match result {
                    Ok(session) if self.closing => {
                        network::close(session, &self.threads).map(|()| Message::Closed)
                    }
                    _ if self.closing => self.exit(),
                    Ok(session) => screen.resume(session, self.lang).map(Message::Chat),
                    Err(error) => {
                        let why = connect::describe_start_error(&error, self.lang.strings());
                        screen.restart_failed(why).map(Message::Chat)
                    }
                }
            }
            (Message::Chat(m), Screen::Chat(screen)) => {
                screen.update(m, self.lang).map(Message::Chat)
            }
            (Message::Network(inbound), Screen::Chat(screen)) => {
                let (task, notification) = screen.network(
                    inbound,
                    self.lang,
                    self.settings.notifications && self.notifier.is_some(),
                    Instant::now(),
                );
                if let (Some(notification), Some(notifier)) = (notification, &self.notifier) {
                    notifier.notify(notification);
                }
                task.map(Message::Chat)
            }
            (Message::Focus(focused), screen) => {
                self.focused = focused;
                if let Screen::Chat(chat) = screen {
                    chat.focus(focused);
                }
                Task::none()
            }
            (Message::NotificationClicked(conversation), screen) => {
                if let Screen::Chat(chat) = screen
                    && chat
                        .session()
                        .is_some_and(|s| s.conversation() == conversation)
                {
                    chat.read();
                }
                window::latest().and_then(window::gain_focus)
            }
            (Message::Lang(lang), _) => {
                self.lang = lang;
                self.settings.language = Some(lang);
                self.save_settings();
                Task::none()
            }
            (Message::Theme(theme), _) => {
                self.settings.theme = theme;
                self.save_settings();
                Task::none()
            }
            (Message::Notifications(on), _) => {
                self.settings.notifications = on;
                self.save_settings();
                Task::none()
            }
            (Message::CloseRequested(_) | Message::Signal(_), _) => self.leave(),
            (Message::Closed, _) => self.exit(),
            (message, _) => {
                log::debug!("message for another screen ignored: {message:?}");
                Task::none()
            }
        }
    }

    /// Ends the app, once its session is closed: joins the app's threads (up to
    /// [`EXIT_JOIN`]), then asks the runtime to exit.
    fn exit(&self) -> Task<Message> {
        if !self.threads.join_within(EXIT_JOIN) {
            log::warn!("leaving with a thread still running");
        }
        iced::exit()
    }

    /// The app's threads that are still running (none once it has exited).
    pub fn threads_running(&self) -> usize {
        self.threads.len()
    }

    /// Leaves: closes the session off the UI thread, then exits. Once only: the session is
    /// handed over to be closed, so asking again does nothing more.
    fn leave(&mut self) -> Task<Message> {
        let first = !self.closing;
        self.closing = true;
        match &mut self.screen {
            Screen::Chat(chat) => match chat.take_session() {
                Some(session) => network::close(session, &self.threads).map(|()| Message::Closed),
                // A restart under way answers first; its session is closed then.
                None if self.restarting => Task::none(),
                None if first => self.exit(),
                None => Task::none(),
            },
            // A start under way answers first; its session is closed then.
            Screen::Connect(c) if matches!(c.status(), connect::Status::Working) => Task::none(),
            Screen::Connect(_) => self.exit(),
        }
    }

    /// The settings bar: language, theme, and (when chatting) notifications.
    fn settings_bar(&self) -> Element<'_, Message> {
        let s = self.lang.strings();
        let langs = [LangItem(Lang::En), LangItem(Lang::Pt)];
        let themes = ThemeChoice::ALL.map(|t| ThemeItem(t, s));
        let mut bar = row![
            text(s.language).size(13),
            pick_list(langs, Some(LangItem(self.lang)), |l: LangItem| {
                Message::Lang(l.0)
            })
            .text_size(13)
            .padding([2, 6]),
            text(s.theme).size(13),
            pick_list(
                themes,
                Some(ThemeItem(self.settings.theme, s)),
                |t: ThemeItem| { Message::Theme(t.0) }
            )
            .text_size(13)
            .padding([2, 6]),
        ]
        .spacing(6)
        .align_y(Alignment::Center);
        if matches!(self.screen, Screen::Chat(_)) && self.notifier.is_some() {
            bar = bar.push(
                checkbox(self.settings.notifications)
                    .label(s.notifications)
                    .text_size(13)
                    .on_toggle(Message::Notifications),
            );
        }
        container(bar).padding([4, 8]).align_right(Fill).into()
    }

    /// What went wrong with the settings, in words.
    fn settings_notice(&self) -> Option<String> {
        let s = self.lang.strings();
        Some(match self.settings_problem.as_ref()? {
            Problem::Damaged {
                reason,
                kept_as: Some(path),
            } => fill(s.settings_damaged, &[&path.display(), reason]),
            Problem::Damaged {
                reason,
                kept_as: None,
            } => fill(s.settings_damaged_kept, &[reason]),
            Problem::Newer { version } => fill(s.settings_newer, &[version]),
            Problem::Unreadable(why) => fill(s.settings_unreadable, &[why]),
            Problem::NotSaved(why) => fill(s.settings_not_saved, &[why]),
        })
    }

    /// The screen shown, in the app's language, under the settings bar.
    pub fn view(&self) -> Element<'_, Message> {
        let screen = match &self.screen {
            Screen::Connect(screen) => screen.view(self.lang).map(Message::Connect),
            Screen::Chat(screen) => screen.view(self.lang).map(Message::Chat),
        };
        let mut page = column![self.settings_bar()];
        let connecting = matches!(self.screen, Screen::Connect(_));
        if let Some(notice) = self.settings_notice()
            && (connecting || matches!(self.settings_problem, Some(Problem::NotSaved(_))))
        {
            page = page.push(
                container(text(notice).size(13).style(text::warning))
                    .padding([4, 12])
                    .width(Fill),
            );
        }
        page.push(screen).into()
    }

    /// The peer's events while connected, the window's focus and close requests, and the
    /// signals that ask the process to end.
    pub fn subscription(&self) -> Subscription<Message> {
        let network = match self.session() {
            Some(session) => session.events().map(Message::Network),
            None => Subscription::none(),
        };
        let signals = match &self.signals {
            Some(inbox) => signals::subscription(inbox).map(Message::Signal),
            None => Subscription::none(),
        };
        let clicks = match &self.notifier {
            Some(notifier) => notify::clicks(notifier).map(Message::NotificationClicked),
            None => Subscription::none(),
        };
        Subscription::batch([
            network,
            clicks,
            window::close_requests().map(Message::CloseRequested),
            iced::event::listen_with(focus_event),
            signals,
        ])
    }

    /// The theme: the one chosen, or `None` to follow the system's light or dark
    /// preference (Iced reads it from the desktop portal on Linux).
    pub fn theme(&self) -> Option<Theme> {
        match self.settings.theme {
            ThemeChoice::System => None,
            ThemeChoice::Light => Some(Theme::Light),
            ThemeChoice::Dark => Some(Theme::Dark),
        }
    }
}

/// Runs the app in a window until it is closed.
pub fn run(options: Options) -> iced::Result {
    iced::application(move || App::new(options.clone()), App::update, App::view)
        .title(App::title)
        .subscription(App::subscription)
        .theme(App::theme)
        .exit_on_close_request(false)
        .window_size((900.0, 700.0))
        .run()
}
