//! The panic handler: print the message and location on stderr in one write,
//! then exit with status 101 (as a std program's panicking main thread
//! does). Panics abort (`panic = "abort"`): nothing is unwound, so a panic
//! on any thread ends the whole process.

use core::fmt::Write;
use core::panic::PanicInfo;

use crate::io::{LineBuf, STDERR};

#[panic_handler]
fn on_panic(info: &PanicInfo<'_>) -> ! {
    let mut line = LineBuf::new();
    let _ = match info.location() {
        Some(at) => write!(line, "snowfall: panicked at {}:{}: {}", at.file(), at.line(), info.message()),
        None => write!(line, "snowfall: panicked: {}", info.message()),
    };
    line.write_line_to(STDERR);
    crate::exit_immediately(101)
}
