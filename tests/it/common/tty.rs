//! A pseudo-terminal for a child's output (`Pty`): the child sees a terminal
//! (`isatty` is true), the test reads what it wrote.

// glibc's pseudo-terminal calls are foreign functions: unsafe by their nature.
#![allow(unsafe_code)]

use std::ffi::{CStr, c_char, c_int};
use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::process::Stdio;
use std::thread::{self, JoinHandle};

// glibc's pseudo-terminal calls (std has none).
unsafe extern "C" {
    fn grantpt(fd: c_int) -> c_int;
    fn unlockpt(fd: c_int) -> c_int;
    fn ptsname_r(fd: c_int, buf: *mut c_char, buflen: usize) -> c_int;
}

/// `O_NOCTTY` on Linux: opening the terminal must not make it the test's
/// controlling terminal.
const O_NOCTTY: i32 = 0o400;

/// The two ends of a pseudo-terminal: give `terminal()` to a child, then
/// `read_all` what it wrote.
pub struct Pty {
    master: File,
    slave: File,
}

impl Pty {
    pub fn open() -> Self {
        let master = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(O_NOCTTY)
            .open("/dev/ptmx")
            .expect("open /dev/ptmx");
        let fd = master.as_raw_fd();
        let mut name = [0 as c_char; 128];
        // SAFETY: `fd` is an open pseudo-terminal master for the whole block, and
        // `name` is a buffer of the length given.
        let name = unsafe {
            assert_eq!(grantpt(fd), 0, "grantpt");
            assert_eq!(unlockpt(fd), 0, "unlockpt");
            assert_eq!(ptsname_r(fd, name.as_mut_ptr(), name.len()), 0, "ptsname_r");
            CStr::from_ptr(name.as_ptr())
        };
        let path = name.to_str().expect("a UTF-8 terminal name").to_string();
        let slave = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(O_NOCTTY)
            .open(&path)
            .unwrap_or_else(|e| panic!("open {path}: {e}"));
        Pty { master, slave }
    }

    /// The terminal, for a child's stdin, stdout or stderr.
    pub fn terminal(&self) -> Stdio {
        Stdio::from(self.slave.try_clone().expect("dup the terminal"))
    }

    /// Everything written to the terminal until every copy of it is closed (the
    /// `Command` that was given one must be dropped, the child must exit), read on a
    /// thread of its own; the terminal's `\r\n` line ends as `\n`.
    pub fn read_all(self) -> JoinHandle<String> {
        let Pty { mut master, slave } = self;
        drop(slave);
        thread::spawn(move || {
            let mut bytes = Vec::new();
            let mut buf = [0u8; 4096];
            // Linux answers EIO once no one holds the terminal open any more.
            while let Ok(n) = master.read(&mut buf) {
                if n == 0 {
                    break;
                }
                bytes.extend_from_slice(&buf[..n]);
            }
            String::from_utf8_lossy(&bytes).replace("\r\n", "\n")
        })
    }
}
