//! The background threads on std threads.

use snowfall_db::Spawn;

/// Starts the database's background tasks (the group-commit flusher and
/// the checkpointer) on named std threads.
#[derive(Clone, Copy, Debug, Default)]
pub struct StdThreads;

impl Spawn for StdThreads {
    fn spawn(&self, task: Box<dyn FnOnce() + Send>) -> Result<(), &'static str> {
        std::thread::Builder::new()
            .name(String::from("snowfalldb"))
            .spawn(task)
            .map(drop)
            .map_err(|_| "std::thread::Builder::spawn failed")
    }
}
