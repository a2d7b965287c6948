//! The chat screen's widgets: the conversation (or the search results), the message box,
//! and the panel of peers and history actions.

use std::collections::BTreeSet;

use iced::keyboard::{Key, key::Named};
use iced::widget::text_editor::{self, Binding, KeyPress};
use iced::widget::{
    Column, button, column, container, mouse_area, row, rule, scrollable, space, text, text_input,
    tooltip,
};
use iced::{Alignment, Element, Fill, Font, Length, Theme};
use p2p_core::{PeerInfo, Source};

use super::persist::entry_of;
use super::{ADD_PEER_BOX, CONVERSATION, Chat, MESSAGE_BOX, Message, SEARCH_BOX};
use crate::data::history::{Delivery, Entry, EntryKind};
use crate::i18n::{Strings, fill};
use crate::screen::modal;

/// Enter sends; Shift+Enter breaks the line; every other key does what it does in any
/// text editor.
fn composer_keys(key: KeyPress) -> Option<Binding<Message>> {
    let focused = matches!(key.status, text_editor::Status::Focused { .. });
    if focused && key.key == Key::Named(Named::Enter) && !key.modifiers.shift() {
        return Some(Binding::Custom(Message::Send));
    }
    Binding::from_key_press(key)
}

pub(super) fn view<'a>(chat: &'a Chat, s: &'static Strings) -> Element<'a, Message> {
    let middle: Element<'_, Message> = match &chat.found {
        Some((typed, found)) => results(typed, found, s),
        None => conversation(chat, s),
    };

    let can_send = !chat.draft.text().trim().is_empty() && chat.session.is_some();
    let composer = row![
        iced::widget::text_editor(&chat.draft)
            .id(MESSAGE_BOX)
            .placeholder(s.message_hint)
            .on_action(Message::Edit)
            .key_binding(composer_keys)
            .padding(10)
            .height(Length::Shrink)
            .max_height(160.0),
        button(text(s.send).align_x(Alignment::Center))
            .padding([10, 24])
            .on_press_maybe(can_send.then_some(Message::Send)),
    ]
    .spacing(6)
    .align_y(Alignment::End);

    let mut bottom = column![composer].spacing(4);
    if let Some(error) = &chat.error {
        bottom = bottom.push(text(error).style(text::danger));
    }
    if let Some(why) = &chat.not_saved {
        bottom = bottom.push(text(fill(s.not_saved, &[why])).size(13).style(text::danger));
    }

    let mut main = column![top_bar(chat, s), middle].spacing(6).width(Fill);
    if chat.history.unseen() > 0 && chat.found.is_none() {
        main = main.push(
            container(
                button(text(fill(s.new_messages, &[&chat.history.unseen()])))
                    .style(button::secondary)
                    .on_press(Message::JumpToLatest),
            )
            .center_x(Fill),
        );
    }
    let main = main.push(bottom);
    let page = row![main, rule::vertical(1), panel(chat, s)]
        .spacing(6)
        .padding(6);
    if chat.confirm_clear {
        let dialog = column![
            text(s.clear_title).size(18),
            text(s.clear_text),
            row![
                button(text(s.cancel))
                    .style(button::secondary)
                    .on_press(Message::ClearCancel),
                button(text(s.clear_confirm))
                    .style(button::danger)
                    .on_press(Message::ClearConfirm),
            ]
            .spacing(10),
        ]
        .spacing(14)
        .align_x(Alignment::End);
        modal(page, dialog)
    } else {
        page.into()
    }
}

fn top_bar<'a>(chat: &'a Chat, s: &'static Strings) -> Element<'a, Message> {
    if chat.store.is_none() {
        return space().height(0).into();
    }
    let mut bar = row![
        text_input(s.search_hint, &chat.search)
            .id(SEARCH_BOX)
            .on_input(Message::SearchInput)
            .on_submit(Message::Search)
            .padding(6)
            .width(Fill),
    ]
    .spacing(6)
    .align_y(Alignment::Center);
    if chat.found.is_some() {
        bar = bar.push(
            button(text(s.close_search))
                .style(button::secondary)
                .on_press(Message::CloseSearch),
        );
    }
    bar.into()
}

fn conversation<'a>(chat: &'a Chat, s: &'static Strings) -> Element<'a, Message> {
    let mut lines = column![].spacing(0).width(Fill);
    let history = &chat.history;
    let saved = history.more_saved() && chat.store.is_some();
    if history.dropped() > 0 && !saved {
        // Whoever scrolls to the top learns that the oldest entries are gone, even before
        // bringing back every earlier one.
        let limits = history.limits();
        lines = lines.push(
            container(
                text(fill(
                    s.history_dropped,
                    &[&limits.entries, &(limits.bytes / (1024 * 1024))],
                ))
                .size(13)
                .style(text::secondary),
            )
            .padding(5)
            .center_x(Fill),
        );
    }
    if history.earlier() > 0 {
        lines = lines.push(
            container(
                button(text(fill(
                    s.show_earlier,
                    &[&history.earlier().min(history.limits().window)],
                )))
                .style(button::text)
                .on_press(Message::ShowEarlier),
            )
            .center_x(Fill),
        );
    } else if saved {
        lines = lines.push(
            container(
                button(text(s.show_earlier_saved))
                    .style(button::text)
                    .on_press(Message::ShowEarlier),
            )
            .center_x(Fill),
        );
    }
    // Stripes count from the first entry ever, so they do not flip as the oldest go.
    let first = history.first_shown_id();
    for (i, entry) in history.shown().enumerate() {
        let id = first.wrapping_add(i);
        if chat.attention.divider() == Some(id) {
            lines = lines.push(divider(s));
        }
        let selected = chat.selected.as_ref().filter(|(sid, _)| *sid == id);
        lines = lines.push(match selected {
            Some((_, content)) => selected_line(entry, content, s),
            None => mouse_area(line(entry, id % 2 == 1, s))
                .on_press(Message::Select(id))
                .into(),
        });
    }
    scrollable(lines)
        .id(CONVERSATION)
        .on_scroll(Message::Scrolled)
        .height(Fill)
        .width(Fill)
        .into()
}

fn divider<'a>(s: &'static Strings) -> Element<'a, Message> {
    row![
        rule::horizontal(1),
        text(s.unread_divider).size(12).style(text::danger),
        rule::horizontal(1),
    ]
    .spacing(8)
    .padding([4, 10])
    .align_y(Alignment::Center)
    .into()
}

fn selected_line<'a>(
    entry: &'a Entry,
    content: &'a text_editor::Content,
    s: &'static Strings,
) -> Element<'a, Message> {
    let who = match &entry.kind {
        EntryKind::Own { .. } => s.you.to_owned(),
        EntryKind::Other { from, .. } => format!("[{from}]"),
        EntryKind::Notice(_) | EntryKind::Warning(_) => String::new(),
    };
    container(
        column![
            row![
                text(&entry.time).size(11).style(text::secondary),
                text(who).style(text::primary),
                space().width(Fill),
                button(text(s.copy).size(13)).on_press(Message::Copy),
                button(text(s.close).size(13))
                    .style(button::secondary)
                    .on_press(Message::Unselect),
            ]
            .spacing(8)
            .align_y(Alignment::Center),
            iced::widget::text_editor(content)
                .on_action(Message::Selecting)
                .height(Length::Shrink),
        ]
        .spacing(4),
    )
    .padding([5, 10])
    .width(Fill)
    .style(container::bordered_box)
    .into()
}

fn results<'a>(
    typed: &str,
    found: &'a Result<Vec<crate::store::Row>, String>,
    s: &'static Strings,
) -> Element<'a, Message> {
    let rows = match found {
        Ok(rows) => rows,
        Err(e) => return text(fill(s.search_failed, &[e])).style(text::danger).into(),
    };
    let mut list = column![
        text(fill(s.search_results, &[&rows.len(), &typed]))
            .size(13)
            .style(text::secondary)
    ]
    .spacing(0)
    .width(Fill);
    for (i, row) in rows.iter().enumerate() {
        let entry = entry_of(row.clone());
        list = list.push(owned_line(entry, i % 2 == 1, s));
    }
    scrollable(list).height(Fill).width(Fill).into()
}

fn panel<'a>(chat: &'a Chat, s: &'static Strings) -> Element<'a, Message> {
    let list = |peers, listeners| peer_list(chat, peers, listeners, s);
    let mut panel = column![
        text(fill(s.listening_to, &[&chat.listening_to.len()])).size(15),
        list(&chat.listening_to, false),
    ]
    .spacing(6)
    .width(Length::Fixed(220.0));
    for (addr, name) in &chat.lost {
        panel = panel.push(
            row![
                column![
                    text(name).style(text::secondary),
                    text(addr).size(12).style(text::secondary)
                ]
                .width(Fill),
                button(text(s.reconnect).size(13)).on_press(Message::Reconnect(addr.clone())),
            ]
            .align_y(Alignment::Center),
        );
    }
    panel = panel
        .push(space().height(12))
        .push(text(fill(s.listeners, &[&chat.listeners.len()])).size(15))
        .push(list(&chat.listeners, true));
    if let Some(port) = chat.hosted_tracker {
        panel = panel.push(space().height(12)).push(
            text(fill(s.hosting, &[&port]))
                .size(13)
                .style(text::secondary),
        );
    }
    if chat.tracker_lost {
        panel = panel.push(space().height(12)).push(
            column![
                text(s.tracker_lost).size(13).style(text::warning),
                button(text(s.reconnect_tracker).size(13)).on_press(Message::Restart),
            ]
            .spacing(4),
        );
    }
    panel = panel
        .push(space().height(12))
        .push(text(s.add_peer).size(15))
        .push(
            row![
                text_input("host:port", &chat.add_peer)
                    .id(ADD_PEER_BOX)
                    .on_input(Message::AddPeerInput)
                    .on_submit(Message::AddPeer)
                    .padding(6),
                button(text(s.add).size(13)).on_press_maybe(
                    (!chat.add_peer.trim().is_empty() && chat.session.is_some())
                        .then_some(Message::AddPeer)
                ),
            ]
            .spacing(4)
            .align_y(Alignment::Center),
        );
    if chat.store.is_some() {
        panel = panel.push(space().height(12)).push(
            button(text(s.clear_history).size(13))
                .style(button::secondary)
                .on_press(Message::ClearAsk),
        );
    }
    scrollable(panel.padding(6)).height(Fill).into()
}

/// How a peer was found, in words: the source of its `Discovered` event; a listener
/// without one called this peer.
fn found_how(
    chat: &Chat,
    peer: &PeerInfo,
    listener: bool,
    s: &'static Strings,
) -> Option<&'static str> {
    match chat.source(&peer.addr) {
        Some(Source::Tracker) => Some(s.found_tracker),
        Some(Source::Lan) => Some(s.found_lan),
        Some(Source::Dht) => Some(s.found_dht),
        Some(Source::Manual | Source::Offered) => Some(s.found_manual),
        Some(Source::Hello) => Some(s.found_hello),
        Some(_) => None,
        None if listener => Some(s.found_hello),
        None => None,
    }
}

fn peer_list<'a>(
    chat: &'a Chat,
    peers: &'a BTreeSet<PeerInfo>,
    listeners: bool,
    s: &'static Strings,
) -> Column<'a, Message> {
    if peers.is_empty() {
        return column![text(s.nobody).size(13).style(text::secondary)];
    }
    column(peers.iter().map(|p| {
        // The full fingerprint, which the link's handshake proved: two peers of one name
        // differ here.
        let fingerprint = tooltip(
            text(p.fingerprint.to_string())
                .size(11)
                .font(Font::MONOSPACE)
                .style(text::primary),
            container(text(s.fingerprint_help).size(12))
                .padding(6)
                .max_width(260)
                .style(container::bordered_box),
            tooltip::Position::Bottom,
        );
        let addr = match found_how(chat, p, listeners, s) {
            Some(how) => format!("{} · {how}", p.addr),
            None => p.addr.to_string(),
        };
        column![
            text(&p.username),
            fingerprint,
            text(addr).size(12).style(text::secondary)
        ]
        .into()
    }))
    .spacing(6)
}

fn stripe(striped: bool) -> impl Fn(&Theme) -> container::Style {
    move |theme: &Theme| {
        if striped {
            container::Style {
                background: Some(theme.extended_palette().background.weakest.color.into()),
                ..container::Style::default()
            }
        } else {
            container::Style::default()
        }
    }
}

/// One line of the conversation, striped like the original; multi-line text shows as
/// several lines.
fn line<'a>(entry: &'a Entry, striped: bool, s: &Strings) -> Element<'a, Message> {
    let time = text(&entry.time).size(11).style(text::secondary);
    let content: Element<'_, Message> = match &entry.kind {
        EntryKind::Own { text: t, delivery } => {
            let mut line = row![space().width(Fill), text(t)];
            // Said beside the message itself: which one reached nobody, which one failed.
            match delivery {
                Delivery::Sent(0) => {
                    line = line.push(text(s.unheard).size(12).style(text::warning));
                }
                Delivery::Failed(why) => {
                    line = line.push(text(fill(s.not_sent, &[why])).size(12).style(text::danger));
                }
                Delivery::Sending | Delivery::Sent(_) => {}
            }
            line.push(time).spacing(8).align_y(Alignment::Center).into()
        }
        EntryKind::Other { from, text: t } => row![
            time,
            text(format!("[{from}] :")).style(text::primary),
            text(t).width(Fill)
        ]
        .spacing(8)
        .align_y(Alignment::Center)
        .into(),
        EntryKind::Notice(n) => row![time, text(n).size(13).style(text::secondary).width(Fill)]
            .spacing(8)
            .align_y(Alignment::Center)
            .into(),
        EntryKind::Warning(w) => row![
            time,
            text("!").size(13).style(text::warning),
            text(w).size(13).style(text::warning).width(Fill)
        ]
        .spacing(8)
        .align_y(Alignment::Center)
        .into(),
    };
    container(content)
        .padding([5, 10])
        .width(Fill)
        .style(stripe(striped))
        .into()
}

/// A line that owns its entry (search results are built for the view).
fn owned_line<'a>(entry: Entry, striped: bool, s: &Strings) -> Element<'a, Message> {
    let who = match entry.kind {
        EntryKind::Own { text: t, .. } => format!("{}: {t}", s.you),
        EntryKind::Other { from, text: t } => format!("[{from}] : {t}"),
        EntryKind::Notice(n) | EntryKind::Warning(n) => n,
    };
    container(
        row![
            text(entry.time).size(11).style(text::secondary),
            text(who).width(Fill)
        ]
        .spacing(8)
        .align_y(Alignment::Center),
    )
    .padding([5, 10])
    .width(Fill)
    .style(stripe(striped))
    .into()
}
