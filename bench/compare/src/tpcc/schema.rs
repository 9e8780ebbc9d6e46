//! TPC-C's nine tables as key-value pairs: keys are the primary keys in
//! big-endian (so key order is the specification's order, and a district's
//! orders, order lines or new orders are one key range), rows fixed-width
//! records of little-endian fields (money in cents, rates in 1/10,000),
//! plus the two secondary indexes the transactions need: customers by last
//! name (Payment, Order-Status) and orders by customer (Order-Status).

/// A table (or index).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Table {
    Warehouse,
    District,
    Customer,
    CustomerByName,
    History,
    NewOrder,
    Order,
    OrderByCustomer,
    OrderLine,
    Item,
    Stock,
}

impl Table {
    pub const ALL: [Table; 11] = [
        Table::Warehouse,
        Table::District,
        Table::Customer,
        Table::CustomerByName,
        Table::History,
        Table::NewOrder,
        Table::Order,
        Table::OrderByCustomer,
        Table::OrderLine,
        Table::Item,
        Table::Stock,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Table::Warehouse => "warehouse",
            Table::District => "district",
            Table::Customer => "customer",
            Table::CustomerByName => "customer_by_name",
            Table::History => "history",
            Table::NewOrder => "new_order",
            Table::Order => "order",
            Table::OrderByCustomer => "order_by_customer",
            Table::OrderLine => "order_line",
            Table::Item => "item",
            Table::Stock => "stock",
        }
    }

    /// One byte naming the table, for engines with one key space.
    pub fn tag(self) -> u8 {
        self as u8
    }
}

/// Builds a big-endian composite key.
#[derive(Default)]
pub struct Key(pub Vec<u8>);

impl Key {
    pub fn new() -> Key {
        Key(Vec::with_capacity(24))
    }
    pub fn u32(mut self, v: u32) -> Key {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    pub fn u8(mut self, v: u8) -> Key {
        self.0.push(v);
        self
    }
    pub fn bytes(mut self, v: &[u8]) -> Key {
        self.0.extend_from_slice(v);
        self
    }
}

pub fn warehouse(w: u32) -> Vec<u8> {
    Key::new().u32(w).0
}
pub fn district(w: u32, d: u32) -> Vec<u8> {
    Key::new().u32(w).u8(d as u8).0
}
pub fn customer(w: u32, d: u32, c: u32) -> Vec<u8> {
    Key::new().u32(w).u8(d as u8).u32(c).0
}
/// Customers of a district by last name, then first name, then id.
pub fn customer_by_name(w: u32, d: u32, last: &[u8; 16], first: &[u8; 16], c: u32) -> Vec<u8> {
    Key::new().u32(w).u8(d as u8).bytes(last).bytes(first).u32(c).0
}
pub fn order(w: u32, d: u32, o: u32) -> Vec<u8> {
    Key::new().u32(w).u8(d as u8).u32(o).0
}
pub fn order_by_customer(w: u32, d: u32, c: u32, o: u32) -> Vec<u8> {
    Key::new().u32(w).u8(d as u8).u32(c).u32(o).0
}
pub fn order_line(w: u32, d: u32, o: u32, n: u32) -> Vec<u8> {
    Key::new().u32(w).u8(d as u8).u32(o).u8(n as u8).0
}
pub fn item(i: u32) -> Vec<u8> {
    Key::new().u32(i).0
}
pub fn stock(w: u32, i: u32) -> Vec<u8> {
    Key::new().u32(w).u32(i).0
}
/// History has no primary key in the specification: (warehouse, district,
/// customer, the writer's thread and sequence) makes one.
pub fn history(w: u32, d: u32, c: u32, thread: u32, seq: u32) -> Vec<u8> {
    Key::new().u32(w).u8(d as u8).u32(c).u32(thread).u32(seq).0
}

/// A fixed-width field of a record.
pub trait Field: Sized {
    const SIZE: usize;
    fn put(&self, out: &mut Vec<u8>);
    fn take(b: &[u8]) -> Self;
}

macro_rules! int_field {
    ($($t:ty),*) => {$(
        impl Field for $t {
            const SIZE: usize = size_of::<$t>();
            fn put(&self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
            fn take(b: &[u8]) -> $t {
                <$t>::from_le_bytes(b[..Self::SIZE].try_into().unwrap())
            }
        }
    )*};
}
int_field!(u8, u32, i64, u64);

impl<const N: usize> Field for [u8; N] {
    const SIZE: usize = N;
    fn put(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self);
    }
    fn take(b: &[u8]) -> [u8; N] {
        b[..N].try_into().unwrap()
    }
}

/// A record type: fields written in order, read back from a row.
macro_rules! record {
    ($(#[$m:meta])* $name:ident { $($f:ident: $t:ty),* $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Debug)]
        pub struct $name { $(pub $f: $t),* }
        impl Default for $name {
            /// All zeros.
            fn default() -> $name {
                $name::decode(&[0; $name::SIZE])
            }
        }
        impl $name {
            pub const SIZE: usize = 0 $(+ <$t as Field>::SIZE)*;
            pub fn encode(&self) -> Vec<u8> {
                let mut out = Vec::with_capacity(Self::SIZE);
                $(self.$f.put(&mut out);)*
                out
            }
            /// Panics on a row of the wrong size: a corrupt value.
            pub fn decode(b: &[u8]) -> $name {
                assert_eq!(b.len(), Self::SIZE, concat!("a ", stringify!($name), " row of the wrong size"));
                let mut at = 0;
                $(
                    let $f = <$t as Field>::take(&b[at..]);
                    at += <$t as Field>::SIZE;
                )*
                let _ = at;
                $name { $($f),* }
            }
        }
    };
}

/// A street address.
pub type Street = [u8; 20];

record!(
    /// Where a warehouse or a district is.
    Address {
        name: [u8; 10],
        street_1: Street,
        street_2: Street,
        city: Street,
        state: [u8; 2],
        zip: [u8; 9],
    }
);

impl Field for Address {
    const SIZE: usize = Address::SIZE;
    fn put(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.encode());
    }
    fn take(b: &[u8]) -> Address {
        Address::decode(&b[..Address::SIZE])
    }
}

record!(Warehouse { address: Address, tax: u32, ytd: i64 });

record!(District { address: Address, tax: u32, ytd: i64, next_o_id: u32 });

record!(Customer {
    first: [u8; 16],
    middle: [u8; 2],
    last: [u8; 16],
    street_1: Street,
    street_2: Street,
    city: Street,
    state: [u8; 2],
    zip: [u8; 9],
    phone: [u8; 16],
    since: u64,
    credit: [u8; 2],
    credit_lim: i64,
    discount: u32,
    balance: i64,
    ytd_payment: i64,
    payment_cnt: u32,
    delivery_cnt: u32,
    data: [u8; 500],
});

record!(History { date: u64, amount: i64, data: [u8; 24] });

record!(Order { c_id: u32, entry_d: u64, carrier_id: u32, ol_cnt: u8, all_local: u8 });

record!(OrderLine { i_id: u32, supply_w_id: u32, delivery_d: u64, quantity: u32, amount: i64, dist_info: [u8; 24] });

record!(Item { im_id: u32, name: [u8; 24], price: i64, data: [u8; 50] });

record!(Stock { quantity: u32, dist: [[u8; 24]; 10], ytd: u64, order_cnt: u32, remote_cnt: u32, data: [u8; 50] });

impl<const N: usize, const M: usize> Field for [[u8; N]; M] {
    const SIZE: usize = N * M;
    fn put(&self, out: &mut Vec<u8>) {
        self.iter().for_each(|a| out.extend_from_slice(a));
    }
    fn take(b: &[u8]) -> [[u8; N]; M] {
        std::array::from_fn(|i| b[i * N..][..N].try_into().unwrap())
    }
}

/// Reads a big-endian u32 at `at` of a key.
pub fn be32(key: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(key[at..at + 4].try_into().unwrap())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        let c = Customer { balance: -1000, payment_cnt: 3, data: [7; 500], ..Customer::default() };
        let b = c.encode();
        assert_eq!(b.len(), Customer::SIZE);
        let d = Customer::decode(&b);
        assert_eq!((d.balance, d.payment_cnt, d.data[499]), (-1000, 3, 7));
        let s = Stock { dist: std::array::from_fn(|i| [i as u8; 24]), quantity: 9, ..Stock::default() };
        let t = Stock::decode(&s.encode());
        assert_eq!((t.dist[9][0], t.quantity), (9, 9));
    }

    #[test]
    fn keys_sort_as_their_parts() {
        assert!(order(1, 2, 255) < order(1, 2, 256));
        assert!(order(1, 2, 9999) < order(1, 3, 1));
        assert!(order_line(1, 1, 5, 15) < order_line(1, 1, 6, 1));
    }
}
