//! The real app driven as a window would drive it: views simulated by `iced_test`, the
//! messages they produce fed to `update`, tasks run to completion.

use iced::futures::StreamExt;
use iced_test::selector::id;
use iced_test::simulator;
use p2p_gui::app::{App, Message, Options, Screen};
use p2p_gui::data::form::Form;
use p2p_gui::data::history::{EntryKind, History};
use p2p_gui::screen::chat;

/// The app with `form` prefilled, and nothing else.
pub fn app(form: Form) -> App {
    App::new(Options {
        form,
        ..Options::default()
    })
    .0
}

/// Runs a task to completion and returns what it asked the runtime to do.
pub fn actions(task: iced::Task<Message>) -> Vec<iced_runtime::Action<Message>> {
    match iced_runtime::task::into_stream(task) {
        Some(stream) => iced::futures::executor::block_on(stream.collect::<Vec<_>>()),
        None => Vec::new(),
    }
}

/// Runs a task to completion and returns the messages it produced (widget operations,
/// such as focusing a field, have no effect outside a window and are dropped).
pub fn run_task(task: iced::Task<Message>) -> Vec<Message> {
    actions(task)
        .into_iter()
        .filter_map(|action| match action {
            iced_runtime::Action::Output(message) => Some(message),
            _ => None,
        })
        .collect()
}

/// Whether a task, run to completion, ends the app.
pub fn exits(task: iced::Task<Message>) -> bool {
    actions(task)
        .iter()
        .any(|action| matches!(action, iced_runtime::Action::Exit))
}

/// Feeds a message to the app and, recursively, what its task produces.
pub fn update(app: &mut App, message: Message) {
    let mut queue = vec![message];
    while let Some(message) = queue.pop() {
        let mut produced = run_task(app.update(message));
        produced.reverse();
        queue.extend(produced);
    }
}

/// Does something to a fresh simulator of the app's view, then feeds the messages that
/// produced to the app (a simulator borrows the app, so it cannot outlive the action).
pub fn interact(app: &mut App, act: impl FnOnce(&mut iced_test::Simulator<'_, Message>)) {
    let messages: Vec<Message> = {
        let mut ui = simulator(app.view());
        act(&mut ui);
        ui.into_messages().collect()
    };
    for m in messages {
        update(app, m);
    }
}

/// Clicks what `selector` finds, then feeds the messages the click produced.
pub fn click<S>(app: &mut App, selector: S)
where
    S: iced_test::Selector + Send,
    S::Output: iced_test::selector::Bounded + Clone + Send + Sync + 'static,
{
    interact(app, |ui| {
        ui.click(selector).expect("clickable");
    });
}

/// Clicks the field with this id and types into it.
pub fn type_into(app: &mut App, field: &str, text: &str) {
    interact(app, |ui| {
        ui.click(id(field.to_owned())).expect("field");
        let _ = ui.typewrite(text);
    });
}

/// Presses Enter in the field with this id.
pub fn enter_in(app: &mut App, field: &str) {
    interact(app, |ui| {
        ui.click(id(field.to_owned())).expect("field");
        let _ = ui.tap_key(iced::keyboard::key::Named::Enter);
    });
}

/// Whether the app's view shows exactly this text somewhere.
pub fn shows(app: &App, text: &str) -> bool {
    simulator(app.view()).find(text).is_ok()
}

/// The app's chat screen.
pub fn chat(app: &App) -> &chat::Chat {
    match app.screen() {
        Screen::Chat(chat) => chat,
        Screen::Connect(c) => panic!("still on the connect screen: {:?}", c.status()),
    }
}

/// The conversation on the app's chat screen.
pub fn history(app: &App) -> &History {
    chat(app).history()
}

/// Whether the conversation holds `text` from `from`.
pub fn has_message(app: &App, from: &str, text: &str) -> bool {
    history(app)
        .entries()
        .iter()
        .any(|e| matches!(&e.kind, EntryKind::Other { from: f, text: t } if f == from && t == text))
}

/// Delivers the peer's events to the app, as the subscription does, until `done` holds.
pub fn pump(app: &mut App, done: impl Fn(&App) -> bool) {
    let deadline = std::time::Instant::now() + super::DEADLINE;
    while !done(app) {
        let next = app
            .session()
            .expect("connected")
            .peer()
            .events()
            .recv_deadline(deadline);
        match next {
            Ok(event) => update(app, Message::Network(vec![event].into())),
            Err(_) => panic!(
                "timed out waiting; conversation: {:?}",
                history(app).entries()
            ),
        }
    }
}
