// SPDX-License-Identifier: GPL-2.0

//! The PC's console: the terminal's input to COM1, on a thread of its own.
//!
//! While the guest runs, a terminal on stdin is in raw mode, so every key
//! (Ctrl-C included) reaches the guest; it goes back to canonical mode
//! when the run ends, however it ends (the [`RawTerminal`] guard, and a
//! panic hook). As in QEMU, Ctrl-A is the escape key: Ctrl-A X ends the
//! VMM at once (status 0, no statistics), Ctrl-A Ctrl-A sends one Ctrl-A.
//! Input that is not a terminal (a pipe, a file) is passed on as it is,
//! with no escape key, until its end.

use std::fs::File;
use std::io::{self, IsTerminal, Read, Write};
use std::os::fd::AsFd;
use std::thread;
use std::time::Duration;

use vmm_sys_util::terminal::Terminal;

use crate::pc::{lock, PcSerial};

/// The escape key: Ctrl-A.
pub const ESCAPE: u8 = 0x01;
/// After [`ESCAPE`]: quit.
pub const QUIT: u8 = b'x';

/// What the escape handling makes of one input byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    /// Pass this byte to the guest.
    Send(u8),
    /// Swallowed (the escape key, or an unknown escape).
    Nothing,
    /// The user asked to quit.
    Quit,
}

/// The escape state machine for a terminal's input.
#[derive(Debug, Default)]
pub struct Escape {
    pending: bool,
}

impl Escape {
    /// Feeds one byte.
    pub fn key(&mut self, byte: u8) -> Key {
        if std::mem::take(&mut self.pending) {
            return match byte {
                ESCAPE => Key::Send(ESCAPE),
                b if b.eq_ignore_ascii_case(&QUIT) => Key::Quit,
                _ => Key::Nothing,
            };
        }
        if byte == ESCAPE {
            self.pending = true;
            Key::Nothing
        } else {
            Key::Send(byte)
        }
    }
}

/// A terminal in raw mode, back in canonical mode when dropped.
pub struct RawTerminal {
    _private: (),
}

fn restore_terminal() {
    let _ = io::stdin().lock().set_canon_mode();
}

impl RawTerminal {
    /// Puts stdin in raw mode if it is a terminal.
    pub fn new() -> Option<Self> {
        let stdin = io::stdin();
        if !stdin.is_terminal() || stdin.lock().set_raw_mode().is_err() {
            return None;
        }
        // A panic aborts the process (panic = "abort"): restore first.
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore_terminal();
            previous(info);
        }));
        Some(Self { _private: () })
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        restore_terminal();
    }
}

/// Starts the thread that copies stdin to `serial`'s receiver, holding
/// bytes back while its FIFO is full.
pub fn spawn_input<W: Write + Send + 'static>(serial: PcSerial<W>, terminal: bool) {
    // The thread reads a duplicate of stdin's descriptor, not `Stdin`,
    // whose lock a blocked read would hold: restoring the terminal at the
    // end of the run takes that lock.
    let Ok(mut stdin) = io::stdin().as_fd().try_clone_to_owned().map(File::from) else {
        return;
    };
    thread::spawn(move || {
        let mut escape = Escape::default();
        let mut buf = [0u8; 256];
        loop {
            let n = match stdin.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            let mut out = Vec::with_capacity(n);
            for &b in &buf[..n] {
                match if terminal { escape.key(b) } else { Key::Send(b) } {
                    Key::Send(b) => out.push(b),
                    Key::Nothing => {}
                    Key::Quit => {
                        restore_terminal();
                        eprintln!("\r\npacifica: terminated by Ctrl-A X");
                        std::process::exit(0);
                    }
                }
            }
            let mut rest = &out[..];
            while !rest.is_empty() {
                let taken = lock(&serial).enqueue(rest);
                rest = &rest[taken..];
                if !rest.is_empty() {
                    // The guest has not read its FIFO yet.
                    thread::sleep(Duration::from_millis(5));
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ctrl_a_x_quits_and_ctrl_a_ctrl_a_sends_one() {
        let mut e = Escape::default();
        assert_eq!(e.key(b'l'), Key::Send(b'l'));
        assert_eq!(e.key(ESCAPE), Key::Nothing);
        assert_eq!(e.key(ESCAPE), Key::Send(ESCAPE));
        assert_eq!(e.key(b'x'), Key::Send(b'x'), "the escape was used up");
        assert_eq!(e.key(ESCAPE), Key::Nothing);
        assert_eq!(e.key(b'q'), Key::Nothing, "unknown escapes are swallowed");
        assert_eq!(e.key(3), Key::Send(3), "Ctrl-C goes to the guest");
        e.key(ESCAPE);
        assert_eq!(e.key(b'X'), Key::Quit);
    }
}
