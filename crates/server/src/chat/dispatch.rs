//! What a client's line does: commands, nick claims answered by the
//! cluster, the welcome and the leave notices.

use std::sync::Arc;

use reactor::{Io, Token};

use super::command::{self, Command};
use super::hub::{Address, Mail};
use super::line;
use super::{rooms_line, Chat};

const HELP: &str = "* commands: /nick NAME, /join ROOM, /rooms, /who, /msg NICK text, /quit, /help; other lines go to the room\n";

impl Chat {
    pub(super) fn ask_pause(&mut self, io: &mut Io, conn: Token) {
        if let Some(client) = self.client_mut(conn) {
            client.asking = true;
            io.pause_reading(conn);
        }
    }

    /// Redis answered `conn`: its input runs again (unless a join waits).
    pub(super) fn answered(&mut self, io: &mut Io, conn: Token) {
        let Some(client) = self.client_mut(conn) else {
            return;
        };
        client.asking = false;
        if client.waiting.is_none() {
            io.resume_reading(conn);
            self.run_held(io, conn);
        }
    }

    /// A guest nick for a new user (greeted and joined now), or for one
    /// whose nick `conflict` was lost to another node.
    pub(super) fn guest_answered(
        &mut self,
        io: &mut Io,
        conn: Token,
        nick: Option<String>,
        conflict: Option<String>,
    ) {
        let at = Address {
            worker: self.worker,
            token: conn,
        };
        let current = self.client(conn).map(|c| c.nick.clone());
        let Some(cluster) = &mut self.cluster else {
            return;
        };
        if current.is_none() || (conflict.is_some() && current != conflict) {
            // Gone, or renamed away from the lost nick meanwhile.
            if let Some(nick) = nick {
                cluster.release(io, &nick);
            }
            if current.is_some() {
                self.answered(io, conn);
            }
            return;
        }
        let nick = match nick {
            Some(nick) => {
                if self.hub.directory().claim(&nick, at).is_err() {
                    // Claimed here while Redis was unreachable: another.
                    cluster.release(io, &nick);
                    cluster.guest(io, conn, conflict, &mut self.events);
                    return;
                }
                nick
            }
            None => {
                let nick = self.hub.directory().claim_guest(at);
                cluster.hold(&nick);
                nick
            }
        };
        let Some(client) = self.client_mut(conn) else {
            return;
        };
        let old = std::mem::replace(&mut client.nick, nick.clone());
        let room = client.room.clone();
        match conflict {
            None => self.welcome(io, conn),
            Some(_) => {
                self.hub.directory().rename_claimed(&old, &nick, &room);
                if let Some(cluster) = &mut self.cluster {
                    cluster.left(io, &room, &old);
                    cluster.joined(io, &room, &nick);
                }
                let why =
                    format!("! nick {old} was claimed on another node first; you are now {nick}\n");
                io.send(conn, why.as_bytes());
                let notice = format!("* {old} is now known as {nick}\n");
                self.broadcast(io, &room, None, &nick, notice);
            }
        }
        self.answered(io, conn);
    }

    /// Redis answered `/nick new` of `conn`.
    pub(super) fn claim_answered(&mut self, io: &mut Io, conn: Token, new: String, taken: bool) {
        let Some(client) = self.client(conn) else {
            self.hub.directory().release(&new);
            if let (false, Some(cluster)) = (taken, &mut self.cluster) {
                cluster.release(io, &new);
            }
            return;
        };
        if taken {
            self.hub.directory().release(&new);
            io.send(conn, format!("! nick {new} is taken\n").as_bytes());
            return self.answered(io, conn);
        }
        let (old, room) = (client.nick.clone(), client.room.clone());
        self.hub.directory().rename_claimed(&old, &new, &room);
        if let Some(cluster) = &mut self.cluster {
            cluster.release(io, &old);
            cluster.left(io, &room, &old);
            cluster.joined(io, &room, &new);
        }
        if let Some(client) = self.client_mut(conn) {
            client.nick = new.clone();
        }
        let notice = format!("* {old} is now known as {new}\n");
        self.broadcast(io, &room, None, &new, notice);
        self.answered(io, conn);
    }

    /// Greets `conn` and joins it to the default room.
    pub(super) fn welcome(&mut self, io: &mut Io, conn: Token) {
        let Some(client) = self.client(conn) else {
            return;
        };
        let greeting = format!(
            "* welcome to tenk chat, {}; /help lists the commands\n",
            client.nick
        );
        io.send(conn, greeting.as_bytes());
        let room = self.config.default_room.clone();
        self.join(io, conn, &room);
    }

    pub(super) fn leave(&mut self, io: &mut Io, conn: Token, notice: String) {
        let Some(client) = self.client(conn) else {
            return;
        };
        let room = client.room.clone();
        let nick = client.nick.clone();
        self.hub.directory().leave(&room, &nick, self.worker);
        if let Some(cluster) = &mut self.cluster {
            cluster.left(io, &room, &nick);
        }
        if let Some(members) = self.rooms.get_mut(&room) {
            members.retain(|&m| m != conn);
            if members.is_empty() {
                self.rooms.remove(&room);
                if let Some(cluster) = &mut self.cluster {
                    cluster.unsubscribe(io, &room);
                }
            }
        }
        self.broadcast(io, &room, None, &nick, notice);
    }

    pub(super) fn handle_line(&mut self, io: &mut Io, conn: Token, line: &[u8]) {
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
                self.broadcast(io, &room, Some(conn), &nick, format!("<{nick}> {said}\n"));
            }
            Command::Nick(new) => {
                if new == nick {
                    return;
                }
                if self.cluster.is_some() {
                    let at = Address {
                        worker: self.worker,
                        token: conn,
                    };
                    if self.hub.directory().claim(new, at).is_err() {
                        io.send(conn, format!("! nick {new} is taken\n").as_bytes());
                        return;
                    }
                    self.ask_pause(io, conn);
                    if let Some(cluster) = &mut self.cluster {
                        cluster.claim(io, conn, new, &mut self.events);
                    }
                    return self.cluster_events(io);
                }
                let renamed = self.hub.directory().rename(&nick, new, &room);
                if renamed.is_err() {
                    io.send(conn, format!("! nick {new} is taken\n").as_bytes());
                    return;
                }
                if let Some(client) = self.client_mut(conn) {
                    client.nick = new.to_string();
                }
                let notice = format!("* {nick} is now known as {new}\n");
                self.broadcast(io, &room, None, new, notice);
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
                if self.cluster.is_some() {
                    self.ask_pause(io, conn);
                    let default = self.config.default_room.clone();
                    if let Some(cluster) = &mut self.cluster {
                        cluster.rooms(io, conn, &default, &mut self.events);
                    }
                    return self.cluster_events(io);
                }
                let rooms = self.hub.directory().rooms();
                io.send(conn, rooms_line(&rooms).as_bytes());
            }
            Command::Who => {
                if let Some(cluster) = &mut self.cluster {
                    if let Some(client) = self.clients[conn.index()].as_mut() {
                        client.asking = true;
                        io.pause_reading(conn);
                    }
                    cluster.who(io, conn, &room, &mut self.events);
                    return self.cluster_events(io);
                }
                let nicks = self.hub.directory().who(&room);
                io.send(
                    conn,
                    format!("* in #{room}: {}\n", nicks.join(" ")).as_bytes(),
                );
            }
            Command::Msg { to, text } => match self.find(to) {
                Some(target) => {
                    let message = format!("*{nick}* {text}\n");
                    if target.worker == self.worker {
                        io.send(target.token, message.as_bytes());
                    } else {
                        let message = Arc::from(message.into_bytes());
                        let mail = Mail::Private {
                            to: target.token,
                            message,
                        };
                        self.post(target.worker, mail);
                    }
                    io.send(conn, format!("-> *{to}* {text}\n").as_bytes());
                    self.stats.private_messages += 1;
                }
                None if self.cluster.is_some() => {
                    // Not on this node: ask Redis to deliver it where the
                    // nick lives.
                    self.ask_pause(io, conn);
                    if let Some(cluster) = &mut self.cluster {
                        cluster.msg(io, conn, &nick, to, text, &mut self.events);
                    }
                    self.cluster_events(io);
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
                self.hub.directory().release(&nick);
                if let Some(cluster) = &mut self.cluster {
                    cluster.release(io, &nick);
                }
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
