//! The stats endpoint's HTTP: one request in (parsed by `httparse`), one response out, then
//! the connection is closed. No sockets here: the event loop reads and writes.
//!
//! Only `GET /metrics` (and `HEAD`) is served; anything else gets its status code.

/// Most bytes of request head the endpoint reads (a Prometheus scrape sends a few
/// hundred).
pub(crate) const MAX_HTTP_REQUEST_BYTES: usize = 4096;

/// Most header lines a request may have.
const MAX_HEADERS: usize = 32;

/// The content type of the Prometheus text exposition format.
const METRICS_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What to do with the bytes received so far.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Reply {
    /// The request head is not complete yet: read more.
    Incomplete,
    /// Send these bytes, then close.
    Send(Vec<u8>),
}

/// The reply to the request head in `received`; `metrics` renders the figures when they
/// are asked for.
pub(crate) fn reply(received: &[u8], metrics: impl FnOnce() -> String) -> Reply {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    match request.parse(received) {
        Ok(httparse::Status::Partial) if received.len() < MAX_HTTP_REQUEST_BYTES => {
            Reply::Incomplete
        }
        Ok(httparse::Status::Partial) => Reply::Send(response(
            "431 Request Header Fields Too Large",
            "text/plain",
            "request too large\n",
            true,
        )),
        Err(_) => Reply::Send(response(
            "400 Bad Request",
            "text/plain",
            "bad request\n",
            true,
        )),
        Ok(httparse::Status::Complete(_)) => {
            let with_body = request.method != Some("HEAD");
            match (request.method, request.path) {
                (Some("GET" | "HEAD"), Some("/metrics")) => {
                    Reply::Send(response("200 OK", METRICS_TYPE, &metrics(), with_body))
                }
                (Some("GET" | "HEAD"), _) => Reply::Send(response(
                    "404 Not Found",
                    "text/plain",
                    "the figures are at /metrics\n",
                    with_body,
                )),
                _ => Reply::Send(response(
                    "405 Method Not Allowed",
                    "text/plain",
                    "only GET /metrics\n",
                    true,
                )),
            }
        }
    }
}

fn response(status: &str, content_type: &str, body: &str, with_body: bool) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if with_body {
        out.extend_from_slice(body.as_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(reply: Reply) -> String {
        match reply {
            Reply::Send(bytes) => String::from_utf8(bytes).unwrap(),
            Reply::Incomplete => panic!("incomplete"),
        }
    }

    #[test]
    fn metrics_are_served_to_get_and_everything_else_gets_its_status() {
        let get = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
        let ok = text(reply(get, || "tracker_peers 1\n".into()));
        assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
        assert!(ok.contains("Content-Length: 16\r\n"), "{ok}");
        assert!(ok.ends_with("\r\n\r\ntracker_peers 1\n"), "{ok}");
        let head = text(reply(b"HEAD /metrics HTTP/1.0\r\n\r\n", || "x".into()));
        assert!(head.starts_with("HTTP/1.1 200") && head.ends_with("\r\n\r\n"));
        let cases: [(&[u8], &str); 3] = [
            (b"GET / HTTP/1.1\r\n\r\n", "404"),
            (b"POST /metrics HTTP/1.1\r\n\r\n", "405"),
            (b"\x16\x03\x01 not http\r\n\r\n", "400"),
        ];
        for (request, status) in cases {
            let answer = text(reply(request, || unreachable!()));
            assert!(
                answer.starts_with(&format!("HTTP/1.1 {status}")),
                "{answer}"
            );
        }
    }

    #[test]
    fn a_head_is_read_until_complete_and_no_further_than_the_limit() {
        assert_eq!(
            reply(b"GET /metrics HTTP/1.1\r\nHo", String::new),
            Reply::Incomplete
        );
        let mut long = b"GET /metrics HTTP/1.1\r\nX: ".to_vec();
        long.resize(MAX_HTTP_REQUEST_BYTES, b'a');
        assert!(text(reply(&long, String::new)).starts_with("HTTP/1.1 431"));
    }
}
