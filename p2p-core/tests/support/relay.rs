//! A relay in the middle of a link: a TCP proxy on 127.0.0.1 that forwards every connection
//! it accepts to one target, records every byte both ways, and, when told, breaks the next
//! record it forwards from the target to the connecting side (the direction a listener's
//! messages flow in when the connecting side is the listener).
//!
//! The record view: after the TCP connection a link carries units of a 2-byte big-endian
//! length and that many bytes: the Noise handshake's messages, then the records. From the
//! target (the responder) come message 2, the confirmation (record 0), then the records
//! of its messages; the faults apply from the third unit on, that is to a record that
//! carries frames.
//!
//! Threads: one accept thread per relay, two per connection; each ends when its sockets
//! close (the relay's drop wakes the accept thread and shuts every connection).
#![allow(dead_code)]

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

/// What the relay does to the next record from the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Flips one bit of the record's ciphertext.
    Flip,
    /// Forwards the record, then the same record again.
    Replay,
    /// Forwards the length and half of the record, then closes the connection.
    Truncate,
}

#[derive(Default)]
struct Shared {
    /// Every byte from the connecting side to the target, connection after connection.
    up: Mutex<Vec<u8>>,
    /// Every byte from the target to the connecting side.
    down: Mutex<Vec<u8>>,
    /// The fault to apply to the next record from the target, once.
    armed: Mutex<Option<Fault>>,
    /// Faults applied so far.
    applied: Mutex<Vec<Fault>>,
    /// Connections open, so that the drop can shut them.
    conns: Mutex<Vec<TcpStream>>,
    stop: AtomicBool,
}

/// A running relay.
pub struct Relay {
    /// Where to connect to reach the target through the relay.
    pub addr: SocketAddr,
    shared: Arc<Shared>,
}

impl Relay {
    /// A relay to `target` that forwards bytes as they come (it does not look into them).
    pub fn recording(target: SocketAddr) -> Relay {
        Relay::start(target, false)
    }

    /// A relay to `target` that forwards the target's bytes a record at a time, so that it
    /// can break one when [`Relay::arm`]ed.
    pub fn breaking(target: SocketAddr) -> Relay {
        Relay::start(target, true)
    }

    fn start(target: SocketAddr, records: bool) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared::default());
        let s = Arc::clone(&shared);
        thread::spawn(move || {
            for client in listener.incoming() {
                if s.stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = client else { break };
                let Ok(server) = TcpStream::connect(target) else {
                    continue;
                };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                {
                    let mut conns = s.conns.lock().unwrap();
                    conns.push(client.try_clone().unwrap());
                    conns.push(server.try_clone().unwrap());
                }
                let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                let up = Arc::clone(&s);
                thread::spawn(move || copy_up(client, server, &up));
                let down = Arc::clone(&s);
                thread::spawn(move || {
                    if records {
                        records_down(s2, c2, &down);
                    } else {
                        copy_down(s2, c2, &down);
                    }
                });
            }
        });
        Relay { addr, shared }
    }

    /// Breaks the next record from the target, once.
    pub fn arm(&self, fault: Fault) {
        *self.shared.armed.lock().unwrap() = Some(fault);
    }

    /// The faults applied so far.
    pub fn applied(&self) -> Vec<Fault> {
        self.shared.applied.lock().unwrap().clone()
    }

    /// Everything recorded, both ways.
    pub fn recorded(&self) -> Vec<u8> {
        let mut all = self.shared.up.lock().unwrap().clone();
        all.extend_from_slice(&self.shared.down.lock().unwrap());
        all
    }

    /// Bytes recorded from the target to the connecting side, and the other way.
    pub fn recorded_sizes(&self) -> (usize, usize) {
        (
            self.shared.down.lock().unwrap().len(),
            self.shared.up.lock().unwrap().len(),
        )
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        for conn in self.shared.conns.lock().unwrap().drain(..) {
            let _ = conn.shutdown(Shutdown::Both);
        }
    }
}

/// Copies from the connecting side to the target, recording; when the target side is
/// gone, keeps reading (and dropping) what the connecting side sends until it closes, so
/// that the connecting side reads whatever was sent to it before the end.
fn copy_up(mut from: TcpStream, mut to: TcpStream, shared: &Shared) {
    let mut buf = [0u8; 16 * 1024];
    let mut open = true;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        shared.up.lock().unwrap().extend_from_slice(&buf[..n]);
        if open && to.write_all(&buf[..n]).is_err() {
            open = false;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

fn copy_down(mut from: TcpStream, mut to: TcpStream, shared: &Shared) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        shared.down.lock().unwrap().extend_from_slice(&buf[..n]);
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

/// Reads one unit (2-byte length, then that many bytes); `None` at the end.
fn unit(from: &mut TcpStream) -> Option<Vec<u8>> {
    let mut len = [0u8; 2];
    from.read_exact(&mut len).ok()?;
    let mut unit = len.to_vec();
    unit.resize(2 + usize::from(u16::from_be_bytes(len)), 0);
    from.read_exact(&mut unit[2..]).ok()?;
    Some(unit)
}

fn records_down(mut from: TcpStream, mut to: TcpStream, shared: &Shared) {
    let mut index = 0u64;
    let result: io::Result<()> = (|| {
        while let Some(mut unit) = unit(&mut from) {
            shared.down.lock().unwrap().extend_from_slice(&unit);
            let fault = if index >= 2 {
                shared.armed.lock().unwrap().take()
            } else {
                None
            };
            index += 1;
            match fault {
                None => to.write_all(&unit)?,
                Some(Fault::Flip) => {
                    let middle = 2 + (unit.len() - 2) / 2;
                    unit[middle] ^= 0x01;
                    to.write_all(&unit)?;
                }
                Some(Fault::Replay) => {
                    to.write_all(&unit)?;
                    to.write_all(&unit)?;
                }
                Some(Fault::Truncate) => {
                    to.write_all(&unit[..2 + (unit.len() - 2) / 2])?;
                    shared.applied.lock().unwrap().push(Fault::Truncate);
                    // The end, inside the record: the target is cut off too.
                    let _ = from.shutdown(Shutdown::Both);
                    return Ok(());
                }
            }
            if let Some(fault) = fault {
                shared.applied.lock().unwrap().push(fault);
            }
        }
        Ok(())
    })();
    let _ = result;
    let _ = to.shutdown(Shutdown::Write);
}
