//! Point lookups: an optimistic descent and a validated read of the leaf;
//! after too many restarts, shared latch coupling.

use alloc::vec::Vec;

use snowfall_node::{MAX_ENTRY, Node};

use crate::error::{Error, Step};
use crate::journal::Stored;
use crate::limits::check_key;
use crate::tree::{BTree, Toward};
use crate::view::View;

impl BTree<'_> {
    /// Copies the value of `key` as its leaf stores it into `out`; returns
    /// its length and whether it is a reference, or `None` if the key is
    /// absent.
    pub fn get_into(&self, key: &[u8], out: &mut [u8; MAX_ENTRY]) -> Result<Option<Found>, Error> {
        check_key(key)?;
        self.with_restarts(
            out,
            |out| {
                let guard = self.leaf_optimistic(key, Toward::Key)?;
                let view = View(guard.view());
                let node = Node::open(&view)?;
                let (i, found) = node.search(key)?;
                let len = if found { Some(Found::from(node.value_kind_at(i, out)?)) } else { None };
                if !guard.validate() {
                    return Err(Step::Restart);
                }
                Ok(len)
            },
            |out| {
                let guard = self.leaf_shared(key, Toward::Key)?;
                let page = guard.id();
                let corrupt = |_| Error::Corrupt { page };
                let node = Node::open(guard.page().body()).map_err(corrupt)?;
                let (i, found) = node.search(key).map_err(corrupt)?;
                if found { node.value_kind_at(i, out).map(|f| Some(Found::from(f))).map_err(corrupt) } else { Ok(None) }
            },
        )
    }

    /// Runs `f` on the value of `key` in place, under a shared latch on its
    /// leaf; `None` if the key is absent. The leaf is found optimistically
    /// and latched only if unchanged since (after the usual restarts, by
    /// shared latch coupling), so `get_with` latches no inner node. Writers
    /// to that leaf wait until `f` returns: `f` must be short and must not
    /// write to the tree (it would wait for itself).
    pub fn get_with<R>(&self, key: &[u8], f: impl FnOnce(Stored<'_>) -> R) -> Result<Option<R>, Error> {
        check_key(key)?;
        let guard = self.with_restarts(
            &mut (),
            |_| self.leaf_optimistic(key, Toward::Key)?.try_share().map_err(|_| Step::Restart),
            |_| self.leaf_shared(key, Toward::Key),
        )?;
        let page = guard.id();
        let body = guard.page().body();
        let corrupt = |_| Error::Corrupt { page };
        let node = Node::open(body).map_err(corrupt)?;
        match node.search(key).map_err(corrupt)? {
            (i, true) => {
                let bytes = body.get(node.value_range(i).map_err(corrupt)?).ok_or(Error::Corrupt { page })?;
                Ok(Some(f(Stored { bytes, reference: node.is_reference(i).map_err(corrupt)? })))
            }
            (_, false) => Ok(None),
        }
    }

    /// The value of `key` as its leaf stores it (a reference's bytes for a
    /// value stored out of line: only the database writes those, and
    /// resolves them), if present.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, Error> {
        let mut out = [0u8; MAX_ENTRY];
        Ok(self.get_into(key, &mut out)?.map(|f| out.get(..f.len).unwrap_or_default().to_vec()))
    }
}

/// What a lookup found: the stored value's length, and whether it is a
/// reference.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Found {
    /// Bytes copied out.
    pub len: usize,
    /// They are a reference to a value stored out of line.
    pub reference: bool,
}

impl From<(usize, bool)> for Found {
    fn from((len, reference): (usize, bool)) -> Found {
        Found { len, reference }
    }
}
