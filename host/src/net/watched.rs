//! A client socket whose reads time out by what the connection is doing (see
//! `activity`): the error makes hyper close the connection, and a socket with no read
//! pending costs nothing.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Sleep;

use super::activity::{Activity, ReadDeadline};

pub struct Watched {
    inner: TcpStream,
    activity: Arc<Activity>,
    /// The deadline armed for the pending read, if any.
    timer: Option<(Instant, Pin<Box<Sleep>>)>,
}

impl Watched {
    pub fn new(inner: TcpStream, activity: Arc<Activity>) -> Self {
        Self { inner, activity, timer: None }
    }

    /// Polls the deadline of a read that is pending; an error once it passed.
    fn poll_deadline(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        let (at, why) = match self.activity.read_deadline() {
            ReadDeadline::None => {
                self.timer = None;
                return Poll::Pending;
            }
            ReadDeadline::Head(at) => (at, "the request head did not arrive in time (runtime.header_read_timeout_ms)"),
            ReadDeadline::Idle(at) => (at, "the connection was idle too long (runtime.idle_timeout_ms)"),
        };
        let timer = match &mut self.timer {
            Some((armed, sleep)) if *armed == at => sleep,
            slot => &mut slot.insert((at, Box::pin(tokio::time::sleep_until(at.into())))).1,
        };
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => {
                tracing::debug!(reason = why, "closing a client connection");
                Poll::Ready(io::Error::new(io::ErrorKind::TimedOut, why))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncRead for Watched {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    self.activity.bytes_read(Instant::now());
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => self.poll_deadline(cx).map(Err),
        }
    }
}

impl AsyncWrite for Watched {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(mut self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
