//! `power-loss-fs BACKING MOUNTPOINT`: mounts the emulation and takes
//! commands on standard input, one per line:
//! - `power-loss`: the power fails (every unsynced change is lost), unmount;
//! - `power-loss torn SEED`: the power fails in the middle of writing back
//!   (each unsynced sector and size change survives or not, seeded);
//! - `unmount`, or the end of input: a clean unmount (everything written).
//!
//! It prints `mounted` once the mount is ready and a summary at the end.

use std::io::BufRead;
use std::path::Path;
use std::process::ExitCode;

use snowfall_power_loss_fs::{Mounted, PowerLoss};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let [_, backing, mountpoint] = args.as_slice() else {
        eprintln!("usage: power-loss-fs BACKING MOUNTPOINT  (then `power-loss [torn SEED]` or `unmount` on stdin)");
        return ExitCode::from(2);
    };
    let mounted = match Mounted::mount(Path::new(backing), Path::new(mountpoint)) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("power-loss-fs: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("mounted");
    let mut how = None;
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let words: Vec<&str> = line.split_whitespace().collect();
        how = match words.as_slice() {
            ["power-loss"] => Some(Some(PowerLoss::Drop)),
            ["power-loss", "torn", seed] => match seed.parse() {
                Ok(seed) => Some(Some(PowerLoss::Torn { seed })),
                Err(_) => {
                    eprintln!("power-loss-fs: not a seed: {seed}");
                    continue;
                }
            },
            ["unmount"] => Some(None),
            [] => continue,
            _ => {
                eprintln!("power-loss-fs: unknown command: {line}");
                continue;
            }
        };
        break;
    }
    let result = match how.flatten() {
        Some(how) => mounted.power_loss(how).map(|r| println!("power lost: {r:?}")),
        None => mounted.unmount().map(|()| println!("unmounted cleanly")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("power-loss-fs: {e}");
            ExitCode::FAILURE
        }
    }
}
