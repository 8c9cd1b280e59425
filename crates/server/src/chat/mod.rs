//! `tenk serve chat`: a line-based chat server usable with `nc`/`telnet`.
//!
//! Every connection gets a guest nick and joins the default room. A line
//! is either a command (`/nick`, `/join`, `/rooms`, `/who`, `/msg`,
//! `/quit`, `/help`) or text for the room, delivered as `<nick> text`.
//!
//! Fan-out without copies: a room message is encoded once into an
//! `Arc<[u8]>` and queued by reference on every member's connection
//! ([`Io::send_shared`]); the reactor writes each member's queue with one
//! gather write per pass. A member that stops reading is cut by the
//! reactor's output limits and write timeout, and the room is told, while
//! everyone else keeps their pace: nobody's queue depends on another's.

pub mod command;
pub mod line;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;

use reactor::{CloseReason, Handler, Io, Token};

use command::Command;
use line::{Frame, LineFramer};

/// Settings of the chat server.
#[derive(Clone, Debug)]
pub struct ChatConfig {
    /// Longest line accepted; longer ones are refused and dropped.
    pub max_line: usize,
    /// The room every connection joins first.
    pub default_room: String,
}

impl ChatConfig {
    /// The reactor input limit ([`Config::max_input`](reactor::Config::max_input))
    /// these settings need: the framer keeps up to `max_line + 1` bytes of
    /// an unfinished line (a line of the limit and its `\r`), and a smaller
    /// reactor limit would cut the connection instead of refusing the line.
    pub fn reactor_max_input(&self) -> usize {
        self.max_line + 1
    }
}

impl Default for ChatConfig {
    fn default() -> ChatConfig {
        ChatConfig {
            max_line: 4096,
            default_room: "lobby".into(),
        }
    }
}

/// Counters of the chat server.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChatStats {
    /// Room messages sent by users.
    pub messages: u64,
    /// Copies of room messages (and notices) queued to recipients.
    pub deliveries: u64,
    /// Private messages delivered.
    pub private_messages: u64,
    /// Lines refused for being too long.
    pub lines_too_long: u64,
    /// Clients cut because they stopped reading (output limit or write
    /// timeout).
    pub slow_disconnects: u64,
}

struct Client {
    token: Token,
    nick: String,
    room: String,
    framer: LineFramer,
    /// Said `/quit`: already out of its room and the nick table, waiting
    /// for `* bye` to flush. Lines after it (in the same read) are not run,
    /// as Redis stops processing a client it is about to close.
    quitting: bool,
}

/// The chat server for one reactor.
pub struct Chat {
    config: ChatConfig,
    clients: Vec<Option<Client>>,
    rooms: HashMap<String, Vec<Token>>,
    nicks: HashMap<String, Token>,
    next_guest: u64,
    stats: ChatStats,
}

const HELP: &str = "* commands: /nick NAME, /join ROOM, /rooms, /who, /msg NICK text, /quit, /help; other lines go to the room\n";

impl Chat {
    pub fn new(config: ChatConfig) -> Chat {
        Chat {
            config,
            clients: Vec::new(),
            rooms: HashMap::new(),
            nicks: HashMap::new(),
            next_guest: 1,
            stats: ChatStats::default(),
        }
    }

    /// The counters so far.
    pub fn stats(&self) -> ChatStats {
        self.stats
    }

    fn client(&self, conn: Token) -> Option<&Client> {
        self.clients
            .get(conn.index())
            .and_then(Option::as_ref)
            .filter(|c| c.token == conn)
    }

    fn client_mut(&mut self, conn: Token) -> Option<&mut Client> {
        self.clients
            .get_mut(conn.index())
            .and_then(Option::as_mut)
            .filter(|c| c.token == conn)
    }

    /// Sends `text` to every member of `room` except `except`, encoded
    /// once and shared.
    fn broadcast(&mut self, io: &mut Io, room: &str, except: Option<Token>, text: String) {
        let Some(members) = self.rooms.get(room) else {
            return;
        };
        let message: Arc<[u8]> = Arc::from(text.into_bytes());
        for &member in members {
            if Some(member) != except {
                // A member cut by its output limit right here is not a
                // delivery.
                if io.send_shared(member, &message) {
                    self.stats.deliveries += 1;
                }
            }
        }
    }

    fn join(&mut self, io: &mut Io, conn: Token, room: &str) {
        let Some(client) = self.client(conn) else {
            return;
        };
        let nick = client.nick.clone();
        self.rooms.entry(room.to_string()).or_default().push(conn);
        if let Some(client) = self.client_mut(conn) {
            client.room = room.to_string();
        }
        self.broadcast(io, room, None, format!("* {nick} joined #{room}\n"));
    }

    fn leave(&mut self, io: &mut Io, conn: Token, notice: String) {
        let Some(client) = self.client(conn) else {
            return;
        };
        let room = client.room.clone();
        if let Some(members) = self.rooms.get_mut(&room) {
            members.retain(|&m| m != conn);
            if members.is_empty() && room != self.config.default_room {
                self.rooms.remove(&room);
            }
        }
        self.broadcast(io, &room, None, notice);
    }

    fn handle_line(&mut self, io: &mut Io, conn: Token, line: &[u8]) {
        let text = line::sanitize(line);
        let Some(client) = self.client(conn) else {
            return;
        };
        let nick = client.nick.clone();
        let room = client.room.clone();
        match command::parse(&text) {
            Command::Say("") => {}
            Command::Say(said) => {
                self.stats.messages += 1;
                self.broadcast(io, &room, Some(conn), format!("<{nick}> {said}\n"));
            }
            Command::Nick(new) => {
                if new == nick {
                    return;
                }
                if self.nicks.contains_key(new) {
                    io.send(conn, format!("! nick {new} is taken\n").as_bytes());
                    return;
                }
                self.nicks.remove(&nick);
                self.nicks.insert(new.to_string(), conn);
                if let Some(client) = self.client_mut(conn) {
                    client.nick = new.to_string();
                }
                self.broadcast(io, &room, None, format!("* {nick} is now known as {new}\n"));
            }
            Command::Join(target) => {
                if target == room {
                    io.send(conn, format!("! already in #{room}\n").as_bytes());
                    return;
                }
                self.leave(io, conn, format!("* {nick} left #{room}\n"));
                self.join(io, conn, target);
            }
            Command::Rooms => {
                let mut rooms: Vec<(&String, usize)> =
                    self.rooms.iter().map(|(r, m)| (r, m.len())).collect();
                rooms.sort();
                let mut out = String::from("* rooms:");
                for (name, members) in rooms {
                    let _ = write!(out, " #{name} ({members})");
                }
                out.push('\n');
                io.send(conn, out.as_bytes());
            }
            Command::Who => {
                let mut nicks: Vec<&str> = self
                    .rooms
                    .get(&room)
                    .into_iter()
                    .flatten()
                    .filter_map(|&m| self.client(m).map(|c| c.nick.as_str()))
                    .collect();
                nicks.sort_unstable();
                io.send(
                    conn,
                    format!("* in #{room}: {}\n", nicks.join(" ")).as_bytes(),
                );
            }
            Command::Msg { to, text } => match self.nicks.get(to) {
                Some(&target) => {
                    io.send(target, format!("*{nick}* {text}\n").as_bytes());
                    io.send(conn, format!("-> *{to}* {text}\n").as_bytes());
                    self.stats.private_messages += 1;
                }
                None => {
                    io.send(conn, format!("! no such nick: {to}\n").as_bytes());
                }
            },
            Command::Quit => {
                // Leave now, not when the connection is gone: until then
                // (a slow reader's backlog can take a while to flush)
                // nothing said in the room or to the nick may be queued
                // behind `* bye`.
                self.leave(io, conn, format!("* {nick} left #{room}\n"));
                self.nicks.remove(&nick);
                if let Some(client) = self.client_mut(conn) {
                    client.quitting = true;
                }
                io.send(conn, b"* bye\n");
                io.close_when_flushed(conn);
            }
            Command::Help => {
                io.send(conn, HELP.as_bytes());
            }
            Command::Invalid(why) => {
                io.send(conn, format!("! {why}\n").as_bytes());
            }
        }
    }
}

impl Handler for Chat {
    fn on_accept(&mut self, io: &mut Io, _listener: Token, conn: Token) {
        let mut nick = format!("guest{}", self.next_guest);
        while self.nicks.contains_key(&nick) {
            self.next_guest += 1;
            nick = format!("guest{}", self.next_guest);
        }
        self.next_guest += 1;
        let index = conn.index();
        if self.clients.len() <= index {
            self.clients.resize_with(index + 1, || None);
        }
        self.nicks.insert(nick.clone(), conn);
        self.clients[index] = Some(Client {
            token: conn,
            nick: nick.clone(),
            room: String::new(),
            framer: LineFramer::new(self.config.max_line),
            quitting: false,
        });
        io.send(
            conn,
            format!("* welcome to tenk chat, {nick}; /help lists the commands\n").as_bytes(),
        );
        let room = self.config.default_room.clone();
        self.join(io, conn, &room);
    }

    fn on_data(&mut self, io: &mut Io, conn: Token, data: &[u8]) -> usize {
        let mut consumed = 0;
        loop {
            let Some(client) = self.client_mut(conn) else {
                return data.len();
            };
            if client.quitting {
                return data.len();
            }
            match client.framer.next(&data[consumed..]) {
                Frame::Line(line, n) => {
                    consumed += n;
                    self.handle_line(io, conn, line);
                }
                Frame::TooLong { consumed: n } => {
                    consumed += n;
                    self.stats.lines_too_long += 1;
                    let message = format!(
                        "! line too long (max {} bytes), dropped\n",
                        self.config.max_line
                    );
                    io.send(conn, message.as_bytes());
                }
                Frame::Skipped { consumed: n } => consumed += n,
                Frame::Incomplete => return consumed,
            }
        }
    }

    fn on_close(&mut self, io: &mut Io, conn: Token, reason: CloseReason) {
        let Some(client) = self.client(conn) else {
            return;
        };
        if client.quitting {
            // Left its room and gave up its nick at `/quit`.
            self.clients[conn.index()] = None;
            return;
        }
        let nick = client.nick.clone();
        let room = client.room.clone();
        let notice = match reason {
            CloseReason::OutputLimit | CloseReason::WriteTimeout => {
                self.stats.slow_disconnects += 1;
                format!("* {nick} was disconnected (not reading)\n")
            }
            _ => format!("* {nick} left #{room}\n"),
        };
        self.leave(io, conn, notice);
        self.nicks.remove(&nick);
        self.clients[conn.index()] = None;
    }
}
