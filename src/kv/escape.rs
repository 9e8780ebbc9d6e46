//! How keys and values appear as text: `scan` writes `key<TAB>value`
//! lines and `load` reads them back.
//!
//! Text form: the bytes as they are, except backslash, tab and newline,
//! written `\\`, `\t`, `\n`, and any other byte that is a control
//! character or not part of valid UTF-8, written `\xNN`. Hex form
//! (`--hex`): two lowercase hex digits per byte, no escapes needed.
//! `unescape` accepts exactly what `escape` writes, so scan output loads
//! back byte for byte.

use alloc::vec::Vec;
use core::fmt;

/// Why text does not decode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BadText {
    /// A backslash not followed by `\`, `t`, `n` or `xNN`.
    Escape {
        /// Byte offset of the backslash.
        at: usize,
    },
    /// Hex form with an odd length or a non-hex digit.
    Hex {
        /// Byte offset of the bad digit (or the length, if odd).
        at: usize,
    },
}

impl fmt::Display for BadText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BadText::Escape { at } => {
                write!(f, "bad escape at byte {at} (use \\\\, \\t, \\n or \\xNN)")
            }
            BadText::Hex { at } => write!(f, "bad hex at byte {at} (two hex digits per byte)"),
        }
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn push_hex(b: u8, out: &mut Vec<u8>) {
    out.push(HEX.get(usize::from(b >> 4)).copied().unwrap_or(b'0'));
    out.push(HEX.get(usize::from(b & 15)).copied().unwrap_or(b'0'));
}

/// Appends `bytes` in text form (or hex form if `hex`) to `out`.
pub fn escape(bytes: &[u8], hex: bool, out: &mut Vec<u8>) {
    if hex {
        bytes.iter().for_each(|&b| push_hex(b, out));
        return;
    }
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => out.extend_from_slice(b"\\\\"),
                '\t' => out.extend_from_slice(b"\\t"),
                '\n' => out.extend_from_slice(b"\\n"),
                c if c.is_control() => {
                    let mut buf = [0u8; 4];
                    for &b in c.encode_utf8(&mut buf).as_bytes() {
                        out.extend_from_slice(b"\\x");
                        push_hex(b, out);
                    }
                }
                c => {
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                }
            }
        }
        for &b in chunk.invalid() {
            out.extend_from_slice(b"\\x");
            push_hex(b, out);
        }
    }
}

fn hex_digit(d: u8) -> Option<u8> {
    match d {
        b'0'..=b'9' => Some(d - b'0'),
        b'a'..=b'f' => Some(d - b'a' + 10),
        b'A'..=b'F' => Some(d - b'A' + 10),
        _ => None,
    }
}

/// The byte two hex digits stand for.
fn hex_pair(h: u8, l: u8) -> Result<u8, (bool, bool)> {
    match (hex_digit(h), hex_digit(l)) {
        (Some(h), Some(l)) => Ok(h << 4 | l),
        (h, l) => Err((h.is_none(), l.is_none())),
    }
}

/// Decodes text form (or hex form if `hex`) into `out`, after what it
/// holds. The result is never longer than `text`: with `text.len()` bytes
/// of spare capacity (reserved fallibly by a caller whose text comes from
/// input), decoding allocates nothing.
pub fn unescape_into(text: &[u8], hex: bool, out: &mut Vec<u8>) -> Result<(), BadText> {
    if hex {
        if !text.len().is_multiple_of(2) {
            return Err(BadText::Hex { at: text.len() });
        }
        for (i, pair) in text.chunks_exact(2).enumerate() {
            let &[h, l] = pair else { return Err(BadText::Hex { at: 2 * i }) };
            match hex_pair(h, l) {
                Ok(b) => out.push(b),
                Err((true, _)) => return Err(BadText::Hex { at: 2 * i }),
                Err(_) => return Err(BadText::Hex { at: 2 * i + 1 }),
            }
        }
        return Ok(());
    }
    let mut i = 0;
    while let Some(&b) = text.get(i) {
        if b != b'\\' {
            out.push(b);
            i += 1;
            continue;
        }
        let bad = BadText::Escape { at: i };
        match text.get(i + 1) {
            Some(b'\\') => out.push(b'\\'),
            Some(b't') => out.push(b'\t'),
            Some(b'n') => out.push(b'\n'),
            Some(b'x') => {
                let &[h, l] = text.get(i + 2..i + 4).ok_or(bad)? else { return Err(bad) };
                out.push(hex_pair(h, l).map_err(|_| bad)?);
                i += 2;
            }
            _ => return Err(bad),
        }
        i += 2;
    }
    Ok(())
}
