//! The app's close path leaves no thread of the app behind: the threads that start and
//! close the session (`gui-start`, `gui-close`), the bridge that carries its events
//! (`gui-events`, run here as the runtime runs the subscription) and the session's sender
//! and connector are all joined by the time the app asks to exit. One test in a file of
//! its own, so that no other test's threads are counted.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use iced::futures::executor::block_on;
use iced::futures::{StreamExt, stream};
use iced_runtime::futures::subscription::into_recipes;
use p2p_gui::app::Message;
use p2p_gui::data::form::{Form, Tab};
use support::peers::{alone_peer, sees_goodbye};
use support::ui::{app, click, exits, has_message, run_task, update};
use support::{thread_names, threads_named, wait_until};

fn app_threads() -> Vec<String> {
    thread_names()
        .into_iter()
        .filter(|name| name.starts_with("gui-"))
        .collect()
}

#[test]
fn after_the_close_path_no_thread_of_the_app_remains() {
    assert_eq!(app_threads(), Vec::<String>::new());
    let bob = alone_peer("bob");
    let mut app = app(Form {
        username: "alice".into(),
        tab: Tab::Manual,
        peers: bob.local_addr().to_string(),
        ..Form::default()
    });
    click(&mut app, "Connect");
    let port = app.session().expect("connected").peer().local_addr().port();

    // The app's subscriptions, run as the runtime runs them: the event bridge starts and
    // hands bob's message to the window.
    let mut events = stream::select_all(
        into_recipes(app.subscription())
            .into_iter()
            .map(|recipe| recipe.stream(Box::pin(stream::pending()))),
    );
    bob.send("hello alice").expect("bob sends");
    while !has_message(&app, "bob", "hello alice") {
        let message = block_on(events.next()).expect("the bridge runs");
        update(&mut app, message);
    }
    assert_eq!(threads_named("gui-events"), 1);
    assert_eq!(threads_named(&format!("gui-send-{port}")), 1);
    assert_eq!(threads_named(&format!("gui-conn-{port}")), 1);

    // Closing the window: the app lets the subscription go (the runtime drops its stream),
    // closes the session off the UI thread, and exits.
    let leaving = app.update(Message::CloseRequested(iced::window::Id::unique()));
    assert!(app.session().is_none(), "the session is being closed");
    drop(events);
    assert!(matches!(run_task(leaving).as_slice(), [Message::Closed]));
    assert!(exits(app.update(Message::Closed)));

    // Every thread the app kept has been joined by then (a thread leaves /proc a moment
    // after it is joined, so the names are waited for).
    assert_eq!(app.threads_running(), 0);
    wait_until(|| app_threads().is_empty());
    sees_goodbye(&bob, "alice");
}
