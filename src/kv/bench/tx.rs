//! The transactional workloads of `snowfall bench`: `bank`, `txn` and
//! `snapread`. A conflict is retried until the transaction commits and
//! counted (`aborts/s`); an operation is a committed transaction.

use alloc::format;
use alloc::string::String;
use core::sync::atomic::{AtomicU64, Ordering};

use snowfall_db::{Database, Durability, Error};

use super::zipf::Zipf;
use super::{Failure, Run, Settings, drive, key, splitmix, value_of};

/// What each account holds at the start of `bank`.
const START: u64 = 1_000;

/// Lookups per read-only transaction in `snapread`.
pub(super) const SNAPSHOT_READS: u64 = 16;

/// Picks keys of `0..keys`: uniformly, or Zipfian (`--zipf`).
pub(super) enum Chooser {
    Uniform(u64),
    Zipf(Zipf),
}

impl Chooser {
    pub(super) fn new(s: &Settings) -> Chooser {
        if s.zipf { Chooser::Zipf(Zipf::new(s.keys)) } else { Chooser::Uniform(s.keys) }
    }

    fn pick(&self, r: u64) -> u64 {
        match self {
            Chooser::Uniform(n) => r % n,
            Chooser::Zipf(z) => z.pick(r),
        }
    }
}

/// Runs `attempt` until it commits; each conflict counted in `aborts`.
fn retried(aborts: &AtomicU64, mut attempt: impl FnMut() -> Result<(), Error>) -> Result<(), Error> {
    loop {
        match attempt() {
            Err(Error::Conflict { .. }) => {
                aborts.fetch_add(1, Ordering::Relaxed);
            }
            other => return other,
        }
    }
}

fn wrong(what: String) -> Error {
    Error::Integrity { file: String::from("bench"), what }
}

fn balance(v: Option<alloc::vec::Vec<u8>>, account: u64) -> Result<u64, Error> {
    v.and_then(|v| v.try_into().ok()).map(u64::from_le_bytes).ok_or_else(|| wrong(format!("account {account} lost")))
}

/// Opens `--keys` accounts in tree `bank`, each holding [`START`].
pub(super) fn open_accounts(db: &Database, s: &Settings) -> Result<(), Failure> {
    let bank = db.tree("bank")?;
    drive(s.threads, Some(s.keys), 0, &|| false, &|_, i, _| {
        bank.insert_with(&key(i), &START.to_le_bytes(), Durability::None).map(drop)
    })?;
    Ok(())
}

/// `bank`: each transaction moves a random amount between two accounts
/// (read both, write both); afterwards a snapshot must find the total
/// unchanged.
pub(super) fn bank(db: &Database, s: &Settings, durability: Durability, aborts: &AtomicU64) -> Result<Run, Failure> {
    let (keys, seed, chooser) = (s.keys.max(2), s.seed, Chooser::new(s));
    let run = drive(s.threads, None, s.seconds, &|| db.checkpoint_in_progress(), &|t, i, _| {
        let r = splitmix(seed ^ (t as u64) << 48 ^ i);
        let from = chooser.pick(r);
        // Another account: the same chooser, moved off `from`.
        let to = (from + 1 + chooser.pick(splitmix(r)) % (keys - 1)) % keys;
        retried(aborts, || {
            let tx = db.begin_write()?;
            let bank = tx.tree("bank")?;
            let (a, b) = (balance(bank.get(&key(from))?, from)?, balance(bank.get(&key(to))?, to)?);
            let m = (r >> 40) % 100 % (a + 1);
            bank.insert(&key(from), &(a - m).to_le_bytes())?;
            bank.insert(&key(to), &(b + m).to_le_bytes())?;
            tx.commit(durability)
        })
    })?;
    let snapshot = db.begin_read()?;
    let mut total: u64 = 0;
    for entry in snapshot.tree("bank")?.range::<[u8]>(..) {
        let (k, v) = entry?;
        total += balance(Some(v), super::unkey(&k))?;
    }
    if total != keys * START {
        return Err(Failure::Db(wrong(format!("the accounts hold {total}, not {}", keys * START))));
    }
    Ok(run)
}

/// `txn`: YCSB-style read-write transactions of 4 to 16 operations on the
/// ordered data, half reads (each value checked) and half updates.
pub(super) fn txn(db: &Database, s: &Settings, durability: Durability, aborts: &AtomicU64) -> Result<Run, Failure> {
    let (value_len, seed, chooser) = (s.value, s.seed, Chooser::new(s));
    drive(s.threads, None, s.seconds, &|| db.checkpoint_in_progress(), &|t, i, [v, _]| {
        let r = splitmix(seed ^ (t as u64) << 48 ^ i);
        let ops = 4 + r % 13;
        retried(aborts, || {
            let tx = db.begin_write()?;
            let data = tx.tree("ordered")?;
            for j in 0..ops {
                let rj = splitmix(r ^ j);
                let k = chooser.pick(rj);
                value_of(k, value_len, v);
                if rj >> 63 == 1 {
                    data.insert(&key(k), v)?;
                } else if data.get_with(&key(k), |got| got == v.as_slice())? != Some(true) {
                    return Err(wrong(format!("key {k} lost or wrong")));
                }
            }
            tx.commit(durability)
        })
    })
}

/// `snapread`: read-only transactions of [`SNAPSHOT_READS`] uniform random
/// lookups each (values checked), on the ordered data; counted in lookups.
pub(super) fn snapread(db: &Database, s: &Settings) -> Result<Run, Failure> {
    let (keys, value_len, seed) = (s.keys, s.value, s.seed);
    let (ops, secs, samples) =
        drive(s.threads, None, s.seconds, &|| db.checkpoint_in_progress(), &|t, i, [v, got]| {
            let snapshot = db.begin_read()?;
            let data = snapshot.tree("ordered")?;
            for j in 0..SNAPSHOT_READS {
                let k = splitmix(seed ^ (t as u64) << 48 ^ (i * SNAPSHOT_READS + j)) % keys;
                value_of(k, value_len, v);
                match data.get_into(&key(k), got)? {
                    Some(_) if got == v => {}
                    _ => return Err(wrong(format!("key {k} lost or wrong"))),
                }
            }
            Ok(())
        })?;
    Ok((ops * SNAPSHOT_READS, secs, samples))
}
