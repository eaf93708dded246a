//! One log event, one line. A line break inside a message or a field (a plugin's error
//! text, a plugin's log line, a value a client sent that either of them repeats) is
//! written as `\n` or `\r`, so no plugin or client can start a line of its own in the
//! host's log that support staff would take for the host's.
//!
//! The fmt layer writes each event whole, ending in its one line break, with a single
//! `write_all` on a writer made for that event, which is what lets the last byte alone
//! keep its meaning. (Field values it quotes are escaped already; messages and values
//! logged with `%` are not, and JSON lines are escaped by JSON.)

use std::io::{self, Write};

use tracing_subscriber::fmt::MakeWriter;

/// Makes a [`OneLine`] writer onto stderr for each event.
pub struct OneLineStderr;

impl<'a> MakeWriter<'a> for OneLineStderr {
    type Writer = OneLine<io::Stderr>;

    fn make_writer(&'a self) -> Self::Writer {
        OneLine(io::stderr())
    }
}

/// Writes one event's bytes with every line break but the last escaped.
pub struct OneLine<W>(pub W);

impl<W: Write> Write for OneLine<W> {
    fn write(&mut self, event: &[u8]) -> io::Result<usize> {
        let (text, end) = match event.split_last() {
            Some((b'\n', text)) => (text, &b"\n"[..]),
            _ => (event, &b""[..]),
        };
        if !text.iter().any(|b| matches!(b, b'\n' | b'\r')) {
            self.0.write_all(event)?;
            return Ok(event.len());
        }
        let mut line = Vec::with_capacity(event.len() + 16);
        for &byte in text {
            match byte {
                b'\n' => line.extend_from_slice(b"\\n"),
                b'\r' => line.extend_from_slice(b"\\r"),
                other => line.push(other),
            }
        }
        line.extend_from_slice(end);
        // Whole, so that the event stays one write and lines of other threads cannot
        // land inside it.
        self.0.write_all(&line)?;
        Ok(event.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(event: &[u8]) -> String {
        let mut out = OneLine(Vec::new());
        out.write_all(event).unwrap();
        String::from_utf8(out.0).unwrap()
    }

    #[test]
    fn line_breaks_inside_an_event_are_escaped_and_its_end_is_kept() {
        assert_eq!(
            written(b"WARN plugin: could not handle x\n2026-12-07T00:00:00Z INFO payhost: forged\r\n"),
            "WARN plugin: could not handle x\\n2026-12-07T00:00:00Z INFO payhost: forged\\r\n"
        );
        assert_eq!(written(b"INFO payhost: plain\n"), "INFO payhost: plain\n");
        assert_eq!(written(b"no end"), "no end");
        assert_eq!(written(b"\n"), "\n");
        assert_eq!(written(b""), "");
    }

    #[test]
    fn an_event_logged_through_the_fmt_layer_stays_on_one_line() {
        use std::sync::{Arc, Mutex};
        use tracing_subscriber::layer::SubscriberExt;

        #[derive(Clone, Default)]
        struct Captured(Arc<Mutex<Vec<u8>>>);
        impl Write for Captured {
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let captured = Captured::default();
        let sink = captured.clone();
        let layer = tracing_subscriber::fmt::layer().with_ansi(false).with_writer(move || OneLine(sink.clone()));
        let subscriber = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(subscriber, || {
            let cause = "bad order\nINFO payhost::server: payment captured";
            tracing::error!(cause = %cause, "plugin call failed");
            tracing::warn!("client sent {}", "a\r\nb");
        });
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        assert_eq!(text.lines().count(), 2, "{text}");
        assert!(text.contains("cause=bad order\\nINFO payhost::server: payment captured"), "{text}");
        assert!(text.contains("client sent a\\r\\nb"), "{text}");
    }
}
