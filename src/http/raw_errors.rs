//! hyper rejects some requests before they reach the service (a request line
//! over 64 KiB, headers over the buffer, bytes that are not HTTP) and answers
//! them with an empty 4xx. Clients here expect a JSON envelope on HTTP 200, so
//! this I/O shim swaps those empty answers for one. Our own responses always
//! carry a body, so they never match.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use hyper::rt::{Read, ReadBufCursor, Write};

use crate::error::ApiError;

pub struct JsonRejections<T> {
    inner: T,
    /// Replacement bytes still to be written.
    pending: Vec<u8>,
}

impl<T> JsonRejections<T> {
    pub fn new(inner: T) -> Self {
        JsonRejections {
            inner,
            pending: Vec::new(),
        }
    }
}

/// The replacement for one of hyper's own empty rejections, if `buf` is one.
fn replacement(buf: &[u8]) -> Option<Vec<u8>> {
    // Every response passes here: only a 4xx status line is worth a look.
    if !(buf.starts_with(b"HTTP/1.1 4") || buf.starts_with(b"HTTP/1.0 4")) {
        return None;
    }
    let head = std::str::from_utf8(buf.get(..buf.len().min(512))?).ok()?;
    let status = head
        .strip_prefix("HTTP/1.1 ")
        .or_else(|| head.strip_prefix("HTTP/1.0 "))?;
    let lower = head.to_ascii_lowercase();
    if !status.starts_with('4') || !lower.contains("\r\ncontent-length: 0\r\n") {
        return None;
    }
    let why = match &status[..3] {
        "414" => {
            "the request line is longer than 64 KiB; send large requests as a POST form (up to 1 MiB)"
        }
        "431" => "the request headers are too large",
        _ => "the request is not valid HTTP/1.1",
    };
    let body = ApiError::InvalidParameter(why.into()).to_json().to_string();
    Some(
        format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes(),
    )
}

impl<T: Write + Unpin> JsonRejections<T> {
    fn drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.pending.is_empty() {
            let n = std::task::ready!(Pin::new(&mut self.inner).poll_write(cx, &self.pending))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.pending.drain(..n);
        }
        Poll::Ready(Ok(()))
    }
}

impl<T: Read + Unpin> Read for JsonRejections<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: Write + Unpin> Write for JsonRejections<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        std::task::ready!(self.drain(cx))?;
        if let Some(bytes) = replacement(buf) {
            self.pending = bytes;
            // Report hyper's bytes as written; ours go out in their place.
            let _ = self.drain(cx)?;
            return Poll::Ready(Ok(buf.len()));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        std::task::ready!(self.drain(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        std::task::ready!(self.drain(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    // Unvectored, so hyper hands over each response as one contiguous buffer.
    fn is_write_vectored(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_empty_4xx_are_replaced() {
        let r = replacement(
            b"HTTP/1.1 414 URI Too Long\r\nconnection: close\r\ncontent-length: 0\r\n\r\n",
        )
        .expect("replaced");
        let text = String::from_utf8(r).expect("utf8");
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(text.contains("\"ret_code\":1100"));
        assert!(replacement(b"HTTP/1.1 404 Not Found\r\ncontent-length: 95\r\n\r\n{}").is_none());
        assert!(replacement(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").is_none());
    }
}
