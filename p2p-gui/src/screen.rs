//! The app's two screens, each with its own state, messages, `update` and `view`, and what
//! both draw the same way.

pub mod chat;
pub mod connect;

use iced::widget::{center, container, opaque, stack};
use iced::{Color, Element};

/// `page` under a dimmed veil with `dialog` in a bordered box at its centre: the page shows
/// through but takes no input until the dialog is answered.
pub fn modal<'a, M: 'a>(
    page: impl Into<Element<'a, M>>,
    dialog: impl Into<Element<'a, M>>,
) -> Element<'a, M> {
    let dialog = container(dialog)
        .padding(20)
        .max_width(420)
        .style(container::bordered_box);
    stack![
        page.into(),
        opaque(center(dialog).style(|_| container::Style {
            background: Some(Color::from_rgba(0.0, 0.0, 0.0, 0.35).into()),
            ..container::Style::default()
        }))
    ]
    .into()
}
