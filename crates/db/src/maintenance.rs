//! The background threads (when the embedder provides a way to start them
//! through [`Spawn`](crate::Spawn)): the flusher syncs the log every
//! `group_interval`, which is what bounds how long a
//! [`Durability::Group`](crate::Durability::Group) write waits to be
//! durable; the checkpointer writes pages back and installs checkpoints as the log
//! grows (`checkpoint.rs`), so writers need not. Two
//! threads, so that a long checkpoint never delays the flusher.

use alloc::boxed::Box;
use alloc::sync::Arc;
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use crate::db::Inner;
use crate::error::Error;

/// The background threads' handle.
pub(crate) struct Maintenance {
    stop: AtomicBool,
    /// How many threads were started.
    started: AtomicU32,
    /// How many of the threads have ended (a futex word).
    ended: AtomicU32,
}

impl Maintenance {
    /// Asks the threads to end and waits until they have.
    pub(crate) fn stop(&self) {
        self.stop.store(true, Ordering::Release);
        loop {
            let ended = self.ended.load(Ordering::Acquire);
            if ended >= self.started.load(Ordering::Acquire) {
                return;
            }
            let _ = snowfall_sys::futex::wait(&self.ended, ended, Some(core::time::Duration::from_millis(50)));
        }
    }
}

/// Starts the background threads, if the options provide a way to.
pub(crate) fn start(inner: &Arc<Inner>) -> Result<Option<Arc<Maintenance>>, Error> {
    let Some(spawn) = inner.options.spawn.clone() else { return Ok(None) };
    let m =
        Arc::new(Maintenance { stop: AtomicBool::new(false), started: AtomicU32::new(0), ended: AtomicU32::new(0) });
    let loops: [fn(&Inner); 2] = [flush_once, checkpoint_once];
    for step in loops {
        let (db, me) = (inner.clone(), m.clone());
        let task = Box::new(move || {
            while !me.stop.load(Ordering::Acquire) {
                snowfall_sys::clock::sleep(db.options.group_interval);
                if !db.stopped.load(Ordering::Acquire) {
                    step(&db);
                }
            }
            me.ended.fetch_add(1, Ordering::AcqRel);
            snowfall_sys::futex::wake_all(&me.ended);
        });
        m.started.fetch_add(1, Ordering::AcqRel);
        if let Err(what) = spawn.spawn(task) {
            m.started.fetch_sub(1, Ordering::AcqRel);
            m.stop();
            return Err(Error::Thread { what });
        }
    }
    Ok(Some(m))
}

/// The flusher's step: syncs what was appended since the last sync.
fn flush_once(db: &Inner) {
    if db.log.appended() > db.log.durable()
        && let Err(e) = db.log.flush()
    {
        db.stop(&Error::Log(e));
    }
}

/// The checkpointer's step (while the disk is full, at most as often as
/// writers retry).
fn checkpoint_once(db: &Inner) {
    if db.no_space_wait().is_none()
        && let Err(e) = db.checkpoint_work(false)
    {
        log::error!("{}: background checkpoint failed: {e}", db.file);
    }
}
