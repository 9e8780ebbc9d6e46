//! The initial database of clause 4.3.3.1 for `warehouses` warehouses:
//! 100,000 items; per warehouse 100,000 stock rows, 10 districts, and per
//! district 3,000 customers (with a history row each), 3,000 orders (the
//! customers in a random order) with 5-15 lines each, and new orders for
//! the last 900. Written in transactions of a few thousand rows.

use rand::SeedableRng;
use rand::seq::SliceRandom;

use super::engine::{Abort, Tx, TxEngine, transact};
use super::random::{LOAD, Random, last_name};
use super::schema::{self as s, Table};

/// Rows written per load transaction.
const CHUNK: usize = 4_000;

/// Collects rows and writes them in transactions of [`CHUNK`].
struct Writer<'e> {
    engine: &'e dyn TxEngine,
    rows: Vec<(Table, Vec<u8>, Vec<u8>)>,
}

impl Writer<'_> {
    fn put(&mut self, t: Table, key: Vec<u8>, value: Vec<u8>) {
        self.rows.push((t, key, value));
        if self.rows.len() >= CHUNK {
            self.flush();
        }
    }

    fn flush(&mut self) {
        let rows = std::mem::take(&mut self.rows);
        let (r, _) = transact(self.engine, false, |tx: &mut dyn Tx| {
            for (t, k, v) in &rows {
                tx.put(*t, k, v)?;
            }
            Ok::<(), Abort>(())
        });
        r.expect("a load transaction conflicted or rolled back with nothing else running");
    }
}

/// A warehouse's or district's name and address (clause 4.3.3.1).
fn address(r: &mut Random) -> s::Address {
    s::Address {
        name: r.astring(6, 10),
        street_1: r.astring(10, 20),
        street_2: r.astring(10, 20),
        city: r.astring(10, 20),
        state: r.astring(2, 2),
        zip: r.zip(),
    }
}

/// A clock for dates (entry, delivery, since): seconds since the epoch.
pub fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

pub fn load(engine: &dyn TxEngine, warehouses: u32, seed: u64) {
    let mut r = Random::new(seed, LOAD);
    let mut w = Writer { engine, rows: Vec::with_capacity(CHUNK) };
    let date = now();
    for i in 1..=100_000 {
        let item = s::Item {
            im_id: r.uniform(1, 10_000),
            name: r.astring(14, 24),
            price: r.uniform(100, 10_000) as i64,
            data: r.data(26, 50),
        };
        w.put(Table::Item, s::item(i), item.encode());
    }
    for wh in 1..=warehouses {
        let row = s::Warehouse { address: address(&mut r), tax: r.uniform(0, 2000), ytd: 30_000_000 };
        w.put(Table::Warehouse, s::warehouse(wh), row.encode());
        for i in 1..=100_000 {
            let stock = s::Stock {
                quantity: r.uniform(10, 100),
                dist: std::array::from_fn(|_| r.astring(24, 24)),
                ytd: 0,
                order_cnt: 0,
                remote_cnt: 0,
                data: r.data(26, 50),
            };
            w.put(Table::Stock, s::stock(wh, i), stock.encode());
        }
        for d in 1..=10 {
            let row =
                s::District { address: address(&mut r), tax: r.uniform(0, 2000), ytd: 3_000_000, next_o_id: 3001 };
            w.put(Table::District, s::district(wh, d), row.encode());
            for c in 1..=3000 {
                let last = last_name(if c <= 1000 { c - 1 } else { r.nurand(255, 0, 999) });
                let mut middle = [0u8; 2];
                middle.copy_from_slice(b"OE");
                let credit = if r.uniform(1, 10) == 1 { *b"BC" } else { *b"GC" };
                let row = s::Customer {
                    first: r.astring(8, 16),
                    middle,
                    last,
                    street_1: r.astring(10, 20),
                    street_2: r.astring(10, 20),
                    city: r.astring(10, 20),
                    state: r.astring(2, 2),
                    zip: r.zip(),
                    phone: r.nstring(16),
                    since: date,
                    credit,
                    credit_lim: 5_000_000,
                    discount: r.uniform(0, 5000),
                    balance: -1000,
                    ytd_payment: 1000,
                    payment_cnt: 1,
                    delivery_cnt: 0,
                    data: r.astring(300, 500),
                };
                w.put(Table::CustomerByName, s::customer_by_name(wh, d, &row.last, &row.first, c), Vec::new());
                w.put(Table::Customer, s::customer(wh, d, c), row.encode());
                let h = s::History { date, amount: 1000, data: r.astring(12, 24) };
                w.put(Table::History, s::history(wh, d, c, u32::MAX, 0), h.encode());
            }
            let mut customers: Vec<u32> = (1..=3000).collect();
            customers.shuffle(&mut rand::rngs::SmallRng::seed_from_u64(seed ^ u64::from(wh) << 8 ^ u64::from(d)));
            for o in 1..=3000u32 {
                let delivered = o < 2101;
                let ol_cnt = r.uniform(5, 15);
                let c = customers[o as usize - 1];
                let order = s::Order {
                    c_id: c,
                    entry_d: date,
                    carrier_id: if delivered { r.uniform(1, 10) } else { 0 },
                    ol_cnt: ol_cnt as u8,
                    all_local: 1,
                };
                w.put(Table::Order, s::order(wh, d, o), order.encode());
                w.put(Table::OrderByCustomer, s::order_by_customer(wh, d, c, o), Vec::new());
                for n in 1..=ol_cnt {
                    let line = s::OrderLine {
                        i_id: r.uniform(1, 100_000),
                        supply_w_id: wh,
                        delivery_d: if delivered { date } else { 0 },
                        quantity: 5,
                        amount: if delivered { 0 } else { r.uniform(1, 999_999) as i64 },
                        dist_info: r.astring(24, 24),
                    };
                    w.put(Table::OrderLine, s::order_line(wh, d, o, n), line.encode());
                }
                if !delivered {
                    w.put(Table::NewOrder, s::order(wh, d, o), Vec::new());
                }
            }
        }
    }
    w.flush();
}
