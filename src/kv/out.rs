//! Buffered standard output for commands that print a lot (`scan`). A
//! reader that goes away (`snowfall scan | head`) is not an error: SIGPIPE
//! is ignored, the write fails with `EPIPE`, and the command ends quietly
//! with status 0.

use alloc::vec::Vec;

use snowfall_rt::errln;
use snowfall_rt::io::{STDOUT, write_all};
use snowfall_sys::Errno;

use crate::cli::{FAILURE, SUCCESS};

/// Bytes gathered before one `write(2)`.
const BUFFER: usize = 64 << 10;

/// The outcome of writing a command's output: `Ok(SUCCESS)` if it was
/// written or the reader went away (`EPIPE`), else a message on stderr and
/// `Err(FAILURE)`.
pub fn written(result: Result<(), Errno>) -> Result<i32, i32> {
    match result {
        Ok(()) | Err(Errno::PIPE) => Ok(SUCCESS),
        Err(e) => {
            errln!("snowfall: cannot write to stdout: {e}");
            Err(FAILURE)
        }
    }
}

/// A buffered writer to standard output.
pub struct Out {
    buf: Vec<u8>,
}

impl Out {
    /// An empty buffer.
    pub fn new() -> Out {
        Out { buf: Vec::with_capacity(BUFFER) }
    }

    /// The buffer to append to; call [`Out::maybe_flush`] after.
    pub fn buf(&mut self) -> &mut Vec<u8> {
        &mut self.buf
    }

    /// Writes out the buffer once it is full enough.
    pub fn maybe_flush(&mut self) -> Result<(), Errno> {
        if self.buf.len() >= BUFFER { self.flush() } else { Ok(()) }
    }

    /// Writes out the buffer.
    pub fn flush(&mut self) -> Result<(), Errno> {
        let result = write_all(STDOUT, &self.buf);
        self.buf.clear();
        result
    }
}
