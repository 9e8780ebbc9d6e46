//! A device that fails on purpose: wraps another device and, while a rule
//! matches, injects an OS error, a short read or write (a torn page: only
//! the first bytes reach the inner device), or a full disk. Each rule fires
//! a set number of times.

use alloc::vec::Vec;

use rustix::io::Errno;
use snowfall_latch::Mutex;

use super::Device;
use crate::error::{DeviceError, IoOp};
use crate::page::{PAGE_SIZE, PageId};

/// What a matching rule does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Injected {
    /// Fail with this errno; nothing is transferred.
    Errno(Errno),
    /// Transfer only this many bytes, then fail as a short transfer.
    Short(usize),
    /// Fail as a full disk; nothing is written.
    NoSpace,
}

/// When and how to fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rule {
    /// The operation it applies to.
    pub op: IoOp,
    /// The page it applies to (`None`: any page; ignored for sync).
    pub page: Option<PageId>,
    /// The failure.
    pub fault: Injected,
    /// How many more times it fires.
    pub times: u32,
}

/// A device that injects failures into another.
pub struct FaultyDevice<D> {
    inner: D,
    rules: Mutex<Vec<Rule>>,
    fired: Mutex<u64>,
}

impl<D: Device> FaultyDevice<D> {
    /// Wraps `inner`; no failures until a rule is added.
    pub fn new(inner: D) -> FaultyDevice<D> {
        FaultyDevice { inner, rules: Mutex::new(Vec::new()), fired: Mutex::new(0) }
    }

    /// Adds a failure rule.
    pub fn inject(&self, rule: Rule) {
        self.rules.lock().push(rule);
    }

    /// Removes every rule.
    pub fn clear(&self) {
        self.rules.lock().clear();
    }

    /// How many failures were injected so far.
    pub fn fired(&self) -> u64 {
        *self.fired.lock()
    }

    /// The wrapped device.
    pub fn inner(&self) -> &D {
        &self.inner
    }

    /// The first matching rule with firings left, consumed once.
    fn take(&self, op: IoOp, page: Option<PageId>) -> Option<Injected> {
        let mut rules = self.rules.lock();
        let rule = rules.iter_mut().find(|r| r.op == op && r.times > 0 && (r.page.is_none() || r.page == page))?;
        rule.times -= 1;
        *self.fired.lock() += 1;
        Some(rule.fault)
    }
}

impl<D: Device> Device for FaultyDevice<D> {
    fn read_page(&self, page: PageId, buf: &mut [u8; PAGE_SIZE]) -> Result<(), DeviceError> {
        let offset = page.offset();
        match self.take(IoOp::Read, Some(page)) {
            None => self.inner.read_page(page, buf),
            Some(Injected::Errno(errno)) => Err(DeviceError::Os { op: IoOp::Read, offset, errno }),
            Some(Injected::NoSpace) => Err(DeviceError::Os { op: IoOp::Read, offset, errno: Errno::NOSPC }),
            Some(Injected::Short(done)) => {
                // The caller's buffer holds a partial page, as after a short pread.
                let mut full = [0u8; PAGE_SIZE];
                self.inner.read_page(page, &mut full)?;
                let done = done.min(PAGE_SIZE);
                buf.get_mut(..done).unwrap_or_default().copy_from_slice(full.get(..done).unwrap_or_default());
                Err(DeviceError::Short { op: IoOp::Read, offset, done, wanted: PAGE_SIZE })
            }
        }
    }

    fn write_page(&self, page: PageId, buf: &[u8; PAGE_SIZE]) -> Result<(), DeviceError> {
        let offset = page.offset();
        match self.take(IoOp::Write, Some(page)) {
            None => self.inner.write_page(page, buf),
            Some(Injected::Errno(errno)) => Err(DeviceError::Os { op: IoOp::Write, offset, errno }),
            Some(Injected::NoSpace) => Err(DeviceError::NoSpace { offset }),
            Some(Injected::Short(done)) => {
                // A torn write: the first `done` bytes land over the old image.
                let mut torn = [0u8; PAGE_SIZE];
                match self.inner.read_page(page, &mut torn) {
                    Ok(()) | Err(DeviceError::PastEnd { .. }) => {}
                    Err(e) => return Err(e),
                }
                let done = done.min(PAGE_SIZE);
                torn.get_mut(..done).unwrap_or_default().copy_from_slice(buf.get(..done).unwrap_or_default());
                self.inner.write_page(page, &torn)?;
                Err(DeviceError::Short { op: IoOp::Write, offset, done, wanted: PAGE_SIZE })
            }
        }
    }

    fn sync(&self) -> Result<(), DeviceError> {
        match self.take(IoOp::Sync, None) {
            None => self.inner.sync(),
            Some(Injected::Errno(errno)) => Err(DeviceError::Os { op: IoOp::Sync, offset: 0, errno }),
            Some(Injected::NoSpace) => Err(DeviceError::NoSpace { offset: 0 }),
            Some(Injected::Short(_)) => Err(DeviceError::Os { op: IoOp::Sync, offset: 0, errno: Errno::IO }),
        }
    }

    /// Fails like a write of the last page would; otherwise the inner
    /// device allocates its own way.
    fn allocate(&self, pages: u64) -> Result<(), DeviceError> {
        let last = PageId(pages.saturating_sub(1));
        match self.take(IoOp::Write, Some(last)) {
            None => self.inner.allocate(pages),
            Some(Injected::Errno(errno)) => Err(DeviceError::Os { op: IoOp::Write, offset: last.offset(), errno }),
            Some(Injected::NoSpace | Injected::Short(_)) => Err(DeviceError::NoSpace { offset: last.offset() }),
        }
    }

    fn page_count(&self) -> Result<u64, DeviceError> {
        self.inner.page_count()
    }

    fn describe(&self) -> &str {
        self.inner.describe()
    }
}
