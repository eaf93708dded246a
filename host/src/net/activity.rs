//! What one connection is doing, as far as its timeouts care: serving a request, in
//! the middle of receiving a request head, or idle between requests. The service marks
//! requests in and out; the watched socket marks bytes read and asks for its deadline.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Which deadline a connection's next read runs under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadDeadline {
    /// A request is being served: its body read has its own timeout.
    None,
    /// Part of a request head has arrived; the rest must by then.
    Head(Instant),
    /// Nothing is expected; the connection is closed when this passes.
    Idle(Instant),
}

#[derive(Debug)]
struct State {
    in_flight: u32,
    /// When the first byte of the head being received arrived.
    head_started: Option<Instant>,
    /// When the connection last became idle (accepted, or a response produced).
    idle_since: Instant,
}

#[derive(Debug)]
pub struct Activity {
    header_timeout: Duration,
    idle_timeout: Duration,
    state: Mutex<State>,
}

impl Activity {
    pub fn new(header_timeout: Duration, idle_timeout: Duration, now: Instant) -> Self {
        Self { header_timeout, idle_timeout, state: Mutex::new(State { in_flight: 0, head_started: None, idle_since: now }) }
    }

    /// Bytes arrived from the client.
    pub fn bytes_read(&self, now: Instant) {
        let mut s = self.state.lock().expect("activity lock");
        if s.in_flight == 0 && s.head_started.is_none() {
            s.head_started = Some(now);
        }
    }

    /// The service took a request (its head is complete).
    pub fn begin(&self) {
        let mut s = self.state.lock().expect("activity lock");
        s.in_flight += 1;
        s.head_started = None;
    }

    /// The service produced its response.
    pub fn end(&self, now: Instant) {
        let mut s = self.state.lock().expect("activity lock");
        s.in_flight = s.in_flight.saturating_sub(1);
        if s.in_flight == 0 {
            s.idle_since = now;
        }
    }

    pub fn read_deadline(&self) -> ReadDeadline {
        let s = self.state.lock().expect("activity lock");
        if s.in_flight > 0 {
            ReadDeadline::None
        } else if let Some(started) = s.head_started {
            ReadDeadline::Head(started + self.header_timeout)
        } else {
            ReadDeadline::Idle(s.idle_since + self.idle_timeout)
        }
    }
}

/// Marks a request in flight until dropped, so a cancelled request still ends.
pub struct InFlight<'a>(&'a Activity);

impl<'a> InFlight<'a> {
    pub fn new(activity: &'a Activity) -> Self {
        activity.begin();
        Self(activity)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.end(Instant::now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: Duration = Duration::from_secs(2);
    const IDLE: Duration = Duration::from_secs(60);

    #[test]
    fn a_new_connection_is_idle_until_its_first_byte() {
        let t0 = Instant::now();
        let a = Activity::new(HEAD, IDLE, t0);
        assert_eq!(a.read_deadline(), ReadDeadline::Idle(t0 + IDLE));
        let t1 = t0 + Duration::from_secs(5);
        a.bytes_read(t1);
        assert_eq!(a.read_deadline(), ReadDeadline::Head(t1 + HEAD));
        // A trickled head does not push its deadline out byte by byte.
        a.bytes_read(t1 + Duration::from_secs(1));
        assert_eq!(a.read_deadline(), ReadDeadline::Head(t1 + HEAD));
    }

    #[test]
    fn a_request_in_flight_has_no_read_deadline_and_its_end_starts_the_idle_one() {
        let t0 = Instant::now();
        let a = Activity::new(HEAD, IDLE, t0);
        a.bytes_read(t0);
        {
            let _request = InFlight::new(&a);
            assert_eq!(a.read_deadline(), ReadDeadline::None);
            // Body bytes (or a pipelined head) while serving do not start a head deadline.
            a.bytes_read(t0);
            assert_eq!(a.read_deadline(), ReadDeadline::None);
        }
        match a.read_deadline() {
            ReadDeadline::Idle(at) => assert!(at >= t0 + IDLE),
            other => panic!("expected idle, got {other:?}"),
        }
    }
}
