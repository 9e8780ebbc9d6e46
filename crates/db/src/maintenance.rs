//! The background thread (when the embedder provides one through
//! [`Spawn`](crate::Spawn)): syncs the log every `group_interval`, which is
//! what bounds how long a [`Durability::Group`](crate::Durability::Group)
//! write waits to be durable, and takes checkpoints when enough log has
//! accumulated or enough time has passed, so writers need not.

use alloc::boxed::Box;
use alloc::sync::Arc;
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use crate::db::Inner;
use crate::error::Error;

/// The background thread's handle.
pub(crate) struct Maintenance {
    stop: AtomicBool,
    /// 1 once the thread has ended (a futex word).
    ended: AtomicU32,
}

impl Maintenance {
    /// Asks the thread to end and waits until it has.
    pub(crate) fn stop(&self) {
        self.stop.store(true, Ordering::Release);
        while self.ended.load(Ordering::Acquire) == 0 {
            let _ = snowfall_sys::futex::wait(&self.ended, 0, Some(core::time::Duration::from_millis(50)));
        }
    }
}

/// Starts the background thread, if the options provide a way to.
pub(crate) fn start(inner: &Arc<Inner>) -> Result<Option<Arc<Maintenance>>, Error> {
    let Some(spawn) = inner.options.spawn.clone() else { return Ok(None) };
    let m = Arc::new(Maintenance { stop: AtomicBool::new(false), ended: AtomicU32::new(0) });
    let (db, me) = (inner.clone(), m.clone());
    let task = Box::new(move || {
        run(&db, &me);
        me.ended.store(1, Ordering::Release);
        snowfall_sys::futex::wake_all(&me.ended);
    });
    spawn.spawn(task).map_err(|what| Error::Config { what })?;
    Ok(Some(m))
}

fn run(db: &Inner, m: &Maintenance) {
    while !m.stop.load(Ordering::Acquire) {
        snowfall_sys::clock::sleep(db.options.group_interval);
        if db.stopped.load(Ordering::Acquire) {
            continue;
        }
        if db.log.appended() > db.log.durable()
            && let Err(e) = db.log.flush()
        {
            db.stop(&e);
            continue;
        }
        if db.checkpoint_due()
            && let Err(e) = db.try_checkpoint()
        {
            log::error!("{}: background checkpoint failed: {e}", db.file);
        }
    }
}
