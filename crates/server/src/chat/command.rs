//! What a chat line asks for. I/O free.

/// A parsed line.
#[derive(Debug, PartialEq, Eq)]
pub enum Command<'a> {
    /// Text for the room.
    Say(&'a str),
    Nick(&'a str),
    Join(&'a str),
    Rooms,
    Who,
    Msg {
        to: &'a str,
        text: &'a str,
    },
    Quit,
    Help,
    /// A line that starts with `/` but names no command, or lacks an
    /// argument: the message to answer with.
    Invalid(String),
}

/// Longest nick or room name.
pub const MAX_NAME: usize = 32;

/// Parses one (sanitised) line.
pub fn parse(line: &str) -> Command<'_> {
    let Some(rest) = line.strip_prefix('/') else {
        return Command::Say(line);
    };
    let (name, arg) = match rest.split_once(' ') {
        Some((name, arg)) => (name, arg.trim()),
        None => (rest.trim_end(), ""),
    };
    match name {
        "nick" => match valid_name(arg) {
            Ok(()) => Command::Nick(arg),
            Err(why) => Command::Invalid(format!("/nick NAME: {why}")),
        },
        "join" => {
            let room = arg.strip_prefix('#').unwrap_or(arg);
            match valid_name(room) {
                Ok(()) => Command::Join(room),
                Err(why) => Command::Invalid(format!("/join ROOM: {why}")),
            }
        }
        "rooms" => Command::Rooms,
        "who" => Command::Who,
        "msg" => match arg.split_once(' ') {
            Some((to, text)) if !text.trim().is_empty() => Command::Msg {
                to,
                text: text.trim(),
            },
            _ => Command::Invalid("usage: /msg NICK text".into()),
        },
        "quit" => Command::Quit,
        "help" => Command::Help,
        // "//text" says "/text" literally.
        _ if rest.starts_with('/') => Command::Say(rest),
        _ => Command::Invalid(format!("unknown command /{name} (try /help)")),
    }
}

/// Names are 1–32 of `[A-Za-z0-9_-]`: printable everywhere, no spaces.
pub fn valid_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("a name is needed");
    }
    if name.len() > MAX_NAME {
        return Err("names are at most 32 characters");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err("names use letters, digits, '_' and '-' only");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands() {
        let cases: &[(&str, Command<'_>)] = &[
            ("hello all", Command::Say("hello all")),
            ("", Command::Say("")),
            ("/nick bob", Command::Nick("bob")),
            ("/join #rust", Command::Join("rust")),
            ("/join rust", Command::Join("rust")),
            ("/rooms", Command::Rooms),
            ("/who", Command::Who),
            (
                "/msg bob hi there",
                Command::Msg {
                    to: "bob",
                    text: "hi there",
                },
            ),
            ("/quit", Command::Quit),
            ("/help", Command::Help),
            ("//not a command", Command::Say("/not a command")),
        ];
        for (line, expected) in cases {
            assert_eq!(&parse(line), expected, "{line:?}");
        }
    }

    #[test]
    fn bad_commands_explain_themselves() {
        for (line, contains) in [
            ("/nick", "a name is needed"),
            ("/nick bad name", "letters, digits"),
            ("/nick waytoolongnamewaytoolongnamewaytoolong", "at most 32"),
            ("/join", "a name is needed"),
            ("/msg bob", "usage: /msg"),
            ("/msg", "usage: /msg"),
            ("/dance", "unknown command /dance"),
        ] {
            match parse(line) {
                Command::Invalid(why) => assert!(why.contains(contains), "{line:?}: {why}"),
                other => panic!("{line:?} parsed as {other:?}"),
            }
        }
    }
}
