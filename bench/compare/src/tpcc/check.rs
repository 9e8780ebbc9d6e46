//! The consistency conditions of clause 3.3.2.1-4, checked after a run on
//! every warehouse and district: W_YTD is the sum of its districts'
//! D_YTD; D_NEXT_O_ID - 1 is the largest order id and the largest new
//! order id; a district's new orders are contiguous; its orders' line
//! counts add up to its order lines.

use super::engine::{Abort, Tx, TxEngine, transact};
use super::schema::{self as s, Table, be32};

pub fn check(engine: &dyn TxEngine, warehouses: u32) -> Result<(), String> {
    let mut problems = Vec::new();
    let (r, _) = transact(engine, true, |tx: &mut dyn Tx| {
        problems.clear();
        let mut buf = Vec::new();
        for w in 1..=warehouses {
            assert!(tx.get(Table::Warehouse, &s::warehouse(w), &mut buf)?);
            let w_ytd = s::Warehouse::decode(&buf).ytd;
            let mut d_ytd = 0;
            for d in 1..=10 {
                assert!(tx.get(Table::District, &s::district(w, d), &mut buf)?);
                let district = s::District::decode(&buf);
                d_ytd += district.ytd;
                let (mut max_o, mut ol_cnt) = (0, 0u64);
                tx.scan(Table::Order, &s::order(w, d, 0), &s::order(w, d + 1, 0), false, &mut |k, v| {
                    max_o = be32(k, k.len() - 4);
                    ol_cnt += u64::from(s::Order::decode(v).ol_cnt);
                    true
                })?;
                let (mut min_no, mut max_no, mut count_no) = (u32::MAX, 0, 0u32);
                tx.scan(Table::NewOrder, &s::order(w, d, 0), &s::order(w, d + 1, 0), false, &mut |k, _| {
                    let o = be32(k, k.len() - 4);
                    (min_no, max_no, count_no) = (min_no.min(o), o, count_no + 1);
                    true
                })?;
                let mut lines = 0u64;
                tx.scan(
                    Table::OrderLine,
                    &s::order_line(w, d, 0, 0),
                    &s::order_line(w, d + 1, 0, 0),
                    false,
                    &mut |_, _| {
                        lines += 1;
                        true
                    },
                )?;
                if district.next_o_id - 1 != max_o || (count_no > 0 && max_no != max_o) {
                    problems.push(format!(
                        "{w}/{d}: D_NEXT_O_ID {} but the last order {max_o}, the last new order {max_no}",
                        district.next_o_id
                    ));
                }
                if count_no > 0 && max_no - min_no + 1 != count_no {
                    problems.push(format!("{w}/{d}: new orders {min_no}..={max_no} but {count_no} of them"));
                }
                if ol_cnt != lines {
                    problems.push(format!("{w}/{d}: the orders count {ol_cnt} lines, there are {lines}"));
                }
            }
            if w_ytd != d_ytd {
                problems.push(format!("warehouse {w}: W_YTD {w_ytd}, its districts' D_YTD add up to {d_ytd}"));
            }
        }
        Ok::<(), Abort>(())
    });
    r.map_err(|e| format!("the check's transaction failed: {e:?}"))?;
    if problems.is_empty() { Ok(()) } else { Err(problems.join("; ")) }
}
