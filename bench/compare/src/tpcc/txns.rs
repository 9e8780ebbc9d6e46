//! TPC-C's five transactions (clause 2), as a terminal runs them: the mix
//! of clause 5.2.3 (45 % New-Order, 43 % Payment, 4 % each Order-Status,
//! Delivery, Stock-Level) without keying or think times, each on a home
//! warehouse drawn at random. New-Order rolls back 1 % of the time (an
//! unused item) and takes 1 % of its items from another warehouse;
//! Payment pays at another warehouse 15 % of the time and finds the
//! customer by last name 60 % of the time (as Order-Status does).
//! Delivery runs as one transaction over the ten districts (the
//! specification allows it deferred; here it is not).

use std::collections::BTreeSet;

use super::engine::{Abort, Tx, TxEngine, transact};
use super::load::now;
use super::random::{RUN, Random};
use super::schema::{self as s, Table, be32};

/// The kinds, in the order of the mix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    NewOrder,
    Payment,
    OrderStatus,
    Delivery,
    StockLevel,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::NewOrder => "new_order",
            Kind::Payment => "payment",
            Kind::OrderStatus => "order_status",
            Kind::Delivery => "delivery",
            Kind::StockLevel => "stock_level",
        }
    }
}

/// One terminal: its random stream and the history rows it wrote.
pub struct Terminal<'e> {
    engine: &'e dyn TxEngine,
    warehouses: u32,
    thread: u32,
    history: u32,
    r: Random,
    buf: Vec<u8>,
}

/// What one transaction did.
pub struct Done {
    pub kind: Kind,
    /// Retries after write-write conflicts.
    pub conflicts: u64,
    /// New-Order's 1 % that roll back (they count as done, clause 5.4.2).
    pub rolled_back: bool,
}

impl<'e> Terminal<'e> {
    pub fn new(engine: &'e dyn TxEngine, warehouses: u32, thread: u32, seed: u64) -> Terminal<'e> {
        Terminal { engine, warehouses, thread, history: 0, r: Random::new(seed, RUN), buf: Vec::new() }
    }

    /// Runs the next transaction of the mix.
    pub fn step(&mut self) -> Done {
        let w = self.r.uniform(1, self.warehouses);
        let kind = match self.r.uniform(1, 100) {
            1..=45 => Kind::NewOrder,
            46..=88 => Kind::Payment,
            89..=92 => Kind::OrderStatus,
            93..=96 => Kind::Delivery,
            _ => Kind::StockLevel,
        };
        let (result, conflicts) = match kind {
            Kind::NewOrder => self.new_order(w),
            Kind::Payment => self.payment(w),
            Kind::OrderStatus => self.order_status(w),
            Kind::Delivery => self.delivery(w),
            Kind::StockLevel => self.stock_level(w),
        };
        let rolled_back = match result {
            Ok(()) => false,
            Err(Abort::Rollback) if kind == Kind::NewOrder => true,
            Err(e) => panic!("{}: {e:?}", kind.name()),
        };
        Done { kind, conflicts, rolled_back }
    }

    fn other_warehouse(&mut self, w: u32) -> u32 {
        if self.warehouses == 1 {
            return w;
        }
        let o = self.r.uniform(1, self.warehouses - 1);
        if o >= w { o + 1 } else { o }
    }

    fn new_order(&mut self, w: u32) -> (Result<(), Abort>, u64) {
        let d = self.r.uniform(1, 10);
        let c = self.r.customer_id();
        let ol_cnt = self.r.uniform(5, 15);
        let rollback = self.r.uniform(1, 100) == 1;
        let lines: Vec<(u32, u32, u32)> = (0..ol_cnt)
            .map(|n| {
                let i = if rollback && n == ol_cnt - 1 { 100_001 } else { self.r.item_id() };
                let supply = if self.r.uniform(1, 100) == 1 { self.other_warehouse(w) } else { w };
                (i, supply, self.r.uniform(1, 10))
            })
            .collect();
        let all_local = lines.iter().all(|l| l.1 == w);
        let buf = &mut self.buf;
        transact(self.engine, false, |tx: &mut dyn Tx| {
            get(tx, Table::Warehouse, &s::warehouse(w), buf)?;
            let w_tax = s::Warehouse::decode(buf).tax;
            get(tx, Table::District, &s::district(w, d), buf)?;
            let mut district = s::District::decode(buf);
            let o = district.next_o_id;
            district.next_o_id += 1;
            tx.put(Table::District, &s::district(w, d), &district.encode())?;
            get(tx, Table::Customer, &s::customer(w, d, c), buf)?;
            let discount = s::Customer::decode(buf).discount;
            let order = s::Order {
                c_id: c,
                entry_d: now(),
                carrier_id: 0,
                ol_cnt: ol_cnt as u8,
                all_local: u8::from(all_local),
            };
            tx.put(Table::Order, &s::order(w, d, o), &order.encode())?;
            tx.put(Table::NewOrder, &s::order(w, d, o), &[])?;
            tx.put(Table::OrderByCustomer, &s::order_by_customer(w, d, c, o), &[])?;
            let mut total = 0i64;
            for (n, &(i, supply, quantity)) in lines.iter().enumerate() {
                if !tx.get(Table::Item, &s::item(i), buf)? {
                    // The unused item: roll back everything (clause 2.4.2.3).
                    return Err(Abort::Rollback);
                }
                let price = s::Item::decode(buf).price;
                get(tx, Table::Stock, &s::stock(supply, i), buf)?;
                let mut stock = s::Stock::decode(buf);
                stock.quantity = if stock.quantity >= quantity + 10 {
                    stock.quantity - quantity
                } else {
                    stock.quantity + 91 - quantity
                };
                stock.ytd += u64::from(quantity);
                stock.order_cnt += 1;
                stock.remote_cnt += u32::from(supply != w);
                tx.put(Table::Stock, &s::stock(supply, i), &stock.encode())?;
                let amount = i64::from(quantity) * price;
                total += amount;
                let line = s::OrderLine {
                    i_id: i,
                    supply_w_id: supply,
                    delivery_d: 0,
                    quantity,
                    amount,
                    dist_info: stock.dist[d as usize - 1],
                };
                tx.put(Table::OrderLine, &s::order_line(w, d, o, n as u32 + 1), &line.encode())?;
            }
            // The total the terminal would show (clause 2.4.2.2).
            let _ =
                total * (10_000 - i64::from(discount)) / 10_000 * (10_000 + i64::from(w_tax + district.tax)) / 10_000;
            Ok(())
        })
    }

    /// The customer picked by last name: the middle one by first name
    /// (clause 2.5.2.2), or by id.
    fn find_customer(tx: &mut dyn Tx, w: u32, d: u32, by: Result<[u8; 16], u32>) -> Result<u32, Abort> {
        let last = match by {
            Err(c) => return Ok(c),
            Ok(last) => last,
        };
        let low = s::Key::new().u32(w).u8(d as u8).bytes(&last).0;
        let mut high = low.clone();
        high.push(0xFF);
        let mut ids = Vec::new();
        tx.scan(Table::CustomerByName, &low, &high, false, &mut |k, _| {
            ids.push(be32(k, k.len() - 4));
            true
        })?;
        assert!(!ids.is_empty(), "no customer named {:?} in district {w}/{d}", String::from_utf8_lossy(&last));
        Ok(ids[(ids.len() - 1) / 2])
    }

    fn pick_customer(&mut self) -> Result<[u8; 16], u32> {
        if self.r.uniform(1, 100) <= 60 { Ok(self.r.last_name()) } else { Err(self.r.customer_id()) }
    }

    fn payment(&mut self, w: u32) -> (Result<(), Abort>, u64) {
        let d = self.r.uniform(1, 10);
        let (c_w, c_d) =
            if self.r.uniform(1, 100) <= 85 { (w, d) } else { (self.other_warehouse(w), self.r.uniform(1, 10)) };
        let by = self.pick_customer();
        let amount = i64::from(self.r.uniform(100, 500_000));
        self.history += 1;
        let (thread, seq) = (self.thread, self.history);
        let buf = &mut self.buf;
        transact(self.engine, false, |tx: &mut dyn Tx| {
            get(tx, Table::Warehouse, &s::warehouse(w), buf)?;
            let mut warehouse = s::Warehouse::decode(buf);
            warehouse.ytd += amount;
            tx.put(Table::Warehouse, &s::warehouse(w), &warehouse.encode())?;
            get(tx, Table::District, &s::district(w, d), buf)?;
            let mut district = s::District::decode(buf);
            district.ytd += amount;
            tx.put(Table::District, &s::district(w, d), &district.encode())?;
            let c = Self::find_customer(tx, c_w, c_d, by)?;
            get(tx, Table::Customer, &s::customer(c_w, c_d, c), buf)?;
            let mut customer = s::Customer::decode(buf);
            customer.balance -= amount;
            customer.ytd_payment += amount;
            customer.payment_cnt += 1;
            if &customer.credit == b"BC" {
                // Bad credit: the payment is noted in front of C_DATA,
                // which keeps its first 500 characters (clause 2.5.2.2).
                let note = format!("{c} {c_d} {c_w} {d} {w} {amount}|");
                let mut data = [0u8; 500];
                let n = note.len().min(500);
                data[..n].copy_from_slice(&note.as_bytes()[..n]);
                data[n..].copy_from_slice(&customer.data[..500 - n]);
                customer.data = data;
            }
            tx.put(Table::Customer, &s::customer(c_w, c_d, c), &customer.encode())?;
            let mut data = [0u8; 24];
            let name = [&warehouse.address.name[..], b"    ", &district.address.name[..]].concat();
            data[..name.len().min(24)].copy_from_slice(&name[..name.len().min(24)]);
            let h = s::History { date: now(), amount, data };
            tx.put(Table::History, &s::history(c_w, c_d, c, thread, seq), &h.encode())
        })
    }

    fn order_status(&mut self, w: u32) -> (Result<(), Abort>, u64) {
        let d = self.r.uniform(1, 10);
        let by = self.pick_customer();
        let buf = &mut self.buf;
        transact(self.engine, true, |tx: &mut dyn Tx| {
            let c = Self::find_customer(tx, w, d, by)?;
            get(tx, Table::Customer, &s::customer(w, d, c), buf)?;
            let _balance = s::Customer::decode(buf).balance;
            // The customer's latest order: the last of its index entries.
            let low = s::Key::new().u32(w).u8(d as u8).u32(c).0;
            let high = s::Key::new().u32(w).u8(d as u8).u32(c + 1).0;
            let mut latest = None;
            tx.scan(Table::OrderByCustomer, &low, &high, true, &mut |k, _| {
                latest = Some(be32(k, k.len() - 4));
                false
            })?;
            let Some(o) = latest else { return Ok(()) };
            get(tx, Table::Order, &s::order(w, d, o), buf)?;
            let order = s::Order::decode(buf);
            let mut lines = 0;
            tx.scan(
                Table::OrderLine,
                &s::order_line(w, d, o, 0),
                &s::order_line(w, d, o + 1, 0),
                false,
                &mut |_, v| {
                    let _ = s::OrderLine::decode(v);
                    lines += 1;
                    true
                },
            )?;
            assert_eq!(lines, u32::from(order.ol_cnt), "order {w}/{d}/{o}: {lines} lines, not {}", order.ol_cnt);
            Ok(())
        })
    }

    fn delivery(&mut self, w: u32) -> (Result<(), Abort>, u64) {
        let carrier = self.r.uniform(1, 10);
        let buf = &mut self.buf;
        transact(self.engine, false, |tx: &mut dyn Tx| {
            let date = now();
            for d in 1..=10 {
                // The oldest undelivered order of the district.
                let mut oldest = None;
                tx.scan(Table::NewOrder, &s::order(w, d, 0), &s::order(w, d + 1, 0), false, &mut |k, _| {
                    oldest = Some(be32(k, k.len() - 4));
                    false
                })?;
                let Some(o) = oldest else { continue };
                tx.delete(Table::NewOrder, &s::order(w, d, o))?;
                get(tx, Table::Order, &s::order(w, d, o), buf)?;
                let mut order = s::Order::decode(buf);
                order.carrier_id = carrier;
                tx.put(Table::Order, &s::order(w, d, o), &order.encode())?;
                let mut lines = Vec::new();
                tx.scan(
                    Table::OrderLine,
                    &s::order_line(w, d, o, 0),
                    &s::order_line(w, d, o + 1, 0),
                    false,
                    &mut |k, v| {
                        lines.push((k.to_vec(), s::OrderLine::decode(v)));
                        true
                    },
                )?;
                let mut sum = 0;
                for (k, mut line) in lines {
                    sum += line.amount;
                    line.delivery_d = date;
                    tx.put(Table::OrderLine, &k, &line.encode())?;
                }
                get(tx, Table::Customer, &s::customer(w, d, order.c_id), buf)?;
                let mut customer = s::Customer::decode(buf);
                customer.balance += sum;
                customer.delivery_cnt += 1;
                tx.put(Table::Customer, &s::customer(w, d, order.c_id), &customer.encode())?;
            }
            Ok(())
        })
    }

    fn stock_level(&mut self, w: u32) -> (Result<(), Abort>, u64) {
        let d = self.r.uniform(1, 10);
        let threshold = self.r.uniform(10, 20);
        let buf = &mut self.buf;
        transact(self.engine, true, |tx: &mut dyn Tx| {
            get(tx, Table::District, &s::district(w, d), buf)?;
            let next = s::District::decode(buf).next_o_id;
            let mut items = BTreeSet::new();
            let (low, high) = (s::order_line(w, d, next.saturating_sub(20), 0), s::order_line(w, d, next, 0));
            tx.scan(Table::OrderLine, &low, &high, false, &mut |_, v| {
                items.insert(s::OrderLine::decode(v).i_id);
                true
            })?;
            let mut low_stock = 0;
            for i in items {
                get(tx, Table::Stock, &s::stock(w, i), buf)?;
                low_stock += u32::from(s::Stock::decode(buf).quantity < threshold);
            }
            let _ = low_stock;
            Ok(())
        })
    }
}

/// A row that must exist.
fn get(tx: &mut dyn Tx, t: Table, key: &[u8], buf: &mut Vec<u8>) -> Result<(), Abort> {
    if tx.get(t, key, buf)? { Ok(()) } else { panic!("{} row {key:?} missing", t.name()) }
}
