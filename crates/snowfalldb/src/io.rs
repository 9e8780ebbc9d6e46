//! Streamed values as `std::io`: a [`ValueReader`] is `Read + Seek`, a
//! [`ValueWriter`] is `Write` (committed with [`ValueWriter::commit`]), so
//! a value of any size copies to and from files and sockets with
//! `std::io::copy`, through the engine's 1 MiB bounce buffer.
//!
//! ```
//! use std::io::{Read, Write};
//! use snowfalldb::{Database, Durability, TreeExt};
//!
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     # let dir = std::env::temp_dir().join(format!("snowfalldb-io-doc-{}", std::process::id()));
//!     # std::fs::create_dir_all(&dir)?;
//!     let db = Database::builder(dir.join("blobs.db")).create()?;
//!     let blobs = db.tree("blobs")?;
//!     let mut w = blobs.value_writer(b"video")?;
//!     for _ in 0..4 {
//!         w.write_all(&[7u8; 1 << 20])?; // 4 MiB, never all in memory
//!     }
//!     w.commit(Durability::Sync)?;
//!     let mut r = blobs.value_reader(b"video")?.expect("just written");
//!     let mut first = [0u8; 16];
//!     r.read_exact(&mut first)?;
//!     assert_eq!(first, [7u8; 16]);
//!     drop(r);
//!     db.close()?;
//!     # std::fs::remove_dir_all(&dir)?;
//!     Ok(())
//! }
//! ```

use std::io::{self, Read, Seek, SeekFrom, Write};

use snowfall_db::{Durability, Error, Tree};

/// `key`'s value, read as a `std::io::Read + Seek` (see
/// [`snowfall_db::ValueReader`]: the value it opened stays readable while
/// it lives; read to the end in order, its checksum is checked).
#[derive(Debug)]
pub struct ValueReader<'db>(pub snowfall_db::ValueReader<'db>);

/// `key`'s new value, written as a `std::io::Write` and stored by
/// [`commit`](ValueWriter::commit); dropped uncommitted, it is not stored.
#[derive(Debug)]
pub struct ValueWriter<'db>(pub snowfall_db::ValueWriter<'db>);

/// Streams for [`Tree`]s.
pub trait TreeExt<'db> {
    /// A reader of `key`'s value, `None` if the key is absent.
    fn value_reader(&self, key: &[u8]) -> Result<Option<ValueReader<'db>>, Error>;
    /// A writer of `key`'s value.
    fn value_writer(&self, key: &[u8]) -> Result<ValueWriter<'db>, Error>;
}

impl<'db> TreeExt<'db> for Tree<'db> {
    fn value_reader(&self, key: &[u8]) -> Result<Option<ValueReader<'db>>, Error> {
        Ok(self.reader(key)?.map(ValueReader))
    }

    fn value_writer(&self, key: &[u8]) -> Result<ValueWriter<'db>, Error> {
        self.writer(key).map(ValueWriter)
    }
}

fn to_io(e: Error) -> io::Error {
    io::Error::other(e)
}

impl Read for ValueReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf).map_err(to_io)
    }
}

impl Seek for ValueReader<'_> {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        let len = self.0.len();
        let to = match pos {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => len.checked_add_signed(d),
            SeekFrom::Current(d) => self.0.position().checked_add_signed(d),
        };
        let to = to.ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before the start"))?;
        self.0.seek(to);
        Ok(to)
    }
}

impl Write for ValueWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf).map_err(to_io)?;
        Ok(buf.len())
    }

    /// Nothing to do: bytes reach the file a chunk at a time, and the value
    /// exists once committed.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl ValueWriter<'_> {
    /// Stores the value, acknowledged as `durability` says; whether the key
    /// existed.
    pub fn commit(self, durability: Durability) -> Result<bool, Error> {
        self.0.commit(durability)
    }
}
