//! The root of the app: which screen is shown, and the wiring between screens, the network
//! and the window.

use std::path::PathBuf;

use iced::widget::operation;
use iced::{Element, Subscription, Task, Theme, window};

use crate::data::form::Form;
use crate::data::settings::{Problem, Settings};
use crate::store::Store;
use crate::i18n::Lang;
use crate::network::{self, Session, StartError};
use crate::screen::chat::{self, Chat};
use crate::screen::connect::{self, Connect};
use crate::signals::{self, Signal};

/// How the app starts: language, prefilled form, and whether to connect at once.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The language of every string.
    pub lang: Lang,
    /// The form as the command line prefilled it.
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
}

/// The screen shown.
#[derive(Debug)]
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
}

/// Everything that can happen to the app.
#[derive(Debug, Clone)]
pub enum Message {
    /// On the connect screen.
    Connect(connect::Message),
    /// On the chat screen.
    Chat(chat::Message),
    /// Starting a peer ended.
    Started(Result<Session, StartError>),
    /// Events from the running peer.
    Network(Vec<p2p_core::Event>),
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

impl App {
    /// The app as `options` say, with the task that connects at once if asked to.
    pub fn new(options: Options) -> (App, Task<Message>) {
        let mut app = App {
            lang: options.lang,
            screen: Screen::Connect(Connect::new(options.form, local_addresses())),
            closing: false,
            signals: options.signals,
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

    /// The running session, once connected.
    pub fn session(&self) -> Option<&Session> {
        match &self.screen {
            Screen::Chat(chat) => chat.session(),
            Screen::Connect(_) => None,
        }
    }

    /// The window title: the user and address once connected.
    pub fn title(&self) -> String {
        match &self.screen {
            Screen::Connect(_) => self.lang.strings().app_title.to_owned(),
            Screen::Chat(chat) => chat.title(self.lang),
        }
    }

    /// Handles a message.
    pub fn update(&mut self, message: Message) -> Task<Message> {
        match (message, &mut self.screen) {
            (Message::Connect(m), Screen::Connect(screen)) => match screen.update(m) {
                connect::Action::Start(request) => network::start(request).map(Message::Started),
                connect::Action::None => Task::none(),
            },
            (Message::Started(Ok(session)), Screen::Connect(_)) => {
                if self.closing {
                    return network::close(session).map(|()| Message::Closed);
                }
                self.screen = Screen::Chat(Chat::new(session, self.lang));
                operation::focus(chat::MESSAGE_BOX)
            }
            (Message::Started(Err(error)), Screen::Connect(screen)) => {
                if self.closing {
                    return iced::exit();
                }
                screen.failed(error);
                Task::none()
            }
            (Message::Chat(m), Screen::Chat(screen)) => {
                screen.update(m, self.lang).map(Message::Chat)
            }
            (Message::Network(events), Screen::Chat(screen)) => {
                screen.network(events, self.lang).map(Message::Chat)
            }
            (Message::CloseRequested(_) | Message::Signal(_), _) => self.leave(),
            (Message::Closed, _) => iced::exit(),
            (message, _) => {
                log::debug!("message for another screen ignored: {message:?}");
                Task::none()
            }
        }
    }

    /// Leaves: closes the session off the UI thread, then exits. Once only: the session is
    /// handed over to be closed, so asking again does nothing more.
    fn leave(&mut self) -> Task<Message> {
        self.closing = true;
        match &mut self.screen {
            Screen::Chat(chat) => match chat.take_session() {
                Some(session) => network::close(session).map(|()| Message::Closed),
                None => Task::none(),
            },
            // A start under way answers first; its session is closed then.
            Screen::Connect(c) if matches!(c.status(), connect::Status::Working) => Task::none(),
            Screen::Connect(_) => iced::exit(),
        }
    }

    /// The screen shown, in the app's language.
    pub fn view(&self) -> Element<'_, Message> {
        match &self.screen {
            Screen::Connect(screen) => screen.view(self.lang).map(Message::Connect),
            Screen::Chat(screen) => screen.view(self.lang).map(Message::Chat),
        }
    }

    /// The peer's events while connected, the window's close requests and the signals
    /// that ask the process to end.
    pub fn subscription(&self) -> Subscription<Message> {
        let network = match self.session() {
            Some(session) => session.events().map(Message::Network),
            None => Subscription::none(),
        };
        let signals = match &self.signals {
            Some(inbox) => signals::subscription(inbox).map(Message::Signal),
            None => Subscription::none(),
        };
        Subscription::batch([
            network,
            window::close_requests().map(Message::CloseRequested),
            signals,
        ])
    }

    /// The theme.
    pub fn theme(&self) -> Theme {
        Theme::Light
    }
}

/// Runs the app in a window until it is closed.
pub fn run(options: Options) -> iced::Result {
    iced::application(move || App::new(options.clone()), App::update, App::view)
        .title(App::title)
        .subscription(App::subscription)
        .theme(App::theme)
        .exit_on_close_request(false)
        .window_size((900.0, 640.0))
        .run()
}
