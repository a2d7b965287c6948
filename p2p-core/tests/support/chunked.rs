//! A `Read` source that hands its bytes out in a given chunking, with interrupted and
//! timed-out reads in between: shared by the property tests (`tests/codec_props.rs`) and
//! the fuzz target (`fuzz/fuzz_targets/frame_reader.rs`).

use std::io::{self, Read};

/// One step of a delivery plan.
#[derive(Debug, Clone, Copy)]
pub enum Step {
    /// Hand out at most this many bytes (at least one).
    Bytes(usize),
    /// Fail with `Interrupted` (the reader must retry by itself).
    Interrupted,
    /// Fail with `WouldBlock`, as a socket with a read timeout does (the reader must keep
    /// its partial frame, and the caller calls again).
    WouldBlock,
}

/// Bytes handed out along a plan of [`Step`]s, repeated until the bytes run out.
pub struct Chunked<'a> {
    data: &'a [u8],
    plan: &'a [Step],
    next: usize,
    delivered: usize,
}

impl<'a> Chunked<'a> {
    /// A source of `data`, delivered along `plan` (which must not be empty).
    pub fn new(data: &'a [u8], plan: &'a [Step]) -> Self {
        Chunked {
            data,
            plan,
            next: 0,
            delivered: 0,
        }
    }

    /// Bytes handed out so far (not every file that includes this one asks).
    #[allow(dead_code)]
    pub fn delivered(&self) -> usize {
        self.delivered
    }
}

impl Read for Chunked<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.data.is_empty() {
            return Ok(0);
        }
        let step = self.plan[self.next % self.plan.len()];
        self.next += 1;
        match step {
            Step::Bytes(n) => {
                let n = n.min(buf.len()).min(self.data.len());
                buf[..n].copy_from_slice(&self.data[..n]);
                self.data = &self.data[n..];
                self.delivered += n;
                Ok(n)
            }
            Step::Interrupted => Err(io::ErrorKind::Interrupted.into()),
            Step::WouldBlock => Err(io::ErrorKind::WouldBlock.into()),
        }
    }
}
