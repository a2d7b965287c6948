//! Every string the app shows, in English and European Portuguese.
//!
//! A string with values in it is a template: `{0}`, `{1}` … are replaced by
//! [`fill`]. Both languages are written side by side in one table, so a string cannot
//! exist in one language only; a test checks that both have the same placeholders.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A language the app speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    /// English.
    #[default]
    En,
    /// European Portuguese.
    Pt,
}

impl Lang {
    /// Parses `en` or `pt` (also `pt-PT`, `pt_PT.UTF-8`, `en_GB` …).
    pub fn parse(code: &str) -> Option<Lang> {
        let code = code.trim().to_ascii_lowercase();
        let primary = code.split(['_', '-', '.', '@']).next().unwrap_or_default();
        match primary {
            "en" => Some(Lang::En),
            "pt" => Some(Lang::Pt),
            _ => None,
        }
    }

    /// The language of the environment's locale (`LC_ALL`, then `LC_MESSAGES`, then
    /// `LANG`, as POSIX orders them); English when none names a language the app speaks.
    pub fn from_env() -> Lang {
        Lang::from_locale_vars(|name| std::env::var(name).ok())
    }

    /// [`Lang::from_env`] with the variables read through `var`.
    pub fn from_locale_vars(var: impl Fn(&str) -> Option<String>) -> Lang {
        ["LC_ALL", "LC_MESSAGES", "LANG"]
            .into_iter()
            .filter_map(var)
            .find(|value| !value.is_empty())
            .and_then(|value| Lang::parse(&value))
            .unwrap_or_default()
    }

    /// The strings in this language.
    pub fn strings(self) -> &'static Strings {
        match self {
            Lang::En => &EN,
            Lang::Pt => &PT,
        }
    }
}

impl fmt::Display for Lang {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Lang::En => "en",
            Lang::Pt => "pt",
        })
    }
}

/// Replaces `{0}`, `{1}` … in `template` by `args`, in one pass over the template: what an
/// argument holds is copied as it is, never read as a placeholder (a username may well be
/// `{1}`). A `{…}` that names no argument is kept as written.
pub fn fill(template: &str, args: &[&dyn fmt::Display]) -> String {
    use fmt::Write as _;
    let mut out = String::with_capacity(template.len() + 16 * args.len());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let arg = after.find('}').and_then(|close| {
            let index = &after[..close];
            let digits = !index.is_empty() && index.bytes().all(|b| b.is_ascii_digit());
            let arg = index.parse::<usize>().ok().and_then(|i| args.get(i));
            digits.then_some(arg).flatten().map(|arg| (arg, close))
        });
        match arg {
            Some((arg, close)) => {
                let _ = write!(out, "{arg}");
                rest = &after[close + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

macro_rules! strings {
    ($($(#[$doc:meta])* $name:ident: $en:literal, $pt:literal;)*) => {
        /// The table of strings of one language.
        #[derive(Debug)]
        pub struct Strings {
            $($(#[$doc])* pub $name: &'static str,)*
        }

        const EN: Strings = Strings { $($name: $en,)* };
        const PT: Strings = Strings { $($name: $pt,)* };

        impl Strings {
            /// Every string with its name, for checks over the whole table.
            pub fn all(&self) -> Vec<(&'static str, &'static str)> {
                vec![$((stringify!($name), self.$name),)*]
            }
        }
    };
}

strings! {
    /// The window title.
    app_title: "P2P Messenger", "P2P Messenger";
    /// The window title in the chat: user, own identity fingerprint, room, address.
    chat_title: "P2P Messenger — {0} ({1}) — {2} — {3}", "P2P Messenger — {0} ({1}) — {2} — {3}";

    /// Heading of the first part of the form.
    personal_details: "Personal details", "Dados pessoais";
    /// Label.
    username: "Username", "Nome de utilizador";
    /// Placeholder.
    username_hint: "e.g. alice", "ex.: alice";
    /// Label.
    ip_address: "IP address", "Endereço IP";
    /// Placeholder of the address list.
    choose_address: "Choose…", "Escolher…";
    /// Label.
    port: "Port", "Porta";
    /// Placeholder.
    port_hint: "e.g. 7001 (0: any free port)", "ex.: 7001 (0: qualquer porta livre)";
    /// Heading of the second part of the form.
    connection_details: "Connection details", "Detalhes da ligação";
    /// Tab.
    automatic: "Automatic", "Automático";
    /// Tab.
    manual: "Manual", "Manual";
    /// Tab: peers of the room on the local network, found by mDNS.
    local_network: "Local network", "Rede local";
    /// Tab: peers of the room on the Internet, found through the Mainline DHT.
    internet_dht: "Internet (DHT)", "Internet (DHT)";
    /// Text of the Internet (DHT) tab.
    dht_help:
        "The room's peers anywhere on the Internet are found through BitTorrent's DHT (UDP), under an id that reveals neither the room's name nor its passphrase.",
        "Os pares da sala em qualquer parte da Internet são encontrados através da DHT do BitTorrent (UDP), sob um identificador que não revela nem o nome da sala nem a frase-passe.";
    /// Checkbox on the tracker and local network tabs.
    also_dht: "Also search the Internet (DHT)", "Procurar também na Internet (DHT)";
    /// Label.
    dht_bootstrap: "Bootstrap nodes", "Nós de arranque";
    /// Placeholder: empty means the public nodes.
    dht_bootstrap_hint: "public nodes (or HOST:PORT,...)", "nós públicos (ou ANFITRIÃO:PORTA,...)";
    /// Text of the Local network tab.
    lan_help:
        "The room's peers on this network are found automatically (multicast DNS): no address to type.",
        "Os pares da sala nesta rede são encontrados automaticamente (DNS multicast): nenhum endereço a escrever.";
    /// The IP field's placeholder and list entry when empty: the address others see.
    automatic_ip: "automatic", "automático";
    /// Label.
    room: "Room", "Sala";
    /// Placeholder.
    room_hint: "e.g. lobby", "ex.: lobby";
    /// Label of the masked field.
    passphrase: "Passphrase", "Frase-passe";
    /// Placeholder of the masked field.
    passphrase_hint: "none: an open room", "nenhuma: uma sala aberta";
    /// Label.
    tracker_ip: "Tracker IP", "IP do tracker";
    /// Placeholder.
    tracker_ip_hint: "e.g. 192.168.1.10", "ex.: 192.168.1.10";
    /// Label.
    tracker_port: "Tracker port", "Porta do tracker";
    /// Placeholder.
    tracker_port_hint: "e.g. 7000", "ex.: 7000";
    /// Checkbox.
    host_tracker: "Host the tracker in this app", "Alojar o tracker nesta aplicação";
    /// Shown instead of the tracker IP while hosting it.
    this_computer: "this computer", "este computador";
    /// Label.
    peers: "Peers", "Pares";
    /// Placeholder.
    peers_hint: "host:port host:port …", "anfitrião:porta anfitrião:porta …";
    /// Help under the peers field.
    peers_help:
        "You will hear these peers; they hear you once they connect to you.",
        "Vai ouvir estes pares; eles ouvem-no quando se ligarem a si.";
    /// Checkbox.
    alone: "Don't connect with anyone", "Não se ligar a ninguém";
    /// Button.
    connect: "Connect", "Ligar";
    /// Shown while starting.
    connecting: "Connecting…", "A ligar…";
    /// Confirmation heading.
    confirm_alone_title: "Start without connecting to anyone?", "Começar sem se ligar a ninguém?";
    /// Confirmation text: the address.
    confirm_alone_text:
        "Others can connect to you at {0}, but you will hear no one until you connect to them.",
        "Os outros podem ligar-se a si em {0}, mas não vai ouvir ninguém até se ligar a eles.";
    /// Button.
    start_alone: "Start alone", "Começar sozinho";
    /// Button.
    cancel: "Cancel", "Cancelar";

    /// Field error.
    err_required: "Required", "Obrigatório";
    /// Field error: the limit.
    err_too_long: "At most {0} characters", "No máximo {0} caracteres";
    /// Field error.
    err_too_long_bytes: "At most {0} bytes", "No máximo {0} bytes";
    /// Field error.
    err_control: "No control characters", "Sem caracteres de controlo";
    /// Field error: the character's code (U+200B).
    err_invisible: "No invisible characters ({0})", "Sem caracteres invisíveis ({0})";
    /// Field error.
    err_line_separator: "No line breaks", "Sem quebras de linha";
    /// Field error.
    err_surrounding_space: "No spaces at the start or end", "Sem espaços no início nem no fim";
    /// Field error.
    err_not_number: "Not a number", "Não é um número";
    /// Field error: lowest and highest.
    err_port_range: "Port out of range ({0}–{1})", "Porta fora do intervalo ({0}–{1})";
    /// Field error.
    err_bad_ip: "Not an IP address", "Não é um endereço IP";
    /// Field error.
    err_bad_host: "Not a host name or IP address", "Não é um nome de anfitrião nem um endereço IP";
    /// Field error: the bad entry.
    err_bad_peer: "“{0}” is not host:port", "“{0}” não é anfitrião:porta";

    /// Start failure: address, OS reason.
    fail_bind: "Cannot listen on {0}: {1}", "Não é possível escutar em {0}: {1}";
    /// Start failure: port, OS reason.
    fail_host_tracker: "Cannot host the tracker on port {0}: {1}", "Não é possível alojar o tracker na porta {0}: {1}";
    /// Start failure: address, reason.
    fail_tracker: "Tracker unreachable at {0}: {1}", "Tracker inacessível em {0}: {1}";
    /// Start failure: address, reason.
    fail_connect: "Cannot reach peer {0}: {1}", "Não é possível contactar o par {0}: {1}";
    /// Start failure: address, reason.
    fail_refused: "Peer {0} refused: {1}", "O par {0} recusou: {1}";
    /// Start failure: address, reason.
    fail_resolve: "Cannot resolve {0}: {1}", "Não é possível resolver {0}: {1}";
    /// Start failure: the address is this very peer.
    fail_self: "{0} is this very peer", "{0} é este mesmo par";
    /// Start failure: the identity key cannot be read or created (the reason names the file).
    fail_identity:
        "Your identity key cannot be used: {0}",
        "A sua chave de identidade não pode ser usada: {0}";
    /// Start failure: room, address.
    fail_wrong_passphrase:
        "Wrong passphrase for room {0}: {1} is in another room or has another passphrase",
        "Frase-passe errada para a sala {0}: {1} está noutra sala ou tem outra frase-passe";
    /// Start failure: anything else.
    fail_other: "Cannot start: {0}", "Não é possível começar: {0}";

    /// Composer placeholder.
    message_hint: "Type a message and press Enter", "Escreva uma mensagem e prima Enter";
    /// Button.
    send: "Send", "Enviar";
    /// Panel heading: count.
    listening_to: "Listening to ({0})", "A ouvir ({0})";
    /// Panel heading: count.
    listeners: "Listening to me ({0})", "A ouvir-me ({0})";
    /// Empty panel.
    nobody: "nobody yet", "ninguém ainda";
    /// Panel note while hosting: port.
    hosting: "Hosting the tracker on port {0}", "A alojar o tracker na porta {0}";
    /// Notice: name, address.
    joined: "{0} joined ({1})", "{0} entrou ({1})";
    /// Notice: name, reason.
    left: "{0} left ({1})", "{0} saiu ({1})";
    /// Notice: address, reason.
    connect_failed: "Could not connect to {0}: {1}", "Não foi possível ligar a {0}: {1}";
    /// Notice: punching through NAT routers to a peer failed.
    unreachable:
        "Cannot reach {0} through the NAT routers, so you will not hear each other: {1}",
        "Não é possível chegar a {0} através dos routers NAT, pelo que não se vão ouvir: {1}";
    /// Warning: room, address.
    wrong_passphrase:
        "Wrong passphrase for room {0}: {1} is in another room or has another passphrase; nothing was exchanged with it",
        "Frase-passe errada para a sala {0}: {1} está noutra sala ou tem outra frase-passe; nada foi trocado com ele";
    /// Warning: name, address, the new fingerprint, the one first seen.
    identity_changed:
        "{0} ({1}) arrived with identity {2}, not {3} as first seen: another person using the name, or the same one on another installation",
        "{0} ({1}) chegou com a identidade {2}, não {3} como da primeira vez: outra pessoa com o mesmo nome, ou a mesma noutra instalação";
    /// Tooltip of a fingerprint in the peers panel.
    fingerprint_help:
        "Identity fingerprint: proved by the encrypted link; compare it with the one the person sees in their own window title",
        "Impressão digital da identidade: provada pela ligação cifrada; compare-a com a que a pessoa vê no título da sua janela";
    /// Warning: the DHT's reason.
    dht_unreachable:
        "The DHT is not answering: {0} (UDP may be blocked on this network: a tracker or the local network work over TCP)",
        "A DHT não está a responder: {0} (o UDP pode estar bloqueado nesta rede: um tracker ou a rede local funcionam sobre TCP)";
    /// Warning: the address the DHT sees.
    dht_behind_nat:
        "You are behind a NAT router (the DHT sees you at {0}): peers that accept connections are reached, peers behind NAT routers too are not (a tracker can introduce them)",
        "Está atrás de um router NAT (a DHT vê-o em {0}): os pares que aceitam ligações são alcançados, os que também estão atrás de routers NAT não (um tracker pode apresentá-los)";
    /// Peers panel: found by the tracker.
    found_tracker: "tracker", "tracker";
    /// Peers panel: found on the local network.
    found_lan: "LAN", "rede local";
    /// Peers panel: found through the DHT.
    found_dht: "DHT", "DHT";
    /// Peers panel: an address given by hand.
    found_manual: "added by hand", "adicionado à mão";
    /// Peers panel: it greeted or called this peer.
    found_hello: "it called us", "ligou-nos";
    /// Notice: reason.
    tracker_unreachable: "The tracker did not answer: {0}", "O tracker não respondeu: {0}";
    /// Notice at the start: address.
    welcome: "You are {0} at {1}.", "É {0} em {1}.";
    /// Button at the top of a long conversation: count.
    show_earlier: "Show {0} earlier messages", "Mostrar {0} mensagens anteriores";
    /// At the top of a conversation whose oldest entries were dropped from memory: how
    /// many entries and how many MiB of text are kept at most.
    history_dropped:
        "Older messages are no longer kept here: only the latest {0} messages or {1} MiB of text",
        "As mensagens mais antigas já não são mostradas aqui: só as últimas {0} mensagens ou {1} MiB de texto";
    /// Button at the top of the conversation when older lines are on disk.
    show_earlier_saved: "Show earlier messages", "Mostrar mensagens anteriores";
    /// Under the message box: lines not saved, reason.
    not_saved: "Not saved in the history: {0}", "Não guardado no histórico: {0}";
    /// Placeholder of the search box.
    search_hint: "Search this room's history", "Pesquisar o histórico desta sala";
    /// Button that closes the search results.
    close_search: "Back to the conversation", "Voltar à conversa";
    /// Over the results: count, what was searched.
    search_results: "{0} messages found for “{1}” (newest first)", "{0} mensagens encontradas para “{1}” (mais recentes primeiro)";
    /// The search failed: reason.
    search_failed: "The search failed: {0}", "A pesquisa falhou: {0}";
    /// The divider before the first message that came while the window was away.
    unread_divider: "New messages", "Mensagens novas";
    /// Who "I" am in a selected line and in search results.
    you: "You", "Eu";
    /// Button: copy the selected line.
    copy: "Copy", "Copiar";
    /// Button: close the selected line.
    close: "Close", "Fechar";
    /// Button beside a lost peer.
    reconnect: "Reconnect", "Religar";
    /// Panel note when the tracker stopped answering.
    tracker_lost: "The tracker is not answering.", "O tracker não está a responder.";
    /// Button: start over with the same settings.
    reconnect_tracker: "Reconnect to the tracker", "Religar ao tracker";
    /// Panel heading.
    add_peer: "Add a peer", "Adicionar um par";
    /// Button.
    add: "Add", "Adicionar";
    /// Button.
    clear_history: "Clear this room's history", "Apagar o histórico desta sala";
    /// Confirmation heading.
    clear_title: "Clear this room's history?", "Apagar o histórico desta sala?";
    /// Confirmation text.
    clear_text:
        "Every saved message of this room is deleted from this computer. The others keep theirs.",
        "Todas as mensagens guardadas desta sala são apagadas deste computador. Os outros mantêm as suas.";
    /// Button.
    clear_confirm: "Clear the history", "Apagar o histórico";
    /// Setting: language.
    language: "Language", "Idioma";
    /// Setting: theme.
    theme: "Theme", "Tema";
    /// Theme choice.
    theme_system: "System", "Sistema";
    /// Theme choice.
    theme_light: "Light", "Claro";
    /// Theme choice.
    theme_dark: "Dark", "Escuro";
    /// Setting.
    notifications: "Notify me of new messages", "Notificar-me de mensagens novas";
    /// Connect screen: the settings file was damaged: where it was kept, reason.
    settings_damaged:
        "The saved settings were damaged ({1}) and were not used; the file was kept as {0}.",
        "As definições guardadas estavam danificadas ({1}) e não foram usadas; o ficheiro foi guardado como {0}.";
    /// Connect screen: the settings file was damaged and could not be moved: reason.
    settings_damaged_kept:
        "The saved settings are damaged ({0}) and were not used; they are left as they are and this app will not save over them.",
        "As definições guardadas estão danificadas ({0}) e não foram usadas; ficam como estão e esta aplicação não as vai substituir.";
    /// Connect screen: the settings file belongs to a newer version: its version.
    settings_newer:
        "The saved settings come from a newer version of the app (version {0}): they were not used and will not be overwritten.",
        "As definições guardadas são de uma versão mais recente da aplicação (versão {0}): não foram usadas nem serão substituídas.";
    /// Connect screen: the settings file cannot be read: reason.
    settings_unreadable: "The saved settings cannot be read: {0}", "Não é possível ler as definições guardadas: {0}";
    /// Connect or chat screen: the settings could not be saved: reason.
    settings_not_saved: "The settings could not be saved: {0}", "Não foi possível guardar as definições: {0}";
    /// Chat screen: the history database could not be opened: reason.
    history_off: "History is not saved: {0}", "O histórico não é guardado: {0}";
    /// Button under the conversation while the user reads older messages: how many came.
    new_messages: "{0} new messages — show the latest", "{0} mensagens novas — mostrar as últimas";
    /// Composer error: length, limit.
    too_long: "Message too long: {0} bytes, at most {1}", "Mensagem demasiado longa: {0} bytes, no máximo {1}";
    /// Composer error, and beside a message that could not be sent: reason.
    not_sent: "Not sent: {0}", "Não enviada: {0}";
    /// Beside a message that was sent while nobody listened.
    unheard:
        "nobody received this: no one is listening to you",
        "ninguém recebeu esta mensagem: ninguém o está a ouvir";
    /// Composer notice: the sender thread still has a queue full of earlier messages.
    send_queue_full:
        "Still sending your earlier messages: wait a moment and press Enter again",
        "Ainda a enviar as mensagens anteriores: aguarde um momento e prima Enter de novo";
    /// Departure.
    why_left: "said goodbye", "despediu-se";
    /// Departure.
    why_timed_out: "no answer", "sem resposta";
    /// Departure.
    why_closed: "connection closed", "ligação fechada";
    /// Departure.
    why_overflow: "too slow to keep up", "demasiado lento";
    /// Departure: detail.
    why_error: "error: {0}", "erro: {0}";
    /// Departure.
    why_shutdown: "shut down", "encerrado";
}

#[cfg(test)]
mod tests {
    use super::*;

    fn placeholders(s: &str) -> Vec<usize> {
        (0..10)
            .filter(|i| s.contains(&format!("{{{i}}}")))
            .collect()
    }

    #[test]
    fn both_languages_have_every_string_with_the_same_placeholders() {
        let (en, pt) = (EN.all(), PT.all());
        assert_eq!(en.len(), pt.len());
        for ((name, e), (_, p)) in en.iter().zip(&pt) {
            assert!(!e.is_empty() && !p.is_empty(), "{name} is empty");
            assert_eq!(placeholders(e), placeholders(p), "{name}");
        }
        let translated = en.iter().zip(&pt).filter(|((_, e), (_, p))| e != p).count();
        assert!(translated > en.len() * 3 / 4, "most strings are translated");
    }

    #[test]
    fn fill_replaces_placeholders() {
        assert_eq!(
            fill(EN.joined, &[&"bob", &"127.0.0.1:7001"]),
            "bob joined (127.0.0.1:7001)"
        );
        assert_eq!(fill(PT.err_too_long, &[&32]), "No máximo 32 caracteres");
    }

    #[test]
    fn fill_expands_each_placeholder_once_and_never_what_it_inserted() {
        assert_eq!(
            fill(EN.welcome, &[&"{1}", &"127.0.0.1:7001"]),
            "You are {1} at 127.0.0.1:7001."
        );
        assert_eq!(fill("{0}{1}{0}", &[&"{1}", &"{0}"]), "{1}{0}{1}");
        // What names no argument stays as written.
        assert_eq!(fill("{2} {x} {} {0", &[&"a"]), "{2} {x} {} {0");
        assert_eq!(fill("{{0}}", &[&"a"]), "{a}");
        assert_eq!(fill("é{0}ü", &[&"ç"]), "éçü");
    }

    #[test]
    fn language_from_locale() {
        assert_eq!(Lang::parse("pt_PT.UTF-8"), Some(Lang::Pt));
        assert_eq!(Lang::parse("en-GB"), Some(Lang::En));
        assert_eq!(Lang::parse("fr_FR"), None);
        let env = |pairs: &'static [(&str, &str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert_eq!(
            Lang::from_locale_vars(env(&[("LANG", "pt_PT.UTF-8")])),
            Lang::Pt
        );
        assert_eq!(
            Lang::from_locale_vars(env(&[("LC_ALL", "en_US"), ("LANG", "pt_PT")])),
            Lang::En
        );
        assert_eq!(
            Lang::from_locale_vars(env(&[("LC_ALL", ""), ("LANG", "pt")])),
            Lang::Pt
        );
        assert_eq!(Lang::from_locale_vars(env(&[("LANG", "C")])), Lang::En);
    }
}
