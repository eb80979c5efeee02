//! The control socket's request reader: lines cut from any byte stream as
//! the server reads them (length limit, UTF-8), then parsed as requests.
//! A parsed request serialises and parses back to itself.
#![no_main]

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use baton::agent::control::{parse_request, read_request_line, Request, MAX_REQUEST_LINE};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // A byte slice is always ready: each read completes in one poll.
    let mut rd = data;
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        let line = match pin!(read_request_line(&mut rd)).poll(&mut cx) {
            Poll::Ready(Ok(Some(line))) => line,
            Poll::Ready(Ok(None)) | Poll::Ready(Err(_)) => break,
            Poll::Pending => panic!("a slice reader never waits"),
        };
        assert!(line.len() <= MAX_REQUEST_LINE);
        assert!(!line.contains('\n'));
        if let Ok(req) = parse_request(&line) {
            let json = serde_json::to_string(&req).expect("serialisable");
            let back: Request = parse_request(&json).expect("own request");
            assert_eq!(back, req);
        }
    }
});
