//! A mounted emulation and the two ways it ends: a power loss (unsynced
//! state thrown away) or a clean unmount (everything written back).
//!
//! Both unmount first and wait for the session thread to finish: after
//! that no request can be in flight, so a write from a killed process that
//! was still queued in the kernel cannot land after the power loss.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use fuser::{BackgroundSession, MountOption};
use nix::errno::Errno;

use crate::fuse::PowerLossFs;
use crate::state::{PowerLoss, Report, State};

/// How long an unmount retries while the mount is busy (a killed process's
/// files are closed as it exits, but give the kernel a moment).
const UNMOUNT_PATIENCE: Duration = Duration::from_secs(10);

/// The emulation, mounted. Dropping it unmounts like a power loss.
#[derive(Debug)]
pub struct Mounted {
    session: Option<BackgroundSession>,
    state: Arc<Mutex<State>>,
    mountpoint: PathBuf,
}

impl Mounted {
    /// Mounts the emulation of `backing` (a directory, whose contents are
    /// taken as durable) on `mountpoint` (an existing directory). Needs
    /// /dev/fuse and, without `fusermount3`, root.
    pub fn mount(backing: &Path, mountpoint: &Path) -> io::Result<Mounted> {
        let state = Arc::new(Mutex::new(State::load(backing)?));
        let mountpoint = mountpoint.canonicalize()?;
        let mut config = fuser::Config::default();
        config.mount_options =
            vec![MountOption::FSName("power-loss-fs".into()), MountOption::Subtype("power-loss-fs".into())];
        let fs = PowerLossFs { state: state.clone() };
        let session = fuser::spawn_mount(fs, &mountpoint, &config)
            .map_err(|e| io::Error::new(e.kind(), format!("mounting on {}: {e}", mountpoint.display())))?;
        Ok(Mounted { session: Some(session), state, mountpoint })
    }

    /// The directory it is mounted on.
    pub fn path(&self) -> &Path {
        &self.mountpoint
    }

    /// Power fails: unmounts, then loses what is unsynced (see
    /// [`PowerLoss`]). Afterwards the backing directory holds exactly what
    /// a reboot would find; mount it again to go on.
    pub fn power_loss(mut self, how: PowerLoss) -> io::Result<Report> {
        self.end_session()?;
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.power_loss(how)
    }

    /// Unmounts cleanly: everything is written back, as a real file system
    /// does at unmount.
    pub fn unmount(mut self) -> io::Result<()> {
        self.end_session()?;
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.sync_all()
    }

    fn end_session(&mut self) -> io::Result<()> {
        let Some(session) = self.session.take() else { return Ok(()) };
        let deadline = Instant::now() + UNMOUNT_PATIENCE;
        loop {
            match nix::mount::umount(&self.mountpoint) {
                Ok(()) => break,
                // Someone unmounted it already; the session ends by itself.
                Err(Errno::EINVAL) => break,
                Err(Errno::EBUSY) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
                Err(e) => {
                    // Put the session back, so that dropping `self` still
                    // tries to clean up.
                    self.session = Some(session);
                    return Err(io::Error::new(
                        io::Error::from(e).kind(),
                        format!("unmounting {}: {e} (is a file on it still open?)", self.mountpoint.display()),
                    ));
                }
            }
        }
        // The kernel ended the connection, so the session's read returns
        // ENODEV and its thread finishes; joining it means no request is
        // being handled any more.
        session.join()
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        if self.session.is_some()
            && let Err(e) = self.end_session()
        {
            eprintln!("power-loss-fs: {e}");
        }
    }
}
