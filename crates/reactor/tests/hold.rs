//! Reading held by the protocol (`Io::pause_reading`/`resume_reading`):
//! nothing is delivered while held, and bytes that arrived meanwhile are
//! delivered on resume with no new bytes to raise an edge, in every mode.

mod util;

use std::time::Duration;

use reactor::{Exit, Handler, Io, TimerId, Token};
use util::{any_port, reactor, run, TRIGGERS};

/// Holds the accepted connection, lets the client's bytes arrive, then
/// resumes from a timer: the bytes must come only after the resume.
#[derive(Default)]
struct Held {
    server: Option<Token>,
    resumed: bool,
    early: usize,
    got: Vec<u8>,
}

/// Long enough for loopback bytes to reach the held socket many times
/// over; the test fails if they are delivered before it ends.
const HOLD_FOR: Duration = Duration::from_millis(150);

impl Handler for Held {
    fn on_accept(&mut self, io: &mut Io, _listener: Token, conn: Token) {
        self.server = Some(conn);
        io.pause_reading(conn);
        assert!(io.is_reading_paused(conn));
        io.add_timer(HOLD_FOR, 0);
    }

    fn on_connect(&mut self, io: &mut Io, conn: Token) {
        assert!(io.send(conn, b"sent while held"));
    }

    fn on_data(&mut self, io: &mut Io, conn: Token, data: &[u8]) -> usize {
        if Some(conn) == self.server {
            if !self.resumed {
                self.early += data.len();
            }
            self.got.extend_from_slice(data);
            if self.got.len() == 15 {
                io.stop();
            }
        }
        data.len()
    }

    fn on_timer(&mut self, io: &mut Io, _timer: TimerId, _data: u64) {
        let server = self.server.expect("accepted before the timer");
        self.resumed = true;
        io.resume_reading(server);
        assert!(!io.is_reading_paused(server));
    }
}

#[test]
fn held_bytes_wait_and_are_delivered_on_resume() {
    for trigger in TRIGGERS {
        let mut r = reactor(trigger, Held::default());
        let listener = r.io().listen(any_port(), 16).unwrap();
        let addr = r.io().local_addr(listener).unwrap();
        r.io().connect(addr, None).unwrap();
        assert_eq!(run(&mut r), Exit::Stopped, "{trigger:?}");
        let h = r.handler();
        assert_eq!(h.early, 0, "{trigger:?}: delivered while held");
        assert_eq!(h.got, b"sent while held", "{trigger:?}");
    }
}
